"""Read-only looks at a PostgreSQL database another process owns, for synchronous callers: the demo
kit (bot/devkit) watches the bot it runs with ``storage.readonly.open_readonly`` on either database.

One asyncpg connection per URL, opened on first use with every transaction read-only, on an event
loop of its own thread (the callers are synchronous code on another loop's thread); ``execute`` answers
like sqlite3's (``fetchone``/``fetchall``), driver errors as sqlite3's (``storage.db_pg``). A lost
connection (the server restarted, or ended it) is ``LostConnection``, a ``storage.readonly.ReadError``
as a look at an SQLite file gives, and the next look connects again. ``close_all`` ends them (the
demo does at its end)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import asyncpg

from storage import pg
from storage.db_pg import Cursor, PgError, _init_connection, _run

T = TypeVar("T")
_readers: dict[str, PgReader] = {}
_lock = threading.Lock()
# The driver's ways of saying the connection is gone: closed under it, the server ending it
# (shutdown, restart, pg_terminate_backend), its protocol caught mid-way by that end, the network,
# or no answer in time.
_GONE = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError, asyncpg.InterfaceError,
         asyncpg.InternalClientError, OSError, TimeoutError, concurrent.futures.TimeoutError)


class LostConnection(sqlite3.OperationalError):
    """The connection to the database was lost during a look (the next look connects again)."""


class PgReader:
    """One read-only connection, answering ``execute`` like a sqlite3 connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="linli-pg-reader", daemon=True)
        self._thread.start()
        try:
            self._conn: asyncpg.Connection = self._call(asyncpg.connect(
                pg.plain_url(url), timeout=10, server_settings={"default_transaction_read_only": "on"}))
            self._call(_init_connection(self._conn))
        except BaseException:
            self._stop()
            raise

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        try:
            rows, count = self._call(_run(self._conn, sql, params))
        except (PgError, *_GONE) as exc:
            cause = exc.__cause__ if isinstance(exc, PgError) else exc  # the server's errors come as PgError
            if not isinstance(cause, _GONE):
                raise
            self._forget()
            raise LostConnection(f"lost the connection to the database {pg.shown_url(self.url)}:"
                                 f" {type(cause).__name__}: {cause}") from exc
        return Cursor(rows, count)

    def _forget(self) -> None:
        """This connection is gone: the next look at its database opens a new one."""
        with _lock:
            if _readers.get(self.url) is self:
                del _readers[self.url]
        try:
            self.close()
        except Exception:  # closing what is already gone may fail any way
            pass

    def close(self) -> None:
        try:
            self._call(self._conn.close(timeout=5))
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def reader(url: str) -> PgReader:
    """The read-only connection to ``url`` (opened on first use); ``DatabaseError`` if it cannot be opened."""
    from storage.db import DatabaseError

    with _lock:
        found = _readers.get(url)
        if found is None:
            try:
                found = _readers[url] = PgReader(url)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                raise DatabaseError(f"cannot open the database {pg.shown_url(url)}: {exc}") from None
        return found


def close_all() -> None:
    with _lock:
        readers = list(_readers.values())
        _readers.clear()
    for r in readers:
        r.close()
