"""What /points reads, counted on both databases: each call to the database (a plain read, or a
``Database.read`` function) is a round trip to the reader's thread or, on PostgreSQL, a pooled
connection, and each statement in it one more round trip to the server there. Nothing is timed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bot.models import NotRegistered
from bot.services import ledger, points
from storage.db import Database
from tests.factories import make_community, make_member
from tests.services.test_claim_statements import Counted


class Trips(Counted):
    """``Counted``, also counting the calls to the database (round trips)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.trips = 0

    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        self.trips += 1
        return await super().fetchone(sql, params)

    async def fetchall(self, sql: str, params: Any = ()) -> Any:
        self.trips += 1
        return await super().fetchall(sql, params)

    async def fetchval(self, sql: str, params: Any = ()) -> Any:
        self.trips += 1
        return await super().fetchval(sql, params)

    async def read(self, fn: Callable[[Any], Any]) -> Any:
        self.trips += 1
        return await super().read(fn)

    async def read_here(self, fn: Callable[[Any], Any]) -> Any:
        self.trips += 1
        return await super().read_here(fn)


def at(y: int, m: int, d: int, h: int = 12) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


async def _credit(db: Database, member: int, amount: int, when: datetime, key: str) -> None:
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=member, amount=amount, reason="task_completed", key=key, now=when)


async def _volunteer(db: Database, *, policy: bool) -> int:
    settings = {"points_expiry": {"years": 1, "since": "2024-06-01T00:00:00.000000Z"}} if policy else {}
    cid = await make_community(db, at(2024, 6, 1), settings=settings)
    vol = await make_member(db, at(2024, 6, 1), cid, volunteer=True, tg_user_id=901, language="en")
    await _credit(db, vol, 9, at(2025, 3, 1), "a")            # expires at the end of 2026
    await _credit(db, vol, 4, at(2026, 11, 30, 16), "b")      # 1 December, 00:00 in Shanghai: this month
    await _credit(db, vol, 2, at(2026, 11, 30, 15), "c")      # 30 November, 23:00 there: last month
    return vol


async def test_points_summary_is_one_round_trip_of_three_statements(db: Database) -> None:
    vol = await _volunteer(db, policy=False)
    counted = Trips(db)
    with counted.fresh():
        s = await points.summary(counted, tg_user_id=901, now=at(2026, 12, 2))  # type: ignore[arg-type]
    # the member with their community and balance; the sums; the latest entries
    assert (counted.trips, len(counted.statements)) == (1, 3), counted.statements
    assert (s.member_id, s.balance, s.ledger_sum, s.this_month) == (vol, 15, 15, 4)
    assert [e.delta for e in s.last] == [4, 2, 9]
    assert s.expiring == []


async def test_points_summary_with_expiry_on_reads_the_standing_once_per_deadline(db: Database) -> None:
    await _volunteer(db, policy=True)
    counted = Trips(db)
    with counted.fresh():
        s = await points.summary(counted, tg_user_id=901, now=at(2026, 12, 2))  # type: ignore[arg-type]
    assert [(e.points, e.last_day) for e in s.expiring] == [(9, date(2026, 12, 31)), (6, date(2027, 12, 31))]
    # the community's policy comes with the member: only the two deadlines' standings are more
    assert counted.trips == 3, counted.statements
    assert s.this_month == 4


async def test_points_summary_of_someone_unregistered_says_so(db: Database) -> None:
    await _volunteer(db, policy=False)
    with pytest.raises(NotRegistered):
        await points.summary(db, tg_user_id=902, now=at(2026, 12, 2))
