"""Recurring events (bot/services/series.py): occurrences posted within the horizon, once each."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.models import InvalidInput, NotAllowed
from bot.services import completion, series, tasks
from storage.db import Database
from tests.both import only_sqlite
from tests.factories import make_community, make_member

TZ = ZoneInfo("Asia/Shanghai")


async def _setup(db: Database, now: datetime) -> tuple[int, int]:
    cid = await make_community(db, now, timezone="Asia/Shanghai")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en) VALUES (?, 'other', '其他', 'Other')",
                           (cid,))
    staff = await make_member(db, now, cid, staff=True, volunteer=True)
    return cid, staff


def _saturday_series(now: datetime, weeks: int = 8) -> series.NewSeries:
    local = now.astimezone(TZ)
    start = (local + timedelta(days=(5 - local.weekday()) % 7 or 7)).replace(hour=9, minute=0, second=0, microsecond=0)
    event = tasks.NewTask(category="other", title="Saturday clean-up", when_kind="at", starts_at=start,
                          ends_at=start + timedelta(hours=2), slots=3, points=2, kind="event", submit_key="s:1")
    return series.NewSeries(event, series.mask_of([5]), weeks)


async def _events(db: Database) -> list[tuple[str, int]]:
    rows = await db.fetchall("SELECT starts_at, slots FROM tasks WHERE kind = 'event' ORDER BY starts_at")
    return [(str(r[0]), int(r[1])) for r in rows]


async def test_each_occurrence_is_posted_once_within_the_horizon(db: Database, now: datetime) -> None:
    _, staff = await _setup(db, now)
    sid = await series.create_series(db, now, staff, _saturday_series(now))
    assert await series.create_series(db, now, staff, _saturday_series(now)) == sid  # the same submit: one series
    # Two runs at once and a third after: the first Saturday (within 7 days) is posted once.
    await asyncio.gather(series.post_due(db, now), series.post_due(db, now))
    await series.post_due(db, now)
    assert len(await _events(db)) == 1
    later = now + timedelta(days=7)
    await series.post_due(db, later)
    await series.post_due(db, later)
    events = await _events(db)
    assert len(events) == 2
    s = await series.load(db, sid)
    assert s is not None and series.occurrence_count(s) == 8


async def test_edits_reach_unposted_occurrences_and_stop_ends_them(db: Database, now: datetime) -> None:
    _, staff = await _setup(db, now)
    sid = await series.create_series(db, now, staff, _saturday_series(now))
    await series.post_due(db, now)
    s = await series.load(db, sid)
    assert s is not None and s.next_day is not None
    edit = await series.edit_from(db, now, staff, sid, "slots", "5", datetime.fromisoformat(s.next_day).date())
    assert edit.change == [] and edit.kept == []  # the first Saturday, posted before that day, stays as it is
    await series.edit_time(db, now, staff, sid, time(10, 0), time(12, 0))
    s = await series.load(db, sid)
    assert s is not None and s.next_day is not None
    third = datetime.fromisoformat(s.next_day).date() + timedelta(days=7)
    await series.stop_from(db, now, staff, sid, third)
    for days in range(0, 60, 1):
        await series.post_due(db, now + timedelta(days=days))
    events = await _events(db)
    assert [n for _, n in events] == [3, 5]
    second = datetime.fromisoformat(events[1][0]).astimezone(TZ)
    assert (second.hour, second.minute) == (10, 0)
    s = await series.load(db, sid)
    assert s is not None and s.next_day is None and s.next_post_at is None  # nothing left: the idle job reads nothing


async def test_idle_run_reads_the_due_index(db: Database, now: datetime) -> None:
    only_sqlite(db, "SQLite's query plan")
    plan = await db.fetchall("EXPLAIN QUERY PLAN SELECT id FROM event_series WHERE next_post_at IS NOT NULL"
                             " AND next_post_at <= '2026' ORDER BY next_post_at LIMIT 50")
    assert any("event_series_due" in str(tuple(r)) for r in plan), [tuple(r) for r in plan]


async def test_a_longer_horizon_posts_the_next_occurrence_sooner(db: Database, now: datetime) -> None:
    _, staff = await _setup(db, now)
    await series.create_series(db, now, staff, _saturday_series(now))
    await series.post_due(db, now)
    assert len(await _events(db)) == 1
    await series.set_days_ahead(db, now, staff, 14)  # the next Saturday is now within the horizon
    await series.post_due(db, now)
    assert len(await _events(db)) == 2


async def _tg(db: Database, member_id: int) -> int:
    return int(await db.fetchval("SELECT tg_user_id FROM members WHERE id = ?", (member_id,)))


async def test_edit_from_a_day_reaches_posted_events_not_started_never_finished_ones(db: Database, now: datetime) -> None:
    cid, staff = await _setup(db, now)
    vol1 = await make_member(db, now, cid, volunteer=True)
    vol2 = await make_member(db, now, cid, volunteer=True)
    sid = await series.create_series(db, now, staff, _saturday_series(now))
    await series.set_days_ahead(db, now, staff, 21)
    await series.post_due(db, now)  # three Saturdays posted: 05-09, 05-16, 05-23
    a, b, c = [int(r[0]) for r in await db.fetchall("SELECT id FROM tasks WHERE kind = 'event' ORDER BY starts_at")]
    for task_id in (a, b, c):
        await tasks.claim(db, now, vol1 if task_id != b else vol2, task_id)
    await completion.mark_done(db, task_id=b, tg_user_id=await _tg(db, vol2), now=now)  # someone completed B
    await completion.close_event(db, task_id=a, tg_user_id=await _tg(db, staff), now=now)  # A finished, 2 points
    ledger = [tuple(r) for r in await db.fetchall("SELECT member_id, delta FROM ledger ORDER BY id")]
    assert ledger == [(vol1, 2)]
    cards = {r[0]: r[1] for r in await db.fetchall("SELECT id, card_version FROM tasks")}
    today = now.astimezone(TZ).date()

    plan = await series.plan_edit(db, now, staff, sid, "points", "5", today)
    assert (plan.change, plan.kept, plan.split) == ([c], [a, b], False)
    done = await series.edit_from(db, now, staff, sid, "points", "5", today)
    assert done.change == [c]
    points = {r[0]: (r[1], r[2]) for r in await db.fetchall("SELECT id, points, card_version FROM tasks")}
    assert points[a] == (2, cards[a]) and points[b] == (2, cards[b])  # finished / completed: untouched
    assert points[c] == (5, cards[c] + 1)  # taken, and its card redrawn by the card job
    assert [tuple(r) for r in await db.fetchall("SELECT member_id, delta FROM ledger ORDER BY id")] == ledger
    told = "SELECT COUNT(*) FROM outbox WHERE member_id = ? AND payload LIKE '%Staff changed task%'"
    assert await db.fetchval(told, (vol1,)) == 1
    # The same edit again (a double tap, a redelivered update): nothing more changes or is said.
    again = await series.edit_from(db, now, staff, sid, "points", "5", today)
    assert again.change == []
    assert await db.fetchval(told, (vol1,)) == 1
    assert await db.fetchval("SELECT card_version FROM tasks WHERE id = ?", (c,)) == cards[c] + 1
    # The occurrences not yet posted take it too.
    await series.post_due(db, now + timedelta(days=7))
    assert await db.fetchval("SELECT points FROM tasks WHERE kind = 'event' ORDER BY starts_at DESC LIMIT 1") == 5


async def test_edit_refuses_bad_values_and_non_staff_and_splits_a_later_day(db: Database, now: datetime) -> None:
    cid, staff = await _setup(db, now)
    vol = await make_member(db, now, cid, volunteer=True)
    sid = await series.create_series(db, now, staff, _saturday_series(now))
    await series.post_due(db, now)
    today = now.astimezone(TZ).date()
    for field, value in (("points", "101"), ("points", "-1"), ("slots", "0"), ("title", "x" * 61), ("state", "1")):
        with pytest.raises(InvalidInput) as bad:
            await series.edit_from(db, now, staff, sid, field, value, today)
        if field == "points":  # the rule of a single event's edit, word for word
            with pytest.raises(InvalidInput) as single:
                tasks.edited_value("points", value)
            assert (bad.value.message, bad.value.params) == (single.value.message, single.value.params)
    with pytest.raises(NotAllowed):
        await series.edit_from(db, now, vol, sid, "points", "5", today)
    with pytest.raises(InvalidInput):
        await series.edit_from(db, now, staff, sid, "points", "5", today - timedelta(days=1))
    assert await db.fetchval("SELECT points FROM event_series WHERE id = ?", (sid,)) == 2
    # From the fourth Saturday on (after the next one to post): the series goes on as a new one.
    s = await series.load(db, sid)
    assert s is not None and s.next_day is not None
    fourth = datetime.fromisoformat(s.next_day).date() + timedelta(days=14)
    done = await series.edit_from(db, now, staff, sid, "title", "Park clean-up", fourth)
    assert done.split and done.continued_as is not None and done.change == []
    again = await series.edit_from(db, now, staff, sid, "title", "Park clean-up", fourth)  # redelivered
    assert again.continued_as == done.continued_as
    assert await db.fetchval("SELECT COUNT(*) FROM event_series") == 2
    for days in range(0, 70):
        await series.post_due(db, now + timedelta(days=days))
    rows = await db.fetchall("SELECT starts_at, title FROM tasks WHERE kind = 'event' ORDER BY starts_at")
    titles = [(datetime.fromisoformat(r[0]).astimezone(TZ).date() >= fourth, r[1]) for r in rows]
    assert len(titles) == 8
    assert all(title == ("Park clean-up" if later else "Saturday clean-up") for later, title in titles), titles


async def _split_at_fourth(db: Database, now: datetime, staff: int, sid: int) -> tuple[int, datetime]:
    """The series' title changes from its fourth Saturday on: it goes on as a new series."""
    s = await series.load(db, sid)
    assert s is not None and s.next_day is not None
    fourth = datetime.fromisoformat(s.next_day) + timedelta(days=14)
    done = await series.edit_from(db, now, staff, sid, "title", "Park clean-up", fourth.date())
    assert done.split and done.continued_as is not None
    return done.continued_as, fourth


