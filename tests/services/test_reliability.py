"""The reliability score: its formula (pure), and the rules around it (a late withdrawal is
recorded once, a community's minimum refuses an event claim and changes nothing)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.models import InvalidInput, NotAllowed
from bot.services import reliability, tasks
from bot.services.reliability import BelowMinimum, score
from storage.db import Database
from storage.reliability import DONE, LATE, NO_SHOW, Mark
from storage.timeutil import to_db
from tests.factories import make_category, make_community, make_member
from tests.factories_tasks import make_claim, make_task

NOW = datetime.fromisoformat("2026-12-02T10:00:00+00:00")


def _marks(*spec: tuple[str, float]) -> list[Mark]:
    """(kind, age in days) pairs as one member's marks."""
    return [Mark(1, kind, NOW - timedelta(days=days)) for kind, days in spec]


def test_newcomer_is_fully_reliable() -> None:
    r = score([], NOW)
    assert (r.percent, r.done, r.no_shows, r.late, r.recorded) == (100, 0, 0, 0, False)


def test_recent_events_count_fully() -> None:
    r = score(_marks(*[(DONE, 0)] * 9, (NO_SHOW, 0)), NOW)
    assert (r.done, r.no_shows) == (9, 1)
    assert r.percent == 91   # (1 + 9) / (1 + 9 + 1)


def test_one_no_show_alone_is_half_and_fades() -> None:
    assert score(_marks((NO_SHOW, 0)), NOW).percent == 50            # 1 / (1 + 1)
    assert score(_marks((NO_SHOW, 90)), NOW).percent == 67           # 1 / (1 + 0.5)
    assert score(_marks((NO_SHOW, 180)), NOW).percent == 80          # 1 / (1 + 0.25)


def test_late_withdrawal_weighs_half_a_no_show() -> None:
    assert score(_marks((LATE, 0)), NOW).percent == 67               # 1 / (1 + 0.5)
    assert score(_marks((LATE, 0), (LATE, 0)), NOW).percent == score(_marks((NO_SHOW, 0)), NOW).percent


def test_completed_tasks_raise_it_and_old_ones_count_less() -> None:
    base = score(_marks((NO_SHOW, 0)), NOW).percent
    assert score(_marks((NO_SHOW, 0), (DONE, 0)), NOW).percent > base
    recent = score(_marks((NO_SHOW, 0), (DONE, 0)), NOW).percent
    old = score(_marks((NO_SHOW, 0), (DONE, 180)), NOW).percent
    assert base < old < recent
    assert score(_marks((NO_SHOW, 0), (DONE, 0)), NOW).percent == 67  # (1 + 1) / (1 + 1 + 1)


def test_weight_halves_every_ninety_days() -> None:
    assert reliability.weight(NOW, NOW) == 1
    assert reliability.weight(NOW - timedelta(days=90), NOW) == pytest.approx(0.5)
    assert reliability.weight(NOW - timedelta(days=270), NOW) == pytest.approx(0.125)
    assert reliability.weight(NOW + timedelta(hours=1), NOW) == 1   # a clock a little ahead: still 1


def test_late_means_within_a_day_of_the_start() -> None:
    start = NOW + timedelta(hours=30)
    assert not reliability.is_late(start, NOW)
    assert reliability.is_late(start, NOW + timedelta(hours=6))
    assert reliability.is_late(start, start + timedelta(minutes=5))
    assert not reliability.is_late(None, NOW)


async def _world(db: Database, now: datetime) -> tuple[int, int, int]:
    cid = await make_community(db, now)
    await make_category(db, cid)
    staff = await make_member(db, now, cid, staff=True)
    vol = await make_member(db, now, cid, volunteer=True)
    return cid, staff, vol


