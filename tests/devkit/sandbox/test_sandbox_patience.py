"""Waits for the bot are generous on a loaded machine and cost nothing when the bot is quick."""

from __future__ import annotations

import asyncio
import time

import pytest
from telegram import Bot

from bot.devkit.harness import settle
from bot.devkit.sandbox import FakeTelegram, SandboxError
from bot.devkit.sandbox.core import DEFAULT_PATIENCE, PATIENCE_ENV


def test_patience_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PATIENCE_ENV, raising=False)
    assert FakeTelegram().patience == DEFAULT_PATIENCE >= 5
    monkeypatch.setenv(PATIENCE_ENV, "2.5")
    assert FakeTelegram().patience == 2.5
    monkeypatch.setenv(PATIENCE_ENV, "0.1")
    assert FakeTelegram().patience == 1.0  # never shorter than the nominal timeout
    monkeypatch.setenv(PATIENCE_ENV, "lots")
    with pytest.raises(SandboxError, match=PATIENCE_ENV):
        FakeTelegram()


async def test_a_wait_lasts_timeout_times_patience_and_returns_at_once_when_met() -> None:
    server = FakeTelegram(patience=4)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="patience 4"):
        await server.wait_for(lambda: False, timeout=0.1)
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert await server.wait_for(lambda: "yes", timeout=100) == "yes"
    assert time.monotonic() - started < 1


async def test_settle_waits_until_the_bot_has_fetched_what_was_sent(server: FakeTelegram, tg: Bot) -> None:
    """A loaded bot may take seconds before it even fetches an update: quiet before that means nothing."""
    await tg.get_updates(timeout=0)                 # the bot is polling
    user = server.add_user("Slow", "Reader")
    await server.send_text(user, None, "/start")     # ... and has not fetched this yet
    waiting = asyncio.create_task(settle(server, quiet=0.2, timeout=30))
    await asyncio.sleep(1.0)
    assert not waiting.done()                        # five quiet spells passed, but the update is pending
    updates = await tg.get_updates(timeout=0)
    await tg.get_updates(offset=updates[-1].update_id + 1, timeout=0)   # fetched and confirmed
    await asyncio.wait_for(waiting, 5)


async def test_settle_does_not_wait_for_a_bot_that_is_not_polling(server: FakeTelegram) -> None:
    user = server.add_user("Nobody", "Home")
    await server.send_text(user, None, "/start")     # no bot process fetches this
    started = time.monotonic()
    await settle(server, quiet=0.2, timeout=30)
    assert time.monotonic() - started < 3
