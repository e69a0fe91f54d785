"""The people helpers live in the package (``bot.devkit.scenario``) so ``linli demo`` uses them too;
``say`` is for tests only."""

import time
from datetime import datetime
from typing import Any

from bot.devkit.harness import settle
from bot.devkit.sandbox import FakeTelegram
from bot.devkit.sandbox.state import Chat
from bot.devkit.scenario import ask_for_help, make_staff, register, setup_community
from storage.db import Database
from tests.factories import make_community

__all__ = ["ask_for_help", "community_with_group", "make_staff", "register", "say", "send_unreadable_poll", "setup_community"]


async def community_with_group(fake: FakeTelegram, db: Database, now: datetime, *, title: str = "Sunny volunteers",
                               creator: str = "Admin", **community: Any) -> tuple[Chat, int]:
    """A group the bot was added to as an admin, and a community bound to it written straight into
    the bot's database (quicker than ``/setup``, for tests about something else); (group, id)."""
    admin = fake.add_user(creator, language_code="en")
    group = fake.add_group(title, creator=admin)
    await fake.add_bot_to_group(group, admin, admin=True)
    await settle(fake)
    return group, await make_community(db, now, group_chat_id=group.id, **community)


def send_unreadable_poll(fake: FakeTelegram, user: Any) -> None:
    """``user`` sends a poll shaped as an older Bot API sent it (without the fields version 9.6 made
    required): an update python-telegram-bot cannot read. "Tea or coffee?" must not reach a log."""
    chat = {"id": user.id, "type": "private", "first_name": user.first_name}
    old_poll = {"id": "5", "question": "Tea or coffee?", "options": [{"text": "Tea", "voter_count": 0}],
                "total_voter_count": 0, "is_closed": False, "is_anonymous": True, "type": "regular",
                "allows_multiple_answers": False}
    fake._enqueue(fake.bot, "message", {"message_id": 1, "date": int(time.time()), "chat": chat,
                                        "from": user.to_dict(), "poll": old_poll})


async def say(fake: FakeTelegram, user: Any, text: str, expect: str, where: Any = None, timeout: float = 10) -> str:
    """``user`` sends ``text`` (in private, or in ``where``); wait for the bot's next message there
    containing ``expect`` and return its text."""
    chat = where or fake.private_chat(user)
    mark = max((m.message_id for m in chat.messages), default=0) if chat is not None else 0
    await fake.send_text(user, where, text)
    msg = await fake.wait_for_message(where or user, lambda m: expect in str(m.text or ""), timeout=timeout,
                                      after_id=mark)
    return str(msg.text)
