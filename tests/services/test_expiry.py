"""Expiring points: a community policy (off by default); oldest points first, once per deadline,
never below zero, a month's warning, and nothing to do (at any ledger size) between deadlines."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from bot.models import NotAllowed
from bot.services import expiry, ledger, points
from bot.services import reports as report_service
from bot.services.expiry import EXPIRED
from storage.db import Database
from tests.factories import make_community, make_member

SH = "Asia/Shanghai"
ON_SINCE = datetime(2024, 6, 1, tzinfo=UTC)  # the policy was switched on long before


def at(y: int, m: int, d: int, h: int = 12) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


async def _world(db: Database, *, policy: bool = True) -> tuple[int, int, int]:
    settings = {"points_expiry": {"years": 1, "since": "2024-06-01T00:00:00.000000Z"}} if policy else {}
    cid = await make_community(db, ON_SINCE, settings=settings)
    staff = await make_member(db, ON_SINCE, cid, staff=True, tg_user_id=900)
    vol = await make_member(db, ON_SINCE, cid, volunteer=True, tg_user_id=901, language="en")
    return cid, staff, vol


async def _credit(db: Database, member: int, amount: int, when: datetime, key: str) -> None:
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=member, amount=amount, reason="task_completed", key=key, now=when)


async def _debit(db: Database, member: int, amount: int, when: datetime, key: str) -> None:
    async with db.transaction() as conn:
        await ledger.debit(conn, member_id=member, amount=amount, reason="redeem", key=key, now=when)


async def _expired(db: Database, member: int) -> list[int]:
    return [-int(r[0]) for r in await db.fetchall("SELECT delta FROM ledger WHERE member_id = ? AND reason = ?"
                                                  " ORDER BY id", (member, EXPIRED))]


async def _balance(db: Database, member: int) -> int:
    return int(await db.fetchval("SELECT balance FROM members WHERE id = ?", (member,)))


async def test_points_of_2025_expire_at_the_end_of_2026_oldest_spent_first_once(db: Database) -> None:
    _cid, _staff, vol = await _world(db)
    await _credit(db, vol, 10, at(2025, 3, 1), "a")
    await _credit(db, vol, 5, at(2025, 12, 30), "b")
    await _debit(db, vol, 4, at(2026, 2, 1), "r1")    # spent from the 2025 points (oldest first)
    await _credit(db, vol, 7, at(2026, 5, 1), "c")    # earned in 2026: expires at the end of 2027
    await expiry.sweep_expiry(db, at(2026, 12, 31, 15))  # 23:00 in Shanghai: not yet
    assert await _expired(db, vol) == []
    await expiry.sweep_expiry(db, at(2026, 12, 31, 16))  # midnight in Shanghai
    await expiry.sweep_expiry(db, at(2026, 12, 31, 17))  # again: nothing more
    assert await _expired(db, vol) == [11]
    assert await _balance(db, vol) == 7
    key = await db.fetchval("SELECT idempotency_key FROM ledger WHERE reason = ?", (EXPIRED,))
    assert key == f"expire:{vol}:2027"
    # Run by hand for the same deadline again (the sweep remembered it was done): still once.
    async with db.transaction() as conn:
        assert await expiry.expire_member(conn, vol, expiry.deadline(2027, SH, expiry.policy(
            json.dumps({"points_expiry": {"years": 1, "since": "2024-06-01T00:00:00.000000Z"}}))), at(2027, 1, 2)) == 0
    # The 2026 points: spent more than the 2025 leftovers, the rest expires a year later.
    await _debit(db, vol, 3, at(2027, 6, 1), "r2")
    await expiry.sweep_expiry(db, at(2028, 1, 1))
    assert await _expired(db, vol) == [11, 4]
    assert await _balance(db, vol) == 0


async def test_spending_before_the_deadline_leaves_nothing_to_expire_and_never_negative(db: Database) -> None:
    _cid, _staff, vol = await _world(db)
    await _credit(db, vol, 10, at(2025, 3, 1), "a")
    await _debit(db, vol, 10, at(2025, 4, 1), "r")
    await _credit(db, vol, 6, at(2026, 2, 1), "b")
    await expiry.sweep_expiry(db, at(2027, 1, 5))
    assert await _expired(db, vol) == []
    assert await _balance(db, vol) == 6


async def test_warning_a_month_before_once_with_amount_and_date(db: Database) -> None:
    _cid, _staff, vol = await _world(db)
    await _credit(db, vol, 9, at(2025, 3, 1), "a")
    await _credit(db, vol, 4, at(2026, 3, 1), "b")
    await expiry.sweep_expiry(db, at(2026, 11, 30, 15))  # 30 November, 23:00 local: too early
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'points_expiring'") == 0
    for day in (1, 2, 20):
        await expiry.sweep_expiry(db, at(2026, 12, day))
    rows = await db.fetchall("SELECT member_id, payload FROM outbox WHERE kind = 'points_expiring'")
    assert [(r[0], json.loads(r[1])) for r in rows] == [(vol, {"points": 9, "last_day": "2026-12-31"})]
    # /points shows what expires when.
    s = await points.summary(db, tg_user_id=901, now=at(2026, 12, 2))
    assert [(e.points, e.last_day) for e in s.expiring] == [(9, date(2026, 12, 31)), (4, date(2027, 12, 31))]


async def test_policy_off_by_default_nothing_expires(db: Database) -> None:
    _cid, _staff, vol = await _world(db, policy=False)
    await _credit(db, vol, 10, at(2020, 3, 1), "a")
    assert await expiry.sweep_expiry(db, at(2026, 12, 10)) == {"expired": 0, "warned": 0}
    assert await expiry.sweep_expiry(db, at(2027, 1, 2)) == {"expired": 0, "warned": 0}
    assert await _balance(db, vol) == 10
    assert (await points.summary(db, tg_user_id=901, now=at(2026, 12, 2))).expiring == []


async def test_switched_on_late_old_points_wait_for_a_deadline_with_a_warning(db: Database, ) -> None:
    cid, _staff, vol = await _world(db, policy=False)
    await _credit(db, vol, 10, at(2023, 3, 1), "old")
    with pytest.raises(NotAllowed):
        await expiry.set_policy(db, community_id=cid, tg_user_id=901, admin_ids=(), on=True, now=at(2026, 12, 10))
    # Switched on on 10 December 2026: too late to warn for 1 January 2027, so nothing expires then;
    # the old points count with the next deadline (the end of 2027), warned from 1 December 2027.
    assert await expiry.set_policy(db, community_id=cid, tg_user_id=900, admin_ids=(), on=True, now=at(2026, 12, 10))
    await expiry.sweep_expiry(db, at(2026, 12, 11))
    await expiry.sweep_expiry(db, at(2027, 1, 2))
    assert await _expired(db, vol) == []
    await expiry.sweep_expiry(db, at(2027, 12, 2))
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'points_expiring'") == 1
    await expiry.sweep_expiry(db, at(2028, 1, 2))
    assert await _expired(db, vol) == [10]
    assert await expiry.set_policy(db, community_id=cid, tg_user_id=900, admin_ids=(), on=False,
                                   now=at(2028, 1, 3)) is False
    assert not await expiry.is_on(db, cid)


async def test_reports_show_expired_points(db: Database) -> None:
    cid, _staff, vol = await _world(db)
    await _credit(db, vol, 8, at(2025, 3, 1), "a")
    await expiry.sweep_expiry(db, at(2027, 1, 1))
    st = await report_service.compute_stats(db, community_id=cid, start=at(2026, 12, 1), end=at(2027, 2, 1))
    assert st.points_expired == 8 and st.points_redeemed == 0
    exported = [row async for row in report_service.iter_export(
        db, "ledger", community_id=cid, start=at(2026, 12, 1), end=at(2027, 2, 1), with_phone=False)]
    assert [(r[3], r[4]) for r in exported] == [(-8, EXPIRED)]  # delta, reason: the export shows it
