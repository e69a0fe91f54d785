"""bot/budget.py on storage/send_budget.py: two instances (two limiters on one database) together
never overdraw Telegram's limits: 1 message a second to a private chat, 20 a minute to a group,
and never more than the stand-in's buckets (Telegram's model) allow."""

from __future__ import annotations

import asyncio
import time as time_module
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from bot.app import _share_budget
from bot.budget import SharedBudget, prune
from bot.devkit.sandbox.flood import FloodControl
from bot.ratelimit import ChatRateLimiter
from storage.db import Database

START = 1_800_000_000.25


class FakeTime:
    def __init__(self) -> None:
        self.now = START

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def two_instances(db: Database, time: FakeTime) -> list[ChatRateLimiter]:
    limiters = [ChatRateLimiter.unthrottled(), ChatRateLimiter.unthrottled()]   # only the shared budget paces
    for limiter in limiters:
        limiter.budget = SharedBudget(db, clock=time.clock, sleep=time.sleep)
    return limiters


async def send_all(limiters: list[ChatRateLimiter], chat_id: int, count: int, time: FakeTime) -> list[float]:
    """``count`` messages to ``chat_id``, alternating the two limiters: the send times."""
    sent: list[float] = []
    flood = FloodControl(clock=time.clock)

    async def callback(*_: Any) -> bool:
        assert flood.check(chat_id, chat_id < 0) == 0, "Telegram would answer 429"
        sent.append(time.now)
        return True

    for i in range(count):   # each waits as long as the shared budget says (the fake clock moves)
        await limiters[i % 2].process_request(callback, (), {}, "sendMessage", {"chat_id": chat_id}, 0)
    return sent


async def test_reservations_at_the_same_moment_get_one_place(db: Database) -> None:
    time = FakeTime()
    budgets = [SharedBudget(db, clock=time.clock, sleep=time.sleep) for _ in range(2)]
    waits = await asyncio.gather(*(budgets[i % 2].wait_time(4242) for i in range(10)))
    assert sorted(waits)[0] == 0.0 and all(w > 0 for w in sorted(waits)[1:])


async def test_one_private_chat_gets_at_most_one_message_a_second(db: Database) -> None:
    time = FakeTime()
    sent = await send_all(two_instances(db, time), 4242, 30, time)
    assert len(sent) == 30
    per_second = Counter(int(t) for t in sent)
    assert max(per_second.values()) == 1
    assert sent[-1] - sent[0] >= 28   # paced over the seconds, not sent in a burst


