"""The /request and /publish dialogs end to end through the real bot process and the stand-in:
a resident asks by text from the menu button (bad inputs re-prompted, Submit pressed twice → one
task), asks by voice with a restart of the bot in the middle (the volunteer who claims gets the
voice), staff publish for a resident without Telegram and a 5-place event; nothing private ever
reaches the group."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import Database, open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import make_staff, register, setup_community

T = 10
TZ = ZoneInfo("Asia/Shanghai")
R_NAME, R_PHONE, R_ADDR = "Zhou Lan", "+8613912345678", "Building 7 Room 1203"
OTHER_ADDR = "Building 9 Room 502"
R2_NAME, R2_PHONE, R2_ADDR = "Auntie Sun", "+8613700001234", "Building 4 Room 301"
P_NAME, P_PHONE, P_ADDR = "Grandpa Li", "13900001111", "Building 2 Room 101"
SECRETS = (R_NAME, R_PHONE, R_PHONE[3:], R_ADDR, R2_NAME, R2_PHONE[3:], R2_ADDR, OTHER_ADDR, P_NAME, P_PHONE, P_ADDR)


def _text(m: Any) -> str:
    return str(m.text or m.caption or "")


def _mark(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


async def _next(fake: FakeTelegram, user: Any, after: int, *, button: str | None = None, contains: str | None = None) -> Any:
    """The next bot message to ``user`` after ``after`` with a button starting so / containing a text."""

    def ok(m: Any) -> bool:
        if button is not None and not any(str(b.get("callback_data", "")).startswith(button) for b in m.inline_buttons):
            return False
        return contains is None or contains in _text(m)

    return await fake.wait_for_message(user, ok, timeout=T, after_id=after)


async def _say(fake: FakeTelegram, user: Any, text: str, *, button: str | None = None, contains: str | None = None) -> Any:
    mark = _mark(fake, user)
    await fake.send_text(user, None, text)
    return await _next(fake, user, mark, button=button, contains=contains)


async def _press(fake: FakeTelegram, user: Any, msg: Any, data: str, *, button: str | None = None,
                 contains: str | None = None) -> Any:
    """Press a dialog button; the next question replaces that message or comes as a new one."""
    mark = _mark(fake, user)
    before = (_text(msg), repr(msg.inline_buttons))
    q = await fake.press_button(user, msg, data)
    await fake.wait_callback_answer(q, timeout=T)

    def ok(m: Any) -> bool:
        if button is not None and not any(str(b.get("callback_data", "")).startswith(button) for b in m.inline_buttons):
            return False
        return contains is None or contains in _text(m)

    def find() -> Any:
        if (_text(msg), repr(msg.inline_buttons)) != before and ok(msg):
            return msg
        chat = fake.private_chat(user)
        return next((m for m in chat.messages if m.message_id > mark and m.from_bot and ok(m)), None) if chat else None

    return await fake.wait_for(find, timeout=T)


async def _card(fake: FakeTelegram, group: Any, task_id: int) -> Any:
    return await fake.wait_for_message(group, lambda m: any(b.get("callback_data") == f"cl:{task_id}"
                                                            for b in m.inline_buttons), timeout=T, after_id=0)


async def _last_task(db: Database) -> Any:
    return await db.fetchone("SELECT * FROM tasks ORDER BY id DESC LIMIT 1")


async def _who_may(fake: FakeTelegram, db: Database, vol: Any, res2: Any) -> None:
    stranger = fake.add_user("Stranger", language_code="en")
    await _say(fake, stranger, "/request", contains="/start")
    await _say(fake, vol, "/request", contains="📋 Open tasks")
    await _say(fake, res2, "/publish", contains="only community staff")
    await _say(fake, vol, "/publish", contains="only community staff")
    assert await db.fetchval("SELECT COUNT(*) FROM dialogs WHERE tg_user_id IN (?, ?, ?)",
                             (stranger.id, vol.id, res2.id)) == 0


async def _text_request(fake: FakeTelegram, db: Database, group: Any, res: Any) -> None:
    """From the menu button, with bad input at each step; Submit pressed twice."""
    mark = _mark(fake, res)
    await fake.press_reply_button(res, None, "🆘 Ask for help")
    msg = await _next(fake, res, mark, button="d:cat:")
    assert "Shopping / errands" in [b["text"] for b in msg.inline_buttons]
    mark = _mark(fake, res)
    await fake.send_sticker(res)
    msg = await _next(fake, res, mark, button="d:cat:", contains="one of the buttons")
    await _press(fake, res, msg, "d:cat:shopping", contains="what you need")
    mark = _mark(fake, res)
    await fake.send_photo(res)
    await _next(fake, res, mark, contains="only use text or a voice message")
    await _say(fake, res, "x" * 600, contains="a bit long (600")
    msg = await _say(fake, res, "Please buy rice & eggs <b>today</b>", button="d:when:")
    await _press(fake, res, msg, "d:when:pick", contains="date and time")
    await _say(fake, res, "next week sometime", contains="could not read")
    await _say(fake, res, "2020-01-01 10:00", contains="already passed")
    far = datetime.now(TZ) + timedelta(days=120)
    await _say(fake, res, far.strftime("%Y-%m-%d 10:00"), contains="too far ahead")
    await _say(fake, res, "02-30 10:00", contains="could not read")
    when = (datetime.now(TZ) + timedelta(days=2)).replace(hour=10, minute=15, second=0, microsecond=0)
    msg = await _say(fake, res, when.strftime("%m-%d %H:%M"), button="d:where:", contains=R_ADDR)
    msg = await _press(fake, res, msg, "d:where:home", button="d:helpers:")
    summary = await _press(fake, res, msg, "d:helpers:2", button="d:confirm:")
    body = _text(summary)
    assert "Please buy rice & eggs <b>today</b>" in body, body   # escaped: shown exactly as typed
    assert when.strftime("%Y-%m-%d 10:15") in body and "Helpers: 2" in body, body
    # Submit pressed twice (both taps queued before the bot sees either): one task
    mark = _mark(fake, res)
    q1 = await fake.press_button(res, summary, "d:confirm:submit")
    q2 = await fake.press_button(res, summary, "d:confirm:submit")
    await fake.wait_callback_answer(q1, timeout=T)
    await fake.wait_callback_answer(q2, timeout=T)
    await _next(fake, res, mark, contains="Your request is sent")
    member_id = await db.fetchval("SELECT id FROM members WHERE tg_user_id = ?", (res.id,))
    rows = await db.fetchall("SELECT * FROM tasks WHERE created_by = ?", (member_id,))
    assert len(rows) == 1
    task = rows[0]
    assert (task["category"], task["slots"], task["when_kind"], task["state"]) == ("shopping", 2, "at", "open")
    assert task["description"] == "Please buy rice & eggs <b>today</b>" and task["address"] == R_ADDR
    assert datetime.fromisoformat(task["starts_at"].replace("Z", "+00:00")) == when
    assert "Please buy rice" in _text(await _card(fake, group, task["id"]))


async def _proxy(fake: FakeTelegram, db: Database, group: Any, stf: Any) -> None:
    await _say(fake, stf, "/help", contains="“📢 Publish a task”")  # the menu (and its help) now has the staff items
    mark = _mark(fake, stf)
    await fake.press_reply_button(stf, None, "📢 Publish a task")
    msg = await _next(fake, stf, mark, button="d:mode:")
    await _press(fake, stf, msg, "d:mode:proxy", contains="resident's name")
    await _say(fake, stf, P_NAME, contains="phone number")
    await _say(fake, stf, "12ab", contains="does not look like a phone number")
    await _say(fake, stf, "139 0000 1111", contains="resident's address")
    msg = await _say(fake, stf, P_ADDR, button="d:cat:")
    # Staff are asked about the resident, not as if they were the one in need.
    ask = await _press(fake, stf, msg, "d:cat:escort", contains=f"What does {P_NAME} need?")
    assert f"leave out {P_NAME}'s name" in _text(ask) and "your name" not in _text(ask)
    msg = await _say(fake, stf, f"{P_NAME}: Walk with him to the clinic", button="d:when:")
    msg = await _press(fake, stf, msg, "d:when:today", button="d:helpers:")
    summary = await _press(fake, stf, msg, "d:helpers:1", button="d:confirm:", contains=P_NAME)
    assert P_PHONE in _text(summary) and P_ADDR in _text(summary)
    mark = _mark(fake, stf)
    await fake.press_button(stf, summary, "d:confirm:submit")
    await _next(fake, stf, mark, contains="published in the group")
    task = await db.fetchone("SELECT * FROM tasks WHERE is_proxy = 1")
    assert task["requester_id"] is None and task["kind"] == "request"
    assert (task["proxy_name"], task["proxy_phone"], task["proxy_address"]) == (P_NAME, P_PHONE, P_ADDR)
    card = _text(await _card(fake, group, task["id"]))  # the name masked out leaves no "***: " in front
    assert "Walk with him" in card and "***" not in card


async def _event(fake: FakeTelegram, db: Database, group: Any, stf: Any) -> None:
    msg = await _say(fake, stf, "/publish", button="d:mode:")
    await _press(fake, stf, msg, "d:mode:event", contains="title of the event")
    msg = await _say(fake, stf, "Guard the cherry blossoms", button="d:cat:")
    msg = await _press(fake, stf, msg, "d:cat:other", button="d:desc:")
    await _press(fake, stf, msg, "d:desc:-skip", contains="How many volunteers")
    await _say(fake, stf, "500", contains="number from 1 to 200")
    await _say(fake, stf, "5", contains="event start")
    start = (datetime.now(TZ) + timedelta(days=3)).replace(hour=9, minute=30, second=0, microsecond=0)
    await _say(fake, stf, start.strftime("%Y-%m-%d %H:%M"), contains="event end")
    await _say(fake, stf, "08:00", contains="must be after the start")
    msg = await _say(fake, stf, "12:00", button="d:repeat:", contains="Does the event repeat?")
    await _press(fake, stf, msg, "d:repeat:once", contains="How many points")
    await _say(fake, stf, "-3", contains="number from 0 to 100")
    summary = await _say(fake, stf, "10", button="d:confirm:", contains="Places: 5")
    mark = _mark(fake, stf)
    await fake.press_button(stf, summary, "d:confirm:submit")
    await _next(fake, stf, mark, contains="event is published")
    ev = await db.fetchone("SELECT * FROM tasks WHERE kind = 'event'")
    assert (ev["slots"], ev["points"], ev["title"], ev["state"]) == (5, 10, "Guard the cherry blossoms", "open")
    assert datetime.fromisoformat(ev["starts_at"].replace("Z", "+00:00")) == start
    assert datetime.fromisoformat(ev["ends_at"].replace("Z", "+00:00")) == start.replace(hour=12, minute=0)
    card = await _card(fake, group, ev["id"])
    assert "0/5" in _text(card) and "Points: 10" in _text(card)


@pytest.mark.unpaced  # the dialogs, not pacing
async def test_request_and_publish_flows(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    fake.private_chat(admin, create=True)  # the admin (staff too) has started the bot: review requests reach them
    res = fake.add_user(R_NAME, language_code="en", phone_number=R_PHONE)
    res2 = fake.add_user(R2_NAME, language_code="en", phone_number=R2_PHONE)
    vol = fake.add_user("Volunteer Wang", language_code="en")
    stf = fake.add_user("Staff Chen", language_code="en")
    stf2 = fake.add_user("Staff Wu", language_code="en")
    await asyncio.gather(register(fake, res, role="resident", area=R_ADDR),
                         register(fake, res2, role="resident", area=R2_ADDR),
                         register(fake, vol, role="volunteer", phone=False),
                         register(fake, stf, role="volunteer"), register(fake, stf2, role="volunteer"))
    await make_staff(fake, admin, stf, group)
    await make_staff(fake, admin, stf2, group)
    for u in (res, res2, vol):
        fake.add_member(group, u, announce=False)
    db = await open_database(bot_process.database)
    try:
        # each person in their own chat, at the same time
        await asyncio.gather(_who_may(fake, db, vol, res2), _text_request(fake, db, group, res),
                             _proxy(fake, db, group, stf), _event(fake, db, group, stf2))

        # -- by voice, with a restart in the middle; the volunteer who claims gets the voice --------
        msg = await _say(fake, res2, "/request", button="d:cat:")
        await _press(fake, res2, msg, "d:cat:company", contains="what you need")
        await bot_process.stop()
        await bot_process.start()
        mark = _mark(fake, res2)
        voice_msg = await fake.send_voice(res2, None, duration=7)
        voice_id = voice_msg.data["voice"]["file_id"]
        msg = await _next(fake, res2, mark, button="d:when:")
        msg = await _press(fake, res2, msg, "d:when:asap", button="d:where:")
        await _press(fake, res2, msg, "d:where:other", contains="type the address")
        mark = _mark(fake, res2)
        await fake.send_sticker(res2)
        await _next(fake, res2, mark, contains="address as text")
        msg = await _say(fake, res2, OTHER_ADDR, button="d:helpers:")
        summary = await _press(fake, res2, msg, "d:helpers:1", button="d:confirm:", contains="voice message (7 s)")
        # Edit one field, back at the summary
        msg = await _press(fake, res2, summary, "d:confirm:edit", button="d:edit:")
        msg = await _press(fake, res2, msg, "d:edit:helpers", button="d:helpers:")
        summary = await _press(fake, res2, msg, "d:helpers:3", button="d:confirm:", contains="Helpers: 3")
        assert "voice message (7 s)" in _text(summary) and OTHER_ADDR in _text(summary)
        mark = _mark(fake, res2)
        await fake.press_button(res2, summary, "d:confirm:submit")
        await _next(fake, res2, mark, contains="Your request is sent")
        vtask = await db.fetchone("SELECT * FROM tasks WHERE voice_file_id IS NOT NULL")
        assert vtask["voice_file_id"] == voice_id and vtask["description"] is None
        assert (vtask["address"], vtask["when_kind"], vtask["slots"]) == (OTHER_ADDR, "asap", 3)
        vcard = await _card(fake, group, vtask["id"])
        q = await fake.press_button(vol, vcard, f"cl:{vtask['id']}")
        assert "You have claimed" in str((await fake.wait_callback_answer(q, timeout=T)).get("text"))
        await fake.wait_for(lambda: any(c.ok and c.params.get("voice") == voice_id
                                        and str(c.params.get("chat_id")) == str(vol.id)
                                        for c in fake.api_calls("sendVoice")), timeout=T)
        details = await fake.wait_for_message(vol, lambda m: OTHER_ADDR in _text(m), timeout=T, after_id=0)
        assert R2_NAME in _text(details)

        # -- a community that reviews requests first ---------------------------------------------
        async with db.transaction() as conn:
            await conn.execute("UPDATE communities SET review_required = 1,"
                               " settings = json_set(COALESCE(settings, '{}'), '$.review_required', json('true'))")
        msg = await _say(fake, res, "/request", button="d:cat:")
        await _press(fake, res, msg, "d:cat:tech", contains="what you need")
        msg = await _say(fake, res, "My phone makes no sound", button="d:when:")
        msg = await _press(fake, res, msg, "d:when:tomorrow", button="d:where:")
        msg = await _press(fake, res, msg, "d:where:home", button="d:helpers:")
        summary = await _press(fake, res, msg, "d:helpers:1", button="d:confirm:")
        mark = _mark(fake, res)
        await fake.press_button(res, summary, "d:confirm:submit")
        await _next(fake, res, mark, contains="waiting for staff review")
        assert await db.fetchval("SELECT state FROM tasks WHERE description = 'My phone makes no sound'") == "pending_review"
        await fake.wait_for_message(stf, lambda m: "no sound" in _text(m), timeout=T, after_id=0)

        # -- Cancel in the middle stores nothing ---------------------------------------------
        before = await db.fetchval("SELECT COUNT(*) FROM tasks")
        msg = await _say(fake, res2, "/request", button="d:cat:")
        mark = _mark(fake, res2)
        await fake.press_button(res2, msg, "d:cat:-cancel")
        await _next(fake, res2, mark, contains="Nothing was sent")
        assert await db.fetchval("SELECT COUNT(*) FROM tasks") == before == 5
        assert await db.fetchval("SELECT COUNT(*) FROM dialogs") == 0

        # -- privacy: nothing private in any group message -------------------------------------
        await settle(fake, quiet=0.3)
        for m in fake.messages(group):
            body = _text(m) + repr(getattr(m, "edits", ""))
            for secret in SECRETS:
                assert secret not in body, (secret, body)
        assert not fake.errors, fake.errors
    finally:
        await db.close()


@pytest.mark.unpaced  # the dialogs, not pacing
async def test_typed_answers_work_where_buttons_are_offered(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """Found by an exploratory review: "买菜", "明天上午" and "1" typed instead of pressed were
    answered "please press a button". An elderly resident types; the typed answer counts."""
    from tests.e2e.people import say

    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    gran = fake.add_user("奶奶", language_code="zh-hans")
    await register(fake, gran, role="resident")
    await say(fake, gran, "/request", "")
    await asyncio.sleep(0.3)
    await say(fake, gran, "买菜", "")             # the category, typed: the next question (what is needed)
    await asyncio.sleep(0.3)
    await say(fake, gran, "两斤包子", "")
    await asyncio.sleep(0.3)
    await say(fake, gran, "明天上午。", "")        # when, typed
    await asyncio.sleep(0.3)
    db = await open_database(bot_process.database)
    try:
        row = await db.fetchone("SELECT step, data FROM dialogs WHERE tg_user_id = ?", (gran.id,))
        assert row is not None and row["step"] == "where", dict(row) if row else None
        data = json.loads(row["data"])
        assert (data["category"], data["when"]) == ("shopping", "tomorrow"), data
        msg = fake.bot_messages(fake.private_chat(gran))[-1]
        await fake.press_button(gran, msg, "d:where:home")
        await fake.wait_for_message(gran, lambda m: any(str(b.get("callback_data", "")).startswith("d:helpers:")
                                                        for b in m.inline_buttons), timeout=10)
        await say(fake, gran, "一个人", "")          # helpers, typed
        await asyncio.sleep(0.3)
        row = await db.fetchone("SELECT step, data FROM dialogs WHERE tg_user_id = ?", (gran.id,))
        assert row is not None and row["step"] == "confirm" and json.loads(row["data"])["slots"] == 1, dict(row)
        # only the current question has live buttons (typed answers left earlier sets behind before)
        live = [m for m in fake.bot_messages(fake.private_chat(gran))
                if any(str(b.get("callback_data", "")).startswith(("d:cat:", "d:desc:", "d:when:", "d:where:",
                                                                      "d:helpers:", "d:confirm:"))
                       for b in m.inline_buttons)]
        assert len(live) == 1 and any("confirm" in str(b.get("callback_data")) for b in live[0].inline_buttons)
        assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    finally:
        await db.close()
