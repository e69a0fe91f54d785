"""Data access for recurring events: the series (``event_series``) and the occurrences posted
(``series_occurrences``, one row per series and local date). The rules are in bot/services/series.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import Connection, Database, first
from storage.tasks import ACTIVE_TASK_STATES_SQL
from storage.timeutil import to_db


@dataclass(frozen=True, slots=True)
class Series:
    """A series as stored: what each occurrence will be and when the occurrences fall (local)."""

    id: int
    community_id: int
    created_by: int
    category: str
    title: str | None
    description: str | None
    voice_file_id: str | None
    slots: int
    points: int | None
    organisation_id: int | None
    weekdays: int        # bit 0 Monday ... bit 6 Sunday
    start_time: str      # local "HH:MM"
    minutes: int         # how long each occurrence lasts
    first_day: str       # local "YYYY-MM-DD"
    last_day: str
    stop_day: str | None  # no occurrence on or after this day
    next_day: str | None  # the next occurrence not yet posted (None: none left)
    next_post_at: str | None


_COLUMNS = ("id community_id created_by category title description voice_file_id slots points organisation_id"
            " weekdays start_time minutes first_day last_day stop_day next_day next_post_at").split()
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM event_series"


def _series(row: Any) -> Series | None:
    return None if row is None else Series(*(row[c] for c in _COLUMNS))


async def insert(conn: Connection, now: datetime, values: dict[str, Any]) -> int:
    """A new series (``values``: its columns but id and times); the same ``submit_key`` twice keeps
    the first. Returns the series' id."""
    params = {**values, "now": to_db(now)}
    await conn.execute(
        "INSERT INTO event_series (community_id, created_by, category, title, description, voice_file_id, slots,"
        " points, organisation_id, weekdays, start_time, minutes, first_day, last_day, submit_key, created_at,"
        " updated_at) VALUES (:community_id, :created_by, :category, :title, :description, :voice_file_id, :slots,"
        " :points, :organisation_id, :weekdays, :start_time, :minutes, :first_day, :last_day, :submit_key, :now,"
        " :now) ON CONFLICT DO NOTHING", params)
    row = await first(conn, "SELECT id FROM event_series WHERE submit_key = :submit_key", params)
    assert row is not None
    return int(row[0])


async def by_key(conn: Connection, submit_key: str) -> int | None:
    """The series saved under ``submit_key``, if any (inside a transaction)."""
    row = await first(conn, "SELECT id FROM event_series WHERE submit_key = :k", {"k": submit_key})
    return None if row is None else int(row[0])


async def continued_as(conn: Connection, series_id: int) -> list[Series]:
    """The series this one goes on as, split off by edits from a later day (their ``submit_key`` is
    ``series:<this id>:...``, bot/services/series.py), by first day (inside a transaction)."""
    rows = await conn.execute_fetchall(_SELECT + " WHERE submit_key LIKE :prefix ORDER BY first_day, id",
                                       {"prefix": f"series:{series_id}:%"})
    return [s for s in map(_series, rows) if s is not None]


async def get(conn: Connection, series_id: int) -> Series | None:
    """The series inside a transaction."""
    return _series(await first(conn, _SELECT + " WHERE id = :id", {"id": series_id}))


async def load(db: Database, series_id: int) -> Series | None:
    return _series(await db.fetchone(_SELECT + " WHERE id = :id", {"id": series_id}))


async def of_community(db: Database, community_id: int, *, limit: int = 10) -> list[Series]:
    """The community's series still running (an occurrence left to post), newest first."""
    rows = await db.fetchall(_SELECT + " WHERE community_id = :c AND next_day IS NOT NULL ORDER BY id DESC"
                             " LIMIT :limit", {"c": community_id, "limit": limit})
    return [s for s in map(_series, rows) if s is not None]


# An event a series posted that is still to come: not started, not cancelled or over.
_TO_COME = ("FROM series_occurrences o JOIN tasks t ON t.id = o.task_id WHERE o.series_id = {series}"
            f" AND t.starts_at > :now AND t.state IN {ACTIVE_TASK_STATES_SQL}")


async def ended_with_events(db: Database, community_id: int, now: datetime, *, limit: int = 10) -> list[Series]:
    """The community's series with nothing left to post but an event posted still to come, newest first."""
    rows = await db.fetchall(
        _SELECT + " WHERE community_id = :c AND next_day IS NULL AND EXISTS (SELECT 1 "
        + _TO_COME.format(series="event_series.id") + ") ORDER BY id DESC LIMIT :limit",
        {"c": community_id, "now": to_db(now), "limit": limit})
    return [s for s in map(_series, rows) if s is not None]


