"""Read-only looks at a database file that another process owns or that may not be a Linli
database yet: ``linli doctor`` and the demo kit (bot/devkit), which watches the bot it runs.

Plain sqlite3 on a ``mode=ro`` connection (on PostgreSQL, storage/readonly_pg.py: every transaction
read-only): nothing is ever created or changed. The aggregates'
own reads on such a connection are in their modules (``storage.outbox.count_due``,
``storage.cards.count_to_draw``); what only the demo asks is here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, cast

from storage.db import DatabaseError
from storage.pg import is_postgres_url

ReadOnly = sqlite3.Connection
# Raised by a read on a file that is not (yet) what the read expects (the bot is creating the schema).
ReadError = sqlite3.Error


@contextmanager
def open_readonly(path: str | Path, *, timeout: float = 5.0) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the file (closed afterwards); ``DatabaseError`` if it cannot be opened.
    A ``postgresql://`` URL instead of a path: the same calls on a read-only connection to that database,
    kept open for the next look (storage/readonly_pg.py; its errors are sqlite3's, as ``ReadError``)."""
    if is_postgres_url(str(path)):
        from storage.readonly_pg import reader

        yield cast(sqlite3.Connection, reader(str(path)))   # answers execute() as sqlite3 does
        return
    uri = Path(path).as_uri() if Path(path).is_absolute() else f"file:{path}"
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        raise DatabaseError(str(exc)) from exc
    try:
        yield conn
    finally:
        conn.close()


def applied_migrations(conn: sqlite3.Connection) -> set[int]:
    """The schema versions applied to the file (none if it has no ``schema_migrations`` table)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    return {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")} if has_table else set()


def last_id(conn: sqlite3.Connection, table: Literal["tasks", "merchants", "rewards"]) -> int | None:
    """The id of the row added last to ``table``."""
    sql = {"tasks": "SELECT MAX(id) FROM tasks", "merchants": "SELECT MAX(id) FROM merchants",
           "rewards": "SELECT MAX(id) FROM rewards"}[table]
    v = conn.execute(sql).fetchone()[0]
    return None if v is None else int(v)


def digest_readers(conn: sqlite3.Connection) -> int:
    """How many registered members get a private digest: staff, and volunteers who keep it on."""
    return int(conn.execute(
        "SELECT COALESCE(SUM(is_staff) + SUM(CASE WHEN is_volunteer = 1 AND digest_enabled = 1 THEN 1 ELSE 0 END), 0)"
        " FROM members"
        " WHERE deleted_at IS NULL AND registered_at IS NOT NULL AND (is_staff = 1 OR is_volunteer = 1)").fetchone()[0])


def digests_decided(conn: sqlite3.Connection, day: str) -> int:
    """How many digests of ``day`` (YYYY-MM-DD) the sweeps have decided (one row each, sent or not)."""
    return int(conn.execute("SELECT COUNT(*) FROM sent_notifications WHERE key LIKE 'digest:%:' || :day",
                            {"day": day}).fetchone()[0])


def last_sweep(conn: sqlite3.Connection) -> str | None:
    """When the last whole pass of the sweeps ended (bot time, as stored), None before the first."""
    from storage.housekeeping import SWEPT_KEY

    row = conn.execute("SELECT value FROM kv WHERE key = :key", {"key": SWEPT_KEY}).fetchone()
    return None if row is None else str(row[0])
