"""Flood control for every outgoing Bot API call, per chat and never global on a 429.

python-telegram-bot's ``AIORateLimiter`` pauses *every* request (callback answers included)
while it waits out one chat's 429, so one chatty private chat or a broadcast could make claim
buttons time out. This limiter instead:

- lets calls that write to no chat (answerCallbackQuery, getUpdates, getMe, ...) through at once;
- keeps sliding windows (safe whether Telegram counts with a bucket or a window): about 30
  messages/s overall, 20/min per group, a short burst per private chat;
- on a 429 retries only that call, after ``retry_after``, up to ``max_retries`` times;
- drops parameters the method does not accept (see ``drop_unknown_parameters``);
- reserves each message to a group in the database, and while several instances are live every
  message, in the windows they share (``budget``: bot/budget.py; alone, no database call for a
  private chat).

``group_room`` reads this process's window only: it orders what the sender (the one instance
holding the outbox lease: cards, notices, honours) sends a group first. Messages other instances send
the group (answers to commands typed there) are not in it; the database's count keeps the group's
limit across all instances, and a send that finds the group's budget spent there waits for it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]

# Methods that only read or answer and write no message into a chat.
UNLIMITED = {
    "answerCallbackQuery", "getUpdates", "getMe", "getChat", "getChatMember", "getChatAdministrators",
    "getChatMemberCount", "getFile", "setMyCommands", "getMyCommands", "deleteMyCommands", "setWebhook",
    "deleteWebhook", "getWebhookInfo", "sendChatAction", "setChatMenuButton", "logOut", "close",
    "setMyDescription", "setMyShortDescription", "setMyName",
}


def retry_seconds(exc: RetryAfter) -> float:
    """Seconds to wait from a 429 (without PTB's deprecation warning about the attribute type)."""
    value = getattr(exc, "_retry_after", None)
    if value is None:
        return 1.0
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


class SlidingWindow:
    """At most ``limit`` events in any ``period`` seconds."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.stamps: deque[float] = deque()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                while self.stamps and now - self.stamps[0] >= self.period:
                    self.stamps.popleft()
                if len(self.stamps) < self.limit:
                    self.stamps.append(now)
                    return
                await asyncio.sleep(self.period - (now - self.stamps[0]) + 0.001)

    def room(self) -> int:
        """How many more events the window takes now without waiting (a read: nothing is taken)."""
        now = time.monotonic()
        used = sum(1 for stamp in self.stamps if now - stamp < self.period)
        return max(0, self.limit - used)


@functools.cache
def _accepted_parameters() -> dict[str, frozenset[str]]:
    """Each Bot API method's parameter names, from the bundled copy of the official description."""
    spec_path = Path(__file__).parent / "devkit" / "sandbox" / "bot_api_spec.json"
    methods = json.loads(spec_path.read_text(encoding="utf-8"))["methods"]
    return {name: frozenset(f["name"] for f in m["fields"]) for name, m in methods.items()}


def drop_unknown_parameters(endpoint: str, data: dict[str, Any]) -> None:
    """python-telegram-bot adds the default ``parse_mode`` to some methods that have no such
    parameter (editMessageReplyMarkup); Telegram ignores it, a strict server refuses the call.
    Remove, in place, whatever the method does not accept."""
    accepted = _accepted_parameters().get(endpoint)
    if accepted is None:
        return
    for key in [k for k in data if k not in accepted]:
        log.debug("dropping parameter %s not accepted by %s", key, endpoint)
        del data[key]


class ChatRateLimiter(BaseRateLimiter[int]):
    def __init__(
        self,
        overall: tuple[int, float] = (28, 1.0),
        per_group: tuple[int, float] = (19, 60.0),
        per_private: tuple[int, float] = (8, 8.0),
        max_retries: int = 5,
    ) -> None:
        self.overall = SlidingWindow(*overall)
        self.per_group = per_group
        self.per_private = per_private
        self.max_retries = max_retries
        self.windows: dict[int | str, SlidingWindow] = {}
        self.budget: Any = None   # a bot.budget.SharedBudget once the database is open (bot.app._share_budget)

    @classmethod
    def unthrottled(cls) -> ChatRateLimiter:
        """No pacing (429s are still retried): for a local stand-in with its flood limits off."""
        return cls(overall=(10**9, 1.0), per_group=(10**9, 1.0), per_private=(10**9, 1.0))

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _window(self, chat_id: int | str) -> SlidingWindow:
        window = self.windows.get(chat_id)
        if window is None:
            is_group = isinstance(chat_id, str) or chat_id < 0
            window = SlidingWindow(*(self.per_group if is_group else self.per_private))
            if len(self.windows) > 50_000:  # forget idle chats now and then
                self.windows.clear()
            self.windows[chat_id] = window
        return window

    def room(self, chat_id: int) -> int:
        """Messages the chat's window takes now without waiting: the one per-group budget that the
        card job and the outbox both read before they send to a group (cards may use all of it)."""
        window = self.windows.get(chat_id)
        if window is None:
            return self.per_group[0] if chat_id < 0 else self.per_private[0]
        return window.room()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        drop_unknown_parameters(endpoint, data)  # ``data`` is the dict the call will send
        chat_id = data.get("chat_id")
        limited = endpoint not in UNLIMITED and chat_id is not None
        if isinstance(chat_id, str):
            try:
                chat_id = int(chat_id)
            except ValueError:
                pass
        retries = rate_limit_args if rate_limit_args is not None else self.max_retries
        for attempt in range(retries + 1):
            if limited:
                assert chat_id is not None
                await self._window(chat_id).acquire()
                await self.overall.acquire()
                await self._shared(chat_id)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt >= retries:
                    raise
                delay = retry_seconds(exc)
                log.info("flood limit on %s (chat %s); retrying in %.1fs", endpoint, chat_id, float(delay))
                await asyncio.sleep(float(delay) + 0.1)
        raise AssertionError("unreachable")

    async def _shared(self, chat_id: int | str) -> None:
        budget = self.budget
        if budget is None or not isinstance(chat_id, int):
            return
        try:
            await budget.acquire(chat_id)
        except Exception:   # the database is away: the local pacing still holds
            log.warning("could not reserve a message in the shared budget", exc_info=True)


def group_room(bot: Any, chat_id: int) -> int | None:
    """The free part of a group's message budget in this process (``ChatRateLimiter.room``; what
    other instances sent the group is not in it: see the module); None when the bot has no such
    limiter (no pacing: the budget is not ours to keep)."""
    limiter = getattr(bot, "rate_limiter", None)
    if isinstance(limiter, ChatRateLimiter):
        return limiter.room(chat_id)
    return None
