"""Daily digests: for the group, for each volunteer, for staff. A day with nothing to say sends nothing.

Builders return plain data (rendered in the recipient's language at send time) or ``None``.
``sweep_digests`` queues what is due: at the digest time in the community's time zone, once per
local day (a digest missed while the bot was down goes out when it is back, the same day only).
Each member and community carries the time its next digest is due (``digest_next_at``, migration
0111, kept by triggers when the settings it depends on change), so a sweep reads only those due.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from bot.services.notifications import mark_once
from bot.services.tasks import label, secrets_of
from storage.db import Database
from storage.outbox import enqueue
from storage.timeutil import to_db

TOP_N = 5
LIST_N = 8


async def _rows(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[aiosqlite.Row]:
    cur = await conn.execute(sql, params)
    return list(await cur.fetchall())


def _day_bounds(local_day: datetime) -> tuple[str, str]:
    start = local_day.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    # Wall-clock midnight to midnight in the zone (DST-safe: convert each end separately).
    return to_db(start.astimezone(ZoneInfo("UTC"))), to_db(end.replace(tzinfo=start.tzinfo).astimezone(ZoneInfo("UTC")))


# A task's title goes into a digest masked like its card, and only with these fields (the secrets
# it is masked with are read for masking, not kept in the message).
# Each task is named the way its group card names it: category, a short masked description (or its
# title) and the area; never the exact address, a phone or the requester's name.
_SECRETS = (" t.description, t.voice_file_id, t.address, t.proxy_name, t.proxy_address, t.proxy_phone,"
            " r.display_name AS requester_name, r.address AS requester_address, a.name AS area_name,"
            " (SELECT name_zh FROM categories cg WHERE cg.community_id = t.community_id AND cg.code = t.category) AS category_zh,"
            " (SELECT name_en FROM categories cg WHERE cg.community_id = t.community_id AND cg.code = t.category) AS category_en")
_REQUESTER = " LEFT JOIN members r ON r.id = t.requester_id LEFT JOIN areas a ON a.id = t.area_id"


def _public(rows: list[aiosqlite.Row], *fields: str) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        item = {k: row[k] for k in ("id", *fields)}
        item["title"] = label(row["title"], row["description"], secrets=secrets_of(row)) or None
        item["voice"] = bool(row["voice_file_id"])
        item["area"] = row["area_name"]
        item["category_zh"] = row["category_zh"]
        item["category_en"] = row["category_en"] or row["category"]
        out.append(item)
    return out


def local_now(now: datetime, tz: str) -> datetime:
    return now.astimezone(ZoneInfo(tz))


async def group_digest(conn: aiosqlite.Connection, community_id: int, now: datetime, tz: str) -> dict[str, Any] | None:
    """Open tasks needing helpers, yesterday's completed tasks and points, this week's top
    volunteers and organisations, upcoming events. No private data (titles and first names only)."""
    local = local_now(now, tz)
    y_start, y_end = _day_bounds(local - timedelta(days=1))
    week_start = to_db(now - timedelta(days=7))
    open_tasks = _public(await _rows(
        conn, f"SELECT t.id, t.title, t.category,{_SECRETS} FROM tasks t{_REQUESTER} WHERE t.community_id = ?"
              " AND t.state = 'open' AND t.kind = 'request' ORDER BY t.urgent DESC, t.id LIMIT ?",
        (community_id, LIST_N)), "category")
    done = await _rows(
        conn, "SELECT COUNT(*) AS n FROM tasks WHERE community_id = ? AND state = 'completed'"
              " AND completed_at >= ? AND completed_at < ?", (community_id, y_start, y_end))
    pts = await _rows(
        conn, "SELECT COALESCE(SUM(delta), 0) AS p FROM ledger WHERE community_id = ? AND delta > 0"
              " AND reason IN ('task_completed', 'task_auto_confirmed', 'event_attended')"
              " AND created_at >= ? AND created_at < ?", (community_id, y_start, y_end))
    top = [dict(r) for r in await _rows(
        conn, "SELECT m.display_name AS name, SUM(l.delta) AS points FROM ledger l JOIN members m ON m.id = l.member_id"
              " WHERE l.community_id = ? AND l.delta > 0 AND l.created_at >= ? AND m.leaderboard_opt_out = 0"
              " AND m.deleted_at IS NULL AND l.reason IN ('task_completed', 'task_auto_confirmed', 'event_attended')"
              " GROUP BY m.id ORDER BY points DESC, m.id LIMIT ?", (community_id, week_start, TOP_N))]
    orgs = [dict(r) for r in await _rows(
        conn, "SELECT o.name AS name, SUM(l.delta) AS points FROM ledger l JOIN organisations o ON o.id = l.organisation_id"
              " WHERE l.community_id = ? AND l.delta > 0 AND l.created_at >= ?"
              " AND l.reason IN ('task_completed', 'task_auto_confirmed', 'event_attended')"
              " GROUP BY o.id ORDER BY points DESC, o.id LIMIT ?", (community_id, week_start, TOP_N))]
    events = _public(await _rows(
        conn, f"SELECT t.id, t.title, t.category, t.starts_at, o.name AS organisation,{_SECRETS} FROM tasks t{_REQUESTER}"
              " LEFT JOIN organisations o ON o.id = t.organisation_id WHERE t.community_id = ?"
              " AND t.kind = 'event' AND t.state IN ('open', 'full') AND t.starts_at > ? AND t.starts_at <= ?"
              " ORDER BY t.starts_at LIMIT ?", (community_id, to_db(now), to_db(now + timedelta(days=7)), LIST_N)),
        "category", "starts_at", "organisation")
    data = {"open_tasks": open_tasks, "completed_yesterday": int(done[0]["n"]), "points_yesterday": int(pts[0]["p"]),
            "top_volunteers": top, "top_organisations": orgs, "events": events, "tz": tz}
    if not (open_tasks or data["completed_yesterday"] or top or orgs or events):
        return None
    return data


async def volunteer_digest(conn: aiosqlite.Connection, member_id: int, now: datetime, tz: str) -> dict[str, Any] | None:
    """Their tasks for today, their balance, open tasks matching their area or skills."""
    rows = await _rows(conn, "SELECT * FROM members WHERE id = ?", (member_id,))
    if not rows:
        return None
    m = rows[0]
    d_start, d_end = _day_bounds(local_now(now, tz))
    today = _public(await _rows(
        conn, f"SELECT t.id, t.title, t.category, t.starts_at,{_SECRETS} FROM claims k JOIN tasks t ON t.id = k.task_id{_REQUESTER}"
              " WHERE k.member_id = ? AND k.state = 'active' AND t.state IN ('open', 'full', 'in_progress')"
              " AND (t.starts_at IS NULL OR (t.starts_at >= ? AND t.starts_at < ?)) ORDER BY t.starts_at, t.id",
        (member_id, d_start, d_end)), "category", "starts_at")
    try:
        skills = [s for s in json.loads(m["skills"] or "[]") if isinstance(s, str)]
    except ValueError:
        skills = []
    params: list[Any] = [m["community_id"], member_id, m["area_id"]]
    skill_sql = ""
    if skills:
        skill_sql = f" OR t.category IN ({','.join('?' * len(skills))})"
        params.extend(skills)
    params.append(LIST_N)
    matching = _public(await _rows(
        conn, f"SELECT t.id, t.title, t.category,{_SECRETS} FROM tasks t{_REQUESTER} WHERE t.community_id = ?"
              " AND t.state = 'open'"
              " AND t.kind = 'request' AND NOT EXISTS (SELECT 1 FROM claims k WHERE k.task_id = t.id AND k.member_id = ?)"
              f" AND (t.area_id = ?{skill_sql}) ORDER BY t.urgent DESC, t.id LIMIT ?", tuple(params)), "category")
    if not (today or matching):
        return None
    return {"today": today, "matching": matching, "balance": int(m["balance"]), "tz": tz}


async def staff_digest(conn: aiosqlite.Connection, community_id: int, now: datetime) -> dict[str, Any] | None:
    """What needs staff: pending reviews, open problem cases, escalations, unreachable volunteers."""
    def count(sql: str, *p: Any) -> Any:
        return _rows(conn, sql, (community_id, *p))

    pending = int((await count("SELECT COUNT(*) AS n FROM tasks WHERE community_id = ? AND state = 'pending_review'"))[0]["n"])
    try:
        cases = int((await count("SELECT COUNT(*) AS n FROM cases WHERE community_id = ? AND state = 'open'"))[0]["n"])
    except aiosqlite.OperationalError:  # the completion migration is not there
        cases = 0
    waiting = int((await count(
        "SELECT COUNT(*) AS n FROM tasks WHERE community_id = ? AND state = 'awaiting_confirmation' AND done_at <= ?",
        to_db(now - timedelta(hours=48))))[0]["n"])
    unclaimed = int((await count(
        "SELECT COUNT(*) AS n FROM tasks t WHERE community_id = ? AND state = 'open' AND published_at <= ?"
        " AND NOT EXISTS (SELECT 1 FROM claims k WHERE k.task_id = t.id AND k.state IN ('active', 'done'))",
        to_db(now - timedelta(hours=2))))[0]["n"])
    unreachable = [dict(r) for r in await count(
        "SELECT DISTINCT m.id, m.display_name AS name FROM members m JOIN claims k ON k.member_id = m.id"
        " JOIN tasks t ON t.id = k.task_id WHERE m.community_id = ? AND m.reachable = 0 AND k.state = 'active'"
        " AND t.state IN ('open', 'full', 'in_progress') ORDER BY m.id LIMIT 20")]
    if not (pending or cases or waiting or unclaimed or unreachable):
        return None
    return {"pending_reviews": pending, "open_cases": cases, "waiting_confirmation": waiting,
            "unclaimed": unclaimed, "unreachable": unreachable}


def _due(local: datetime, hhmm: str) -> bool:
    hh, mm = (int(x) for x in hhmm.split(":"))
    return local.time() >= time(hh, mm)


async def _chat(conn: aiosqlite.Connection, member_id: int) -> int | None:
    rows = await _rows(conn, "SELECT tg_user_id FROM members WHERE id = ? AND started_bot = 1 AND reachable = 1"
                             " AND deleted_at IS NULL", (member_id,))
    return None if not rows or rows[0]["tg_user_id"] is None else int(rows[0]["tg_user_id"])


def next_due(local: datetime, hhmm: str) -> datetime:
    """The next digest moment at local ``hhmm`` after a decision at ``local``: today's, if it is still
    ahead, else tomorrow's (wall-clock, so it follows daylight saving)."""
    hh, mm = (int(x) for x in hhmm.split(":"))
    day = local.date() + timedelta(days=1 if _due(local, hhmm) else 0)
    return datetime.combine(day, time(hh, mm), tzinfo=local.tzinfo)


