"""Read-only looks at a PostgreSQL database another process owns, for synchronous callers: the demo
kit (bot/devkit) watches the bot it runs with ``storage.readonly.open_readonly`` on either database.

One asyncpg connection per URL, opened on first use with every transaction read-only, on an event
loop of its own thread (the callers are synchronous code on another loop's thread); ``execute`` answers
like sqlite3's (``fetchone``/``fetchall``), driver errors as sqlite3's (``storage.db_pg``).
``close_all`` ends them (the demo does at its end)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import asyncpg

from storage import pg
from storage.db_pg import Cursor, _init_connection, _run

T = TypeVar("T")
_readers: dict[str, PgReader] = {}
_lock = threading.Lock()


class PgReader:
    """One read-only connection, answering ``execute`` like a sqlite3 connection."""

    def __init__(self, url: str) -> None:
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
        rows, count = self._call(_run(self._conn, sql, params))
        return Cursor(rows, count)

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
