"""Lanes: updates are handled concurrently across people, in order for each person.

With one update at a time, a person whose replies are slowed by Telegram's per-chat flood limit
(or who sends a hundred messages) would hold up everyone else's claim buttons. So each person has
a lane: their messages are handled one after another, in the order Telegram sent them, while other
people's lanes run alongside. Button presses have a lane of their own per person, so a press is
answered promptly even behind a long queue of that person's messages. The inbox (bot/inbox.py)
keeps to the lanes, across restarts too.
"""

from __future__ import annotations

from telegram import Update


def lane(update: object) -> tuple[str, int] | None:
    if not isinstance(update, Update):
        return None
    user = update.effective_user
    chat = update.effective_chat
    kind = "cb" if update.callback_query is not None else "msg"
    if user is not None:
        return (kind, user.id)
    if chat is not None:
        return (kind, chat.id)
    return None
