"""Handle updates concurrently across people, in order for each person.

With one update at a time, a person whose replies are slowed by Telegram's per-chat flood limit
(or who sends a hundred messages) would hold up everyone else's claim buttons. Here each person
has a lane: their messages are handled one after another, in the order Telegram sent them, while
other people's lanes run alongside. Button presses have a lane of their own per person, so a
press is answered promptly even behind a long queue of that person's messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


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


class PerPersonUpdateProcessor(BaseUpdateProcessor):
    """``max_concurrent_updates`` bounds the updates being handled; waiting ones cost a task each."""

    def __init__(self, max_concurrent_updates: int = 64) -> None:
        # The base class's semaphore is taken before the lane: keep it out of the way so one
        # person's long queue cannot occupy every slot, and bound real work with our own.
        super().__init__(1_000_000)
        self._working = asyncio.Semaphore(max_concurrent_updates)
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._waiting: dict[tuple[str, int], int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = lane(update)
        if key is None:
            async with self._working:
                await coroutine
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock, self._working:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if self._waiting[key] == 0:
                del self._waiting[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
