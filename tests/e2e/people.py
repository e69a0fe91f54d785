"""The people helpers live in the package (``bot.devkit.scenario``) so ``linli demo`` uses them too;
``say`` is for tests only."""

from typing import Any

from bot.devkit.sandbox import FakeTelegram
from bot.devkit.scenario import ask_for_help, make_staff, register, setup_community

__all__ = ["ask_for_help", "make_staff", "register", "say", "setup_community"]


async def say(fake: FakeTelegram, user: Any, text: str, expect: str, where: Any = None, timeout: float = 10) -> str:
    """``user`` sends ``text`` (in private, or in ``where``); wait for the bot's next message there
    containing ``expect`` and return its text."""
    chat = where or fake.private_chat(user)
    mark = max((m.message_id for m in chat.messages), default=0) if chat is not None else 0
    await fake.send_text(user, where, text)
    msg = await fake.wait_for_message(where or user, lambda m: expect in str(m.text or ""), timeout=timeout,
                                      after_id=mark)
    return str(msg.text)
