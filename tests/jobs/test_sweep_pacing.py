"""The sweeps' timer (bot/jobs/sweeps.py ``register``): a pass every ``BOT_SWEEP_INTERVAL`` seconds,
but a tick that completed none (the lease not held at that moment, as on a machine too loaded to
renew it in time, or a pass that failed) is tried again at the next step (at most
``BOT_JOB_LEASE_RENEW`` seconds), not a whole interval later. ``linli demo`` sweeps once an hour
and waits for its start-up pass: a skipped first tick once left it waiting for six minutes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from bot.config import load_settings
from bot.instance import Instance, LeaseKeeper, Passes
from bot.jobs import sweeps
from storage.db import Database
from storage.housekeeping import SWEPT_KEY


class _Queue:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple[Callable[[Any], Any], float]] = {}

    def run_repeating(self, callback: Callable[[Any], Any], *, interval: float, name: str, **_: Any) -> None:
        self.jobs[name] = (callback, interval)


async def _swept(db: Database) -> str | None:
    found = await db.fetchval("SELECT value FROM kv WHERE key = :key", {"key": SWEPT_KEY})
    return None if found is None else str(found)


async def test_a_tick_that_ran_no_pass_is_tried_again_at_the_next_step(
        db: Database, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(BOT_SWEEP_INTERVAL="3600", BOT_JOB_LEASE_RENEW="10")
    queue = _Queue()
    app = SimpleNamespace(job_queue=queue, bot_data={"runtime": SimpleNamespace(settings=settings)})
    passes = sweeps.register(app)  # type: ignore[arg-type]
    tick, every = queue.jobs["sweeps"]
    assert isinstance(passes, Passes) and 0 < every <= 10 and 3600 / every == round(3600 / every)

    keeper = LeaseKeeper(Instance("web1:11", "web1", 11), timedelta(seconds=30), 10.0)
    clock = [now]
    ctx = SimpleNamespace(bot_data={"leases": keeper}, db=db, now=lambda: clock[0])
    await tick(ctx)                       # the lease is not held (yet, or renewed too late): no pass
    assert await _swept(db) is None
    await keeper.tick(db)
    await tick(ctx)                       # the next step: the pass
    assert await _swept(db) is not None
    first = await _swept(db)

    clock[0] = now + timedelta(minutes=5)
    await tick(ctx)                       # within the hour after a whole pass: nothing
    assert await _swept(db) == first

    async def broken(*_: Any) -> dict[str, int]:
        raise RuntimeError("database is locked")

    assert passes.started is not None
    passes.started -= 3600                # an hour later, the pass fails...
    with monkeypatch.context() as patched:
        patched.setattr(sweeps, "run_once", broken)
        await tick(ctx)
    assert await _swept(db) == first
    await tick(ctx)                       # ...and the next step runs it
    assert await _swept(db) != first


def test_the_steps_divide_the_interval() -> None:
    assert Passes.of(30, 10).step == 10
    assert Passes.of(45, 10).step == 9
    assert Passes.of(0.5, 10).step == 0.5
    assert Passes.of(3600, 10).step == 10
