"""Data access for the reminder, escalation and expiry sweeps (bot/services/notifications.py).

What the sweeps read (the tasks due for each kind of notice, typed as ``DueTask``), what they
remember (``sent_notifications``: one unique key per notice decided) and the state changes they
make on their own (auto-confirming, expiring). The rules (when each notice is due) stay in the
service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.tasks import ACTIVE_TASK_STATES_SQL
from storage.timeutil import from_db, opt_from_db, to_db


async def mark_once(conn: aiosqlite.Connection, key: str, now: datetime) -> bool:
    """Remember ``key``; False if it was remembered before (the notification was already decided)."""
    cur = await conn.execute(
        "INSERT INTO sent_notifications (key, created_at) VALUES (:key, :now) ON CONFLICT (key) DO NOTHING",
        {"key": key, "now": to_db(now)},
    )
    return (cur.rowcount or 0) > 0


async def private_chat(conn: aiosqlite.Connection, member_id: int) -> int | None:
    """The private chat of a member the bot can write to (not erased, started the bot, reachable)."""
    cur = await conn.execute(
        "SELECT tg_user_id FROM members WHERE id = :member AND deleted_at IS NULL AND started_bot = 1"
        " AND reachable = 1", {"member": member_id},
    )
    row = await cur.fetchone()
    return None if row is None or row["tg_user_id"] is None else int(row["tg_user_id"])


async def staff_ids(conn: aiosqlite.Connection, community_id: int) -> list[int]:
    cur = await conn.execute(
        "SELECT id FROM members WHERE community_id = :community AND is_staff = 1 AND deleted_at IS NULL ORDER BY id",
        {"community": community_id},
    )
    return [int(r["id"]) for r in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class DueTask:
    """A task as the sweeps see it, with its community's time zone, settings and group."""

    id: int
    community_id: int
    kind: str
    state: str
    when_kind: str
    points: int
    requester_id: int | None
    is_proxy: bool
    created_by: int
    created_at: datetime
    published_at: datetime | None
    starts_at: datetime | None
    ends_at: datetime | None
    done_at: datetime | None
    tz: str | None
    settings: str | None
    group_chat_id: int | None

    @classmethod
    def from_row(cls, r: Any) -> DueTask:
        return cls(id=int(r["id"]), community_id=int(r["community_id"]), kind=str(r["kind"]), state=str(r["state"]),
                   when_kind=str(r["when_kind"]), points=int(r["points"]), requester_id=r["requester_id"],
                   is_proxy=bool(r["is_proxy"]), created_by=int(r["created_by"]),
                   created_at=from_db(str(r["created_at"])), published_at=opt_from_db(r["published_at"]),
                   starts_at=opt_from_db(r["starts_at"]), ends_at=opt_from_db(r["ends_at"]),
                   done_at=opt_from_db(r["done_at"]), tz=r["tz"], settings=r["csettings"], group_chat_id=r["cgroup"])


_TASKS = ("SELECT t.*, c.timezone AS tz, c.settings AS csettings, c.group_chat_id AS cgroup"
          " FROM tasks t JOIN communities c ON c.id = t.community_id WHERE c.active = 1 AND ")
_NOBODY_ON_IT = ("NOT EXISTS (SELECT 1 FROM claims k WHERE k.task_id = t.id"
                 " AND k.state IN ('active', 'done', 'completed'))")


async def _tasks(conn: aiosqlite.Connection, where: str, params: dict[str, Any]) -> list[DueTask]:
    cur = await conn.execute(_TASKS + where, params)
    return [DueTask.from_row(r) for r in await cur.fetchall()]


async def starting_later(conn: aiosqlite.Connection, now: datetime) -> list[DueTask]:
    """Tasks still to happen, with a start time after ``now`` (for reminders)."""
    return await _tasks(conn, f"t.state IN {ACTIVE_TASK_STATES_SQL} AND t.starts_at IS NOT NULL"
                        " AND t.starts_at > :now", {"now": to_db(now)})


async def unclaimed(conn: aiosqlite.Connection, now: datetime) -> list[DueTask]:
    """Published open tasks nobody holds a place on, not yet over."""
    return await _tasks(conn, "t.state = 'open' AND t.published_at IS NOT NULL AND " + _NOBODY_ON_IT
                        + " AND (t.ends_at IS NULL OR t.ends_at > :now)", {"now": to_db(now)})


