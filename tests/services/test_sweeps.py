"""Reminder, escalation and expiry sweeps with an injected clock: each fires once, at its time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from bot.services import notifications
from storage.db import Database
from storage.timeutil import to_db
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task


async def _outbox(db: Database, kind: str | None = None) -> list[dict]:
    rows = await db.fetchall("SELECT * FROM outbox ORDER BY id")
    return [dict(r) for r in rows if kind is None or r["kind"] == kind]


async def _world(db: Database, now: datetime, **community: object) -> dict[str, int]:
    cid = await make_community(db, now, **community)
    return {
        "c": cid,
        "staff": await make_member(db, now, cid, staff=True),
        "res": await make_member(db, now, cid, resident=True),
        "vol": await make_member(db, now, cid, volunteer=True),
    }


async def test_reminder_one_hour_before_fires_once(db: Database, now: datetime) -> None:
    w = await _world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], starts_at=to_db(now + timedelta(hours=3)))
    await make_claim(db, now, tid, w["vol"])
    await notifications.run_all(db, now + timedelta(hours=1, minutes=59))
    assert await _outbox(db, "task_reminder") == []
    await notifications.run_all(db, now + timedelta(hours=2))
    await notifications.run_all(db, now + timedelta(hours=2, minutes=30))  # a later pass, or after a restart
    rows = await _outbox(db, "task_reminder")
    assert len(rows) == 1 and rows[0]["member_id"] == w["vol"]
    assert json.loads(rows[0]["payload"]) == {"task_id": tid, "which": "soon"}


async def test_event_evening_before_in_community_time(db: Database, now: datetime) -> None:
    # now = 2026-05-04 09:00 UTC = 17:00 Shanghai; the event is on 05-05 at 10:00 Shanghai (02:00 UTC).
    w = await _world(db, now)
    starts = datetime.fromisoformat("2026-05-05T02:00:00+00:00")
    tid = await make_task(db, now, w["c"], w["staff"], kind="event", slots=5, starts_at=to_db(starts))
    await make_claim(db, now, tid, w["vol"])
    await notifications.run_all(db, now + timedelta(hours=1, minutes=59))  # 18:59 local
    assert await _outbox(db, "task_reminder") == []
    await notifications.run_all(db, now + timedelta(hours=2))  # 19:00 local, the evening before
    rows = await _outbox(db, "task_reminder")
    assert [json.loads(r["payload"])["which"] for r in rows] == ["eve"]
    await notifications.run_all(db, starts - timedelta(minutes=30))
    rows = await _outbox(db, "task_reminder")
    assert [json.loads(r["payload"])["which"] for r in rows] == ["eve", "soon"]


async def test_unclaimed_reannounced_once_and_flagged_to_staff(db: Database, now: datetime) -> None:
    w = await _world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"])
    await notifications.run_all(db, now + timedelta(minutes=119))
    assert await _outbox(db) == []
    for minutes in (120, 300, 3000):
        await notifications.run_all(db, now + timedelta(minutes=minutes))
    group = await _outbox(db, "task_reannounce")
    staff = await _outbox(db, "task_unclaimed_staff")
    assert len(group) == 1 and group[0]["chat_id"] < 0 and json.loads(group[0]["payload"]) == {"task_id": tid}
    assert [r["member_id"] for r in staff] == [w["staff"]]


async def test_timings_are_community_settings(db: Database, now: datetime) -> None:
    w = await _world(db, now, settings={"notifications": {"unclaimed_after_minutes": 30}})
    await make_task(db, now, w["c"], w["res"], requester_id=w["res"])
    await notifications.run_all(db, now + timedelta(minutes=30))
    assert len(await _outbox(db, "task_reannounce")) == 1


async def test_overdue_asks_the_volunteer(db: Database, now: datetime) -> None:
    w = await _world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], starts_at=to_db(now + timedelta(hours=1)))
    await make_claim(db, now, tid, w["vol"])
    await notifications.run_all(db, now + timedelta(hours=1, minutes=59))
    assert await _outbox(db, "task_overdue_ask") == []
    await notifications.run_all(db, now + timedelta(hours=2))
    await notifications.run_all(db, now + timedelta(hours=5))
    rows = await _outbox(db, "task_overdue_ask")
    assert [r["member_id"] for r in rows] == [w["vol"]]


async def _awaiting(db: Database, now: datetime, w: dict[str, int], **task: object) -> int:
    tid = await make_task(db, now, w["c"], task.pop("created_by", w["res"]), **task)  # type: ignore[arg-type]
    await make_claim(db, now, tid, w["vol"], state="done", update_task=False)
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET state = 'awaiting_confirmation', done_at = ? WHERE id = ?", (to_db(now), tid))
    return tid


async def test_confirmation_reminder_then_escalation(db: Database, now: datetime) -> None:
    w = await _world(db, now)
    tid = await _awaiting(db, now, w, requester_id=w["res"])
    await notifications.run_all(db, now + timedelta(hours=23))
    assert await _outbox(db) == []
    await notifications.run_all(db, now + timedelta(hours=24))
    await notifications.run_all(db, now + timedelta(hours=30))
    assert [r["member_id"] for r in await _outbox(db, "confirm_reminder")] == [w["res"]]
    assert await _outbox(db, "confirm_escalation") == []
    await notifications.run_all(db, now + timedelta(hours=48))
    await notifications.run_all(db, now + timedelta(hours=72))
    assert [r["member_id"] for r in await _outbox(db, "confirm_escalation")] == [w["staff"]]
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "awaiting_confirmation"  # off by default
    assert await db.fetchval("SELECT COUNT(*) FROM ledger") == 0


async def test_proxy_request_reminds_the_staff_who_published(db: Database, now: datetime) -> None:
    w = await _world(db, now)
    await _awaiting(db, now, w, created_by=w["staff"], is_proxy=1, proxy_name="Grandma Li")
    await notifications.run_all(db, now + timedelta(hours=24))
    assert [r["member_id"] for r in await _outbox(db, "confirm_reminder")] == [w["staff"]]


async def test_auto_confirm_credits_once_with_the_completion_key(db: Database, now: datetime) -> None:
    w = await _world(db, now, settings={"notifications": {"auto_confirm_days": 3}})
    tid = await _awaiting(db, now, w, requester_id=w["res"], points=4)
    await notifications.run_all(db, now + timedelta(days=2, hours=23))
    assert await db.fetchval("SELECT COUNT(*) FROM ledger") == 0
    await notifications.run_all(db, now + timedelta(days=3))
    await notifications.run_all(db, now + timedelta(days=4))
    rows = await db.fetchall("SELECT * FROM ledger")
    assert [(r["member_id"], r["delta"], r["reason"], r["idempotency_key"]) for r in rows] == [
        (w["vol"], 4, "task_auto_confirmed", f"task:{tid}:volunteer:{w['vol']}")]
    assert await db.fetchval("SELECT balance FROM members WHERE id = ?", (w["vol"],)) == 4
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "completed"
    assert len(await _outbox(db, "auto_confirmed_volunteer")) == 1
    assert len(await _outbox(db, "auto_confirmed_requester")) == 1


async def test_expiry_tells_the_requester_once(db: Database, now: datetime) -> None:
    w = await _world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], ends_at=to_db(now + timedelta(hours=5)))
    claimed = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], ends_at=to_db(now + timedelta(hours=5)))
    await make_claim(db, now, claimed, w["vol"])
    await notifications.run_all(db, now + timedelta(hours=4, minutes=59))
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "open"
    await notifications.run_all(db, now + timedelta(hours=5))
    await notifications.run_all(db, now + timedelta(hours=9))
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "expired"
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (claimed,)) == "in_progress"
    rows = await _outbox(db, "task_expired")
    assert [(r["member_id"], json.loads(r["payload"])["task_id"]) for r in rows] == [(w["res"], tid)]
    assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action = 'task_expired'") == 1


async def test_requests_without_an_end_expire_when_they_stop_being_useful(db: Database, now: datetime) -> None:
    """now is Monday 17:00 in Shanghai: "today" ends at local midnight (7 h), "tomorrow" 24 h later,
    "as soon as possible" after 24 h, "at 19:00" three hours after that; a claimed one never expires."""
    w = await _world(db, now)
    mk = {kind: await make_task(db, now, w["c"], w["res"], requester_id=w["res"], when_kind=kind,
                                **({"starts_at": to_db(now + timedelta(hours=2))} if kind == "at" else {}))
          for kind in ("asap", "today", "tomorrow", "at")}
    claimed = await make_task(db, now, w["c"], w["res"], requester_id=w["res"])
    await make_claim(db, now, claimed, w["vol"])

    async def states(hours: float) -> dict[str, str]:
        await notifications.run_all(db, now + timedelta(hours=hours))
        return {k: str(await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,))) for k, tid in mk.items()}

    assert await states(4.9) == {"asap": "open", "today": "open", "tomorrow": "open", "at": "open"}
    assert (await states(5))["at"] == "expired"
    assert (await states(6.9))["today"] == "open"
    assert (await states(7))["today"] == "expired"
    assert (await states(23.9))["asap"] == "open"
    assert (await states(24))["asap"] == "expired"
    assert (await states(30.9))["tomorrow"] == "open"
    assert (await states(31))["tomorrow"] == "expired"
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (claimed,)) == "in_progress"
    rows = await _outbox(db, "task_expired")
    assert sorted(json.loads(r["payload"])["task_id"] for r in rows) == sorted(mk.values())


async def test_cancelled_task_gets_no_reminder(db: Database, now: datetime) -> None:
    w = await _world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], starts_at=to_db(now + timedelta(hours=1)),
                          state="cancelled")
    await make_claim(db, now, tid, w["vol"], update_task=False)
    await notifications.run_all(db, now + timedelta(minutes=30))
    assert await _outbox(db) == []


def test_timings_defaults_survive_bad_settings() -> None:
    assert notifications.timings("not json") == notifications.DEFAULTS
    assert notifications.timings('{"notifications": {"auto_confirm_days": "x"}}')["auto_confirm_days"] == 0


async def test_no_reminder_for_a_claim_made_inside_the_window(db: Database, now: datetime) -> None:
    w = await _world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], starts_at=to_db(now + timedelta(minutes=40)))
    await make_claim(db, now, tid, w["vol"])
    await notifications.run_all(db, now + timedelta(minutes=1))
    assert await _outbox(db, "task_reminder") == []


async def test_events_do_not_ask_volunteers_to_mark_done(db: Database, now: datetime) -> None:
    w = await _world(db, now)
    tid = await make_task(db, now, w["c"], w["staff"], kind="event", slots=1, starts_at=to_db(now + timedelta(hours=2)))
    await make_claim(db, now, tid, w["vol"])
    await notifications.run_all(db, now + timedelta(hours=5))
    assert await _outbox(db, "task_overdue_ask") == []


async def test_reminders_carry_the_buttons_they_speak_of(db: Database, now: datetime) -> None:
    """The confirm reminder has Yes / Not done / Problem; the "how did it go" question has Done,
    Withdraw and Contact staff (there is no other screen to find them on)."""
    import bot.jobs.sweeps  # noqa: F401  (registers the renderers)
    from bot.i18n import translator
    from bot.renderers import RENDERERS, RenderContext

    w = await _world(db, now)
    waiting = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], state="awaiting_confirmation",
                              title=None, description="Buy rice")
    going = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], state="in_progress")
    rc = RenderContext(db, translator("en"), "en", 1, None, "bot")
    confirm = await RENDERERS["confirm_reminder"].render(rc, {"task_id": waiting})
    assert confirm is not None and "“Buy rice”" in confirm.text
    data = [b.callback_data for row in confirm.reply_markup.inline_keyboard for b in row]  # type: ignore[union-attr]
    assert data == [f"cf:{waiting}:y", f"cf:{waiting}:n", f"cf:{waiting}:p"]
    ask = await RENDERERS["task_overdue_ask"].render(rc, {"task_id": going})
    assert ask is not None
    data = [b.callback_data for row in ask.reply_markup.inline_keyboard for b in row]  # type: ignore[union-attr]
    assert data == [f"done:{going}", f"wd:{going}", f"cs:{going}"]
    # Once confirmed, a late reminder is not sent at all.
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET state = 'completed' WHERE id = ?", (waiting,))
    assert await RENDERERS["confirm_reminder"].render(rc, {"task_id": waiting}) is None
