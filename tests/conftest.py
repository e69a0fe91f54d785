"""Shared fixtures: a migrated temporary database, a frozen clock, the Telegram stand-in and the
real bot process running against it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from bot.devkit.harness import TOKEN, BotProcess
from bot.devkit.sandbox import FakeTelegram
from storage.db import Database, open_database

ADMIN_ID = 900_001


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many workers ``-n auto`` (the default, pyproject.toml) starts: suited to this machine now.

    The suite mostly waits on real bot processes (Telegram's pacing, the stand-in's flood limits), so
    four workers per idle core pay off, at most eight: on an idle two-core machine eight workers
    took 6:00 where four took 9:21, with the cores still half idle. Cores that are already busy (the one-minute
    load average: another test run, a build) count as taken, down to one worker, so a second run
    on a loaded machine slows down instead of timing out. ``PYTEST_XDIST_AUTO_NUM_WORKERS=N`` or
    ``-n N`` choose for yourself."""
    chosen = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip()
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    idle = max(0.25, cpus - int(load))   # a core counts as busy once a whole core's worth of load is there
    return max(1, min(8, 4 * cpus, round(4 * idle)))


# The slow end-to-end runs, marked ``long`` here in one list (module paths, or a test's node id):
# several bot processes at once, nginx in front, every button pressed twice, the demo told twice
# and the city benchmark's core. The README's test command leaves them out (with ``postgres`` and
# ``soak``) to stay within a few minutes; ``.ci/run`` runs them as a step of their own, and
# ``pytest -m long`` runs them anywhere.
LONG = (
    "tests/e2e/test_several_instances.py",
    "tests/e2e/test_shared_budget.py",
    "tests/e2e/test_one_poller.py",
    "tests/postgres/test_takeover.py",
    "tests/e2e/test_webhook_nginx.py",
    "tests/reliability/test_press_everything.py",
    "tests/devkit/test_demo.py::test_demo_twice_at_once_tells_the_same_story",
    "tests/postgres/test_demo_pg.py::test_the_demo_tells_its_story_on_postgresql",
    "tests/bench/test_bench_smoke.py::test_city_core_idle_sweeps_and_a_digest_with_claims",
)


# The tests that run the real bot process go first, so the workers are not left waiting on a few
# of them at the end (the order is the same in every worker, as pytest-xdist requires).
FIRST = ("tests/e2e/", "tests/reliability/", "tests/devkit/", "tests/bench/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        node = item.nodeid.replace("\\", "/")
        if any(node == entry or node.startswith(entry + "::") or node.startswith(entry + "[") for entry in LONG):
            item.add_marker(pytest.mark.long)
    items.sort(key=lambda item: not item.nodeid.replace("\\", "/").startswith(FIRST))


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 5, 4, 9, 0, tzinfo=UTC)  # a Monday, 17:00 in Shanghai


@pytest.fixture
def clock(now: datetime) -> FrozenClock:
    return FrozenClock(now)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(str(tmp_path / "test.db"))
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    server.add_bot(token=TOKEN, username="linli_test_bot", first_name="Linli")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# A test whose subject is not Telegram's pacing may say so with ``@pytest.mark.unpaced``: its bot
# and the stand-in then both leave out the flood limits (BOT_FLOOD_CONTROL=false, the setting the
# benchmarks use), so its dozens of messages to one chat do not wait a second each. What the bot
# sends, edits and answers is the same; tests/app/test_ratelimit.py, tests/e2e/test_outbox.py,
# test_honours.py and test_shared_budget.py check the pacing itself, and the other end-to-end
# tests keep the limits on.
UNPACED = {"BOT_FLOOD_CONTROL": "false"}


@pytest.fixture
async def bot_process(fake: FakeTelegram, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[BotProcess]:
    """The real bot (``python -m bot run``) polling the stand-in; ADMIN_ID is a super-admin."""
    unpaced = request.node.get_closest_marker("unpaced") is not None
    if unpaced:
        fake.set_flood_limits(False)
    proc = BotProcess(fake, str(tmp_path / "bot.db"), admins=(ADMIN_ID,), log_path=str(tmp_path / "bot.log"),
                      env=UNPACED if unpaced else None)
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()
