"""Feed updates to a bot through the stand-in and time each answer (read-only on the stand-in).

An update is "available" when the stand-in queues it (the moment ``send_text``/``press_raw_callback``
returns; the stand-in stamps callback records and messages with wall time then). It is "answered" at
the stand-in's record of the bot's ``answerCallbackQuery`` for that query, or of the first
``sendMessage`` into that private chat after the command was sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.devkit.sandbox import FakeTelegram

# One step: sends one update and returns ("cb", query_id) or ("msg", chat_id).
Step = Callable[[], Awaitable[tuple[str, Any]]]


@dataclass
class Timing:
    sent: int = 0
    answered: int = 0
    latencies: list[float] = field(default_factory=list)
    first_sent: float = 0.0
    last_answer: float = 0.0
    unanswered: int = 0

    @property
    def elapsed(self) -> float:
        return max(1e-9, self.last_answer - self.first_sent)

    @property
    def rate(self) -> float:
        return self.answered / self.elapsed


class Watcher:
    """Incrementally scans ``fake.calls`` and matches answers to outstanding updates."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.index = len(fake.calls)
        self.cb: dict[str, float] = {}
        self.msg: dict[int, list[float]] = {}
        self.timing = Timing()

    def expect(self, kind: str, key: Any, sent_at: float) -> None:
        if kind == "cb":
            self.cb[key] = sent_at
        else:
            self.msg.setdefault(int(key), []).append(sent_at)

    @property
    def outstanding(self) -> int:
        return len(self.cb) + sum(len(v) for v in self.msg.values())

    def scan(self) -> None:
        calls = self.fake.calls
        end = len(calls)
        for call in calls[self.index:end]:
            if call.method == "answerCallbackQuery":
                t0 = self.cb.pop(str(call.params.get("callback_query_id")), None)
                if t0 is not None:
                    self._done(call.time - t0, call.time)
            elif call.method == "sendMessage":
                try:
                    chat = int(call.params.get("chat_id"))  # type: ignore[arg-type]  # (None: TypeError, skipped)
                except (TypeError, ValueError):
                    continue
                waiting = self.msg.get(chat)
                if waiting and call.time >= waiting[0]:
                    t0 = waiting.pop(0)
                    if not waiting:
                        del self.msg[chat]
                    self._done(call.time - t0, call.time)
        self.index = end

    def _done(self, latency: float, at: float) -> None:
        self.timing.answered += 1
        self.timing.latencies.append(latency)
        self.timing.last_answer = max(self.timing.last_answer, at)


async def drive(fake: FakeTelegram, steps: Sequence[Step], *, window: int = 200, drain_timeout: float = 60.0,
                burst: bool = False) -> Timing:
    """Send every step, keeping at most ``window`` unanswered (``burst``: send all at once)."""
    watcher = Watcher(fake)
    timing = watcher.timing
    timing.first_sent = time.time()
    for step in steps:
        while not burst and watcher.outstanding >= window:
            await asyncio.sleep(0.002)
            watcher.scan()
        sent_at = time.time()
        kind, key = await step()
        watcher.expect(kind, key, sent_at)
        timing.sent += 1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + drain_timeout
    while watcher.outstanding and loop.time() < deadline:
        await asyncio.sleep(0.01)
        watcher.scan()
    watcher.scan()
    timing.unanswered = watcher.outstanding
    return timing
