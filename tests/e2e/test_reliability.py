"""The reliability score through the real bot: a no-show recorded at /closeevent lowers the score a
volunteer sees in /points, a completed task raises it, staff see it on the attendance list; with a
minimum chosen in /reliability, a volunteer below it is refused an event with the reason (the event
does not change) and recovers by completing a small task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from storage.timeutil import to_db
from tests.e2e.people import community_with_group, say
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task

T = 10


def _has(data: str) -> Any:
    return lambda m: any(b.get("callback_data") == data for b in m.inline_buttons)


async def test_no_show_lowers_and_a_completed_event_raises_the_score(fake: FakeTelegram,
                                                                    bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        cid = await make_community(db, now, no_group=True)  # no group chat in this scenario
        staff_u, vol_u = fake.add_user("Staff", language_code="en"), fake.add_user("Wang", language_code="en")
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True)
        vol = await make_member(db, now, cid, tg_user_id=vol_u.id, language="en", volunteer=True, name="Wang")
        for u in (staff_u, vol_u):
            fake.private_chat(u, create=True)
        await say(fake, vol_u, "/points", "Reliability: 100% (nothing missed so far)", timeout=T)

        missed = await make_task(db, now, cid, staff, kind="event", slots=5, title="Clean-up")
        await make_claim(db, now, missed, vol)
        await say(fake, staff_u, f"/closeevent {missed} 1", "Event closed", timeout=T)
        text = await say(fake, vol_u, "/points", "Reliability:", timeout=T)
        assert "Reliability: 50% (last two years: 0 tasks done, missed 1, withdrew late 0)" in text, text

        came = await make_task(db, now, cid, staff, kind="event", slots=5, title="Planting")
        await make_claim(db, now, came, vol)
        await fake.send_text(staff_u, None, f"/closeevent {came}")
        sheet = await fake.wait_for_message(staff_u, lambda m: "Attendance" in (m.text or ""), timeout=T)
        assert "✅ 1. Wang · 50%" in [b["text"] for b in sheet.inline_buttons], sheet.inline_buttons
        assert "reliability" in (sheet.text or "")
        await fake.press_button(staff_u, sheet, "d:att:close")
        await fake.wait_for(lambda: "Event closed" in (sheet.text or ""), timeout=T)
        text = await say(fake, vol_u, "/points", "Reliability:", timeout=T)
        assert "Reliability: 67% (last two years: 1 task done, missed 1, withdrew late 0)" in text, text
        # Staff find the volunteer with their score.
        found = await say(fake, staff_u, "/staff find Wang", f"#{vol}", timeout=T)
        assert "reliability 67% (1 done, 1 missed, 0 withdrawn late)" in found, found
    finally:
        await db.close()


async def test_minimum_refuses_an_event_until_a_small_task_is_done(fake: FakeTelegram,
                                                                  bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now)
        staff_u, vol_u, res_u = (fake.add_user(n, language_code="en") for n in ("Staff", "Wang", "Li"))
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True)
        vol = await make_member(db, now, cid, tg_user_id=vol_u.id, language="en", volunteer=True, name="Wang")
        res = await make_member(db, now, cid, tg_user_id=res_u.id, language="en", resident=True, name="Granny Li")
        for u in (staff_u, vol_u, res_u):
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        past = await make_task(db, now, cid, staff, kind="event", slots=5, state="completed", title="Old fair")
        await make_claim(db, now, past, vol, state="no_show", update_task=False)
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO no_shows (community_id, task_id, member_id, recorded_by, created_at)"
                               " VALUES (:c, :t, :m, :s, :at)",
                               {"c": cid, "t": past, "m": vol, "s": staff, "at": to_db(now)})

        # Staff choose a minimum of 60 % (off by default).
        await say(fake, staff_u, "/reliability", "No minimum: every volunteer may claim events.", timeout=T)
        view = await fake.wait_for_message(staff_u, _has("rl:60"), timeout=T)
        q = await fake.press_button(staff_u, view, "rl:60")
        assert (await fake.wait_callback_answer(q, timeout=T)).get("text") == "Saved."
        await fake.wait_for(lambda: "at least 60%" in (view.text or ""), timeout=T)
        assert await db.fetchval("SELECT min_reliability FROM communities WHERE id = :c", {"c": cid}) == 60

        # Wang (one no-show: 50 %) taps Claim on an event: refused with why and how to recover.
        ev = await tasks.create_task(db, now, staff, tasks.NewTask(
            "other", title="Guard the cherry blossoms", kind="event", slots=3, points=5,
            starts_at=now + timedelta(hours=3)), staff=True)
        card = await fake.wait_for_message(group, _has(f"cl:{ev}"), timeout=T)
        before = await db.fetchone("SELECT state, card_version FROM tasks WHERE id = :t", {"t": ev})
        q = await fake.press_button(vol_u, card, f"cl:{ev}")
        refusal = str((await fake.wait_callback_answer(q, timeout=T)).get("text"))
        assert "need a reliability of 60%; yours is 50%" in refusal and "small tasks" in refusal, refusal
        assert len(refusal) <= 200
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t", {"t": ev}) == 0
        assert tuple(await db.fetchone("SELECT state, card_version FROM tasks WHERE id = :t", {"t": ev})) == \
            tuple(before)
        text = await say(fake, vol_u, "/points", "Reliability:", timeout=T)
        assert "Events here need 60%" in text, text

        # A neighbour's request is open to them: done and confirmed, the score rises to 67 %.
        rq = await tasks.create_task(db, now, res, tasks.NewTask("shopping", description="Please buy rice"))
        rcard = await fake.wait_for_message(group, _has(f"cl:{rq}"), timeout=T)
        q = await fake.press_button(vol_u, rcard, f"cl:{rq}")
        assert "You have claimed" in str((await fake.wait_callback_answer(q, timeout=T)).get("text"))
        details = await fake.wait_for_message(vol_u, _has(f"done:{rq}"), timeout=T)
        await fake.wait_callback_answer(await fake.press_button(vol_u, details, f"done:{rq}"), timeout=T)
        ask = await fake.wait_for_message(res_u, _has(f"cf:{rq}:y"), timeout=T)
        await fake.wait_callback_answer(await fake.press_button(res_u, ask, f"cf:{rq}:y"), timeout=T)
        text = await say(fake, vol_u, "/points", "Reliability: 67%", timeout=T)
        q = await fake.press_button(vol_u, card, f"cl:{ev}")
        assert "You have claimed" in str((await fake.wait_callback_answer(q, timeout=T)).get("text"))
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t AND state = 'active'",
                                 {"t": ev}) == 1

        # Withdrawing three hours before the start is late: they are told, and it counts half a no-show.
        details = await fake.wait_for_message(vol_u, _has(f"wd:{ev}"), timeout=T)
        q = await fake.press_button(vol_u, details, f"wd:{ev}")
        said = str((await fake.wait_callback_answer(q, timeout=T)).get("text"))
        assert "You have withdrawn" in said and "lowers your reliability" in said, said
        text = await say(fake, vol_u, "/points", "Reliability:", timeout=T)
        assert "Reliability: 57% (last two years: 1 task done, missed 1, withdrew late 1)" in text, text
    finally:
        await db.close()
