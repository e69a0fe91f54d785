"""Telegram's flood limits kept across several instances, in the database.

Each process paces its own calls (bot/ratelimit.py), which is enough while it is the only one.
While more than one instance is live (``LeaseKeeper.others``), two processes could each send the
same person a message within a second; so then every limited call first reserves a place in
fixed windows shared through the table ``send_budget`` (storage/send_budget.py): one for the chat
and one for the whole bot, both or neither. A full window means waiting for the next one.

The windows are chosen so that Telegram's buckets are never overdrawn even at a window's edge:
1 message a second per private chat, 2 per 6 seconds per group (20 a minute, at most 4 in a
burst), 28 a second overall. Windows are real time in whole seconds (the instances' clocks must
agree: NTP); old ones are pruned by the sweeps. With one instance no database call is added.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from storage import send_budget
from storage.db import Database

log = logging.getLogger(__name__)

PRIVATE = (1, 1)   # (messages, seconds)
GROUP = (2, 6)
OVERALL = (28, 1)
KEEP_SECONDS = 120


def _window(chat_id: int, limit: tuple[int, int], now: float) -> tuple[int, int, int]:
    count, seconds = limit
    return chat_id, int(now // seconds) * seconds, count


@dataclass
class SharedBudget:
    """Reservations in the shared windows; ``clock`` is real time in seconds and ``sleep`` waits
    (tests pass their own)."""

    db: Database
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def wait_time(self, chat_id: int) -> float:
        """Reserve one message for ``chat_id``: 0 when reserved, else seconds until the full window ends."""
        now = self.clock()
        is_group = chat_id < 0
        chat = _window(chat_id, GROUP if is_group else PRIVATE, now)
        overall = _window(send_budget.OVERALL, OVERALL, now)
        full = await send_budget.reserve(self.db, chat, overall)
        if full is None:
            return 0.0
        start, seconds = (chat[1], (GROUP if is_group else PRIVATE)[1]) if full == "chat" else (overall[1], OVERALL[1])
        return max(0.001, start + seconds - now)

    async def acquire(self, chat_id: int) -> None:
        """Wait until a message to ``chat_id`` fits every shared window, and reserve it."""
        while True:
            wait = await self.wait_time(chat_id)
            if wait <= 0:
                return
            await self.sleep(wait + 0.001)


async def prune(db: Database, now: float | None = None) -> int:
    """Forget windows older than ``KEEP_SECONDS`` (the sweeps call it)."""
    return await send_budget.prune(db, int((time.time() if now is None else now) - KEEP_SECONDS))
