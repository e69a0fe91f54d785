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

from bot.services import ledger
from bot.services.completion import confirmer_id
from storage import notifications as store
from storage.db import Connection, Database
from storage.notifications import DueTask
from storage.notifications import mark_once as mark_once
from storage.notifications import staff_ids as staff_ids
from storage.outbox import audit, enqueue
from storage.timeutil import DEFAULT_TIMEZONE

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


async def _tell(conn: Connection, member_id: int | None, kind: str, payload: dict[str, Any],
                key: str, now: datetime) -> bool:
    chat = None if member_id is None else await store.private_chat(conn, member_id)
    if chat is None:
        return False
    return await enqueue(conn, chat_id=chat, member_id=member_id, kind=kind, payload=payload, now=now,
                         dedupe_key=key)


async def _tell_staff(conn: Connection, community_id: int, kind: str, payload: dict[str, Any],
                      key: str, now: datetime) -> int:
    sent = 0
    for sid in await staff_ids(conn, community_id):
        sent += await _tell(conn, sid, kind, payload, f"{key}:staff:{sid}", now)
    return sent


def _local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


async def sweep_reminders(conn: Connection, now: datetime) -> int:
    """Remind each volunteer with an active claim before the task starts (and the evening before events)."""
    n = 0
    for task in await store.starting_later(conn, now):
        cfg = timings(task.settings)
        starts = task.starts_at
        assert starts is not None
        window = starts - timedelta(minutes=int(cfg["remind_before_minutes"]))
        # Someone who claimed inside the window has just seen the time: no reminder for them.
        claims = await store.active_claimers(conn, task.id, claimed_before=window)
        due: list[str] = []
        if now >= window:
            due.append("soon")
        elif task.kind == "event" and cfg["event_eve_reminder"]:
            hh, mm = (int(x) for x in str(cfg["event_eve_reminder"]).split(":"))
            local_start = _local(starts, str(task.tz))
            eve = (local_start - timedelta(days=1)).replace(hour=hh, minute=mm, second=0, microsecond=0)
            if _local(now, str(task.tz)) >= eve and now < starts - timedelta(hours=3):
                due.append("eve")
        for which in due:
            for mid in claims:
                key = f"remind:{which}:{task.id}:{mid}"
                if await mark_once(conn, key, now):
                    n += await _tell(conn, mid, "task_reminder", {"task_id": task.id, "which": which}, key, now)
    return n


async def sweep_unclaimed(conn: Connection, now: datetime) -> int:
    """Once per task: re-announce an open task nobody has claimed, and flag it to staff."""
    n = 0
    for task in await store.unclaimed(conn, now):
        cfg = timings(task.settings)
        assert task.published_at is not None
        if now < task.published_at + timedelta(minutes=int(cfg["unclaimed_after_minutes"])):
            continue
        key = f"unclaimed:{task.id}"
        if not await mark_once(conn, key, now):
            continue
        if task.group_chat_id is not None:
            await enqueue(conn, chat_id=int(task.group_chat_id), kind="task_reannounce", now=now,
                          payload={"task_id": task.id}, dedupe_key=key)
        n += 1 + await _tell_staff(conn, task.community_id, "task_unclaimed_staff", {"task_id": task.id}, key, now)
    return n


async def sweep_overdue(conn: Connection, now: datetime) -> int:
    """A task past its time with an active claim and no Done: ask the volunteer what happened."""
    n = 0
    for task in await store.past_their_time(conn, now):
        cfg = timings(task.settings)
        end = task.ends_at or task.starts_at
        assert end is not None
        if now < end + timedelta(minutes=int(cfg["overdue_after_minutes"])):
            continue
        for mid in await store.active_claimers(conn, task.id):
            key = f"overdue:{task.id}:{mid}"
            if await mark_once(conn, key, now):
                n += await _tell(conn, mid, "task_overdue_ask", {"task_id": task.id}, key, now)
    return n


async def sweep_confirmations(conn: Connection, now: datetime) -> int:
    """Awaiting confirmation: remind, then escalate to staff, then (if turned on) auto-confirm."""
    n = 0
    for task in await store.awaiting_confirmation(conn):
        cfg = timings(task.settings)
        done_at = task.done_at
        assert done_at is not None
        tid = task.id
        days = int(cfg["auto_confirm_days"])
        if days > 0 and now >= done_at + timedelta(days=days):
            n += await auto_confirm(conn, task, now)
            continue
        if now >= done_at + timedelta(hours=int(cfg["confirm_remind_hours"])):
            key = f"confirm_remind:{tid}"
            if await mark_once(conn, key, now):
                n += await _tell(conn, confirmer_id(task), "confirm_reminder", {"task_id": tid}, key, now)
        if now >= done_at + timedelta(hours=int(cfg["confirm_escalate_hours"])):
            key = f"confirm_escalate:{tid}"
            if await mark_once(conn, key, now):
                await audit(conn, now=now, action="confirmation_escalated", community_id=task.community_id,
                            object_type="task", object_id=tid)
                n += await _tell_staff(conn, task.community_id, "confirm_escalation", {"task_id": tid}, key, now)
    return n


