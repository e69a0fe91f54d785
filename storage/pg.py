"""PostgreSQL: URLs, the schema (Alembic, storage/alembic/) and a look at a server.

SQLite keeps its numbered migrations (storage/migrate.py); on PostgreSQL the same schema is built by
Alembic revisions whose ids are the SQLite migration numbers (storage/alembic/README.md). This
module serves the runtime database (storage/db_pg.py upgrades at start-up), ``linli migrate``,
``migrate-data``, ``doctor`` and ``backup`` (bot/cli_pg.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from storage.leases import Lease
from storage.timeutil import from_db

SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
ALEMBIC_DIR = Path(__file__).resolve().parent / "alembic"


def is_postgres_url(url: str) -> bool:
    return url.split(":", 1)[0].lower() in SCHEMES


def asyncpg_url(url: str) -> str:
    """The URL for SQLAlchemy's asyncpg dialect (``postgresql+asyncpg://``)."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() not in SCHEMES or not sep:
        raise ValueError("not a postgresql:// URL")
    return f"postgresql+asyncpg://{rest}"


def plain_url(url: str) -> str:
    """The URL for asyncpg itself and libpq tools (``postgresql://``)."""
    return "postgresql://" + url.partition("://")[2]


def shown_url(url: str) -> str:
    """The URL for people: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = quote(unquote(parts.username or ""), safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class Target:
    """Where a postgresql:// URL points, for libpq tools (the password goes in PGPASSWORD)."""

    host: str
    port: int
    user: str
    database: str
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(plain_url(url))
        return cls(host=parts.hostname or "localhost", port=parts.port or 5432,
                   user=unquote(parts.username or ""), database=unquote(parts.path.lstrip("/")) or "postgres",
                   password=None if parts.password is None else unquote(parts.password))


def alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision in storage/alembic/versions (the schema this code expects)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def revisions() -> list[Any]:
    """Every revision script, oldest first (``.revision``, ``.module``)."""
    from alembic.script import ScriptDirectory

    return list(reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions())))


def _current(sync_conn: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(sync_conn).get_current_heads()
    return heads[0] if heads else None


# Instances starting together each upgrade at start-up: the first holds this lock to its commit,
# the others then find the schema at head and have nothing to do.
UPGRADE_LOCK_KEY = 0x6C696E6C6931  # "linli1"


def _upgrade(sync_conn: Any) -> tuple[str | None, str | None]:
    from alembic import command

    sync_conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK_KEY})")
    before = _current(sync_conn)
    command.upgrade(alembic_config(sync_conn), "head")
    return before, _current(sync_conn)


async def upgrade(url: str) -> tuple[str | None, str | None]:
    """Bring the database to the newest revision, in one transaction: (revision before, after)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(asyncpg_url(url), connect_args={"timeout": 10})
    try:
        async with engine.begin() as conn:
            result: tuple[str | None, str | None] = await conn.run_sync(_upgrade)
            return result
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class ServerInfo:
    version: str
    revision: str | None
    tables: int


async def server_info(url: str) -> ServerInfo:
    """Read-only: the server's version, the schema's revision (None before the first migrate)."""
    import asyncpg

    conn = await asyncpg.connect(plain_url(url), timeout=10)
    try:
        version = await conn.fetchval("SHOW server_version")
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
        revision = None
        if await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            revision = await conn.fetchval("SELECT version_num FROM alembic_version LIMIT 1")
        return ServerInfo(str(version), revision, int(tables))
    finally:
        await conn.close()


async def every_lease(url: str) -> list[Lease]:
    """Read-only: every lease (``linli doctor``: which instance runs which timed job; storage/leases.py)."""
    import asyncpg

    conn = await asyncpg.connect(plain_url(url), timeout=10)
    try:
        rows = await conn.fetch("SELECT name, holder, host, pid, taken_at, expires_at FROM leases ORDER BY name")
        return [Lease(str(r[0]), str(r[1]), str(r[2]), int(r[3]), from_db(str(r[4])), from_db(str(r[5]))) for r in rows]
    finally:
        await conn.close()
