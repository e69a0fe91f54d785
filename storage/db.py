"""The database: one aiosqlite write connection behind an asyncio.Lock, one read connection.

SQLite takes one writer at a time. Every write goes through ``Database.transaction()``, which
holds the lock and opens the transaction with ``BEGIN IMMEDIATE`` so a read-then-write sequence
cannot fail half-way with SQLITE_BUSY. Reads go through a second connection (WAL lets it read
the last committed state while a write is in progress), so a long report never delays a claim.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlparse

import aiosqlite

from storage.migrate import apply_migrations
from storage.periods import register, register_async

log = logging.getLogger(__name__)

Row = sqlite3.Row
# What code above storage/ names in its type hints (it imports no database driver):
Connection = aiosqlite.Connection     # a write transaction's connection (``Database.transaction``)
SyncConnection = sqlite3.Connection   # the connection a ``Database.write`` function is given
DriverError = sqlite3.Error           # the driver's own errors, where a caller must tell them apart
T = TypeVar("T")


class DatabaseError(RuntimeError):
    """The database could not be opened or is not usable (one clear sentence in ``str()``)."""


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite://:memory:`` → a path.

    Raises ``DatabaseError`` for anything that is not an SQLite URL.
    """
    if not url.startswith("sqlite:"):
        raise DatabaseError(
            f"DATABASE_URL must start with sqlite:/// (only SQLite is supported), got {url.split(':', 1)[0]!r}"
        )
    parsed = urlparse(url)
    if parsed.netloc not in ("", ":memory:"):
        raise DatabaseError("DATABASE_URL must look like sqlite:///path/to/file.db")
    if parsed.netloc == ":memory:" or parsed.path in ("/:memory:",):
        return ":memory:"
    path = parsed.path
    if path.startswith("/"):
        path = path[1:]  # sqlite:///data/x.db → data/x.db ; sqlite:////abs → /abs
    if not path:
        raise DatabaseError("DATABASE_URL has no file path, e.g. sqlite:///data/linli.db")
    return path


