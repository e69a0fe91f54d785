"""``Database.read`` (a few reads in one round trip) and ``Database.read_here`` (a few reads by index on
the event loop's own thread): what they read is what was committed when they ran, never older."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from typing import Any

import pytest

from storage import members as member_store
from storage.db import Database
from tests.both import only_sqlite
from tests.factories import make_community, make_member


def _names(conn: Any) -> list[str]:
    return [r["display_name"] for r in conn.execute("SELECT display_name FROM members ORDER BY id").fetchall()]


async def test_reads_see_every_commit_made_before_them(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, name="Ann", tg_user_id=801)
    assert await db.read(_names) == await db.read_here(_names) == ["Ann"]
    member = await member_store.by_tg(db, 801)
    assert member is not None and (member.id, member.display_name, member.is_staff) == (mid, "Ann", False)
    # A change committed after a read (here: a rename and a promotion) is what the next read sees.
    await db.write(lambda conn: conn.execute("UPDATE members SET display_name = 'Bea', is_staff = 1 WHERE id = :id",
                                             {"id": mid}))
    assert await db.read_here(_names) == ["Bea"]
    member = await member_store.by_tg(db, 801)
    assert member is not None and (member.display_name, member.is_staff) == ("Bea", True)
    await db.write(lambda conn: conn.execute("UPDATE members SET deleted_at = '2026-01-01T00:00:00.000000Z',"
                                             " tg_user_id = NULL WHERE id = :id", {"id": mid}))
    assert await member_store.by_tg(db, 801) is None


async def test_reading_here_runs_on_the_loops_thread_and_never_writes(db: Database, now: datetime) -> None:
    only_sqlite(db, "PostgreSQL has no connection in this process to read from without a round trip")
    threads = await db.read_here(lambda conn: threading.current_thread())
    assert threads is threading.current_thread()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await db.read_here(lambda conn: conn.execute("DELETE FROM members"))


async def test_a_busy_moment_goes_to_the_readers_thread(db: Database, now: datetime) -> None:
    only_sqlite(db, "SQLite's busy lock")
    calls: list[str] = []

    def fn(conn: Any) -> str:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return "read"

    assert await db.read_here(fn) == "read"
    assert calls[0] == threading.current_thread().name != calls[1]


class _HereOnly:
    """The database, refusing every read that is a round trip to the reader's thread."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def __getattr__(self, name: str) -> Any:
        if name in ("fetchone", "fetchall", "fetchval", "read", "reader"):
            raise AssertionError(f"db.{name}: a round trip for a lookup by a unique index")
        return getattr(self._db, name)


async def test_a_member_by_id_and_a_language_are_read_here(db: Database, now: datetime) -> None:
    """Each claim on a request renders "who is coming" with the volunteer read by id, and every
    private update reads its sender's language: lookups by a unique index, not round trips."""
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, name="Ann", tg_user_id=801, language="en")
    here = _HereOnly(db)
    member = await member_store.by_id(here, mid)  # type: ignore[arg-type]
    assert member is not None and (member.display_name, member.tg_user_id) == ("Ann", 801)
    assert await member_store.language_of(here, 801) == "en"  # type: ignore[arg-type]
    await db.write(lambda conn: conn.execute("UPDATE members SET language = 'zh', display_name = 'Bea',"
                                             " deleted_at = '2026-01-01T00:00:00.000000Z', tg_user_id = NULL"
                                             " WHERE id = :id", {"id": mid}))
    member = await member_store.by_id(here, mid)  # type: ignore[arg-type]
    assert member is not None and (member.display_name, member.tg_user_id) == ("Bea", None)  # erased or not
    assert await member_store.language_of(here, 801) is None  # type: ignore[arg-type]
    assert await member_store.by_id(here, mid + 1) is None  # type: ignore[arg-type]