async def posted_to_come(db: Database, series_id: int, now: datetime) -> list[int]:
    """The series' events posted that are still to come, by day."""
    rows = await db.fetchall("SELECT o.task_id " + _TO_COME.format(series=":s") + " ORDER BY o.day",
                             {"s": series_id, "now": to_db(now)})
    return [int(r[0]) for r in rows]


async def split_from(db: Database, community_id: int) -> dict[int, int]:
    """The community's series split off another by an edit from a later day: {its id: the id of the
    series it was split from} (their ``submit_key`` is ``series:<that id>:...``)."""
    rows = await db.fetchall("SELECT id, submit_key FROM event_series WHERE community_id = :c"
                             " AND submit_key LIKE :prefix", {"c": community_id, "prefix": "series:%"})
    found: dict[int, int] = {}
    for row in rows:
        parent = str(row[1]).split(":")[1]
        if parent.isdigit():
            found[int(row[0])] = int(parent)
    return found


async def due(db: Database, now: datetime, *, limit: int = 50) -> list[int]:
    """Series with an occurrence due to be posted by ``now`` (reads only the index event_series_due)."""
    rows = await db.fetchall("SELECT id FROM event_series WHERE next_post_at IS NOT NULL AND next_post_at <= :now"
                             " ORDER BY next_post_at LIMIT :limit", {"now": to_db(now), "limit": limit})
    return [int(r[0]) for r in rows]


async def set_next(conn: Connection, series_id: int, day: str | None, post_at: datetime | None) -> None:
    await conn.execute("UPDATE event_series SET next_day = :day, next_post_at = :at WHERE id = :id",
                       {"id": series_id, "day": day, "at": to_db(post_at) if post_at else None})


async def update(conn: Connection, series_id: int, now: datetime, changes: dict[str, Any]) -> None:
    """Change some of title, description, points, slots, start_time, minutes, stop_day (the names are
    the caller's, never typed text)."""
    allowed = {"title", "description", "points", "slots", "start_time", "minutes", "stop_day"}
    assert set(changes) <= allowed, changes
    sets = ", ".join(f"{k} = :{k}" for k in changes)
    await conn.execute(f"UPDATE event_series SET {sets}, updated_at = :now WHERE id = :id",
                       {**changes, "id": series_id, "now": to_db(now)})


async def record(conn: Connection, series_id: int, day: str, task_id: int | None, now: datetime) -> bool:
    """The occurrence of ``day`` was posted as ``task_id`` (None: passed over); False if already recorded."""
    cur = await conn.execute(
        "INSERT INTO series_occurrences (series_id, day, task_id, posted_at) VALUES (:s, :day, :task, :now)"
        " ON CONFLICT (series_id, day) DO NOTHING",
        {"s": series_id, "day": day, "task": task_id, "now": to_db(now)})
    return bool(cur.rowcount or 0)


async def last_recorded(conn: Connection, series_id: int) -> str | None:
    """The latest day of the series already posted (or passed over)."""
    row = await first(conn, "SELECT MAX(day) FROM series_occurrences WHERE series_id = :s", {"s": series_id})
    return str(row[0]) if row is not None and row[0] is not None else None


async def posted_from(db: Database | Connection, series_id: int, day: str) -> list[int]:
    """The events already posted for occurrences on or after ``day`` (left as they are by an edit)."""
    sql = ("SELECT task_id FROM series_occurrences WHERE series_id = :s AND day >= :day AND task_id IS NOT NULL"
           " ORDER BY day")
    params = {"s": series_id, "day": day}
    rows = list(await db.fetchall(sql, params) if isinstance(db, Database) else await db.execute_fetchall(sql, params))
    return [int(r[0]) for r in rows]


async def posted_count(db: Database, series_id: int) -> int:
    v = await db.fetchval("SELECT COUNT(task_id) FROM series_occurrences WHERE series_id = :s", {"s": series_id})
    return int(v or 0)


async def days_ahead(db: Database | Connection, community_id: int) -> int:
    """How many days before an occurrence starts it is posted (the community's setting)."""
    sql, params = "SELECT series_days_ahead FROM communities WHERE id = :id", {"id": community_id}
    row = await (db.fetchone(sql, params) if isinstance(db, Database) else first(db, sql, params))
    return int(row[0]) if row is not None and row[0] is not None else 7


async def set_days_ahead(conn: Connection, community_id: int, days: int) -> None:
    await conn.execute("UPDATE communities SET series_days_ahead = :d WHERE id = :id", {"d": days, "id": community_id})
