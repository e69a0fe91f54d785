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

from bot.services.tasks import SECRET_COLUMNS, label
from storage import digest as store
from storage.db import Connection, Database
from storage.digest import DigestTask, MemberSchedule
from storage.notifications import mark_once, private_chat
from storage.outbox import enqueue

TOP_N = 5
LIST_N = 8


def _day_bounds(local_day: datetime) -> tuple[datetime, datetime]:
    start = local_day.replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    # Wall-clock midnight to midnight in the zone (DST-safe: convert each end separately).
    return start.astimezone(ZoneInfo("UTC")), end.replace(tzinfo=start.tzinfo).astimezone(ZoneInfo("UTC"))


def _public(tasks: list[DigestTask], *fields: str) -> list[dict[str, Any]]:
    """Each task as a digest names it: masked like its card, and only with these fields (the secrets
    it is masked with are read for masking, not kept in the message)."""
    out = []
    for task in tasks:
        item: dict[str, Any] = {k: getattr(task, k) for k in ("id", *fields)}
        secrets = [getattr(task, k) for k in SECRET_COLUMNS]
        item["title"] = label(task.title, task.description, secrets=secrets) or None
        item["voice"] = bool(task.voice_file_id)
        item["area"] = task.area_name
        item["category_zh"] = task.category_zh
        item["category_en"] = task.category_en or task.category
        out.append(item)
    return out


def local_now(now: datetime, tz: str) -> datetime:
    return now.astimezone(ZoneInfo(tz))


async def group_digest(conn: Connection, community_id: int, now: datetime, tz: str) -> dict[str, Any] | None:
    """Open tasks needing helpers, yesterday's completed tasks and points, this week's top
    volunteers and organisations, upcoming events. No private data (titles and first names only)."""
    local = local_now(now, tz)
    y_start, y_end = _day_bounds(local - timedelta(days=1))
    week_start = now - timedelta(days=7)
    open_tasks = _public(await store.open_requests(conn, community_id, LIST_N), "category")
    done = await store.completed_between(conn, community_id, y_start, y_end)
    pts = await store.earned_between(conn, community_id, y_start, y_end)
    top = [{"name": e.name, "points": e.points} for e in await store.top_volunteers(conn, community_id, week_start, TOP_N)]
    orgs = [{"name": e.name, "points": e.points}
            for e in await store.top_organisations(conn, community_id, week_start, TOP_N)]
    events = _public(await store.upcoming_events(conn, community_id, now, now + timedelta(days=7), LIST_N),
                     "category", "starts_at", "organisation")
    data = {"open_tasks": open_tasks, "completed_yesterday": done, "points_yesterday": pts,
            "top_volunteers": top, "top_organisations": orgs, "events": events, "tz": tz}
    if not (open_tasks or data["completed_yesterday"] or top or orgs or events):
        return None
    return data


async def volunteer_digest(conn: Connection, member_id: int, now: datetime, tz: str) -> dict[str, Any] | None:
    """Their tasks for today, their balance, open tasks matching their area or skills."""
    m = await store.volunteer(conn, member_id)
    if m is None:
        return None
    local = local_now(now, tz)
    d_start, d_end = _day_bounds(local)
    day_before = _day_bounds(local - timedelta(days=1))[0]  # a request asked then "for tomorrow" is today's
    today = _public(await store.claimed_for_day(conn, member_id, d_start, d_end, day_before), "category", "starts_at")
    try:
        skills = [s for s in json.loads(m.skills or "[]") if isinstance(s, str)]
    except ValueError:
        skills = []
    matching = _public(await store.matching_requests(conn, community_id=m.community_id, member_id=member_id,
                                                     area_id=m.area_id, skills=skills, limit=LIST_N), "category")
    if not (today or matching):
        return None
    return {"today": today, "matching": matching, "balance": m.balance, "tz": tz}


async def staff_digest(conn: Connection, community_id: int, now: datetime) -> dict[str, Any] | None:
    """What needs staff: pending reviews, open problem cases, escalations, unreachable volunteers."""
    pending = await store.pending_reviews(conn, community_id)
    cases = await store.open_cases(conn, community_id)
    waiting = await store.done_unconfirmed_since(conn, community_id, now - timedelta(hours=48))
    unclaimed = await store.unclaimed_since(conn, community_id, now - timedelta(hours=2))
    unreachable = [{"id": u.id, "name": u.name} for u in await store.unreachable_volunteers(conn, community_id)]
    if not (pending or cases or waiting or unclaimed or unreachable):
        return None
    return {"pending_reviews": pending, "open_cases": cases, "waiting_confirmation": waiting,
            "unclaimed": unclaimed, "unreachable": unreachable}


