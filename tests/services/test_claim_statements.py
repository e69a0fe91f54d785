"""The statements a claim sends, counted on both databases: on PostgreSQL each one is a round trip
to the server (and a transaction two more, BEGIN and COMMIT), so a claim storm pays for every one.

The database is wrapped in a counter that sees every statement the service sends through it (its
plain reads and those inside ``Database.read``/``read_here``/``write`` functions); nothing is timed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest

from bot.models import TaskFull
from bot.services import tasks
from storage.db import Database
from storage.timeutil import to_db
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task


class _CountedConnection:
    def __init__(self, conn: Any, seen: list[str]) -> None:
        self._conn, self._seen = conn, seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, sql: str, *args: Any) -> Any:
        self._seen.append(sql)
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self._seen.append(sql)
        return self._conn.executemany(sql, *args)


class Counted:
    """The database, recording each statement sent through it and each write transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.statements: list[str] = []
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        if name in ("transaction", "reader", "writer"):
            raise AssertionError(f"the claim path used db.{name}: count its statements here too")
        return getattr(self._db, name)

    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        self.statements.append(sql)
        return await self._db.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Any = ()) -> Any:
        self.statements.append(sql)
        return await self._db.fetchall(sql, params)

    async def fetchval(self, sql: str, params: Any = ()) -> Any:
        self.statements.append(sql)
        return await self._db.fetchval(sql, params)

    async def write(self, fn: Callable[[Any], Any]) -> Any:
        self.transactions += 1
        return await self._db.write(lambda conn: fn(_CountedConnection(conn, self.statements)))

    async def read(self, fn: Callable[[Any], Any]) -> Any:
        return await self._db.read(lambda conn: fn(_CountedConnection(conn, self.statements)))

    async def read_here(self, fn: Callable[[Any], Any]) -> Any:
        return await self._db.read_here(lambda conn: fn(_CountedConnection(conn, self.statements)))

    @contextmanager
    def fresh(self) -> Iterator[Counted]:
        self.statements, self.transactions = [], 0
        yield self


async def _people(db: Database, now: datetime) -> tuple[int, int, int, int]:
    cid = await make_community(db, now)
    resident = await make_member(db, now, cid, resident=True)
    staff = await make_member(db, now, cid, staff=True)
    # A volunteer who claimed before (asked about announcements long ago): a claim in a storm.
    vol = await make_member(db, now, cid, volunteer=True, announce_asked_at=to_db(now))
    return cid, resident, staff, vol


async def test_a_claim_on_an_event_sends_seven_statements_in_one_transaction(db: Database, now: datetime) -> None:
    cid, _resident, staff, vol = await _people(db, now)
    event = await make_task(db, now, cid, staff, kind="event", slots=2)
    counted = Counted(db)
    with counted.fresh():
        res = await tasks.claim(counted, now, vol, event)  # type: ignore[arg-type]
    assert res.taken == 1
    # the glance (outside the transaction); the task locked and read; the member, their claim and
    # the places taken; the claim, the task's new state, the audit row, the volunteer's details.
    assert (len(counted.statements), counted.transactions) == (7, 1), counted.statements


async def test_a_claim_on_a_request_sends_seven_statements_in_one_transaction(db: Database, now: datetime) -> None:
    cid, resident, _staff, vol = await _people(db, now)
    request = await make_task(db, now, cid, resident, requester_id=resident)
    counted = Counted(db)
    with counted.fresh():
        res = await tasks.claim(counted, now, vol, request)  # type: ignore[arg-type]
    assert res.state == "in_progress"
    # as on an event, with "who is coming" for the resident in the same INSERT as the details
    assert (len(counted.statements), counted.transactions) == (7, 1), counted.statements
    sent = await db.fetchall("SELECT o.kind, m.id FROM outbox o JOIN members m ON m.tg_user_id = o.chat_id"
                             " ORDER BY o.kind")
    assert [tuple(r) for r in sent] == [("task_claimed_volunteer", vol), ("task_who_is_coming", resident)]


async def test_a_tap_on_a_full_event_is_refused_from_one_read(db: Database, now: datetime) -> None:
    cid, _resident, staff, vol = await _people(db, now)
    event = await make_task(db, now, cid, staff, kind="event", slots=1, state="full")
    counted = Counted(db)
    with counted.fresh(), pytest.raises(TaskFull):
        await tasks.claim(counted, now, vol, event)  # type: ignore[arg-type]
    assert (len(counted.statements), counted.transactions) == (1, 0), counted.statements
