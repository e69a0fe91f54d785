"""Telegram's flood limits kept across several instances, in the database.

Each process paces its own calls (bot/ratelimit.py), which is enough while it is the only one.
While more than one instance is live (``LeaseKeeper.others``, ``SharedBudget.shared``), two
processes could each send the same person a message within a second; so then every limited call
first reserves a place in fixed windows shared through the table ``send_budget``
(storage/send_budget.py): one for the chat and one for the whole bot, both or neither. A full
window means waiting for the next one.

The windows are chosen so that Telegram's buckets are never overdrawn even at a window's edge:
1 message a second per private chat, 2 per 6 seconds per group (at most 4 in a burst), 28 a
second overall. Windows are real time in whole seconds (the instances' clocks must agree: NTP);
old ones are pruned by the sweeps.

Groups are counted in the database with one instance too (a few writes a minute per group: at most
20 messages go to a group in a minute), and every group message, alone or not, fits in at most 20
in its last 10 windows (54–60 s, ``GROUP_SPAN``): an instance that starts, or one that has not yet
noticed it at its next renewal, then counts what the others sent the group before, instead of
adding its own answers to a burst the group's bucket has just paid for. Alone, the span never
holds more than the process's own window allows (19 in any 60 s), so nothing waits for it; the
2-per-window pacing is left to the process (a burst of new cards goes out at once); private chats
and the overall window cost no database call.
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
GROUP_ALONE = (10**6, 6)   # the group's windows while alone: counted, paced by the process itself
GROUP_SPAN = (20, 10)      # at most 20 messages in a group's last 10 windows, alone or not
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
    shared: bool = True   # other instances are live (else only groups are counted: see the module)

    async def wait_time(self, chat_id: int) -> float:
        """Reserve one message for ``chat_id``: 0 when reserved, else seconds until the full window ends."""
        now = self.clock()
        overall = _window(send_budget.OVERALL, OVERALL, now)
        if chat_id < 0:
            chat = _window(chat_id, GROUP if self.shared else GROUP_ALONE, now)
            since = chat[1] - (GROUP_SPAN[1] - 1) * GROUP[1]
            full = await send_budget.reserve_group(self.db, chat, since, GROUP_SPAN[0], overall if self.shared else None)
            seconds = GROUP[1]
        elif not self.shared:
            return 0.0
        else:
            chat = _window(chat_id, PRIVATE, now)
            full = await send_budget.reserve(self.db, chat, overall)
            seconds = PRIVATE[1]
        if full is None:
            return 0.0
        start, seconds = (overall[1], OVERALL[1]) if full == "overall" else (chat[1], seconds)
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
