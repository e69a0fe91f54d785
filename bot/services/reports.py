"""Read-only statistics for staff reports. Never changes state."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from storage import communities as community_store
from storage import expiry as expiry_store
from storage import reports as store
from storage.db import Database
from storage.reports import EXPORTS as EXPORTS


@dataclass
class Stats:
    community_id: int | None
    start: datetime
    end: datetime
    counts: dict[str, int] = field(default_factory=dict)
    median_claim_minutes: float | None = None
    median_complete_minutes: float | None = None
    active_volunteers: int = 0
    new_members: int = 0
    no_show_rate: float | None = None
    points_credited: int = 0
    points_redeemed: int = 0
    points_expired: int = 0  # points that expired unused (bot/services/expiry.py)
    top_categories: list[tuple[str, int]] = field(default_factory=list)
    top_areas: list[tuple[str, int]] = field(default_factory=list)
    top_volunteers: list[tuple[str, int]] = field(default_factory=list)
    top_organisations: list[tuple[str, int]] = field(default_factory=list)
    # Volunteers marked absent at an event in the period, most often first (staff only see /stats).
    no_shows: list[tuple[str, int]] = field(default_factory=list)
    # The members those two lists name: a message showing them is cut down if one erases themselves.
    named: list[int] = field(default_factory=list)
    unreachable_members: int = 0
    claim_minutes: list[float] = field(default_factory=list)
    # Tasks created each day of the period (the local date), by the state they are in now.
    daily_states: dict[str, dict[str, int]] = field(default_factory=dict)


def _minutes(spans: list[tuple[datetime, datetime]]) -> list[float]:
    return [(b - a).total_seconds() / 60 for a, b in spans]


def _pairs(rows: list[store.NameCount]) -> list[tuple[str, int]]:
    return [(r.name, r.n) for r in rows]


async def compute_stats(db: Database, *, community_id: int | None, start: datetime, end: datetime,
                        tz: tzinfo = UTC) -> Stats:
    """Stats for [start, end); community_id None means all communities (super-admins only);
    ``tz``: the time zone whose days the per-day series counts (the one the period was read in)."""
    st = Stats(community_id, start, end)
    period = (db, community_id, start, end)
    st.counts = await store.task_counts(*period)
    st.claim_minutes = sorted(_minutes(await store.publish_to_claim(*period)))
    st.median_claim_minutes = statistics.median(st.claim_minutes) if st.claim_minutes else None
    done = _minutes(await store.publish_to_completion(*period))
    st.median_complete_minutes = statistics.median(done) if done else None
    st.active_volunteers = await store.active_volunteers(*period)
    st.new_members = await store.new_members(*period)
    closed = await store.closed_claims(*period)
    noshow = await store.closed_claims(*period, no_show_only=True)
    st.no_show_rate = noshow / closed if closed else None
    absent = await store.most_absent(*period)
    st.no_shows = _pairs(absent)
    st.points_credited = await store.points_credited(*period)
    st.points_redeemed = await store.points_redeemed(*period)
    st.points_expired = await expiry_store.expired_between(*period)
    st.top_categories = _pairs(await store.top_categories(*period))
    st.top_areas = _pairs(await store.top_areas(*period))
    earners = await store.top_earners(*period)
    st.top_volunteers = _pairs(earners)
    st.named = [r.member_id for r in (*absent, *earners) if r.member_id is not None]
    st.top_organisations = _pairs(await store.top_organisations(*period))
    st.unreachable_members = await store.unreachable_members(db, community_id)
    for day, state, n in await store.daily_states(*period, tz):
        st.daily_states.setdefault(day, {})[state] = n
    return st


async def zone(db: Database, community_id: int | None, default: tzinfo) -> tzinfo:
    """The time zone a report on ``community_id`` reads its period and counts its days in: the
    community's own, else ``default`` (all communities, or a zone this machine does not know)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = None if community_id is None else await community_store.timezone_of(db, community_id)
    try:
        return ZoneInfo(name) if name else default
    except (ZoneInfoNotFoundError, ValueError):
        return default


def export_columns(table: str, *, with_phone: bool) -> list[str]:
    cols = list(EXPORTS[table][0])
    if table == "members" and with_phone:
        cols.insert(3, "phone")
    return cols


async def iter_export(db: Database, table: str, *, community_id: int | None, start: datetime, end: datetime,
                      with_phone: bool, chunk: int = 500) -> Any:
    """Yield rows in chunks by id (keyset pagination) so large exports never sit in memory."""
    async for row in store.export_rows(db, table, export_columns(table, with_phone=with_phone),
                                       community_id=community_id, start=start, end=end, chunk=chunk):
        yield row


def parse_period(text: str | None, now: datetime, tz: Any) -> tuple[datetime, datetime] | None:
    """'week' (default), 'month', 'YYYY-MM', or 'YYYY-MM-DD..YYYY-MM-DD' (end day included), in local time."""
    from datetime import timedelta

    local = now.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    arg = (text or "week").strip().lower()
    try:
        if arg in ("week", "本周"):
            start = day - timedelta(days=day.weekday())
            return start, start + timedelta(days=7)
        if arg in ("month", "本月"):
            start = day.replace(day=1)
        elif ".." in arg:
            a, b = arg.split("..", 1)
            s = datetime.strptime(a.strip(), "%Y-%m-%d").replace(tzinfo=tz)
            e = datetime.strptime(b.strip(), "%Y-%m-%d").replace(tzinfo=tz) + timedelta(days=1)
            return (s, e) if s < e and (e - s).days <= 3700 else None
        else:
            start = datetime.strptime(arg, "%Y-%m").replace(tzinfo=tz)
            if not 2000 <= start.year <= 2100:
                return None
    except ValueError:
        return None
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, end
