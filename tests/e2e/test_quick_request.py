"""The quick request through the real bot and the stand-in (issue #20): a resident asks for help
with one voice note and at most four taps from the main menu; the voice goes only to the volunteer
who claims; Submit pressed twice publishes once; "Change…" walks the full dialog with the answers so
far; a voice note in the middle of another dialog is that dialog's answer; volunteers and people
not registered get a polite word."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import Database, open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import register, setup_community

T = 10
R_NAME, R_PHONE, R_ADDR = "Zhou Lan", "+8613912345678", "Building 7 Room 1203"


def _text(m: Any) -> str:
    return str(m.text or m.caption or "")


def _mark(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


def _has(m: Any, prefix: str) -> bool:
    return any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


class Taps:
    """A resident's hands: every menu button and inline button pressed is counted (a voice note is not)."""

    def __init__(self, fake: FakeTelegram, user: Any) -> None:
        self.fake, self.user, self.count = fake, user, 0

    async def menu(self, label: str, *, then: str) -> Any:
        mark = _mark(self.fake, self.user)
        self.count += 1
        await self.fake.press_reply_button(self.user, None, label)
        return await self.fake.wait_for_message(self.user, lambda m: _has(m, then), timeout=T, after_id=mark)

    async def press(self, msg: Any, data: str, *, then: str | None = None, contains: str | None = None) -> Any:
        """Press a button; the answer replaces the pressed message or comes as a new one."""
        mark, before = _mark(self.fake, self.user), (_text(msg), repr(msg.inline_buttons))
        self.count += 1
        await self.fake.wait_callback_answer(await self.fake.press_button(self.user, msg, data), timeout=T)

        def ok(m: Any) -> bool:
            return (then is None or _has(m, then)) and (contains is None or contains in _text(m))

        def find() -> Any:
            if (_text(msg), repr(msg.inline_buttons)) != before and ok(msg):
                return msg
            chat = self.fake.private_chat(self.user)
            return next((m for m in chat.messages if m.message_id > mark and m.from_bot and ok(m)), None)

        return await self.fake.wait_for(find, timeout=T)

    async def speak(self, seconds: int, *, then: str | None = None) -> tuple[Any, str]:
        """A voice note; the bot's answer (the first with a button starting ``then``, if given)."""
        mark = _mark(self.fake, self.user)
        voice = await self.fake.send_voice(self.user, None, duration=seconds)
        answer = await self.fake.wait_for_message(self.user, lambda m: then is None or _has(m, then), timeout=T,
                                                  after_id=mark)
        return answer, str(voice.data["voice"]["file_id"])


async def _card(fake: FakeTelegram, group: Any, task_id: int) -> Any:
    return await fake.wait_for_message(group, lambda m: _has(m, f"cl:{task_id}"), timeout=T, after_id=0)


async def _tasks_of(db: Database, user: Any) -> list[Any]:
    return await db.fetchall("SELECT t.* FROM tasks t JOIN members m ON m.id = t.requester_id"
                             " WHERE m.tg_user_id = ? ORDER BY t.id", (user.id,))


async def _world(fake: FakeTelegram) -> tuple[Any, Any, Any]:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    res = fake.add_user(R_NAME, language_code="en", phone_number=R_PHONE)
    vol = fake.add_user("Volunteer Wang", language_code="en")
    await asyncio.gather(register(fake, res, role="resident", area=R_ADDR), register(fake, vol, role="volunteer"))
    fake.add_member(group, vol, announce=False)
    return group, res, vol


async def test_a_voice_note_asks_for_help_in_at_most_four_taps(fake: FakeTelegram, bot_process: BotProcess) -> None:
    group, res, vol = await _world(fake)
    db = await open_database(bot_process.database)
    try:
        # 🆘 from the main menu, then a voice note at the first question: one summary
        hands = Taps(fake, res)
        first = await hands.menu("🆘 Ask for help", then="d:cat:")
        assert "microphone" in _text(first)
        summary, voice_id = await hands.speak(7, then="d:confirm:")
        body = _text(summary)
        for words in ("voice message (7 s)", "When: As soon as possible", R_ADDR, "Helpers: 1", "Category: Other"):
            assert words in body, (words, body)
        assert {b["text"] for b in summary.inline_buttons} == {"✅ Submit", "✏ Change…", "✖ Cancel"}
        await hands.press(summary, "d:confirm:submit", contains="Your request is sent")
        [task] = await _tasks_of(db, res)
        assert (task["category"], task["when_kind"], task["slots"], task["voice_file_id"]) == ("other", "asap", 1, voice_id)
        assert task["description"] is None and task["state"] == "open"
        card = await _card(fake, group, task["id"])
        assert hands.count <= 4, hands.count  # the menu button and Submit: 2
        assert "voice message: details for the volunteer" in _text(card)

        # a voice note straight into the chat; Submit pressed twice (both taps queued at once): one task
        hands = Taps(fake, res)
        summary, voice2 = await hands.speak(4, then="d:confirm:")
        q1 = await fake.press_button(res, summary, "d:confirm:submit")
        q2 = await fake.press_button(res, summary, "d:confirm:submit")
        await fake.wait_callback_answer(q1, timeout=T)
        await fake.wait_callback_answer(q2, timeout=T)
        tasks = await _tasks_of(db, res)
        assert len(tasks) == 2 and tasks[1]["voice_file_id"] == voice2
        await _card(fake, group, tasks[1]["id"])

        # the volunteer who claims hears the voice; the group never gets it, nor anything private
        q = await fake.press_button(vol, card, f"cl:{task['id']}")
        assert "You have claimed" in str((await fake.wait_callback_answer(q, timeout=T)).get("text"))
        await fake.wait_for(lambda: any(c.ok and c.params.get("voice") == voice_id
                                        and str(c.params.get("chat_id")) == str(vol.id)
                                        for c in fake.api_calls("sendVoice")), timeout=T)
        await settle(fake, quiet=0.3)
        assert not any(str(c.params.get("chat_id")) == str(group.id) for c in fake.api_calls("sendVoice"))
        for m in fake.messages(group):
            for secret in (R_NAME, R_PHONE[3:], R_ADDR):
                assert secret not in _text(m) + repr(getattr(m, "edits", "")), (secret, _text(m))
        assert not fake.errors, fake.errors
    finally:
        await db.close()


