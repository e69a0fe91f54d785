"""Telegram-like flood control: token buckets per bot, per group and per private chat."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FloodConfig", "FloodControl", "TokenBucket"]


@dataclass
class FloodConfig:
    """Bucket sizes and refill rates (tokens per second)."""

    global_capacity: float = 30
    global_rate: float = 30
    group_capacity: float = 20
    group_rate: float = 1 / 3
    private_capacity: float = 10
    private_rate: float = 1


@dataclass
class TokenBucket:
    capacity: float
    rate: float
    tokens: float
    updated: float

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self, now: float, amount: float = 1) -> float:
        """Seconds until ``amount`` tokens are available (0 when available now)."""
        self._refill(now)
        if self.tokens >= amount:
            return 0.0
        if self.rate <= 0:
            return math.inf
        return (amount - self.tokens) / self.rate

    def take(self, amount: float = 1) -> None:
        self.tokens -= amount


@dataclass
class FloodControl:
    """All buckets of one bot. ``check`` consumes tokens or returns a retry_after in seconds."""

    config: FloodConfig = field(default_factory=FloodConfig)
    clock: Callable[[], float] = time.monotonic
    _global: TokenBucket | None = None
    _chats: dict[int, TokenBucket] = field(default_factory=dict)

    def _bucket_for_chat(self, chat_id: int, is_group: bool, now: float) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            cfg = self.config
            if is_group:
                bucket = TokenBucket(cfg.group_capacity, cfg.group_rate, cfg.group_capacity, now)
            else:
                bucket = TokenBucket(cfg.private_capacity, cfg.private_rate, cfg.private_capacity, now)
            self._chats[chat_id] = bucket
        return bucket

    def check(self, chat_id: int, is_group: bool, amount: int = 1) -> int:
        """Consume ``amount`` messages for ``chat_id``; return 0, or retry_after seconds (≥ 1)."""
        now = self.clock()
        if self._global is None:
            cfg = self.config
            self._global = TokenBucket(cfg.global_capacity, cfg.global_rate, cfg.global_capacity, now)
        chat_bucket = self._bucket_for_chat(chat_id, is_group, now)
        amount = int(min(amount, self._global.capacity, chat_bucket.capacity))
        wait = max(self._global.wait_time(now, amount), chat_bucket.wait_time(now, amount))
        if wait > 0:
            return max(1, math.ceil(wait)) if math.isfinite(wait) else 3600
        self._global.take(amount)
        chat_bucket.take(amount)
        return 0

    def reset(self) -> None:
        self._global = None
        self._chats.clear()
