"""A registered resident who simply types what they need, as an elderly neighbour does, gets the
quick request's one summary (as a voice note does), not "please press a button": outside any
dialog, or in answer to the first question of 🆘. A word of thanks, "ok" or an emoji starts
nothing; "I need help" opens the usual questions; too long a message gets a polite word; a
volunteer's chatter starts nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import Database, open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import register, setup_community

pytestmark = pytest.mark.unpaced  # the flows, not Telegram's pacing (tests/conftest.py)

T = 15


def _text(m: Any) -> str:
    return str(m.text or m.caption or "")


def _has(m: Any, prefix: str) -> bool:
    return any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


def _mark(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


async def _answer(fake: FakeTelegram, user: Any, text: str) -> Any:
    """``user`` types ``text``; the bot's next message."""
    mark = _mark(fake, user)
    await fake.send_text(user, None, text)
    return await fake.wait_for_message(user, timeout=T, after_id=mark)


async def _tasks(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM tasks"))


async def _dialogs(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM dialogs"))


async def test_a_resident_types_what_she_needs(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    res = fake.add_user("Zhou Lan", language_code="zh-hans", phone_number="+8613912345678")
    res_en = fake.add_user("Mary", language_code="en")
    vol = fake.add_user("Wang", language_code="zh-hans")
    await asyncio.gather(register(fake, res, role="resident", area="7号楼"),
                         register(fake, res_en, role="resident", area="Building 2"),
                         register(fake, vol, role="volunteer"))
    db = await open_database(bot_process.database)
    try:
        # typed outside any dialog: one summary, in her language, with Submit
        summary = await _answer(fake, res, "家里水管漏水了，请帮忙看看")
        assert _has(summary, "d:confirm:submit"), (_text(summary), summary.inline_buttons)
        assert "家里水管漏水了，请帮忙看看" in _text(summary) and "尽快" in _text(summary), _text(summary)
        mark = _mark(fake, res)
        await fake.wait_callback_answer(await fake.press_button(res, summary, "d:confirm:submit"), timeout=T)
        await fake.wait_for_message(res, lambda m: "求助已发出" in _text(m), timeout=T, after_id=mark)
        await fake.wait_for_message(group, lambda m: "家里水管漏水了" in _text(m) and _has(m, "cl:"), timeout=T)
        assert await _tasks(db) == 1

        # thanks, yes, ok, an emoji: nothing starts; nor does an answer to one of the bot's messages
        for word in ("谢谢", "好的！", "是的，谢谢", "👍", "OK"):
            said = await _answer(fake, res, word)
            assert not _has(said, "d:"), (word, _text(said))
        mark = _mark(fake, res)
        await fake.send_text(res, None, "他已经来过了，修好了", reply_to=said)
        said = await fake.wait_for_message(res, timeout=T, after_id=mark)
        assert not _has(said, "d:"), _text(said)
        await settle(fake)
        assert await _tasks(db) == 1 and await _dialogs(db) == 0

        # "I need help": the usual first question
        asked = await _answer(fake, res, "我需要帮助")
        assert _has(asked, "d:cat:"), _text(asked)
        # typed in answer to it (no category's name): the same one summary
        summary = await _answer(fake, res, "帮我买点菜")
        assert _has(summary, "d:confirm:submit") and "帮我买点菜" in _text(summary), _text(summary)
        await fake.wait_callback_answer(await fake.press_button(res, summary, "d:confirm:-cancel"), timeout=T)
        await settle(fake)
        assert await _tasks(db) == 1 and await _dialogs(db) == 0

        # too long: a polite word, nothing starts
        said = await _answer(fake, res, "帮忙" * 400)
        assert "800" in _text(said) and not _has(said, "d:"), _text(said)

        # in English too
        summary = await _answer(fake, res_en, "Please help me carry a box upstairs")
        assert _has(summary, "d:confirm:submit") and "carry a box" in _text(summary), _text(summary)
        assert "As soon as possible" in _text(summary), _text(summary)

        # a volunteer's chatter starts nothing
        said = await _answer(fake, vol, "我今天下午有空")
        assert not _has(said, "d:"), _text(said)
        await settle(fake)
        assert await _tasks(db) == 1
    finally:
        await db.close()
