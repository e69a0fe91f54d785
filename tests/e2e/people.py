"""The people helpers live in the package (``bot.devkit.scenario``) so ``linli demo`` uses them too;
``say`` is for tests only."""

from datetime import datetime
from typing import Any

from bot.devkit.harness import settle
from bot.devkit.sandbox import FakeTelegram
from bot.devkit.sandbox.state import Chat
from bot.devkit.scenario import ask_for_help, make_staff, register, setup_community
from storage.db import Database
from tests.factories import make_community

__all__ = ["ask_for_help", "community_with_group", "make_staff", "register", "say", "setup_community"]


async def community_with_group(fake: FakeTelegram, db: Database, now: datetime, *, title: str = "Sunny volunteers",
                               creator: str = "Admin", **community: Any) -> tuple[Chat, int]:
    """A group the bot was added to as an admin, and a community bound to it written straight into
    the bot's database (quicker than ``/setup``, for tests about something else); (group, id)."""
    admin = fake.add_user(creator, language_code="en")
    group = fake.add_group(title, creator=admin)
    await fake.add_bot_to_group(group, admin, admin=True)
    await settle(fake)
    return group, await make_community(db, now, group_chat_id=group.id, **community)


async def say(fake: FakeTelegram, user: Any, text: str, expect: str, where: Any = None, timeout: float = 10) -> str:
    """``user`` sends ``text`` (in private, or in ``where``); wait for the bot's next message there
    containing ``expect`` and return its text."""
    chat = where or fake.private_chat(user)
    mark = max((m.message_id for m in chat.messages), default=0) if chat is not None else 0
    await fake.send_text(user, where, text)
    msg = await fake.wait_for_message(where or user, lambda m: expect in str(m.text or ""), timeout=timeout,
                                      after_id=mark)
    return str(msg.text)
