"""Every timed job runs one tick at a time, and a late tick still runs, once (bot/instance.py's
ONE_AT_A_TIME): the voucher expiry and the group cards were scheduled with APScheduler's defaults, under
which a tick more than a second late is skipped (vouchers then waited ten more minutes to expire)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.events import (
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)

from bot.instance import ONE_AT_A_TIME

JOBS = ("voucher_expiry", "cards")


class _Gate:
    """A job's stand-in: each tick says it started, then waits to be let go; counts ticks at once."""

    def __init__(self) -> None:
        self.running = self.most = self.ticks = self.cut = 0
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def tick(self, _ctx: Any) -> None:
        self.running += 1
        self.ticks += 1
        self.most = max(self.most, self.running)
        self.started.set()
        try:
            await self.go.wait()
        except asyncio.CancelledError:
            self.cut += 1
            raise
        finally:
            self.running -= 1


def _app(monkeypatch: pytest.MonkeyPatch, gates: dict[str, _Gate]) -> Any:
    from bot.app import build_application
    from bot.config import load_settings
    from bot.jobs import cards, vouchers

    monkeypatch.setenv("BOT_TOKEN", "123456:TEST")
    monkeypatch.setattr(vouchers, "expire_vouchers", gates["voucher_expiry"].tick)
    monkeypatch.setattr(cards, "refresh_cards", gates["cards"].tick)
    app = build_application(load_settings())
    monkeypatch.setattr(app.bot_data["leases"], "holds", lambda _job: True)  # as if this instance held them
    return app


def test_every_repeating_job_is_scheduled_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(monkeypatch, {name: _Gate() for name in JOBS})
    jobs = {job.name: job.job for job in app.job_queue.jobs()}
    assert set(JOBS) <= set(jobs)
    for name, job in jobs.items():
        assert {key: getattr(job, key, "default") for key in ONE_AT_A_TIME} == ONE_AT_A_TIME, name


@pytest.mark.parametrize("name", JOBS)
async def test_two_ticks_never_overlap_and_a_late_tick_still_runs(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    gates = {n: _Gate() for n in JOBS}
    gate = gates[name]
    app = _app(monkeypatch, gates)
    queue = app.job_queue
    job = next(j.job for j in queue.jobs() if j.name == name)
    heard = {code: asyncio.Event() for code in (EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_EXECUTED)}
    refused, missed, ended = heard.values()

    def hear(event: JobExecutionEvent) -> None:
        if event.job_id == job.id:
            heard[event.code].set()

    queue.scheduler.add_listener(hear, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_EXECUTED)
    await queue.start()
    try:
        job.modify(next_run_time=datetime.now(UTC))
        await asyncio.wait_for(gate.started.wait(), 10)
        job.modify(next_run_time=datetime.now(UTC))  # due again while the first tick still runs
        await asyncio.wait_for(refused.wait(), 10)
        assert (gate.ticks, gate.most) == (1, 1)
        gate.go.set()
        await asyncio.wait_for(ended.wait(), 10)  # the scheduler counts the tick as over
        gate.started.clear()
        # A tick due long ago (the process was busy, or asleep): it runs once now instead of being skipped.
        job.modify(next_run_time=datetime.now(UTC) - timedelta(minutes=5))
        await asyncio.wait_for(asyncio.wait([asyncio.create_task(gate.started.wait()),
                                             asyncio.create_task(missed.wait())],
                                            return_when=asyncio.FIRST_COMPLETED), 10)
        assert gate.started.is_set() and not missed.is_set()
        assert gate.most == 1
    finally:
        gate.go.set()
        await queue.stop(wait=False)


async def test_stopping_waits_for_running_ticks_and_starts_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tick that falls due while the queue stops is not started only to be cancelled (python-telegram-
    bot's own stop waits for the ticks running when it begins, then cancels any started meanwhile: a
    tick cut mid-run, or "Error running job" in the log when it was cancelled before its first step)."""
    gates = {n: _Gate() for n in JOBS}
    running, due = gates["voucher_expiry"], gates["cards"]
    app = _app(monkeypatch, gates)
    queue = app.job_queue
    jobs = {j.name: j.job for j in queue.jobs()}
    await queue.start()
    try:
        jobs["voucher_expiry"].modify(next_run_time=datetime.now(UTC))
        await asyncio.wait_for(running.started.wait(), 10)
        stopping = asyncio.create_task(queue.stop())
        await asyncio.sleep(0)
        jobs["cards"].modify(next_run_time=datetime.now(UTC))  # falls due while the queue stops
        with contextlib.suppress(TimeoutError):  # (it must not start: waiting out a second proves nothing more)
            await asyncio.wait_for(due.started.wait(), 1)
        assert not stopping.done()  # the running tick is waited for
        running.go.set()
        await asyncio.wait_for(stopping, 10)
        assert running.ticks == 1 and running.cut == 0
        assert due.ticks == 0  # none started once stopping began (one would outlive the database: the tick is shielded)
    finally:
        running.go.set()
        due.go.set()
        if queue.scheduler.running:
            await queue.stop(wait=False)