# Who is due: read from the partial indexes of migration 0111 (tests/services/test_digest.py checks the plans).
DUE_COMMUNITIES = "SELECT id FROM communities WHERE digest_next_at <= ?"
DUE_MEMBERS = "SELECT id FROM members WHERE digest_next_at <= ?"

# What the sweep needs to decide one member's digests, read in the transaction that decides them.
_MEMBER = ("SELECT m.id, m.community_id, m.is_staff, m.is_volunteer, m.digest_enabled, m.digest_hour,"
           " c.timezone, c.digest_time FROM members m JOIN communities c ON c.id = m.community_id"
           " WHERE m.id IN ({ids}) AND c.active = 1 AND m.deleted_at IS NULL AND m.registered_at IS NOT NULL"
           " AND (m.is_staff = 1 OR (m.is_volunteer = 1 AND m.digest_enabled = 1))")
CHUNK = 500  # members whose schedule is worked out again (not due) per transaction


def _member_time(m: aiosqlite.Row) -> str:
    return str(m["digest_time"]) if m["digest_hour"] is None else f"{int(m['digest_hour']):02d}:00"


async def _reschedule(conn: aiosqlite.Connection, table: str, ids: list[int], when: dict[int, str | None]) -> None:
    """Store each id's next digest time (None: no digest), given ids read as due in this transaction."""
    await conn.executemany(f"UPDATE {table} SET digest_next_at = ? WHERE id = ?", [(when.get(i), i) for i in ids])


