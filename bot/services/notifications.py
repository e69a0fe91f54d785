"""Reminder, escalation and expiry sweeps: pure services over the database, given ``now``.

Every sweep looks for "due before now and not done yet". What was done is remembered in
``sent_notifications`` (one unique key per reminder) or in the task's own state (expiry,
auto-confirm), so a restart or a long downtime neither loses nor doubles anything.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from bot.services import ledger
from storage.db import Database
from storage.outbox import audit, enqueue
from storage.timeutil import from_db, to_db

DEFAULTS: dict[str, Any] = {
    "remind_before_minutes": 60,        # remind volunteers this long before a task starts
    "event_eve_reminder": "19:00",      # and the evening before an event (local time); "" turns it off
    "unclaimed_after_minutes": 120,     # re-announce an unclaimed task once and flag it to staff
    "overdue_after_minutes": 60,        # ask the volunteer what happened if no Done by then
    "confirm_remind_hours": 24,         # remind the requester to confirm
    "confirm_escalate_hours": 48,       # then tell staff
    "auto_confirm_days": 0,             # 0: never auto-confirm
    "expire_asap_hours": 24,            # an unclaimed "as soon as possible" request expires after this
}


def timings(settings_json: str | None) -> dict[str, Any]:
    """The community's timing settings with defaults for anything missing or malformed."""
    out = dict(DEFAULTS)
    try:
        raw = json.loads(settings_json or "{}")
    except ValueError:
        raw = {}
    stored = raw.get("notifications", {}) if isinstance(raw, dict) else {}
    if isinstance(stored, dict):
        for key, default in DEFAULTS.items():
            value = stored.get(key)
            if value is not None and isinstance(value, type(default)):
                out[key] = value
    return out


async def mark_once(conn: aiosqlite.Connection, key: str, now: datetime) -> bool:
    """Remember ``key``; False if it was remembered before (the notification was already decided)."""
    cur = await conn.execute(
        "INSERT INTO sent_notifications (key, created_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        (key, to_db(now)),
    )
    return (cur.rowcount or 0) > 0


async def _private_chat(conn: aiosqlite.Connection, member_id: int | None) -> int | None:
    if member_id is None:
        return None
    cur = await conn.execute(
        "SELECT tg_user_id FROM members WHERE id = ? AND deleted_at IS NULL AND started_bot = 1 AND reachable = 1",
        (member_id,),
    )
    row = await cur.fetchone()
    return None if row is None or row["tg_user_id"] is None else int(row["tg_user_id"])


async def _tell(conn: aiosqlite.Connection, member_id: int | None, kind: str, payload: dict[str, Any],
                key: str, now: datetime) -> bool:
    chat = await _private_chat(conn, member_id)
    if chat is None:
        return False
    return await enqueue(conn, chat_id=chat, member_id=member_id, kind=kind, payload=payload, now=now,
                         dedupe_key=key)


async def staff_ids(conn: aiosqlite.Connection, community_id: int) -> list[int]:
    cur = await conn.execute(
        "SELECT id FROM members WHERE community_id = ? AND is_staff = 1 AND deleted_at IS NULL ORDER BY id",
        (community_id,),
    )
    return [int(r["id"]) for r in await cur.fetchall()]


async def _tell_staff(conn: aiosqlite.Connection, community_id: int, kind: str, payload: dict[str, Any],
                      key: str, now: datetime) -> int:
    sent = 0
    for sid in await staff_ids(conn, community_id):
        sent += await _tell(conn, sid, kind, payload, f"{key}:staff:{sid}", now)
    return sent


def _local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


