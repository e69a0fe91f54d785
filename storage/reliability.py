"""Data access for the reliability score (bot/services/reliability.py): what a volunteer did
(completed claims, no-shows, late withdrawals) and the community's minimum to claim events."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from storage.db import Database, first
from storage.timeutil import to_db

DONE, NO_SHOW, LATE = "done", "no_show", "late"


@dataclass(frozen=True, slots=True)
class Mark:
    """What a volunteer did that the score counts: ``count`` times ``done``, ``no_show`` or ``late``
    on the (UTC) day that starts at ``at``."""

    member_id: int
    kind: str
    at: datetime
    count: int = 1


# Counted per UTC day (times are stored as fixed-width UTC text: the first ten characters are the
# day), so even a very busy volunteer is a few hundred rows. A completed claim is dated by its last
# change (the confirmation or the event's closing): the partial index claims_member_completed.
_MARKS = ("SELECT member_id, kind, day, COUNT(*) FROM ("
          "SELECT member_id, 'done' AS kind, substr(updated_at, 1, 10) AS day FROM claims"
          " WHERE member_id {who} AND state = 'completed' AND updated_at >= :since"
          " UNION ALL SELECT member_id, 'no_show', substr(created_at, 1, 10) FROM no_shows"
          " WHERE member_id {who} AND created_at >= :since"
          " UNION ALL SELECT member_id, 'late', substr(created_at, 1, 10) FROM late_withdrawals"
          " WHERE member_id {who} AND created_at >= :since"
          ") AS marks GROUP BY member_id, kind, day")
_ONE = _MARKS.format(who="= :mid")


def _marks(rows: Sequence[Any]) -> list[Mark]:
    return [Mark(int(r[0]), str(r[1]), datetime.fromisoformat(str(r[2])).replace(tzinfo=UTC), int(r[3]))
            for r in rows]


def marks_sync(conn: sqlite3.Connection, member_id: int, since: datetime) -> list[Mark]:
    """The member's marks since ``since`` (in a ``Database.write`` transaction)."""
    return _marks(conn.execute(_ONE, {"mid": member_id, "since": to_db(since)}).fetchall())


async def marks_of(db: Database, member_ids: Sequence[int], since: datetime) -> list[Mark]:
    """The marks of these members since ``since`` (committed data), in one query."""
    if not member_ids:
        return []
    names = {f"m{i}": int(mid) for i, mid in enumerate(member_ids)}
    sql = _MARKS.format(who="IN (" + ", ".join(":" + k for k in names) + ")")
    return _marks(await db.fetchall(sql, {**names, "since": to_db(since)}))


def record_late_sync(conn: sqlite3.Connection, *, community_id: int, task_id: int, member_id: int,
                     starts_at: datetime, now: datetime) -> bool:
    """A late withdrawal, once per task and volunteer; False if one was recorded before."""
    cur = conn.execute("INSERT INTO late_withdrawals (community_id, task_id, member_id, starts_at, created_at)"
                       " VALUES (:c, :t, :m, :s, :now) ON CONFLICT (task_id, member_id) DO NOTHING",
                       {"c": community_id, "t": task_id, "m": member_id, "s": to_db(starts_at), "now": to_db(now)})
    return bool(cur.rowcount)


_MINIMUM = "SELECT min_reliability FROM communities WHERE id = :id"


async def minimum(db: Database, community_id: int) -> int:
    """The community's minimum score to claim an event (0: none)."""
    return int(await db.fetchval(_MINIMUM, {"id": community_id}) or 0)


async def set_minimum(conn: aiosqlite.Connection, community_id: int, value: int) -> int:
    """Set the minimum in a transaction; returns the one it replaces."""
    row = await first(conn, _MINIMUM, {"id": community_id})
    await conn.execute("UPDATE communities SET min_reliability = :v WHERE id = :id", {"v": value, "id": community_id})
    return int(row[0]) if row else 0