async def _group_pass(conn: aiosqlite.Connection, cid: int, now: datetime) -> int:
    """Decide community ``cid``'s group digest if due now, and schedule the next one."""
    rows = await _rows(conn, "SELECT * FROM communities WHERE id = ? AND active = 1", (cid,))
    if not rows:
        await _reschedule(conn, "communities", [cid], {})
        return 0
    c = rows[0]
    tz = c["timezone"]
    local = local_now(now, tz)
    day = local.date().isoformat()
    queued = 0
    if _due(local, c["digest_time"]) and await mark_once(conn, f"digest:group:{cid}:{day}", now):
        data = await group_digest(conn, cid, now, tz)
        if data is not None and c["group_chat_id"] is not None:
            queued += await enqueue(conn, chat_id=int(c["group_chat_id"]), kind="digest_group", now=now,
                                    payload=data, dedupe_key=f"digest:group:{cid}:{day}")
    await _reschedule(conn, "communities", [cid], {cid: to_db(next_due(local, c["digest_time"]))})
    return queued


async def _member_pass(conn: aiosqlite.Connection, m: aiosqlite.Row, now: datetime) -> int:
    """Decide one member's staff and volunteer digests for today if due now, and schedule the next."""
    mid, cid, tz = int(m["id"]), int(m["community_id"]), m["timezone"]
    local = local_now(now, tz)
    day = local.date().isoformat()
    queued = 0
    hhmm = _member_time(m)
    if _due(local, hhmm):  # (their time may have moved since they were read as due)
        if m["is_staff"] and await mark_once(conn, f"digest:staff:{mid}:{day}", now):
            sdata = await staff_digest(conn, cid, now)
            chat = await _chat(conn, mid)
            if sdata is not None and chat is not None:
                queued += await enqueue(conn, chat_id=chat, member_id=mid, kind="digest_staff", now=now,
                                        payload=sdata, dedupe_key=f"digest:staff:{mid}:{day}")
        if m["is_volunteer"] and m["digest_enabled"] and await mark_once(conn, f"digest:vol:{mid}:{day}", now):
            vdata = await volunteer_digest(conn, mid, now, tz)
            chat = await _chat(conn, mid)
            if vdata is not None and chat is not None:
                queued += await enqueue(conn, chat_id=chat, member_id=mid, kind="digest_volunteer", now=now,
                                        payload=vdata, dedupe_key=f"digest:vol:{mid}:{day}")
    await _reschedule(conn, "members", [mid], {mid: to_db(next_due(local, hhmm))})
    return queued


