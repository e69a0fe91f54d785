from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.devkit.sandbox import FakeTelegram, FloodConfig, User

TOKEN = "123456:TEST"


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(callback_timeout=0.5, flood=FloodConfig(), webhook_retry_delay=0.05)
    fake.add_bot(token=TOKEN, username="linli_test_bot", first_name="Linli")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def tg(server: FakeTelegram) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url)
    async with bot:
        yield bot


@pytest.fixture
async def alice(server: FakeTelegram) -> User:
    """A user who has started the bot."""
    user = server.add_user("Alice", "Wang", username="alice")
    await server.send_text(user, None, "/start")
    return user
