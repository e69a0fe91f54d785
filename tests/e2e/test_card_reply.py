"""A volunteer in a hurry answers a task's card in the group with words ("我来", "I can go"), as
people do in chat groups, and believes the task is theirs: it was not, and the bot said nothing, so
nobody came. Now the bot answers that message in the group, in the group's language: a claim is a
tap on 🙋 Claim (once per card, so replies cannot flood the group). Nothing is claimed, nothing
private is said; a card no longer open, a reply to another message, a command and chat between
people get no answer."""

from __future__ import annotations

from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import ask_for_help, register, setup_community

T = 15


def _has(m: Any, data: str) -> bool:
    return any(b.get("callback_data") == data for b in m.inline_buttons)


def _answers(m: Any, to: Any) -> bool:
    return bool(m.from_bot and (m.data.get("reply_to_message") or {}).get("message_id") == to.message_id)


def _bot_replies(group: Any, to: Any) -> list[Any]:
    return [m for m in group.messages if _answers(m, to)]


@pytest.mark.unpaced  # the flow, not pacing
async def test_words_in_reply_to_a_card_point_to_the_claim_button(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="zh-hans", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    res = fake.add_user("Zhou Lan", language_code="zh-hans", phone_number="+8613912345678")
    vol = fake.add_user("Wang", language_code="zh-hans")
    await register(fake, res, role="resident", area="7号楼1203室")
    await register(fake, vol, role="volunteer")
    fake.add_member(group, vol, announce=False)
    await ask_for_help(fake, res, "帮我买菜")
    card = await fake.wait_for_message(group, lambda m: _has(m, "cl:1"), timeout=T)

    said = await fake.send_text(vol, group, "我来", reply_to=card)
    answer = await fake.wait_for_message(group, lambda m: _answers(m, said), timeout=T)
    assert "🙋 领取任务" in str(answer.text), answer.text
    assert "13912345678" not in str(answer.text) and "1203" not in str(answer.text)
    db = await open_database(bot_process.database)
    try:
        assert await db.fetchval("SELECT COUNT(*) FROM claims") == 0
    finally:
        await db.close()

    # once per card, however many replies (the group's messages are few); no answer to a command, to
    # a reply to someone else, or once the card is taken
    again = [await fake.send_text(u, group, "我来我来", reply_to=card) for u in (vol, admin, vol)]
    command = await fake.send_text(vol, group, "/claim", reply_to=card)
    chat = await fake.send_text(admin, group, "谢谢大家")
    other = await fake.send_text(vol, group, "不客气", reply_to=chat)
    await fake.wait_callback_answer(await fake.press_button(vol, card, "cl:1"), timeout=T)
    await fake.wait_for(lambda: not _has(card, "cl:1"), timeout=T)
    late = await fake.send_text(admin, group, "我也来", reply_to=card)
    await settle(fake)
    for message in (*again, command, other, late):
        assert not _bot_replies(group, message), [m.text for m in _bot_replies(group, message)]
