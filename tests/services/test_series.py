"""Recurring events (bot/services/series.py): occurrences posted within the horizon, once each."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.services import series, tasks
from storage.db import Database
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
    posted = await series.edit_places(db, now, staff, sid, 5)
    assert len(posted) == 1  # the first Saturday stays as it was posted
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