async def past_their_time(conn: aiosqlite.Connection, now: datetime) -> list[DueTask]:
    """Requests under way whose end (or start) time has passed."""
    return await _tasks(conn, "t.kind = 'request' AND t.state IN ('in_progress', 'full')"
                        " AND COALESCE(t.ends_at, t.starts_at) IS NOT NULL AND COALESCE(t.ends_at, t.starts_at) <= :now",
                        {"now": to_db(now)})


async def awaiting_confirmation(conn: aiosqlite.Connection) -> list[DueTask]:
    return await _tasks(conn, "t.state = 'awaiting_confirmation' AND t.done_at IS NOT NULL", {})


async def expiry_candidates(conn: aiosqlite.Connection, now: datetime) -> list[DueTask]:
    """Open or pending tasks nobody is on that are past their end, and requests with no end."""
    return await _tasks(conn, "t.state IN ('open', 'pending_review')"
                        " AND ((t.ends_at IS NOT NULL AND t.ends_at <= :now) OR (t.ends_at IS NULL AND t.kind = 'request'))"
                        " AND " + _NOBODY_ON_IT, {"now": to_db(now)})


async def active_claimers(conn: aiosqlite.Connection, task_id: int, *, claimed_before: datetime | None = None) -> list[int]:
    """Members with an active claim on the task (only those who claimed before ``claimed_before``)."""
    sql = "SELECT member_id FROM claims WHERE task_id = :task AND state = 'active'"
    params: dict[str, Any] = {"task": task_id}
    if claimed_before is not None:
        sql += " AND claimed_at < :before"
        params["before"] = to_db(claimed_before)
    cur = await conn.execute(sql, params)
    return [int(r["member_id"]) for r in await cur.fetchall()]


async def done_claimers(conn: aiosqlite.Connection, task_id: int) -> list[int]:
    """Members who marked the task done, in the order they claimed it."""
    cur = await conn.execute("SELECT member_id FROM claims WHERE task_id = :task AND state = 'done' ORDER BY id",
                             {"task": task_id})
    return [int(r["member_id"]) for r in await cur.fetchall()]


_NEW_CARD = "updated_at = :now, card_version = card_version + 1"


async def complete_awaiting(conn: aiosqlite.Connection, task_id: int, now: datetime) -> bool:
    """Complete a task awaiting confirmation; False if it is no longer awaiting it."""
    cur = await conn.execute(f"UPDATE tasks SET state = 'completed', completed_at = :now, {_NEW_CARD}"
                             " WHERE id = :task AND state = 'awaiting_confirmation'", {"now": to_db(now), "task": task_id})
    return bool(cur.rowcount)


async def complete_claim(conn: aiosqlite.Connection, task_id: int, member_id: int, now: datetime) -> None:
    await conn.execute("UPDATE claims SET state = 'completed', updated_at = :now WHERE task_id = :task"
                       " AND member_id = :member", {"now": to_db(now), "task": task_id, "member": member_id})


async def expire(conn: aiosqlite.Connection, task_id: int, now: datetime) -> bool:
    """Expire an open or pending task; False if it is in another state by now."""
    cur = await conn.execute(f"UPDATE tasks SET state = 'expired', {_NEW_CARD}"
                             " WHERE id = :task AND state IN ('open', 'pending_review')", {"now": to_db(now), "task": task_id})
    return bool(cur.rowcount)


@dataclass(frozen=True, slots=True)
class HeldTask:
    task_id: int
    community_id: int


async def unfinished_of(conn: aiosqlite.Connection, member_id: int) -> list[HeldTask]:
    """Tasks still to happen on which the member holds an active claim."""
    cur = await conn.execute("SELECT t.id, t.community_id FROM claims k JOIN tasks t ON t.id = k.task_id"
                             " WHERE k.member_id = :member AND k.state = 'active'"
                             f" AND t.state IN {ACTIVE_TASK_STATES_SQL}", {"member": member_id})
    return [HeldTask(int(r["id"]), int(r["community_id"])) for r in await cur.fetchall()]


SETTINGS = frozenset({"digest_enabled", "digest_hour", "quiet_start", "quiet_end"})


async def set_member_settings(conn: aiosqlite.Connection, member_id: int, changes: dict[str, Any],
                              now: datetime) -> None:
    """Change a member's digest and quiet-hour settings (column names from ``SETTINGS`` only)."""
    if not changes or set(changes) - SETTINGS:
        raise ValueError(f"not a setting: {sorted(set(changes) - SETTINGS)}")
    sets = ", ".join(f"{k} = :{k}" for k in changes)
    await conn.execute(f"UPDATE members SET {sets}, updated_at = :now WHERE id = :member",
                       {**changes, "now": to_db(now), "member": member_id})
