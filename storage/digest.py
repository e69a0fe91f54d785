"""Data access for the daily digests (bot/services/digest.py): what each digest reports, and who is due.

Tasks come as ``DigestTask`` rows carrying what it takes to name them the way their group card
does (and the secrets they are masked with, which never go into a message); the counts are plain
numbers. Who is due is read from the partial indexes of migration 0111 (``DUE_COMMUNITIES``,
``DUE_MEMBERS``; tests/services/test_digest.py checks their plans).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from storage.db import Database
from storage.tasks import ACTIVE_TASK_STATES_SQL
from storage.timeutil import to_db


async def _rows(conn: aiosqlite.Connection, sql: str, params: dict[str, Any]) -> list[aiosqlite.Row]:
    cur = await conn.execute(sql, params)
    return list(await cur.fetchall())


async def _count(conn: aiosqlite.Connection, sql: str, params: dict[str, Any]) -> int:
    rows = await _rows(conn, sql, params)
    return int(rows[0][0] or 0) if rows else 0


def _ids(prefix: str, values: list[Any]) -> tuple[str, dict[str, Any]]:
    """Named placeholders for an ``IN (...)`` list and their values."""
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ",".join(":" + k for k in params), params


# -- what a digest says -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DigestTask:
    """One task named in a digest (``starts_at`` as stored; the secrets only for masking)."""

    id: int
    title: str | None
    description: str | None
    category: str
    voice_file_id: str | None
    area_name: str | None
    category_zh: str | None
    category_en: str | None
    address: str | None
    proxy_name: str | None
    proxy_address: str | None
    proxy_phone: str | None
    requester_name: str | None
    requester_address: str | None
    starts_at: str | None = None
    organisation: str | None = None

    @classmethod
    def from_row(cls, r: aiosqlite.Row) -> DigestTask:
        keys = set(r.keys())
        return cls(int(r["id"]), r["title"], r["description"], r["category"], r["voice_file_id"], r["area_name"],
                   r["category_zh"], r["category_en"], r["address"], r["proxy_name"], r["proxy_address"],
                   r["proxy_phone"], r["requester_name"], r["requester_address"],
                   r["starts_at"] if "starts_at" in keys else None,
                   r["organisation"] if "organisation" in keys else None)


# A task is named the way its group card names it: category, a short masked description (or its
# title) and the area; never the exact address, a phone or the requester's name.
_TASK = ("SELECT t.id, t.title, t.category, t.description, t.voice_file_id, t.address, t.proxy_name,"
         " t.proxy_address, t.proxy_phone, r.display_name AS requester_name, r.address AS requester_address,"
         " a.name AS area_name,"
         " (SELECT name_zh FROM categories cg WHERE cg.community_id = t.community_id AND cg.code = t.category) AS category_zh,"
         " (SELECT name_en FROM categories cg WHERE cg.community_id = t.community_id AND cg.code = t.category) AS category_en")
_REQUESTER = " LEFT JOIN members r ON r.id = t.requester_id LEFT JOIN areas a ON a.id = t.area_id"


async def _tasks(conn: aiosqlite.Connection, sql: str, params: dict[str, Any]) -> list[DigestTask]:
    return [DigestTask.from_row(r) for r in await _rows(conn, sql, params)]


async def open_requests(conn: aiosqlite.Connection, community_id: int, limit: int) -> list[DigestTask]:
    """Open requests needing helpers, urgent ones first."""
    return await _tasks(conn, f"{_TASK} FROM tasks t{_REQUESTER} WHERE t.community_id = :community"
                        " AND t.state = 'open' AND t.kind = 'request' ORDER BY t.urgent DESC, t.id LIMIT :limit",
                        {"community": community_id, "limit": limit})


async def upcoming_events(conn: aiosqlite.Connection, community_id: int, after: datetime, until: datetime,
                          limit: int) -> list[DigestTask]:
    """Open (or full) events starting in (after, until], soonest first, with their organisation."""
    return await _tasks(conn, f"{_TASK}, t.starts_at, o.name AS organisation FROM tasks t{_REQUESTER}"
                        " LEFT JOIN organisations o ON o.id = t.organisation_id WHERE t.community_id = :community"
                        " AND t.kind = 'event' AND t.state IN ('open', 'full') AND t.starts_at > :after"
                        " AND t.starts_at <= :until ORDER BY t.starts_at LIMIT :limit",
                        {"community": community_id, "after": to_db(after), "until": to_db(until), "limit": limit})


async def claimed_for_day(conn: aiosqlite.Connection, member_id: int, start: datetime, end: datetime,
                          day_before: datetime | None = None) -> list[DigestTask]:
    """Tasks the member holds an active claim on that start in [start, end), or have no start and
    are not over before ``start`` (a request for "yesterday" still held is not today's): one asked
    for "today" only on the day it was asked, for "tomorrow" only on the day after (asked in
    [``day_before``, ``start``): the local day before, by default 24 hours)."""
    before = day_before if day_before is not None else start - timedelta(days=1)
    return await _tasks(conn, f"{_TASK}, t.starts_at FROM claims k JOIN tasks t ON t.id = k.task_id{_REQUESTER}"
                        f" WHERE k.member_id = :member AND k.state = 'active' AND t.state IN {ACTIVE_TASK_STATES_SQL}"
                        " AND ((t.starts_at IS NULL AND (t.ends_at IS NULL OR t.ends_at >= :start)"
                        " AND (t.when_kind <> 'today' OR t.created_at >= :start)"
                        " AND (t.when_kind <> 'tomorrow' OR (t.created_at >= :before AND t.created_at < :start)))"
                        " OR (t.starts_at >= :start AND t.starts_at < :end))"
                        " ORDER BY t.starts_at, t.id",
                        {"member": member_id, "start": to_db(start), "end": to_db(end), "before": to_db(before)})


async def matching_requests(conn: aiosqlite.Connection, *, community_id: int, member_id: int, area_id: int | None,
                            skills: list[str], limit: int) -> list[DigestTask]:
    """Open requests in the member's area or needing one of their skills, that they have not claimed."""
    skill_sql, params = "", dict[str, Any]()
    if skills:
        marks, params = _ids("skill", skills)
        skill_sql = f" OR t.category IN ({marks})"
    return await _tasks(conn, f"{_TASK} FROM tasks t{_REQUESTER} WHERE t.community_id = :community"
                        " AND t.state = 'open' AND t.kind = 'request' AND NOT EXISTS"
                        " (SELECT 1 FROM claims k WHERE k.task_id = t.id AND k.member_id = :member)"
                        f" AND (t.area_id = :area{skill_sql}) ORDER BY t.urgent DESC, t.id LIMIT :limit",
                        {"community": community_id, "member": member_id, "area": area_id, "limit": limit, **params})


_EARNED = "('task_completed', 'task_auto_confirmed', 'event_attended')"


async def completed_between(conn: aiosqlite.Connection, community_id: int, start: datetime, end: datetime) -> int:
    return await _count(conn, "SELECT COUNT(*) FROM tasks WHERE community_id = :community AND state = 'completed'"
                        " AND completed_at >= :start AND completed_at < :end",
                        {"community": community_id, "start": to_db(start), "end": to_db(end)})


async def earned_between(conn: aiosqlite.Connection, community_id: int, start: datetime, end: datetime) -> int:
    """Points earned for tasks and events in [start, end)."""
    return await _count(conn, "SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE community_id = :community"
                        f" AND delta > 0 AND reason IN {_EARNED} AND created_at >= :start AND created_at < :end",
                        {"community": community_id, "start": to_db(start), "end": to_db(end)})


@dataclass(frozen=True, slots=True)
class Earner:
    name: str | None
    points: int


async def top_volunteers(conn: aiosqlite.Connection, community_id: int, since: datetime, limit: int) -> list[Earner]:
    """Who earned most since ``since`` (not those who opted out, nor erased members)."""
    rows = await _rows(
        conn, "SELECT m.display_name AS name, SUM(l.delta) AS points FROM ledger l JOIN members m ON m.id = l.member_id"
              " WHERE l.community_id = :community AND l.delta > 0 AND l.created_at >= :since AND m.leaderboard_opt_out = 0"
              f" AND m.deleted_at IS NULL AND l.reason IN {_EARNED}"
              " GROUP BY m.id ORDER BY points DESC, m.id LIMIT :limit",
        {"community": community_id, "since": to_db(since), "limit": limit})
    return [Earner(r["name"], int(r["points"])) for r in rows]


async def top_organisations(conn: aiosqlite.Connection, community_id: int, since: datetime, limit: int) -> list[Earner]:
    rows = await _rows(
        conn, "SELECT o.name AS name, SUM(l.delta) AS points FROM ledger l JOIN organisations o ON o.id = l.organisation_id"
              " WHERE l.community_id = :community AND l.delta > 0 AND l.created_at >= :since"
              f" AND l.reason IN {_EARNED} GROUP BY o.id ORDER BY points DESC, o.id LIMIT :limit",
        {"community": community_id, "since": to_db(since), "limit": limit})
    return [Earner(r["name"], int(r["points"])) for r in rows]


@dataclass(frozen=True, slots=True)
class Volunteer:
    """What a volunteer's digest needs of them (``skills`` as stored: a JSON list)."""

    community_id: int
    area_id: int | None
    skills: str | None
    balance: int


async def volunteer(conn: aiosqlite.Connection, member_id: int) -> Volunteer | None:
    rows = await _rows(conn, "SELECT community_id, area_id, skills, balance FROM members WHERE id = :member",
                       {"member": member_id})
    if not rows:
        return None
    m = rows[0]
    return Volunteer(m["community_id"], m["area_id"], m["skills"], int(m["balance"]))


async def pending_reviews(conn: aiosqlite.Connection, community_id: int) -> int:
    return await _count(conn, "SELECT COUNT(*) FROM tasks WHERE community_id = :community AND state = 'pending_review'",
                        {"community": community_id})


async def open_cases(conn: aiosqlite.Connection, community_id: int) -> int:
    try:
        return await _count(conn, "SELECT COUNT(*) FROM cases WHERE community_id = :community AND state = 'open'",
                            {"community": community_id})
    except aiosqlite.OperationalError:  # the completion migration is not there
        return 0


async def done_unconfirmed_since(conn: aiosqlite.Connection, community_id: int, before: datetime) -> int:
    """Tasks awaiting confirmation that were marked done at or before ``before``."""
    return await _count(conn, "SELECT COUNT(*) FROM tasks WHERE community_id = :community"
                        " AND state = 'awaiting_confirmation' AND done_at <= :before",
                        {"community": community_id, "before": to_db(before)})


async def unclaimed_since(conn: aiosqlite.Connection, community_id: int, before: datetime) -> int:
    """Open tasks published at or before ``before`` that nobody holds (or finished) a place on."""
    return await _count(conn, "SELECT COUNT(*) FROM tasks t WHERE community_id = :community AND state = 'open'"
                        " AND published_at <= :before AND NOT EXISTS (SELECT 1 FROM claims k WHERE k.task_id = t.id"
                        " AND k.state IN ('active', 'done'))", {"community": community_id, "before": to_db(before)})


@dataclass(frozen=True, slots=True)
class Unreachable:
    id: int
    name: str | None


async def unreachable_volunteers(conn: aiosqlite.Connection, community_id: int, limit: int = 20) -> list[Unreachable]:
    """Members the bot cannot write to who hold an active claim on a task still to happen."""
    rows = await _rows(
        conn, "SELECT DISTINCT m.id, m.display_name AS name FROM members m JOIN claims k ON k.member_id = m.id"
              " JOIN tasks t ON t.id = k.task_id WHERE m.community_id = :community AND m.reachable = 0"
              f" AND k.state = 'active' AND t.state IN {ACTIVE_TASK_STATES_SQL} ORDER BY m.id LIMIT :limit",
        {"community": community_id, "limit": limit})
    return [Unreachable(int(r["id"]), r["name"]) for r in rows]


# -- who is due, and when next ------------------------------------------------------------------
DUE_COMMUNITIES = "SELECT id FROM communities WHERE digest_next_at <= ?"
DUE_MEMBERS = "SELECT id FROM members WHERE digest_next_at <= ?"


async def due_communities(db: Database, now: datetime) -> list[int]:
    return [int(r[0]) for r in await db.fetchall(DUE_COMMUNITIES, (to_db(now),))]


async def due_members(db: Database, now: datetime) -> list[int]:
    return [int(r[0]) for r in await db.fetchall(DUE_MEMBERS, (to_db(now),))]


@dataclass(frozen=True, slots=True)
class GroupSchedule:
    id: int
    timezone: str
    digest_time: str
    group_chat_id: int | None


async def group_schedule(conn: aiosqlite.Connection, community_id: int) -> GroupSchedule | None:
    """An active community's digest time and group, None if it is not active (or not there)."""
    rows = await _rows(conn, "SELECT id, timezone, digest_time, group_chat_id FROM communities"
                             " WHERE id = :id AND active = 1", {"id": community_id})
    if not rows:
        return None
    c = rows[0]
    return GroupSchedule(int(c["id"]), c["timezone"], c["digest_time"], c["group_chat_id"])


@dataclass(frozen=True, slots=True)
class MemberSchedule:
    """What deciding one member's digests needs: their roles and settings, their community's zone and time."""

    id: int
    community_id: int
    is_staff: bool
    is_volunteer: bool
    digest_enabled: bool
    digest_hour: int | None
    timezone: str
    digest_time: str


async def member_schedules(conn: aiosqlite.Connection, ids: list[int]) -> list[MemberSchedule]:
    """Those of ``ids`` who get a digest (registered, in an active community, staff or volunteers who want one)."""
    marks, params = _ids("id", ids)
    rows = await _rows(
        conn, "SELECT m.id, m.community_id, m.is_staff, m.is_volunteer, m.digest_enabled, m.digest_hour,"
              " c.timezone, c.digest_time FROM members m JOIN communities c ON c.id = m.community_id"
              f" WHERE m.id IN ({marks}) AND c.active = 1 AND m.deleted_at IS NULL AND m.registered_at IS NOT NULL"
              " AND (m.is_staff = 1 OR (m.is_volunteer = 1 AND m.digest_enabled = 1))", params)
    return [MemberSchedule(int(m["id"]), int(m["community_id"]), bool(m["is_staff"]), bool(m["is_volunteer"]),
                           bool(m["digest_enabled"]), None if m["digest_hour"] is None else int(m["digest_hour"]),
                           m["timezone"], m["digest_time"]) for m in rows]


async def _reschedule(conn: aiosqlite.Connection, table: str, ids: list[int], when: dict[int, datetime | None]) -> None:
    def at(moment: datetime | None) -> str | None:
        return None if moment is None else to_db(moment)

    await conn.executemany(f"UPDATE {table} SET digest_next_at = :at WHERE id = :id",
                           [{"at": at(when.get(i)), "id": i} for i in ids])


async def reschedule_communities(conn: aiosqlite.Connection, ids: list[int], when: dict[int, datetime | None]) -> None:
    """Store each community's next digest time (missing or None: no digest)."""
    await _reschedule(conn, "communities", ids, when)


async def reschedule_members(conn: aiosqlite.Connection, ids: list[int], when: dict[int, datetime | None]) -> None:
    """Store each member's next digest time (missing or None: no digest)."""
    await _reschedule(conn, "members", ids, when)
