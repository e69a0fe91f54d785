"""Waiting lists (bot/services/waitlist.py): join, leave, keep, decline, lapse, and the race of many
joins and withdrawals at once."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

import pytest

from bot.models import DomainError
from bot.services import tasks, waitlist
from storage.db import Database
from storage.timeutil import to_db
from tests.factories import make_community, make_member


async def _event(db: Database, now: datetime, slots: int, volunteers: int) -> tuple[int, int, list[int]]:
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    vols = [await make_member(db, now, cid, volunteer=True) for _ in range(volunteers)]
    tid = await tasks.create_task(db, now, staff, tasks.NewTask("other", title="Fair", kind="event", slots=slots,
                                                                starts_at=now + timedelta(days=3)), staff=True)
    return cid, tid, vols


async def _holding(db: Database, tid: int) -> list[int]:
    rows = await db.fetchall("SELECT member_id FROM claims WHERE task_id = :t AND state IN ('active', 'done')"
                             " ORDER BY member_id", {"t": tid})
    return [int(r[0]) for r in rows]


async def _states(db: Database, tid: int) -> dict[int, str]:
    rows = await db.fetchall("SELECT member_id, state FROM waitlist WHERE task_id = :t", {"t": tid})
    return {int(r[0]): str(r[1]) for r in rows}


async def test_a_withdrawal_gives_the_place_to_the_first_waiting(db: Database, now: datetime) -> None:
    _cid, tid, (a, b, c, d) = await _event(db, now, 1, 4)
    with pytest.raises(waitlist.PlaceFree):
        await waitlist.join(db, now, b, tid)  # a place is free: claim it instead
    await tasks.claim(db, now, a, tid)
    assert (await waitlist.join(db, now, b, tid)).position == 1
    assert (await waitlist.join(db, now, c, tid)).position == 2
    again = await waitlist.join(db, now, b, tid)  # twice: harmless
    assert (again.position, again.already) == (1, True)
    with pytest.raises(DomainError):
        await waitlist.join(db, now, a, tid)  # already has a place
    await waitlist.join(db, now, d, tid)
    await waitlist.leave(db, now, c, tid)
    await tasks.withdraw(db, now, a, tid)
    assert await _holding(db, tid) == [b]
    assert (await _states(db, tid))[b] == "offered"
    assert await tasks.state_of(db, tid) == "full"
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'waitlist_offer' AND member_id = :m",
                             {"m": b}) == 1
    await waitlist.decline(db, now, b, tid)  # declined: the next one (c left, so d)
    assert await _holding(db, tid) == [d]
    later = now + timedelta(hours=3)
    assert await waitlist.sweep(db, later) == 1  # d let the time pass: nobody else waits
    assert await _holding(db, tid) == []
    assert await tasks.state_of(db, tid) == "open"
    assert await _states(db, tid) == {b: "declined", c: "left", d: "lapsed"}
    assert await waitlist.sweep(db, later) == 0  # run twice: nothing more


async def test_kept_places_stay_and_the_sweep_leaves_them(db: Database, now: datetime) -> None:
    _cid, tid, (a, b) = await _event(db, now, 1, 2)
    await tasks.claim(db, now, a, tid)
    await waitlist.join(db, now, b, tid)
    await tasks.withdraw(db, now, a, tid)
    await waitlist.keep(db, now, b, tid)
    assert await waitlist.sweep(db, now + timedelta(days=1)) == 0
    assert await _holding(db, tid) == [b]
    with pytest.raises(waitlist.NotWaiting):
        await waitlist.decline(db, now, b, tid)


async def test_below_the_reliability_minimum_is_passed_over(db: Database, now: datetime) -> None:
    cid, tid, (a, b, c) = await _event(db, now, 1, 3)
    await tasks.claim(db, now, a, tid)
    await waitlist.join(db, now, b, tid)
    await waitlist.join(db, now, c, tid)
    async with db.transaction() as conn:
        await conn.execute("UPDATE communities SET min_reliability = 60 WHERE id = :c", {"c": cid})
        await conn.execute("INSERT INTO no_shows (community_id, task_id, member_id, recorded_by, created_at)"
                           " VALUES (:c, :t, :m, :m, :at)", {"c": cid, "t": tid, "m": b, "at": to_db(now)})
    await tasks.withdraw(db, now, a, tid)
    assert await _holding(db, tid) == [c]
    assert (await _states(db, tid))[b] == "skipped"


async def test_fifty_joins_and_withdrawals_at_once_never_overfill_and_keep_the_order(db: Database,
                                                                                     now: datetime) -> None:
    slots = 5
    _cid, tid, vols = await _event(db, now, slots, 55)
    holders, waiters = vols[:slots], vols[slots:]
    for v in holders:
        await tasks.claim(db, now, v, tid)
    rng = random.Random(7)
    ops = [waitlist.join(db, now, v, tid) for v in waiters] + [tasks.withdraw(db, now, v, tid) for v in holders]
    rng.shuffle(ops)
    results = await asyncio.gather(*ops, return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, DomainError)]
    held = await _holding(db, tid)
    assert len(held) <= slots
    rows = await db.fetchall("SELECT id, member_id, state FROM waitlist WHERE task_id = :t ORDER BY id", {"t": tid})
    offered = [int(r[0]) for r in rows if r[2] == "offered"]
    waiting = [int(r[0]) for r in rows if r[2] == "waiting"]
    # First come, first served: everyone given a place joined before everyone still waiting.
    assert not offered or not waiting or max(offered) < min(waiting)
    # A place went free with someone waiting: it was given (no place left empty while one waits).
    assert len(held) == slots or not waiting


async def test_more_places_go_to_those_waiting_in_order(db: Database, now: datetime) -> None:
    _cid, tid, vols = await _event(db, now, 1, 4)
    a, b, c, d = vols
    await tasks.claim(db, now, a, tid)
    for v in (b, c, d):
        await waitlist.join(db, now, v, tid)
    staff = int(await db.fetchval("SELECT created_by FROM tasks WHERE id = :t", {"t": tid}))
    await tasks.edit_task(db, now, staff, tid, "slots", "3")
    assert await _holding(db, tid) == [a, b, c]
    assert await _states(db, tid) == {b: "offered", c: "offered", d: "waiting"}
    assert await tasks.state_of(db, tid) == "full"


async def test_withdrawing_a_place_given_from_the_list_passes_it_on(db: Database, now: datetime) -> None:
    _cid, tid, (a, b, c) = await _event(db, now, 1, 3)
    await tasks.claim(db, now, a, tid)
    await waitlist.join(db, now, b, tid)
    await waitlist.join(db, now, c, tid)
    await tasks.withdraw(db, now, a, tid)
    await tasks.withdraw(db, now, b, tid)  # given the place, b gives it back before keeping it
    assert await _holding(db, tid) == [c]
    assert await _states(db, tid) == {b: "declined", c: "offered"}
    assert await waitlist.sweep(db, now + timedelta(hours=3)) == 1  # only c's offer lapses, not b's again


async def test_only_staff_choose_the_hold_time_among_the_offered(db: Database, now: datetime) -> None:
    from bot.models import InvalidInput, NotAllowed

    cid = await make_community(db, now)
    await make_member(db, now, cid, tg_user_id=60, staff=True)
    await make_member(db, now, cid, tg_user_id=61, volunteer=True)
    assert await waitlist.hold_minutes(db, cid) == 120
    with pytest.raises(NotAllowed):
        await waitlist.set_hold_minutes(db, community_id=cid, tg_user_id=61, admin_ids=(), minutes=30, now=now)
    with pytest.raises(InvalidInput):
        await waitlist.set_hold_minutes(db, community_id=cid, tg_user_id=60, admin_ids=(), minutes=45, now=now)
    assert await waitlist.set_hold_minutes(db, community_id=cid, tg_user_id=60, admin_ids=(), minutes=30, now=now) == 30
    assert await waitlist.hold_minutes(db, cid) == 30
