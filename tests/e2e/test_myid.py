"""/myid: anyone finds their own Telegram user id (for BOT_ADMIN_IDS) in a private chat, in their
language; in a group the bot only points to the private chat and shows nobody's id."""

from __future__ import annotations

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram


def _text(message: object) -> str:
    return str(getattr(message, "text", None) or "")


async def test_myid_answers_anyone_in_private_in_their_language(fake: FakeTelegram, bot_process: BotProcess) -> None:
    stranger = fake.add_user("Ann", language_code="en")          # not registered: /myid still answers
    await fake.send_text(stranger, None, "/myid")
    reply = await fake.wait_for_message(stranger, timeout=10)
    assert f"Your Telegram user id is {stranger.id}." in _text(reply), _text(reply)
    assert "BOT_ADMIN_IDS" in _text(reply)
    chinese = fake.add_user("王", language_code="zh-hans")
    await fake.send_text(chinese, None, "/myid")
    reply = await fake.wait_for_message(chinese, timeout=10)
    assert "您的 Telegram 用户 ID 是" in _text(reply) and str(chinese.id) in _text(reply)
    assert fake.errors == []


async def test_myid_in_a_group_points_to_the_private_chat(fake: FakeTelegram, bot_process: BotProcess) -> None:
    member = fake.add_user("Bo", language_code="en")
    group = fake.add_group("Sunny Lane", creator=member)
    await fake.add_bot_to_group(group, member)
    await settle(fake, quiet=0.3)
    await fake.send_text(member, group, "/myid")
    reply = await fake.wait_for_message(group, timeout=10)
    assert any("url" in b for b in reply.inline_buttons)       # "Open a private chat"
    await settle(fake, quiet=0.5)
    for message in fake.bot_messages(group):
        assert str(member.id) not in _text(message)
    assert fake.private_chat(member) is None or not fake.bot_messages(fake.private_chat(member))
    assert fake.errors == []