def _due(local: datetime, hhmm: str) -> bool:
    hh, mm = (int(x) for x in hhmm.split(":"))
    return local.time() >= time(hh, mm)


def next_due(local: datetime, hhmm: str) -> datetime:
    """The next digest moment at local ``hhmm`` after a decision at ``local``: today's, if it is still
    ahead, else tomorrow's (wall-clock, so it follows daylight saving)."""
    hh, mm = (int(x) for x in hhmm.split(":"))
    day = local.date() + timedelta(days=1 if _due(local, hhmm) else 0)
    return datetime.combine(day, time(hh, mm), tzinfo=local.tzinfo)


CHUNK = 500  # members whose schedule is worked out again (not due) per transaction


def _member_time(m: MemberSchedule) -> str:
    return str(m.digest_time) if m.digest_hour is None else f"{int(m.digest_hour):02d}:00"


async def _group_pass(conn: Connection, cid: int, now: datetime) -> int:
    """Decide community ``cid``'s group digest if due now, and schedule the next one."""
    c = await store.group_schedule(conn, cid)
    if c is None:
        await store.reschedule_communities(conn, [cid], {})
        return 0
    tz = c.timezone
    local = local_now(now, tz)
    day = local.date().isoformat()
    queued = 0
    if _due(local, c.digest_time) and await mark_once(conn, f"digest:group:{cid}:{day}", now):
        data = await group_digest(conn, cid, now, tz)
        if data is not None and c.group_chat_id is not None:
            queued += await enqueue(conn, chat_id=int(c.group_chat_id), kind="digest_group", now=now,
                                    payload=data, dedupe_key=f"digest:group:{cid}:{day}")
    await store.reschedule_communities(conn, [cid], {cid: next_due(local, c.digest_time)})
    return queued


async def _member_pass(conn: Connection, m: MemberSchedule, now: datetime) -> int:
    """Decide one member's staff and volunteer digests for today if due now, and schedule the next."""
    mid, cid, tz = m.id, m.community_id, m.timezone
    local = local_now(now, tz)
    day = local.date().isoformat()
    queued = 0
    hhmm = _member_time(m)
    if _due(local, hhmm):  # (their time may have moved since they were read as due)
        if m.is_staff and await mark_once(conn, f"digest:staff:{mid}:{day}", now):
            sdata = await staff_digest(conn, cid, now)
            chat = await private_chat(conn, mid)
            if sdata is not None and chat is not None:
                queued += await enqueue(conn, chat_id=chat, member_id=mid, kind="digest_staff", now=now,
                                        payload=sdata, dedupe_key=f"digest:staff:{mid}:{day}")
        if m.is_volunteer and m.digest_enabled and await mark_once(conn, f"digest:vol:{mid}:{day}", now):
            vdata = await volunteer_digest(conn, mid, now, tz)
            chat = await private_chat(conn, mid)
            if vdata is not None and chat is not None:
                queued += await enqueue(conn, chat_id=chat, member_id=mid, kind="digest_volunteer", now=now,
                                        payload=vdata, dedupe_key=f"digest:vol:{mid}:{day}")
    await store.reschedule_members(conn, [mid], {mid: next_due(local, hhmm)})
    return queued


async def _schedule_chunk(db: Database, chunk: list[int], now: datetime) -> list[int]:
    """Give the members of ``chunk`` who are not due yet (just changed, or first seen) their next
    time, in one transaction; returns those who are due now."""
    due: list[int] = []
    async with db.transaction() as conn:
        when: dict[int, datetime | None] = {}
        for m in await store.member_schedules(conn, chunk):
            local = local_now(now, m.timezone)
            if _due(local, _member_time(m)):
                due.append(m.id)
            else:
                when[m.id] = next_due(local, _member_time(m))
        waiting = set(due)
        await store.reschedule_members(conn, [i for i in chunk if i not in waiting], when)
    return due


async def sweep_digests(db: Database, now: datetime) -> int:
    """Queue every digest due now and not yet decided today (local date). Returns how many were queued.

    Reads only the communities and members whose ``digest_next_at`` has come (index, migration 0111),
    so a sweep between digest times costs two empty index lookups whatever the number of members.
    """
    queued = 0
    for cid in await store.due_communities(db, now):
        async with db.transaction() as conn:
            queued += await _group_pass(conn, cid, now)
    ids = await store.due_members(db, now)
    for start in range(0, len(ids), CHUNK):
        for mid in await _schedule_chunk(db, ids[start:start + CHUNK], now):
            # One short transaction each: a digest being built never holds up a claim for long.
            async with db.transaction() as conn:
                found = await store.member_schedules(conn, [mid])
                if found:
                    queued += await _member_pass(conn, found[0], now)
                else:  # changed in between: no digest any more
                    await store.reschedule_members(conn, [mid], {})
    return queued
