"""The database on PostgreSQL: the same interface as ``storage.db.Database``, on an asyncpg pool.

Storage functions keep their signatures and their SQL: one text serves both databases. Named
placeholders (``:name`` with a dict) and SQLite's positional ones (``?``, ``?1``) are rewritten to
asyncpg's ``$n`` once per statement text (``translate``, cached). Rows are asyncpg Records, which
answer ``row[0]``, ``row["col"]``, ``dict(row)`` and unpacking like ``sqlite3.Row``.

- ``transaction()`` takes a pooled connection and runs one READ COMMITTED transaction on it. There
  is no process lock: several instances share the database, and a read-then-write that relied on
  SQLite's single writer locks the row that decides it (``storage.db.lock_row``).
- ``write(fn)`` runs the synchronous ``fn(conn)`` (written for sqlite3) in a greenlet
  (SQLAlchemy's ``greenlet_spawn``): each ``conn.execute`` awaits asyncpg underneath, all in one
  transaction on one pooled connection.
- The schema is Alembic's (``storage.pg.upgrade``), not the SQLite migrations.
- Driver errors come out as subclasses of sqlite3's (``IntegrityError`` for a unique key or the
  balance CHECK), so ``except DriverError`` / ``except sqlite3.IntegrityError`` serve both.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.util import await_only, greenlet_spawn

from storage import pg

log = logging.getLogger(__name__)
T = TypeVar("T")
DIALECT = "postgresql"

# A string literal, a quoted name, a cast (::), a named placeholder, a positional one.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|:([A-Za-z_]\w*)|\?(\d*)")


_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+")


class PgIntegrityError(sqlite3.IntegrityError):
    """A PostgreSQL integrity error (unique key, CHECK, foreign key); ``sqlstate`` says which."""

    sqlstate: str | None = None


class PgError(sqlite3.DatabaseError):
    """Any other error the server reported."""

    sqlstate: str | None = None


@lru_cache(maxsize=4096)
def translate(sql: str) -> tuple[str, tuple[str, ...]]:
    """SQL with ``:name``/``?``/``?N`` placeholders → (SQL with ``$n``, the names in ``$n`` order).

    Positional statements give an empty tuple of names (their parameters are passed in order)."""
    from storage.db import PG_TWINS

    sql = _INDEXED_BY.sub("", PG_TWINS.get(sql, sql))  # an SQLite planner hint: PostgreSQL plans its own
    names: list[str] = []
    counter = 0

    def sub(match: re.Match[str]) -> str:
        nonlocal counter
        name, number = match.group(1), match.group(2)
        if name is not None:
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"
        if number is not None:
            if number:
                return f"${number}"
            counter += 1
            return f"${counter}"
        return match.group(0)

    return _TOKEN.sub(sub, sql), tuple(names)


def _args(names: tuple[str, ...], params: Sequence[Any] | dict[str, Any]) -> list[Any]:
    if isinstance(params, dict):
        return [params[n] for n in names]
    return list(params)


def _coerce(value: Any, type_name: str) -> Any:
    """A parameter as the column's type wants it (SQLite compares 5 and '5' loosely, asyncpg refuses)."""
    if value is None:
        return None
    if type_name in ("text", "varchar", "bpchar", "name") and not isinstance(value, str):
        return str(value)
    if type_name in ("int2", "int4", "int8") and isinstance(value, str | float):
        return int(value)
    if type_name in ("float4", "float8", "numeric") and isinstance(value, str | int):
        return float(value)
    return value


def _driver_error(exc: asyncpg.PostgresError) -> sqlite3.Error:
    kind = PgIntegrityError if isinstance(exc, asyncpg.IntegrityConstraintViolationError) else PgError
    error = kind(str(exc))
    error.sqlstate = getattr(exc, "sqlstate", None)
    return error