async def test_a_group_gets_at_most_twenty_a_minute(db: Database) -> None:
    time = FakeTime()
    sent = await send_all(two_instances(db, time), -100777, 50, time)
    assert len(sent) == 50
    per_minute = Counter(int(t // 60) for t in sent)
    assert max(per_minute.values()) <= 20
    # any 60 seconds hold at most 20 plus one window's edge
    assert all(sum(1 for u in sent if t <= u < t + 60) <= 22 for t in sent)


async def test_the_overall_window_is_shared_and_full_means_waiting(db: Database) -> None:
    time = FakeTime()
    budget = SharedBudget(db, clock=time.clock, sleep=time.sleep)
    other = SharedBudget(db, clock=time.clock, sleep=time.sleep)
    waits = [await (budget if i % 2 else other).wait_time(1000 + i) for i in range(30)]
    assert waits[:28] == [0.0] * 28
    assert all(0 < w <= 1 for w in waits[28:])   # full: until the next second
    time.now += 1
    assert await budget.wait_time(5000) == 0.0
    # a chat refused for the overall window kept no place of its own
    assert await other.wait_time(1028) == 0.0


async def test_old_windows_are_pruned(db: Database) -> None:
    time = FakeTime()
    budget = SharedBudget(db, clock=time.clock, sleep=time.sleep)
    assert await budget.wait_time(1) == 0.0
    assert await prune(db, START + 60) == 0
    assert await prune(db, START + 600) == 2   # the chat's window and the overall one


async def test_the_sweeps_prune_the_windows(db: Database) -> None:
    from bot.jobs import sweeps

    await SharedBudget(db, clock=lambda: time_module.time() - 600).wait_time(4242)
    out = await sweeps.run_once(db, datetime.now(UTC))
    assert out["pruned_send_budget"] == 2


def test_the_budget_is_shared_only_while_other_instances_are_live(db: Database) -> None:
    limiter = ChatRateLimiter()
    settings = SimpleNamespace(flood_control=True)
    app: Any = SimpleNamespace(bot=SimpleNamespace(rate_limiter=limiter), bot_data={"runtime": SimpleNamespace(settings=settings)})
    keeper: Any = SimpleNamespace(others=0)
    _share_budget(app, db, keeper)
    budget = limiter.budget
    assert isinstance(budget, SharedBudget) and budget.db is db
    assert not budget.shared                            # alone: groups counted, private chats no database call
    keeper.others = 1
    _share_budget(app, db, keeper)
    assert limiter.budget is budget and budget.shared
    _share_budget(app, db, keeper)
    assert limiter.budget is budget and budget.shared   # kept while the others run
    keeper.others = 0
    _share_budget(app, db, keeper)
    assert limiter.budget is budget and not budget.shared   # the other stopped
    bare = ChatRateLimiter.unthrottled()
    app.bot.rate_limiter = bare
    settings.flood_control, keeper.others = False, 2    # a stand-in without flood limits: no pacing at all
    _share_budget(app, db, keeper)
    assert bare.budget is None


async def test_a_group_burst_sent_alone_counts_for_an_instance_that_joins(db: Database) -> None:
    """An instance alone may send a group a burst (its own pacing allows 19 at once). A second
    instance starting then (its first answers in that group, before or after the first one has seen
    it) must count that burst: Telegram's bucket for the group (20, refilled 1 every 3 s) is nearly
    empty. Every group message is counted in the database, with one instance as with several."""
    time = FakeTime()
    flood = FloodControl(clock=time.clock)
    group = -100555
    sent: list[float] = []

    async def callback(*_: Any) -> bool:
        assert flood.check(group, True) == 0, f"Telegram would answer 429 (message {len(sent) + 1})"
        sent.append(time.now)
        return True

    alone, joined = ChatRateLimiter.unthrottled(), ChatRateLimiter.unthrottled()
    alone.budget = SharedBudget(db, clock=time.clock, sleep=time.sleep, shared=False)   # alone, as it thinks
    for _ in range(19):
        await alone.process_request(callback, (), {}, "sendMessage", {"chat_id": group}, 0)
    time.now += 2
    joined.budget = SharedBudget(db, clock=time.clock, sleep=time.sleep)   # sees the first one at its start
    for i in range(12):   # both answer in the group; the first has not noticed the second yet
        await (joined if i % 2 == 0 else alone).process_request(callback, (), {}, "sendMessage", {"chat_id": group}, 0)
    assert len(sent) == 31
    # the burst's minute gets one message more (20 in all), not the second instance's 2 per 6 s on top
    assert sum(1 for t in sent if t < START + 54) == 20


async def test_alone_a_group_never_waits_for_the_database_within_its_own_pacing(db: Database) -> None:
    """One instance alone sending a group as fast as its own window allows (19 in any 60 s) is
    counted in the database but never held there."""
    time = FakeTime()
    budget = SharedBudget(db, clock=time.clock, sleep=time.sleep, shared=False)
    stamps: list[float] = []
    for step in [0.0] * 19 + [60.01] + [0.5] * 18 + [7.0] * 30:   # a burst, then the window's pace
        time.now += step
        while stamps and time.now - stamps[0] >= 60:
            stamps.pop(0)
        if len(stamps) >= 19:   # the process's own window would wait: so does this caller
            time.now = stamps[0] + 60
            stamps.pop(0)
        assert await budget.wait_time(-100321) == 0.0, f"held by the database at {time.now - START:.2f} s"
        stamps.append(time.now)


async def test_alone_a_private_message_costs_no_database_call(db: Database) -> None:
    class NoDatabase:
        async def write(self, fn: Any) -> Any:
            raise AssertionError("a database call for a private message of an instance alone")

    budget = SharedBudget(NoDatabase(), shared=False)  # type: ignore[arg-type]
    assert await budget.wait_time(4242) == 0.0


async def test_reservations_for_one_group_follow_each_other_across_a_windows_edge(db: Database) -> None:
    """On PostgreSQL, two instances reserving for one group in two different windows (the edge
    between them) take two rows, so the row lock does not order them: each could count the span
    before the other's place is committed and both pass. A reservation waits while another
    transaction holds the group, and one for another group does not."""
    if getattr(db, "dialect", "sqlite") == "sqlite":
        pytest.skip("SQLite's one writer orders every reservation already")
    import asyncpg

    from storage import pg
    from storage.send_budget import reserve_group

    group, other = -100777, -100778
    start = int(START)
    holder = await asyncpg.connect(pg.plain_url(db.url))  # type: ignore[attr-defined]
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT pg_advisory_xact_lock($1)", group)   # another instance, mid-reservation
        assert await reserve_group(db, (other, start + 6, 20), start - 54, 20, None) is None
        waiting = asyncio.ensure_future(reserve_group(db, (group, start + 6, 20), start - 54, 20, None))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not waiting.done() and loop.time() < deadline:
            blocked = await holder.fetchval(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if blocked:
                break
            await asyncio.sleep(0.02)
        assert not waiting.done(), "the reservation did not wait for the group held by another transaction"
        assert blocked
        await tx.commit()
        assert await waiting is None
    finally:
        await holder.close()