@pytest.mark.unpaced  # the dialog, not pacing
async def test_change_walks_the_full_dialog_and_voice_never_hijacks_a_dialog(fake: FakeTelegram,
                                                                            bot_process: BotProcess) -> None:
    _, res, vol = await _world(fake)
    db = await open_database(bot_process.database)
    try:
        # in the middle of the full dialog, a voice note is that step's answer (here: not one), not a new request
        hands = Taps(fake, res)
        msg = await hands.menu("🆘 Ask for help", then="d:cat:")
        await hands.press(msg, "d:cat:shopping", contains="what you need")
        mark = _mark(fake, res)
        await fake.send_text(res, None, "Two loaves of bread")
        await fake.wait_for_message(res, lambda m: _has(m, "d:when:"), timeout=T, after_id=mark)
        answer, _ = await hands.speak(3, then="d:when:")
        assert "press one of the buttons" in _text(answer) and "voice message" not in _text(answer)
        row = await db.fetchone("SELECT flow, step, data FROM dialogs WHERE tg_user_id = ?", (res.id,))
        assert (row["flow"], row["step"]) == ("request", "when")
        assert json.loads(row["data"])["desc"] == "Two loaves of bread" and not json.loads(row["data"])["quick"]

        # a voice note at the first question, then "Change…": every step again, the answers so far ticked
        msg = await hands.menu("🆘 Ask for help", then="d:cat:")
        summary, voice_id = await hands.speak(5, then="d:confirm:")
        msg = await hands.press(summary, "d:confirm:change", then="d:cat:")
        assert "✓ Other" in [b["text"] for b in msg.inline_buttons]
        msg = await hands.press(msg, "d:cat:shopping", then="d:desc:-keep")
        msg = await hands.press(msg, "d:desc:-keep", then="d:when:")
        assert "✓ ⚡ As soon as possible" in [b["text"] for b in msg.inline_buttons]
        msg = await hands.press(msg, "d:when:tomorrow", then="d:where:")
        assert "✓ 🏠 My registered address" in [b["text"] for b in msg.inline_buttons]
        msg = await hands.press(msg, "d:where:home", then="d:helpers:")
        msg = await hands.press(msg, "d:helpers:2", then="d:confirm:", contains="Helpers: 2")
        assert "voice message (5 s)" in _text(msg) and "Tomorrow" in _text(msg)
        await hands.press(msg, "d:confirm:submit", contains="Your request is sent")
        [task] = await _tasks_of(db, res)
        assert (task["category"], task["when_kind"], task["slots"], task["voice_file_id"]) == (
            "shopping", "tomorrow", 2, voice_id)

        # the next voice note takes the category used last
        summary, _ = await hands.speak(2, then="d:confirm:")
        assert "Category: Shopping" in _text(summary), _text(summary)

        # a volunteer, someone not registered, and someone in the middle of registering
        answer, _ = await Taps(fake, vol).speak(3)
        assert "Asking for help is for residents" in _text(answer) and "/" not in _text(answer)
        stranger = fake.add_user("Stranger", language_code="en")
        answer, _ = await Taps(fake, stranger).speak(3)
        assert "register first" in _text(answer)
        newcomer = fake.add_user("Newcomer", language_code="en")
        mark = _mark(fake, newcomer)
        await fake.send_text(newcomer, None, "/start")
        await fake.wait_for_message(newcomer, lambda m: _has(m, "d:lang:"), timeout=T, after_id=mark)
        answer, _ = await Taps(fake, newcomer).speak(3)
        assert "voice message" not in _text(answer)
        assert await db.fetchval("SELECT flow FROM dialogs WHERE tg_user_id = ?", (newcomer.id,)) == "register"
        assert await db.fetchval("SELECT COUNT(*) FROM dialogs WHERE tg_user_id IN (?, ?)", (vol.id, stranger.id)) == 0
        assert not fake.errors, fake.errors
    finally:
        await db.close()
