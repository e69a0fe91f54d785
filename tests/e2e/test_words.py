"""What people read, in Chinese, through the stand-in (issue #20): a volunteer-only member is not told
during registration that "the volunteers who help you" see their phone; a resident's registration
names no identity (身份) and no command; the leaderboard says whether it ranks volunteers or organisations."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from tests.conftest import ADMIN_ID
from tests.e2e.people import register, setup_community

T = 10


def _phone_question(fake: FakeTelegram, user: Any) -> str:
    asked = [m for m in fake.bot_messages(fake.private_chat(user)) if "分享您的手机号" in str(m.text or "")]
    assert len(asked) == 1, [m.text for m in fake.bot_messages(fake.private_chat(user))]
    return str(asked[0].text)


async def test_volunteers_and_residents_hear_who_sees_their_phone(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    vol, gran = fake.add_user("小王", language_code="zh-hans"), fake.add_user("郭奶奶", language_code="zh-hans")
    await register(fake, vol, role="volunteer")
    await register(fake, gran, role="resident")
    said = _phone_question(fake, vol)
    assert "帮助您的志愿者" not in said and "社区工作人员" in said, said
    assert "帮助您的志愿者会看到" in _phone_question(fake, gran)
    # What she read while registering (the privacy notice too): no "身份", which reads as an identity
    # card, and no command to type ("随时发送 /deleteme"): the buttons she sees instead.
    transcript = [str(m.text or "") for m in fake.bot_messages(fake.private_chat(gran))]
    assert any("隐私说明" in text for text in transcript), transcript
    for text in transcript:
        assert "身份" not in text and not re.search(r"(?<![\w/])/[a-z]+", text), text

    mark = max(m.message_id for m in fake.private_chat(vol).messages)
    await fake.send_text(vol, None, "/leaderboard")
    board = await fake.wait_for_message(vol, lambda m: "🏆" in str(m.text or ""), timeout=T, after_id=mark)
    assert str(board.text).startswith("🏆 积分最多的志愿者"), board.text
    q = await fake.press_button(vol, board, "lb:month:org")
    await fake.wait_callback_answer(q, timeout=T)
    await fake.wait_for(lambda: str(board.text).startswith("🏆 积分最多的单位") or None, timeout=T)
    assert not fake.errors, fake.errors


def _keyboard_labels(message: Any) -> list[str]:
    rows = (message.reply_markup or {}).get("keyboard", [])
    return [b["text"] if isinstance(b, dict) else str(b) for row in rows for b in row]


@pytest.mark.unpaced
async def test_help_says_what_each_of_my_buttons_is_for(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """/help lists the asker's own menu buttons, each named as it reads, with what it is for (was: a
    list of commands to type, /tasks and the rest, the same for a resident as for a volunteer)."""
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    vol, gran = fake.add_user("小王", language_code="zh-hans"), fake.add_user("郭奶奶", language_code="zh-hans")
    await register(fake, vol, role="volunteer")
    await register(fake, gran, role="resident")
    helps = {}
    for who in (gran, vol):
        mark = max(m.message_id for m in fake.private_chat(who).messages)
        await fake.send_text(who, None, "/help")
        helps[who.id] = await fake.wait_for_message(who, lambda m: "邻里" in str(m.text or ""), timeout=T, after_id=mark)
    for who in (gran, vol):
        text, labels = str(helps[who.id].text), _keyboard_labels(helps[who.id])
        assert labels, helps[who.id]
        for label in labels:
            assert f"“{label}”：" in text or "English" in label, (label, text)
        assert re.findall(r"(?<![\w/])/[a-z]+", text) == ["/cancel"], text
    gran_help, vol_help = str(helps[gran.id].text), str(helps[vol.id].text)
    assert "语音" in gran_help and "🆘" in gran_help and "📋" not in gran_help, gran_help
    assert "📋" in vol_help and "🆘" not in vol_help, vol_help
    assert not fake.errors, fake.errors