class Database:
    """Owns the two connections. Use ``open_database()`` to create one."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._here: sqlite3.Connection | None = None  # ``read_here``'s, on the event loop's thread
        self._lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self, *, migrate: bool = True) -> None:
        if self.path != ":memory:":
            parent = Path(self.path).expanduser().resolve().parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(f"cannot create the database folder {parent}: {exc.strerror}") from exc
        try:
            self._writer = await self._connect()
            if migrate:
                await apply_migrations(self._writer)
            # A second connection for reads (in-memory databases are private to one connection).
            self._reader = self._writer if self.path == ":memory:" else await self._connect()
            self._here = None if self.path == ":memory:" else self._connect_here()
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise DatabaseError(f"cannot open the database {self.path}: {exc}") from exc

    async def _connect(self) -> aiosqlite.Connection:
        conn = await connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await register_async(conn)  # the ledger's running-totals trigger calls these
        await conn.execute("PRAGMA busy_timeout = 5000")
        await conn.execute("PRAGMA foreign_keys = ON")
        # Deleted or overwritten content is zeroed, not left in free space: erased personal data
        # must not stay readable in the file (bot/services/erasure.py).
        await conn.execute("PRAGMA secure_delete = ON")
        if self.path != ":memory:":
            await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _connect_here(self) -> sqlite3.Connection:
        # Used by the event loop's thread only, one call at a time (``read_here``); never waits for a
        # lock (busy_timeout 0: a busy moment goes to the reader's thread instead) and never writes.
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        register(conn)
        conn.execute("PRAGMA query_only = ON")
        return conn

    async def close(self) -> None:
        if self._here is not None:
            self._here.close()
            self._here = None
        for conn in {id(c): c for c in (self._reader, self._writer) if c is not None}.values():
            try:
                await conn.close()
            except Exception:  # pragma: no cover - closing is best effort
                log.debug("closing a connection failed", exc_info=True)
        self._reader = self._writer = None

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise DatabaseError("the database is not open")
        return self._writer

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise DatabaseError("the database is not open")
        return self._reader

    # -- writes ----------------------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction at a time: lock, ``BEGIN IMMEDIATE``, commit or roll back."""
        async with self._lock:
            conn = self.writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` as one write transaction on the writer's own thread, in one round trip.

        ``transaction()`` costs a round trip to the writer's thread per statement, and each trip
        waits for the event loop; while the lock is held that wait is everyone's. On a busy event
        (hundreds of Claim taps a second) that convoy was most of the answer time. ``fn`` is plain
        synchronous sqlite3 code; if it raises, everything it wrote is rolled back and the error
        comes out here.
        """
        async with self._lock:
            writer = self.writer
            # aiosqlite runs every call on the connection's thread through _execute; it has no
            # public way to run a function there (aiosqlite 0.22; tests/storage/test_storage.py fails if that changes).
            result: T = await writer._execute(_run_transaction, writer._conn, fn)  # type: ignore[no-untyped-call]
            return result

    # -- reads -----------------------------------------------------------------------------
    # One round trip to the reader's thread each (execute and fetch together, cursor closed there):
    # a cursor used from asyncio costs three, and under load each trip waits for the event loop.
    async def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        rows = await self.reader.execute_fetchall(sql, params)
        for row in rows:
            return row
        return None

    async def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        return list(await self.reader.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)``, plain synchronous reads, on the reader's thread in one round trip (a
        few statements that one step needs together cost one trip, not one each). Not a
        transaction: each statement sees what was committed when it ran, as with ``fetchone``."""
        reader = self.reader
        result: T = await reader._execute(fn, reader._conn)  # type: ignore[no-untyped-call]  # see ``write``
        return result

    async def read_here(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``read``, run at once on the event loop's own thread: for a few rows found by an index (a
        member by Telegram id, a card by its message), which SQLite reads in microseconds. A round trip
        to the reader's thread costs about ten times such a read in CPU (measured: 40–60 µs against 5 µs
        per lookup by a unique index, pinned to one core) and waits for the event loop twice. The loop
        waits while ``fn`` runs, so nothing that scans. When SQLite is busy (rare with the write-ahead
        log) it goes to the reader's thread rather than sleep here. An in-memory database has one
        connection: there it is ``read``."""
        here = self._here
        if here is None:
            return await self.read(fn)
        try:
            return fn(here)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return await self.read(fn)

    # -- maintenance -----------------------------------------------------------------------
    async def backup(self, target: str) -> None:
        """Online backup (SQLite backup API): safe while the bot is running."""
        try:
            Path(target).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            dest = await connect(target)
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseError(f"cannot write {target}: {getattr(exc, 'strerror', None) or exc}") from exc
        try:
            async with self._lock:
                await self.writer.backup(dest)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot write {target}: {exc}") from exc
        finally:
            await dest.close()

    async def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file and empty it (best effort: a reader in
        the middle of a read keeps older frames; returns whether it completed)."""
        if self.path == ":memory:":
            return True
        async with self._lock:
            rows = await self.writer.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
        return any(int(row[0]) == 0 for row in rows)

    async def schema_version(self) -> int:
        value = await self.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(value or 0)


# Reads inside a write transaction use execute_fetchall: one round trip to the writer's thread
# instead of three (execute, fetch, close), which matters while other claims wait for the writer.
async def first(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> aiosqlite.Row | None:
    """The first row of a query run on a transaction's connection, None if there is none."""
    for row in await conn.execute_fetchall(sql, params):
        return row
    return None


async def connect(path: str, **kwargs: Any) -> aiosqlite.Connection:
    """``aiosqlite.connect`` that cleans up after a failure.

    When the file cannot be opened, aiosqlite stops its worker thread without waiting for it; the
    thread then reports to an event loop that ``asyncio.run`` has closed meanwhile and prints
    "Exception in thread … Event loop is closed". Wait for that thread before passing the error on.
    """
    conn = aiosqlite.connect(path, **kwargs)
    try:
        return await conn
    except BaseException:
        thread = getattr(conn, "_thread", None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while thread is not None and thread.is_alive() and loop.time() < deadline:
            await asyncio.sleep(0.005)
        raise


# Statements SQLite and PostgreSQL say differently (JSON functions, mostly): the SQLite text is what
# the code names and runs; storage/db_pg.py runs its registered twin instead.
PG_TWINS: dict[str, str] = {}


def pg_twin(sql: str, pg_sql: str) -> str:
    """Register ``pg_sql`` as the PostgreSQL text of ``sql``; returns ``sql``."""
    PG_TWINS[sql] = pg_sql
    return sql


def new_id(row: Any) -> int:
    """The id an ``INSERT ... RETURNING id`` gave (``lastrowid`` is SQLite's alone)."""
    return int(row[0]) if row else 0


def dialect(conn: object) -> str:
    """"sqlite" or "postgresql": which database a connection (or a ``Database``) talks to."""
    return getattr(conn, "dialect", "sqlite")


# Where SQLite's single writer made a read-then-write safe, PostgreSQL (READ COMMITTED, several
# instances) needs the row that decides it locked until the commit: the claim counting a task's
# places, the waiting list's promotion, a reward's stock. Whitelisted tables: the name is SQL.
_LOCKABLE = {"tasks": "SELECT 1 FROM tasks WHERE id = :id FOR UPDATE",
             "rewards": "SELECT 1 FROM rewards WHERE id = :id FOR UPDATE"}


def lock_row_sync(conn: Any, table: str, row_id: int) -> bool:
    """Lock the row until the transaction ends (PostgreSQL); SQLite's writer lock already does.
    Whether a lock was taken."""
    if getattr(conn, "dialect", "sqlite") == "sqlite":
        return False
    conn.execute(_LOCKABLE[table], {"id": row_id})
    return True


async def lock_row(conn: Any, table: str, row_id: int) -> None:
    """``lock_row_sync`` in a ``Database.transaction``."""
    if getattr(conn, "dialect", "sqlite") != "sqlite":
        await conn.execute(_LOCKABLE[table], {"id": row_id})


def _run_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


async def open_database(url_or_path: str, *, migrate: bool = True, pool_size: int = 10) -> Database:
    """Open (and by default migrate) the database named by a ``sqlite:///`` URL or a plain path,
    or by a ``postgresql://`` URL (storage/db_pg.py: the same interface on an asyncpg pool of at
    most ``pool_size`` connections; SQLite keeps its two connections)."""
    from storage.pg import is_postgres_url

    if is_postgres_url(url_or_path):
        from storage.db_pg import PgDatabase

        pg_db = PgDatabase(url_or_path, pool_size=pool_size)
        await pg_db.open(migrate=migrate)
        return cast(Database, pg_db)  # the same interface (storage/db_pg.py), not a subclass
    path = sqlite_path_from_url(url_or_path) if url_or_path.startswith("sqlite:") else url_or_path
    db = Database(path)
    await db.open(migrate=migrate)
    return db