async def _post_all(db: Database, now: datetime) -> list[tuple[str, str, int, int | None]]:
    for days in range(0, 70):
        await series.post_due(db, now + timedelta(days=days))
    rows = await db.fetchall("SELECT starts_at, title, slots, points FROM tasks WHERE kind = 'event' ORDER BY starts_at")
    return [(datetime.fromisoformat(r[0]).astimezone(TZ).date().isoformat(), r[1], r[2], r[3]) for r in rows]


async def test_a_stop_after_a_split_never_posts_a_day_twice(db: Database, now: datetime) -> None:
    _, staff = await _setup(db, now)
    sid = await series.create_series(db, now, staff, _saturday_series(now))
    await series.post_due(db, now)
    _, fourth = await _split_at_fourth(db, now, staff, sid)
    sixth = (fourth + timedelta(days=14)).date()
    await series.stop_from(db, now, staff, sid, sixth)  # staff stop "the series" from its sixth Saturday
    events = await _post_all(db, now)
    days = [e[0] for e in events]
    assert len(days) == len(set(days)), events  # no Saturday posted twice
    assert days and max(days) < sixth.isoformat(), events  # and none from the stop on


async def test_edits_of_a_series_reach_the_series_it_goes_on_as(db: Database, now: datetime) -> None:
    _, staff = await _setup(db, now)
    sid = await series.create_series(db, now, staff, _saturday_series(now))
    await series.post_due(db, now)
    await _split_at_fourth(db, now, staff, sid)
    s = await series.load(db, sid)
    assert s is not None and s.next_day is not None
    plan = await series.edit_from(db, now, staff, sid, "points", "5", datetime.fromisoformat(s.next_day).date())
    assert not plan.split
    await series.edit_time(db, now, staff, sid, time(10, 0), time(12, 0))
    events = await _post_all(db, now)
    assert len(events) == 8
    later = [e for e in events if e[0] >= s.next_day]
    assert later and all(points == 5 for _, _, _, points in later), events  # from that day on: all of them
    starts = await db.fetchall("SELECT starts_at FROM tasks WHERE kind = 'event' ORDER BY starts_at")
    hours = [datetime.fromisoformat(r[0]).astimezone(TZ).hour for r in starts]
    assert hours[1:] == [10] * 7, hours  # the events still to come run at the new time, those of the new series too


async def test_the_same_value_from_a_later_day_splits_nothing(db: Database, now: datetime) -> None:
    _, staff = await _setup(db, now)
    sid = await series.create_series(db, now, staff, _saturday_series(now))
    await series.post_due(db, now)
    s = await series.load(db, sid)
    assert s is not None and s.next_day is not None
    fourth = datetime.fromisoformat(s.next_day).date() + timedelta(days=14)
    done = await series.edit_from(db, now, staff, sid, "title", " Saturday clean-up ", fourth)
    assert not done.split and done.continued_as is None
    assert await db.fetchval("SELECT COUNT(*) FROM event_series") == 1  # /series does not list it twice


async def test_staff_load_only_their_own_communitys_series(db: Database, now: datetime) -> None:
    cid, staff = await _setup(db, now)
    sid = await series.create_series(db, now, staff, _saturday_series(now))
    other = await make_community(db, now, timezone="Asia/Shanghai")
    mine = await series.load_in(db, sid, cid)
    assert mine is not None and mine.id == sid
    assert await series.load_in(db, sid, other) is None      # a forged pick from another community: nothing
    assert await series.load_in(db, sid, None) is None
    assert await series.load_in(db, sid + 1000, cid) is None