async def _run(raw: asyncpg.Connection, sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple[list[Any], int]:
    """Run one statement: (rows, rows affected)."""
    text, names = translate(sql)
    args = _args(names, params)
    try:
        try:
            rows, status, _ = await raw._execute(text, args, 0, None, return_status=True)
        except asyncpg.DataError as exc:
            if "invalid input for query argument" not in str(exc):
                raise
            stmt = await raw._prepare(text, use_cache=True)  # the types the server inferred
            args = [_coerce(v, t.name) for v, t in zip(args, stmt.get_parameters(), strict=False)]
            rows, status, _ = await raw._execute(text, args, 0, None, return_status=True)
    except asyncpg.PostgresError as exc:
        raise _driver_error(exc) from exc
    return rows, _affected(status)


def _affected(status: bytes | str | None) -> int:
    """``b'UPDATE 3'`` → 3, ``b'INSERT 0 2'`` → 2."""
    if not status:
        return 0
    last = (status.decode() if isinstance(status, bytes) else status).rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


async def _many(raw: asyncpg.Connection, sql: str, seq: Sequence[Sequence[Any] | dict[str, Any]] | Any) -> None:
    text, names = translate(sql)
    rows = [_args(names, p) for p in seq]
    if not rows:
        return
    try:
        await raw.executemany(text, rows)
    except asyncpg.PostgresError as exc:
        raise _driver_error(exc) from exc


def _number(text: str) -> int | float:
    """A NUMERIC as SQLite gives it: SUM of integers an int, AVG a float (no column is NUMERIC)."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


async def _init_connection(raw: asyncpg.Connection) -> None:
    await raw.set_type_codec("numeric", schema="pg_catalog", encoder=str, decoder=_number, format="text")


async def _keep_session(raw: asyncpg.Connection) -> None:
    """A connection goes back to the pool as it is. asyncpg's default reset (``SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) is one more round trip at every
    release (two per claim: its glance and its transaction) and has nothing to undo here: every
    statement runs in a transaction that has ended (asyncpg still rolls back one left open before
    calling this), the advisory locks are transaction-scoped (``pg_advisory_xact_lock``), and
    nothing sets a session setting, listens or keeps a cursor. Whatever starts doing so resets it here."""


class Cursor:
    """What ``execute`` gives: the rows at once (``fetchone``/``fetchall``, sync or awaited)."""

    __slots__ = ("_at", "_rows", "rowcount")
    lastrowid = None  # use RETURNING id (portable) instead

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self.rowcount, self._at = rows, rowcount, 0

    def fetchone(self) -> Any:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[Any]:
        rest, self._at = self._rows[self._at:], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class AsyncCursor(Cursor):
    __slots__ = ()

    async def fetchone(self) -> Any:
        return Cursor.fetchone(self)

    async def fetchall(self) -> list[Any]:  # type: ignore[override]
        return Cursor.fetchall(self)

    async def close(self) -> None:
        return None


class _Pending:
    """``await conn.execute(...)`` and ``async with conn.execute(...) as cur`` (as aiosqlite allows)."""

    __slots__ = ("_conn", "_params", "_sql")

    def __init__(self, conn: PgConnection, sql: str, params: Sequence[Any] | dict[str, Any]) -> None:
        self._conn, self._sql, self._params = conn, sql, params

    async def _go(self) -> AsyncCursor:
        rows, count = await self._conn.run(self._sql, self._params)
        return AsyncCursor(rows, count)

    def __await__(self) -> Any:
        return self._go().__await__()

    async def __aenter__(self) -> AsyncCursor:
        return await self._go()

    async def __aexit__(self, *exc: object) -> None:
        return None


class PgConnection:
    """A transaction's connection, answering like aiosqlite's (``execute``, ``execute_fetchall``, ``executemany``)."""

    dialect = DIALECT

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw

    async def run(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple[list[Any], int]:
        return await _run(self.raw, sql, params)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> _Pending:
        return _Pending(self, sql, params)

    async def execute_fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return (await self.run(sql, params))[0]

    async def executemany(self, sql: str, seq: Any) -> None:
        await _many(self.raw, sql, seq)


class PoolConnection(PgConnection):
    """``Database.reader``: each statement on a pooled connection of its own (committed data)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def run(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple[list[Any], int]:
        async with self.pool.acquire() as raw:
            return await _run(raw, sql, params)

    async def executemany(self, sql: str, seq: Any) -> None:
        async with self.pool.acquire() as raw, raw.transaction():
            await _many(raw, sql, seq)


class SyncPgConnection:
    """The connection a ``Database.write`` function is given: sqlite3's calls, asyncpg underneath."""

    dialect = DIALECT

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        rows, count = await_only(_run(self.raw, sql, params))
        return Cursor(rows, count)

    def executemany(self, sql: str, seq: Any) -> Cursor:
        await_only(_many(self.raw, sql, seq))
        return Cursor([], 0)


class PgDatabase:
    """``storage.db.Database`` on PostgreSQL. Use ``storage.db.open_database(url)``."""

    dialect = DIALECT

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.path = pg.shown_url(url)
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def open(self, *, migrate: bool = True) -> None:
        from storage.db import DatabaseError

        try:
            if migrate:
                await pg.upgrade(self.url)
            self._pool = await asyncpg.create_pool(pg.plain_url(self.url), min_size=1, max_size=self.pool_size,
                                                   timeout=10, command_timeout=60, init=_init_connection,
                                                   reset=_keep_session)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self.close()
            raise DatabaseError(f"cannot open the database {self.path}: {exc}") from exc
        except Exception as exc:  # SQLAlchemy's wrapping of the same during the upgrade
            await self.close()
            raise DatabaseError(f"cannot open the database {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            from storage.db import DatabaseError

            raise DatabaseError("the database is not open")
        return self._pool

    @property
    def reader(self) -> PoolConnection:
        return PoolConnection(self.pool)

    writer = reader  # no single writer here; tests that poke the writer get a pooled connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        async with self.pool.acquire() as raw, raw.transaction():
            yield PgConnection(raw)

    async def write(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` (synchronous sqlite3-style code) as one transaction; see the module."""
        async with self.pool.acquire() as raw, raw.transaction():
            result: T = await greenlet_spawn(fn, SyncPgConnection(raw))
            return result

    async def read(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` (synchronous sqlite3-style reads) on one pooled connection, outside a
        transaction: each statement sees what was committed when it ran."""
        async with self.pool.acquire() as raw:
            result: T = await greenlet_spawn(fn, SyncPgConnection(raw))
            return result

    read_here = read  # (SQLite reads a few rows on the event loop's thread; here every read is a round trip)

    async def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        rows = await self.reader.execute_fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return await self.reader.execute_fetchall(sql, params)

    async def fetchval(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def backup(self, target: str) -> None:
        from storage.db import DatabaseError

        raise DatabaseError("on PostgreSQL, back up with pg_dump (linli backup prints its command)")

    async def checkpoint(self) -> bool:
        return True  # the server manages its write-ahead log

    async def schema_version(self) -> int:
        """The Alembic revision (its ids are the SQLite migration numbers)."""
        value = await self.fetchval("SELECT version_num FROM alembic_version LIMIT 1")
        return int(value) if value and str(value).isdigit() else 0
