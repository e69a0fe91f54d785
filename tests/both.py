"""A ``db`` fixture on both databases, for test modules that import it (``from tests.both import
both_db, pg_server``) or a conftest that does: a migrated SQLite file, and (marker ``postgres``) a fresh
database on the throwaway PostgreSQL server (tests/pg.py), migrated by Alembic, which skips, saying
why, where PostgreSQL is not installed."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database, open_database
from tests.pg import PgServer
from tests.postgres.conftest import pg_server

__all__ = ["both_db", "only_sqlite", "pg_server"]
_names = itertools.count(1)


async def fresh_database(server: PgServer) -> str:
    """A new, empty database on the server: its URL."""
    import asyncpg

    name = f"linli_both_{next(_names)}"
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server.url(name)


async def drop_database(server: PgServer, url: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(name="db", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def both_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    server: PgServer | None = None if request.param == "sqlite" else request.getfixturevalue("pg_server")
    url = str(tmp_path / "test.db") if server is None else await fresh_database(server)
    database = await open_database(url)
    try:
        yield database
    finally:
        await database.close()
        if server is not None:
            await drop_database(server, url)


def only_sqlite(db: Database, why: str) -> None:
    """Skip a test of what only SQLite does (saying so) when ``db`` is PostgreSQL."""
    if getattr(db, "dialect", "sqlite") != "sqlite":
        pytest.skip(f"SQLite only: {why}")
