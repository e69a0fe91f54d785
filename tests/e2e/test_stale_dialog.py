"""A dialog that was restarted (the same command again, /start, another dialog opened) leaves its
earlier messages on the screen with their buttons. A press on one of them is answered "out of date"
and changes nothing: the current dialog stays at its step and its own buttons carry on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import Database, open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import make_staff, register, setup_community
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task

T = 10
OUT_OF_DATE_EN = "This button is out of date. Please use the latest message."
OUT_OF_DATE_ZH = "这个按钮已经不能用了，请点最新一条消息里的按钮。"


def _last(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


async def _asked(fake: FakeTelegram, user: Any, text: str, prefix: str) -> Any:
    """``user`` sends ``text``; the bot's next message with a dialog button starting ``prefix``."""
    mark = _last(fake, user)
    await fake.send_text(user, None, text)
    return await fake.wait_for_message(user, lambda m: any(
        str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons), timeout=T, after_id=mark)


async def _refused(fake: FakeTelegram, user: Any, msg: Any, data: str, words: str) -> None:
    """A press on ``msg`` is answered ``words``, and the bot says and edits nothing."""
    mark, shown = _last(fake, user), (msg.text, repr(msg.inline_buttons))
    q = await fake.press_button(user, msg, data)
    assert (await fake.wait_callback_answer(q, timeout=T)).get("text") == words
    others = [m for m in fake.private_chat(user).messages if m.message_id > mark]
    assert others == [] and (msg.text, repr(msg.inline_buttons)) == shown, [m.text for m in others]


async def _step(db: Database, user: Any) -> tuple[str, str] | None:
    row = await db.fetchone("SELECT flow, step FROM dialogs WHERE tg_user_id = ?", (user.id,))
    return (str(row["flow"]), str(row["step"])) if row is not None else None


async def _carries_on(fake: FakeTelegram, user: Any, msg: Any, data: str, expect: str) -> None:
    """The current dialog's button still works: pressed, the next question says ``expect``."""
    mark = _last(fake, user)
    q = await fake.press_button(user, msg, data)
    await fake.wait_callback_answer(q, timeout=T)
    await fake.wait_for(lambda: expect in str(msg.text or "") or any(
        m.message_id > mark and m.from_bot and expect in str(m.text or "") for m in fake.private_chat(user).messages),
        timeout=T)