async def _rows(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[aiosqlite.Row]:
    cur = await conn.execute(sql, params)
    return list(await cur.fetchall())


_TASKS = ("SELECT t.*, c.timezone AS tz, c.settings AS csettings, c.group_chat_id AS cgroup"
          " FROM tasks t JOIN communities c ON c.id = t.community_id WHERE c.active = 1 AND ")


async def sweep_reminders(conn: aiosqlite.Connection, now: datetime) -> int:
    """Remind each volunteer with an active claim before the task starts (and the evening before events)."""
    n = 0
    rows = await _rows(conn, _TASKS + "t.state IN ('open', 'full', 'in_progress') AND t.starts_at IS NOT NULL"
                       " AND t.starts_at > ?", (to_db(now),))
    for task in rows:
        cfg = timings(task["csettings"])
        starts = from_db(task["starts_at"])
        window = starts - timedelta(minutes=int(cfg["remind_before_minutes"]))
        # Someone who claimed inside the window has just seen the time: no reminder for them.
        claims = await _rows(conn, "SELECT member_id FROM claims WHERE task_id = ? AND state = 'active'"
                             " AND claimed_at < ?", (task["id"], to_db(window)))
        due: list[str] = []
        if now >= window:
            due.append("soon")
        elif task["kind"] == "event" and cfg["event_eve_reminder"]:
            hh, mm = (int(x) for x in str(cfg["event_eve_reminder"]).split(":"))
            local_start = _local(starts, task["tz"])
            eve = (local_start - timedelta(days=1)).replace(hour=hh, minute=mm, second=0, microsecond=0)
            if _local(now, task["tz"]) >= eve and now < starts - timedelta(hours=3):
                due.append("eve")
        for which in due:
            for claim in claims:
                mid = int(claim["member_id"])
                key = f"remind:{which}:{task['id']}:{mid}"
                if await mark_once(conn, key, now):
                    n += await _tell(conn, mid, "task_reminder",
                                     {"task_id": int(task["id"]), "which": which}, key, now)
    return n


async def sweep_unclaimed(conn: aiosqlite.Connection, now: datetime) -> int:
    """Once per task: re-announce an open task nobody has claimed, and flag it to staff."""
    n = 0
    rows = await _rows(conn, _TASKS + "t.state = 'open' AND t.published_at IS NOT NULL AND NOT EXISTS"
                       " (SELECT 1 FROM claims k WHERE k.task_id = t.id AND k.state IN ('active', 'done', 'completed'))"
                       " AND (t.ends_at IS NULL OR t.ends_at > ?)", (to_db(now),))
    for task in rows:
        cfg = timings(task["csettings"])
        if now < from_db(task["published_at"]) + timedelta(minutes=int(cfg["unclaimed_after_minutes"])):
            continue
        key = f"unclaimed:{task['id']}"
        if not await mark_once(conn, key, now):
            continue
        if task["cgroup"] is not None:
            await enqueue(conn, chat_id=int(task["cgroup"]), kind="task_reannounce", now=now,
                          payload={"task_id": int(task["id"])}, dedupe_key=key)
        n += 1 + await _tell_staff(conn, int(task["community_id"]), "task_unclaimed_staff",
                                   {"task_id": int(task["id"])}, key, now)
    return n


async def sweep_overdue(conn: aiosqlite.Connection, now: datetime) -> int:
    """A task past its time with an active claim and no Done: ask the volunteer what happened."""
    n = 0
    rows = await _rows(conn, _TASKS + "t.kind = 'request' AND t.state IN ('in_progress', 'full') AND COALESCE(t.ends_at, t.starts_at) IS NOT NULL"
                       " AND COALESCE(t.ends_at, t.starts_at) <= ?", (to_db(now),))
    for task in rows:
        cfg = timings(task["csettings"])
        due_at = from_db(task["ends_at"] or task["starts_at"]) + timedelta(minutes=int(cfg["overdue_after_minutes"]))
        if now < due_at:
            continue
        claims = await _rows(conn, "SELECT member_id FROM claims WHERE task_id = ? AND state = 'active'", (task["id"],))
        for claim in claims:
            mid = int(claim["member_id"])
            key = f"overdue:{task['id']}:{mid}"
            if await mark_once(conn, key, now):
                n += await _tell(conn, mid, "task_overdue_ask", {"task_id": int(task["id"])}, key, now)
    return n


def confirmer(task: aiosqlite.Row) -> int:
    """Who confirms: the requester, or the staff member who published a proxy request or event."""
    if task["requester_id"] is not None and not task["is_proxy"]:
        return int(task["requester_id"])
    return int(task["created_by"])


async def sweep_confirmations(conn: aiosqlite.Connection, now: datetime) -> int:
    """Awaiting confirmation: remind, then escalate to staff, then (if turned on) auto-confirm."""
    n = 0
    rows = await _rows(conn, _TASKS + "t.state = 'awaiting_confirmation' AND t.done_at IS NOT NULL")
    for task in rows:
        cfg = timings(task["csettings"])
        done_at = from_db(task["done_at"])
        tid = int(task["id"])
        days = int(cfg["auto_confirm_days"])
        if days > 0 and now >= done_at + timedelta(days=days):
            n += await auto_confirm(conn, task, now)
            continue
        if now >= done_at + timedelta(hours=int(cfg["confirm_remind_hours"])):
            key = f"confirm_remind:{tid}"
            if await mark_once(conn, key, now):
                n += await _tell(conn, confirmer(task), "confirm_reminder", {"task_id": tid}, key, now)
        if now >= done_at + timedelta(hours=int(cfg["confirm_escalate_hours"])):
            key = f"confirm_escalate:{tid}"
            if await mark_once(conn, key, now):
                await audit(conn, now=now, action="confirmation_escalated", community_id=int(task["community_id"]),
                            object_type="task", object_id=tid)
                n += await _tell_staff(conn, int(task["community_id"]), "confirm_escalation", {"task_id": tid}, key, now)
    return n


async def auto_confirm(conn: aiosqlite.Connection, task: aiosqlite.Row, now: datetime) -> int:
    """Complete the task and credit each volunteer who marked it done, with reason ``task_auto_confirmed``.

    The ledger key is the one the completion service uses, so a later manual confirmation can
    never credit twice."""
    tid = int(task["id"])
    cur = await conn.execute(
        "UPDATE tasks SET state = 'completed', completed_at = ?, updated_at = ?, card_version = card_version + 1"
        " WHERE id = ? AND state = 'awaiting_confirmation'", (to_db(now), to_db(now), tid))
    if not cur.rowcount:
        return 0
    done = await _rows(conn, "SELECT member_id FROM claims WHERE task_id = ? AND state = 'done' ORDER BY id", (tid,))
    credited: dict[str, int] = {}
    for claim in done:
        mid = int(claim["member_id"])
        await conn.execute("UPDATE claims SET state = 'completed', updated_at = ? WHERE task_id = ? AND member_id = ?",
                           (to_db(now), tid, mid))
        amount = int(task["points"])
        if amount > 0 and await ledger.credit(conn, member_id=mid, amount=amount, reason="task_auto_confirmed",
                                              key=f"task:{tid}:volunteer:{mid}", now=now, task_id=tid):
            credited[str(mid)] = amount
        await _tell(conn, mid, "auto_confirmed_volunteer", {"task_id": tid, "points": credited.get(str(mid), 0)},
                    f"auto_confirmed:{tid}:{mid}", now)
    await _tell(conn, confirmer(task), "auto_confirmed_requester", {"task_id": tid}, f"auto_confirmed:{tid}:req", now)
    await audit(conn, now=now, action="task_auto_confirmed", community_id=int(task["community_id"]),
                object_type="task", object_id=tid, details={"credited": credited})
    return 1


def request_deadline(task: aiosqlite.Row) -> datetime | None:
    """When an unclaimed request with no end time stops being useful: "as soon as possible" after
    ``expire_asap_hours``; "today" / "tomorrow" at the end of that local day (never sooner than three
    hours after it was asked); "at a time" three hours after that time."""
    if task["kind"] != "request" or task["ends_at"] is not None:
        return None
    tz = ZoneInfo(str(task["tz"] or "Asia/Shanghai"))
    asked = from_db(str(task["published_at"] or task["created_at"]))
    kind = str(task["when_kind"])
    if kind == "at" and task["starts_at"]:
        return from_db(str(task["starts_at"])) + timedelta(hours=3)
    if kind in ("today", "tomorrow"):
        local = asked.astimezone(tz)
        day_end = (local + timedelta(days=1 if kind == "today" else 2)).replace(hour=0, minute=0, second=0,
                                                                               microsecond=0)
        return max(day_end.astimezone(UTC), asked + timedelta(hours=3))
    return asked + timedelta(hours=int(timings(task["csettings"])["expire_asap_hours"]))


async def sweep_expired(conn: aiosqlite.Connection, now: datetime) -> int:
    """Tasks past their end (or, for requests without one, past ``request_deadline``) with nobody
    assigned expire; the requester is told kindly."""
    n = 0
    rows = await _rows(conn, _TASKS + "t.state IN ('open', 'pending_review')"
                       " AND ((t.ends_at IS NOT NULL AND t.ends_at <= ?) OR (t.ends_at IS NULL AND t.kind = 'request'))"
                       " AND NOT EXISTS (SELECT 1 FROM claims k WHERE k.task_id = t.id"
                       " AND k.state IN ('active', 'done', 'completed'))", (to_db(now),))
    for task in rows:
        deadline = request_deadline(task)
        if deadline is not None and deadline > now:
            continue
        tid = int(task["id"])
        cur = await conn.execute(
            "UPDATE tasks SET state = 'expired', updated_at = ?, card_version = card_version + 1"
            " WHERE id = ? AND state IN ('open', 'pending_review')", (to_db(now), tid))
        if not cur.rowcount:
            continue
        await audit(conn, now=now, action="task_expired", community_id=int(task["community_id"]),
                    object_type="task", object_id=tid)
        await _tell(conn, confirmer(task), "task_expired", {"task_id": tid}, f"expired:{tid}", now)
        n += 1
    return n


async def run_all(db: Database, now: datetime) -> dict[str, int]:
    """Every sweep, each in its own transaction (one failing does not stop the others)."""
    out: dict[str, int] = {}
    for name, sweep in (("expired", sweep_expired), ("reminders", sweep_reminders), ("unclaimed", sweep_unclaimed),
                        ("overdue", sweep_overdue), ("confirmations", sweep_confirmations)):
        async with db.transaction() as conn:
            out[name] = await sweep(conn, now)
    return out


async def volunteer_unreachable(conn: aiosqlite.Connection, member_id: int, kind: str, payload: dict[str, Any],
                                now: datetime) -> int:
    """A member the bot cannot write to: tell staff about each task they claimed and have not finished."""
    n = 0
    rows = await _rows(conn, "SELECT t.id, t.community_id FROM claims k JOIN tasks t ON t.id = k.task_id"
                       " WHERE k.member_id = ? AND k.state = 'active' AND t.state IN ('open', 'full', 'in_progress')",
                       (member_id,))
    for task in rows:
        key = f"unreachable:{member_id}:{task['id']}"
        if await mark_once(conn, key, now):
            n += await _tell_staff(conn, int(task["community_id"]), "volunteer_unreachable_staff",
                                   {"task_id": int(task["id"]), "member_id": member_id}, key, now)
    return n


DIGEST_HOURS = (6, 7, 8, 9, 12, 18, 20)
QUIET_PRESETS = {"22-07": ("22:00", "07:00"), "21-06": ("21:00", "06:00"), "23-08": ("23:00", "08:00"),
                 "off": ("00:00", "00:00")}


async def update_member_settings(db: Database, member_id: int, now: datetime, *, digest_enabled: bool | None = None,
                                 digest_hour: int | str | None = "keep", quiet: str | None = None) -> bool:
    """Change a member's digest and quiet-hour settings. Returns False (nothing changed) on bad input."""
    sets: list[str] = []
    params: list[Any] = []
    if digest_enabled is not None:
        sets.append("digest_enabled = ?")
        params.append(int(digest_enabled))
    if digest_hour != "keep":
        if digest_hour is not None and digest_hour not in DIGEST_HOURS:
            return False
        sets.append("digest_hour = ?")
        params.append(digest_hour)
    if quiet is not None:
        if quiet not in QUIET_PRESETS:
            return False
        sets += ["quiet_start = ?", "quiet_end = ?"]
        params += list(QUIET_PRESETS[quiet])
    if not sets:
        return False
    async with db.transaction() as conn:
        await conn.execute(f"UPDATE members SET {', '.join(sets)}, updated_at = ? WHERE id = ?",
                           (*params, to_db(now), member_id))
        await audit(conn, now=now, action="member_settings_changed", actor_id=member_id, object_type="member",
                    object_id=member_id)
    return True
