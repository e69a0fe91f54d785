"""A new neighbour who types the words on a registration button instead of tapping it ("中文",
"我需要帮助", "我同意", "English", "I want to volunteer"), as many elderly people do, is understood,
the way the request dialog already takes typed answers; anything else still gets "please press a
button"."""

from __future__ import annotations

from typing import Any

import pytest

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from tests.conftest import ADMIN_ID
from tests.e2e.people import setup_community

T = 15


def _has(m: Any, prefix: str) -> bool:
    return any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


async def _answer(fake: FakeTelegram, user: Any, text: str) -> Any:
    sent = await fake.send_text(user, None, text)
    return await fake.wait_for_message(user, lambda m: m.from_bot, timeout=T, after_id=sent.message_id)


@pytest.mark.unpaced  # the dialog, not pacing
async def test_typed_button_words_during_registration(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)

    grandma = fake.add_user("Zhou", language_code="en")   # an English phone, but she reads Chinese
    assert _has(await _answer(fake, grandma, "/start"), "d:lang:")
    again = await _answer(fake, grandma, "xyz")
    assert _has(again, "d:lang:") and "press" in str(again.text), again.text
    role = await _answer(fake, grandma, "中文")
    assert _has(role, "d:role:") and "参与" in str(role.text), role.text
    name = await _answer(fake, grandma, "我需要帮助")
    assert "称呼" in str(name.text), name.text
    await _answer(fake, grandma, "周奶奶")
    await _answer(fake, grandma, "跳过")   # the phone: the Skip button's word
    consent = await _answer(fake, grandma, "7号楼")
    assert _has(consent, "d:consent:"), consent.text
    done = await _answer(fake, grandma, "我同意")
    assert "注册好了" in str(done.text), done.text

    vol = fake.add_user("Ann", language_code="zh-hans")
    assert _has(await _answer(fake, vol, "/start"), "d:lang:")
    role = await _answer(fake, vol, "English")
    assert _has(role, "d:role:") and "take part" in str(role.text), role.text
    name = await _answer(fake, vol, "I want to volunteer")
    assert "call you" in str(name.text), name.text