async def auto_confirm(conn: Connection, task: DueTask, now: datetime) -> int:
    """Complete the task and credit each volunteer who marked it done, with reason ``task_auto_confirmed``.

    The ledger key is the one the completion service uses, so a later manual confirmation can
    never credit twice."""
    tid = task.id
    if not await store.complete_awaiting(conn, tid, now):
        return 0
    credited: dict[str, int] = {}
    for mid in await store.done_claimers(conn, tid):
        await store.complete_claim(conn, tid, mid, now)
        amount = task.points
        if amount > 0 and await ledger.credit(conn, member_id=mid, amount=amount, reason="task_auto_confirmed",
                                              key=f"task:{tid}:volunteer:{mid}", now=now, task_id=tid):
            credited[str(mid)] = amount
        await _tell(conn, mid, "auto_confirmed_volunteer", {"task_id": tid, "points": credited.get(str(mid), 0)},
                    f"auto_confirmed:{tid}:{mid}", now)
    await _tell(conn, confirmer_id(task), "auto_confirmed_requester", {"task_id": tid}, f"auto_confirmed:{tid}:req", now)
    await audit(conn, now=now, action="task_auto_confirmed", community_id=task.community_id,
                object_type="task", object_id=tid, details={"credited": credited})
    return 1


def request_deadline(task: DueTask) -> datetime | None:
    """When an unclaimed request with no end time stops being useful: "as soon as possible" after
    ``expire_asap_hours``; "today" / "tomorrow" at the end of that local day (never sooner than three
    hours after it was asked); "at a time" three hours after that time."""
    if task.kind != "request" or task.ends_at is not None:
        return None
    tz = ZoneInfo(str(task.tz or DEFAULT_TIMEZONE))
    asked = task.published_at or task.created_at
    kind = task.when_kind
    if kind == "at" and task.starts_at:
        return task.starts_at + timedelta(hours=3)
    if kind in ("today", "tomorrow"):
        local = asked.astimezone(tz)
        day_end = (local + timedelta(days=1 if kind == "today" else 2)).replace(hour=0, minute=0, second=0,
                                                                               microsecond=0)
        return max(day_end.astimezone(UTC), asked + timedelta(hours=3))
    return asked + timedelta(hours=int(timings(task.settings)["expire_asap_hours"]))


async def sweep_expired(conn: Connection, now: datetime) -> int:
    """Tasks past their end (or, for requests without one, past ``request_deadline``) with nobody
    assigned expire; the requester is told kindly."""
    n = 0
    for task in await store.expiry_candidates(conn, now):
        deadline = request_deadline(task)
        if deadline is not None and deadline > now:
            continue
        tid = task.id
        if not await store.expire(conn, tid, now):
            continue
        await audit(conn, now=now, action="task_expired", community_id=task.community_id,
                    object_type="task", object_id=tid)
        await _tell(conn, confirmer_id(task), "task_expired", {"task_id": tid}, f"expired:{tid}", now)
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


async def volunteer_unreachable(conn: Connection, member_id: int, kind: str, payload: dict[str, Any],
                                now: datetime) -> int:
    """A member the bot cannot write to: tell staff about each task they claimed and have not finished."""
    n = 0
    for held in await store.unfinished_of(conn, member_id):
        key = f"unreachable:{member_id}:{held.task_id}"
        if await mark_once(conn, key, now):
            n += await _tell_staff(conn, held.community_id, "volunteer_unreachable_staff",
                                   {"task_id": held.task_id, "member_id": member_id}, key, now)
    return n


DIGEST_HOURS = (6, 7, 8, 9, 12, 18, 20)
QUIET_PRESETS = {"22-07": ("22:00", "07:00"), "21-06": ("21:00", "06:00"), "23-08": ("23:00", "08:00"),
                 "off": ("00:00", "00:00")}


async def update_member_settings(db: Database, member_id: int, now: datetime, *, digest_enabled: bool | None = None,
                                 digest_hour: int | str | None = "keep", quiet: str | None = None) -> bool:
    """Change a member's digest and quiet-hour settings. Returns False (nothing changed) on bad input."""
    changes: dict[str, Any] = {}
    if digest_enabled is not None:
        changes["digest_enabled"] = int(digest_enabled)
    if digest_hour != "keep":
        if digest_hour is not None and digest_hour not in DIGEST_HOURS:
            return False
        changes["digest_hour"] = digest_hour
    if quiet is not None:
        if quiet not in QUIET_PRESETS:
            return False
        changes["quiet_start"], changes["quiet_end"] = QUIET_PRESETS[quiet]
    if not changes:
        return False
    async with db.transaction() as conn:
        await store.set_member_settings(conn, member_id, changes, now)
        await audit(conn, now=now, action="member_settings_changed", actor_id=member_id, object_type="member",
                    object_id=member_id)
    return True