async def test_late_withdrawal_is_recorded_once_and_an_early_one_not(db: Database, now: datetime) -> None:
    cid, staff, vol = await _world(db, now)
    soon = await make_task(db, now, cid, staff, kind="event", slots=5, starts_at=to_db(now + timedelta(hours=3)))
    later = await make_task(db, now, cid, staff, kind="event", slots=5, starts_at=to_db(now + timedelta(days=3)))
    told = []
    for tid in (soon, later, soon):
        await tasks.claim(db, now, vol, tid)
        told.append(await tasks.withdraw(db, now, vol, tid))
    assert told == [True, False, False]   # the second late withdrawal from one task is not counted again
    rows = await db.fetchall("SELECT task_id FROM late_withdrawals WHERE member_id = :m", {"m": vol})
    assert [r[0] for r in rows] == [soon]
    r = await reliability.of_member(db, vol, now)
    assert (r.late, r.no_shows, r.done, r.percent) == (1, 0, 0, 67)


async def test_minimum_refuses_an_event_claim_and_changes_nothing(db: Database, now: datetime) -> None:
    cid, staff, vol = await _world(db, now)
    past = await make_task(db, now, cid, staff, kind="event", slots=2, state="completed")
    await make_claim(db, now, past, vol, state="no_show", update_task=False)
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO no_shows (community_id, task_id, member_id, created_at)"
                           " VALUES (:c, :t, :m, :at)", {"c": cid, "t": past, "m": vol, "at": to_db(now)})
    event = await make_task(db, now, cid, staff, kind="event", slots=3)
    request = await make_task(db, now, cid, staff, slots=1)
    await reliability.set_minimum(db, tg_user_id=0, admin_ids={0}, community_id=cid, value=60, now=now)
    before = await db.fetchone("SELECT state, card_version FROM tasks WHERE id = :t", {"t": event})
    with pytest.raises(BelowMinimum) as refused:
        await tasks.claim(db, now, vol, event)
    assert refused.value.params == {"minimum": 60, "score": 50}
    assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t", {"t": event}) == 0
    assert tuple(await db.fetchone("SELECT state, card_version FROM tasks WHERE id = :t", {"t": event})) == tuple(before)
    await tasks.claim(db, now, vol, request)   # requests stay open: how a volunteer recovers
    await reliability.set_minimum(db, tg_user_id=0, admin_ids={0}, community_id=cid, value=0, now=now)
    assert (await tasks.claim(db, now, vol, event)).taken == 1


async def test_only_staff_set_the_minimum_and_only_listed_values(db: Database, now: datetime) -> None:
    cid, _staff, vol = await _world(db, now)
    vol_tg = await db.fetchval("SELECT tg_user_id FROM members WHERE id = :m", {"m": vol})
    with pytest.raises(NotAllowed):
        await reliability.set_minimum(db, tg_user_id=int(vol_tg), admin_ids=(), community_id=cid, value=60, now=now)
    with pytest.raises(InvalidInput):
        await reliability.set_minimum(db, tg_user_id=0, admin_ids={0}, community_id=cid, value=55, now=now)
    assert await reliability.minimum(db, cid) == 0


async def test_marks_are_read_per_day_and_old_ones_not_at_all(db: Database, now: datetime) -> None:
    cid, staff, vol = await _world(db, now)
    for ago in (0, 0, 0, 90, 800):    # three today, one 90 days ago, one beyond the two years read
        tid = await make_task(db, now, cid, staff, state="completed")
        await make_claim(db, now - timedelta(days=ago), tid, vol, state="completed", update_task=False)
    r = await reliability.of_member(db, vol, now)
    assert (r.done, r.no_shows, r.late, r.percent) == (4, 0, 0, 100)
    tid = await make_task(db, now, cid, staff, kind="event", state="completed")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO no_shows (community_id, task_id, member_id, created_at)"
                           " VALUES (:c, :t, :m, :at)", {"c": cid, "t": tid, "m": vol, "at": to_db(now)})
    # (1 + 3 + 0.5) / (1 + 3 + 0.5 + 1), with today's weights a little under 1 (counted from midnight)
    assert (await reliability.of_member(db, vol, now)).percent == 82