async def sweep_digests(db: Database, now: datetime) -> int:
    """Queue every digest due now and not yet decided today (local date). Returns how many were queued.

    Reads only the communities and members whose ``digest_next_at`` has come (index, migration 0111),
    so a sweep between digest times costs two empty index lookups whatever the number of members.
    """
    queued = 0
    stamp = to_db(now)
    for (cid,) in await db.fetchall(DUE_COMMUNITIES, (stamp,)):
        async with db.transaction() as conn:
            queued += await _group_pass(conn, int(cid), now)
    ids = [int(r[0]) for r in await db.fetchall(DUE_MEMBERS, (stamp,))]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        due: list[int] = []
        async with db.transaction() as conn:
            # Members not due yet (just changed, or first seen) get their time in one transaction.
            when: dict[int, str | None] = {}
            for m in await _rows(conn, _MEMBER.format(ids=",".join("?" * len(chunk))), tuple(chunk)):
                local = local_now(now, m["timezone"])
                if _due(local, _member_time(m)):
                    due.append(int(m["id"]))
                else:
                    when[int(m["id"])] = to_db(next_due(local, _member_time(m)))
            waiting = set(due)
            await _reschedule(conn, "members", [i for i in chunk if i not in waiting], when)
        for mid in due:  # one short transaction each: a digest being built never holds up a claim for long
            async with db.transaction() as conn:
                rows = await _rows(conn, _MEMBER.format(ids="?"), (mid,))
                if rows:
                    queued += await _member_pass(conn, rows[0], now)
                else:  # changed in between: no digest any more
                    await _reschedule(conn, "members", [mid], {})
    return queued
