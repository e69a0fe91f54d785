"""The storage of expiring points and fair urgent alerts: what each named function returns (the
rules on top are tested under tests/services and tests/e2e)."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage import alerts, expiry, ledger
from storage.db import Database
from tests.factories import make_community, make_member


async def test_standing_counts_credits_before_a_moment_and_every_debit(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, volunteer=True)
    async with db.transaction() as conn:
        await ledger.append(conn, member_id=mid, delta=5, reason="task_completed", key="a", now=now)
        await ledger.append(conn, member_id=mid, delta=-2, reason="redeem", key="b", now=now + timedelta(days=1))
        await ledger.append(conn, member_id=mid, delta=4, reason="task_completed", key="c", now=now + timedelta(days=2))
        await ledger.append(conn, member_id=mid, delta=-1, reason=expiry.EXPIRED, key="d", now=now + timedelta(days=3))
        assert await expiry.standing(conn, mid, now + timedelta(days=1)) == expiry.Standing(5, 3, 6)
    assert await expiry.standing_of(db, mid, now) == expiry.Standing(0, 3, 6)
    assert await expiry.holders(db, cid) == [mid]
    assert await expiry.expired_between(db, cid, now, now + timedelta(days=4)) == 1
    assert await expiry.expired_between(db, None, now, now + timedelta(days=3)) == 0
    assert not await expiry.done(db, "k")
    await expiry.remember_done(db, "k", now)
    await expiry.remember_done(db, "k", now)
    assert await expiry.done(db, "k")


async def test_on_duty_pick_order_cap_and_ping_count(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    req = await make_member(db, now, cid, resident=True, volunteer=True, on_duty=1)
    a, b, c = [await make_member(db, now, cid, volunteer=True, on_duty=1) for _ in range(3)]
    await make_member(db, now, cid, volunteer=True)  # off duty

    async def pick(cap: int = 5) -> list[int]:
        async with db.transaction() as conn:
            found = await alerts.pick_on_duty(conn, community_id=cid, requester_id=req, area_id=None,
                                              category="shopping", day="2026-05-04", cap=cap, limit=3, hm="12:00")
        return [v.member_id for v in found]

    assert await pick() == [a, b, c]
    async with db.transaction() as conn:
        await alerts.record_ping(conn, a, "2026-05-04", now)
        await alerts.record_ping(conn, a, "2026-05-04", now + timedelta(minutes=1))
        await alerts.record_ping(conn, b, "2026-05-03", now - timedelta(days=1))  # yesterday's count is not today's
        assert await alerts.pings_on(conn, a, "2026-05-04") == 2
        assert await alerts.pings_on(conn, b, "2026-05-04") == 0
    assert await pick() == [c, b, a]  # never pinged, then the least recently, then the one with most today
    assert await pick(cap=2) == [c, b]  # a reached the cap
