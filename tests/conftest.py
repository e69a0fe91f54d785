"""Shared fixtures: a migrated temporary database, a frozen clock, the Telegram stand-in and the
real bot process running against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from bot.harness import TOKEN, BotProcess
from bot.sandbox import FakeTelegram
from storage.db import Database, open_database

ADMIN_ID = 900_001


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


@pytest.fixture
async def bot_process(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[BotProcess]:
    """The real bot (``python -m bot run``) polling the stand-in; ADMIN_ID is a super-admin."""
    proc = BotProcess(fake, str(tmp_path / "bot.db"), admins=(ADMIN_ID,), log_path=str(tmp_path / "bot.log"))
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()