async def test_a_request_started_again_leaves_its_first_buttons_out_of_date(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    """/request, then /request again: the first message's category button used to choose the
    category of the second request (and answer on the first message)."""
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    res = fake.add_user("Granny", language_code="en")
    await register(fake, res, role="resident")
    db = await open_database(bot_process.database)
    try:
        first = await _asked(fake, res, "/request", "d:cat:")
        second = await _asked(fake, res, "/request", "d:cat:")
        await _refused(fake, res, first, "d:cat:shopping", OUT_OF_DATE_EN)
        assert await _step(db, res) == ("request", "cat")
        await _carries_on(fake, res, second, "d:cat:shopping", "what you need")
        assert await _step(db, res) == ("request", "desc")
        # That press delivered again (same update): handled once, nothing more said.
        mark = _last(fake, res)
        fake.redeliver(max(fake._bot(None).history))
        await settle(fake, quiet=0.5)
        assert await _step(db, res) == ("request", "desc")
        assert [m.text for m in fake.private_chat(res).messages if m.message_id > mark] == []
        # Once the second request moved on, the first message's buttons are still out of date.
        await _refused(fake, res, first, "d:cat:escort", OUT_OF_DATE_EN)
        assert await _step(db, res) == ("request", "desc")
    finally:
        await db.close()


async def test_registration_started_again_in_chinese(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """/start, then /start again: the first language question's button is out of date (in Chinese),
    the second one carries on."""
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    gran = fake.add_user("奶奶", language_code="zh-hans")
    db = await open_database(bot_process.database)
    try:
        first = await _asked(fake, gran, "/start", "d:lang:")
        second = await _asked(fake, gran, "/start", "d:lang:")
        await _refused(fake, gran, first, "d:lang:zh", OUT_OF_DATE_ZH)
        assert await _step(db, gran) == ("register", "lang")
        await _carries_on(fake, gran, second, "d:lang:zh", "您")
        assert await _step(db, gran) == ("register", "role")
    finally:
        await db.close()


async def test_another_dialog_at_a_step_of_the_same_name(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """Staff open /deleteme (its question is the step "confirm"), then /publish and reach its summary
    (also "confirm"): a press on the erase question's buttons used to go to the event's summary step
    (answered on the erase question). Now it neither erases anything nor touches the event, whose
    own Submit still publishes it."""
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    staff = fake.add_user("Grid worker", language_code="en")
    await register(fake, staff, role="volunteer")
    await make_staff(fake, admin, staff, group)
    db = await open_database(bot_process.database)
    try:
        erase = await _asked(fake, staff, "/deleteme", "d:confirm:")
        msg = await _asked(fake, staff, "/publish", "d:mode:")
        await _carries_on(fake, staff, msg, "d:mode:event", "title of the event")
        msg = await _asked(fake, staff, "Tidy the garden", "d:cat:")
        await _carries_on(fake, staff, msg, "d:cat:other", "")
        desc = next(m for m in reversed(fake.bot_messages(fake.private_chat(staff))) if m.carries("d:desc:-skip"))
        await _carries_on(fake, staff, desc, "d:desc:-skip", "How many volunteers")
        for typed, expect in (("5", "event start"), (f"{(date.today() + timedelta(days=3)).isoformat()} 09:30", "event end")):
            mark = _last(fake, staff)
            await fake.send_text(staff, None, typed)
            await fake.wait_for_message(staff, lambda m, e=expect: e in str(m.text or ""), timeout=T, after_id=mark)
        repeat = await _asked(fake, staff, "12:00", "d:repeat:")
        await _carries_on(fake, staff, repeat, "d:repeat:once", "How many points")
        summary = await _asked(fake, staff, "10", "d:confirm:")
        assert await _step(db, staff) == ("request", "confirm")
        await _refused(fake, staff, erase, "d:confirm:yes", OUT_OF_DATE_EN)
        await _refused(fake, staff, erase, "d:confirm:no", OUT_OF_DATE_EN)
        assert await _step(db, staff) == ("request", "confirm")
        assert await db.fetchval("SELECT COUNT(*) FROM members WHERE tg_user_id = ? AND display_name IS NOT NULL",
                                 (staff.id,)) == 1
        await _carries_on(fake, staff, summary, "d:confirm:submit", "event is published")
        assert await db.fetchval("SELECT COUNT(*) FROM tasks WHERE kind = 'event'") == 1
    finally:
        await db.close()


async def test_an_earlier_attendance_sheet_cannot_close_the_event_now_open(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    """/closeevent A, then /closeevent B: the sheet of A (the same step) used to untick people of B
    and its Close closed B. Now both are out of date; B's own sheet closes B, and A stays open."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        cid = await make_community(db, now, no_group=True)  # no group chat in this scenario
        staff_u = fake.add_user("Staff", language_code="en")
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True)
        fake.private_chat(staff_u, create=True)
        a, b = [await make_task(db, now, cid, staff, kind="event", slots=2, points=2, title=title,
                                starts_at="2026-05-04T01:30:00.000000Z") for title in ("Clean-up", "Choir")]
        for tid in (a, b):
            for i in range(2):
                await make_claim(db, now, tid, await make_member(db, now, cid, volunteer=True, name=f"V{tid}{i}"))
        sheet_a = await _asked(fake, staff_u, f"/closeevent {a}", "d:att:")
        sheet_b = await _asked(fake, staff_u, f"/closeevent {b}", "d:att:")
        await _refused(fake, staff_u, sheet_a, "d:att:0", OUT_OF_DATE_EN)
        await _refused(fake, staff_u, sheet_a, "d:att:close", OUT_OF_DATE_EN)
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (b,)) != "completed"
        assert "2 present" in str([x["text"] for x in sheet_b.inline_buttons])
        await _carries_on(fake, staff_u, sheet_b, "d:att:close", "Event closed")
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (b,)) == "completed"
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (a,)) != "completed"
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ?", (a,)) == 0
    finally:
        await db.close()
