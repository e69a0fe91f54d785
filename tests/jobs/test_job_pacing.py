"""The series job (bot/jobs/series.py, every ``BOT_SWEEP_INTERVAL``) and the voucher expiry
(bot/jobs/vouchers.py, every 600 s) pace their passes like the sweeps (tests/jobs/test_sweep_pacing.py):
a tick that completed no pass (the lease not held at that moment, or the pass failed) is tried again
at the next step (at most ``BOT_JOB_LEASE_RENEW`` seconds), not a whole interval later."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from bot.clock import FrozenClock
from bot.config import load_settings
from bot.instance import Instance, LeaseKeeper, Passes
from bot.jobs import series as series_job
from bot.jobs import vouchers
from bot.services import ledger, rewards
from storage.db import Database
from tests.factories import make_community, make_member
from tests.services.test_series import _saturday_series, _setup


class _Queue:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple[Callable[[Any], Any], float, Any]] = {}

    def run_repeating(self, callback: Callable[[Any], Any], *, interval: float, name: str, data: Any = None,
                      **_: Any) -> None:
        self.jobs[name] = (callback, interval, data)


def _app(**env: str) -> Any:
    settings = load_settings(BOT_JOB_LEASE_RENEW="10", **env)
    return SimpleNamespace(job_queue=_Queue(), bot_data={"runtime": SimpleNamespace(settings=settings)})


def _keeper() -> LeaseKeeper:
    return LeaseKeeper(Instance("web1:11", "web1", 11), timedelta(seconds=30), 10.0)


async def _events(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM tasks WHERE kind = 'event'"))


async def test_a_series_tick_that_posted_nothing_is_tried_again_at_the_next_step(
        db: Database, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.services import series

    _, staff = await _setup(db, now)
    await series.create_series(db, now, staff, _saturday_series(now))
    app = _app(BOT_SWEEP_INTERVAL="3600")
    passes = series_job.register(app)
    tick, every, data = app.job_queue.jobs["series"]
    assert isinstance(passes, Passes) and 0 < every <= 10 and data == {"first": True}

    keeper = _keeper()
    ctx = SimpleNamespace(bot_data={"leases": keeper}, db=db, now=lambda: now,
                          job=SimpleNamespace(data=data))
    await tick(ctx)                       # the lease is not held (yet): no pass
    assert await _events(db) == 0
    await keeper.tick(db)
    await tick(ctx)                       # the next step: the pass posts the first Saturday
    assert await _events(db) == 1

    calls: list[datetime] = []

    async def counted(db_: Database, at: datetime) -> int:
        calls.append(at)
        return 0

    with monkeypatch.context() as patched:
        patched.setattr(series, "post_due", counted)
        await tick(ctx)                   # within the interval after a whole pass: nothing
        assert calls == []

    async def broken(*_: Any) -> int:
        raise RuntimeError("database is locked")

    assert passes.started is not None
    passes.started -= 3600                # an interval later, the pass fails...
    with monkeypatch.context() as patched:
        patched.setattr(series, "post_due", broken)
        await tick(ctx)
    with monkeypatch.context() as patched:
        patched.setattr(series, "post_due", counted)
        await tick(ctx)                   # ...and the next step runs it
        assert calls == [now]


async def test_a_voucher_tick_that_expired_nothing_is_tried_again_at_the_next_step(
        db: Database, now: datetime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = await make_community(db, now)
    member = await make_member(db, now, cid)
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=member, amount=80, reason="task", key="seed", now=now)
    rid = await rewards.create_reward(db, community_id=cid, name_zh="A", kind="service", cost=40, valid_days=3,
                                      now=now, refund_on_expiry=True)
    first = await rewards.redeem(db, member_id=member, reward_id=rid, now=now)
    app = _app()
    passes = vouchers.schedule(app)
    tick, every, _ = app.job_queue.jobs["voucher_expiry"]
    assert isinstance(passes, Passes) and 0 < every <= 10 and 600 / every == round(600 / every)

    keeper = _keeper()
    ctx = SimpleNamespace(bot_data={"leases": keeper}, db=db, now=clock.now)
    clock.advance(days=3, seconds=1)
    await tick(ctx)                       # the lease is not held (yet): nothing expires
    assert (await rewards.get_voucher(db, first.id)).state == "issued"  # type: ignore[union-attr]
    await keeper.tick(db)
    await tick(ctx)                       # the next step expires it, not ten minutes later
    assert (await rewards.get_voucher(db, first.id)).state == "expired"  # type: ignore[union-attr]

    second = await rewards.redeem(db, member_id=member, reward_id=rid, now=clock.now())
    clock.advance(days=3, seconds=1)

    async def broken(*_: Any) -> int:
        raise RuntimeError("database is locked")

    with monkeypatch.context() as patched:
        patched.setattr(rewards, "expire_due", broken)
        await tick(ctx)                   # within ten minutes of the last pass: not due
        assert passes.started is not None
        passes.started -= 600
        await tick(ctx)                   # due, but the pass fails...
    assert (await rewards.get_voucher(db, second.id)).state == "issued"  # type: ignore[union-attr]
    await tick(ctx)                       # ...and the next step runs it
    assert (await rewards.get_voucher(db, second.id)).state == "expired"  # type: ignore[union-attr]

