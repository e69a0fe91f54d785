"""Double taps through the real bot: a person who taps "Hide my name on the leaderboard" (or staff who
tap "Turn off points expiry") twice before the message changes gets what the button said, once; the
second tap does not undo the first. Closing an event twice pays once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import expiry
from storage.db import open_database
from storage.timeutil import to_db
from tests.e2e.people import community_with_group
from tests.factories import make_member
from tests.factories_tasks import make_claim, make_task

T = 10


async def test_double_tap_on_settings_toggles_acts_once(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        _group, cid = await community_with_group(fake, db, now, language="en")
        vol_u, staff_u = fake.add_user("Vic", language_code="en"), fake.add_user("Sam", language_code="en")
        vol = await make_member(db, now, cid, tg_user_id=vol_u.id, volunteer=True, language="en", name="Vic")
        await make_member(db, now, cid, tg_user_id=staff_u.id, staff=True, language="en", name="Sam")
        assert not await expiry.is_on(db, cid)

        await fake.send_text(vol_u, None, "/settings")
        shown = await fake.wait_for_message(vol_u, lambda m: "leaderboard" in str(m.text), timeout=T)
        hide = next(b["callback_data"] for b in shown.inline_buttons if b["text"] == "Hide my name on the leaderboard")
        digest = next(b["callback_data"] for b in shown.inline_buttons if "digest" in b["text"])
        honours = next(b["callback_data"] for b in shown.inline_buttons if "honours" in b["text"])
        taps = [await fake.press_button(vol_u, shown, data) for data in (hide, hide, digest, digest, honours, honours)]

        await fake.send_text(staff_u, None, "/settings")
        staff_view = await fake.wait_for_message(staff_u, lambda m: "expire" in str(m.text), timeout=T)
        turn_on = next(b["callback_data"] for b in staff_view.inline_buttons if b["text"] == "Turn on points expiry")
        taps += [await fake.press_button(staff_u, staff_view, turn_on) for _ in range(2)]

        for qid in taps:
            await fake.wait_callback_answer(qid, timeout=T)
        await settle(fake)
        row = await db.fetchone("SELECT leaderboard_opt_out, digest_enabled, announce_consent FROM members WHERE id = ?",
                                (vol,))
        assert row is not None
        assert tuple(row) == (1, 0, 0)  # hidden, digest off, honours not announced: as the buttons said
        assert await expiry.is_on(db, cid)
        # The second tap draws the same view again: an edit Telegram refuses as "not modified" (handled).
        refused = [(c.method, c.description) for c in fake.errors if "message is not modified" not in c.description]
        assert refused == [], refused
        assert "Traceback" not in bot_process.log()
    finally:
        await db.close()


async def test_double_tap_on_close_event_pays_once(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """Staff tap "Close the event" twice on the attendance list (after check-in): each volunteer who
    came is paid once, and the one who did not come is marked absent once."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        _group, cid = await community_with_group(fake, db, now, language="en")
        staff_u, ann_u, bo_u = (fake.add_user(n, language_code="en") for n in ("Sam", "Ann", "Bo"))
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, staff=True, language="en", name="Sam")
        ann = await make_member(db, now, cid, tg_user_id=ann_u.id, volunteer=True, language="en", name="Ann")
        bo = await make_member(db, now, cid, tg_user_id=bo_u.id, volunteer=True, language="en", name="Bo")
        for u in (staff_u, ann_u, bo_u):
            fake.private_chat(u, create=True)
        event = await make_task(db, now, cid, staff, kind="event", slots=5, points=3, title="Fair",
                                starts_at=to_db(now + timedelta(minutes=5)), ends_at=to_db(now + timedelta(hours=1)))
        for member_id in (ann, bo):
            await make_claim(db, now, event, member_id)
        await fake.send_text(staff_u, None, f"/checkin {event}")
        await fake.wait_for_message(staff_u, lambda m: "Check-in for" in str(m.caption or m.text or ""), timeout=T)
        token = str(await db.fetchval("SELECT token FROM checkin_codes WHERE task_id = ?", (event,)))
        await fake.send_text(ann_u, None, f"/start ci_{token}")
        await fake.wait_for_message(ann_u, lambda m: "checked in" in str(m.text or ""), timeout=T)
        await fake.send_text(staff_u, None, f"/closeevent {event}")
        att = await fake.wait_for_message(staff_u, lambda m: "Attendance" in str(m.text or ""), timeout=T)
        taps = [await fake.press_button(staff_u, att, "d:att:close") for _ in range(2)]
        for qid in taps:
            await fake.wait_callback_answer(qid, timeout=T)
        await settle(fake)
        paid = [(int(r[0]), int(r[1])) for r in await db.fetchall(
            "SELECT member_id, delta FROM ledger WHERE task_id = ? ORDER BY member_id", (event,))]
        assert paid == [(ann, 3)]
        assert [int(r[0]) for r in await db.fetchall("SELECT member_id FROM no_shows WHERE task_id = ?", (event,))] == [bo]
        assert await db.fetchval("SELECT balance FROM members WHERE id = ?", (ann,)) == 3
        refused = [(c.method, c.description) for c in fake.errors if "message is not modified" not in c.description]
        assert refused == [], refused
        assert "Traceback" not in bot_process.log()
    finally:
        await db.close()
