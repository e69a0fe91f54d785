"""The real bot process against the stand-in: it long-polls, answers, ignores redelivered updates."""

from __future__ import annotations

from typing import Any

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram


async def test_bot_long_polls_and_answers(fake: FakeTelegram, bot_process: BotProcess) -> None:
    user = fake.add_user("Zhang", language_code="zh-hans")
    await fake.send_text(user, None, "/help")
    reply = await fake.wait_for_message(user, timeout=10)
    assert "邻里" in reply["text"]
    english = fake.add_user("Ann", language_code="en")
    await fake.send_text(english, None, "/help")
    reply = await fake.wait_for_message(english, timeout=10)
    assert "neighbours" in reply["text"]
    # Commands are registered for both languages.
    methods = {c.method for c in fake.calls}
    assert "setMyCommands" in methods
    await settle(fake)
    assert fake.errors == []


async def _help_once(fake: FakeTelegram, user: Any) -> tuple[int, int]:
    """/help answered; returns the number of bot messages in the chat and the last update id."""
    await fake.send_text(user, None, "/help")
    await fake.wait_for_message(user, timeout=10)
    await settle(fake)
    last_update = max(c.result[-1]["update_id"] for c in fake.api_calls("getUpdates") if c.ok and c.result)
    return len(fake.bot_messages(fake.private_chat(user))), last_update


async def test_redelivered_update_is_handled_once(fake: FakeTelegram, bot_process: BotProcess) -> None:
    user = fake.add_user("Li", language_code="en")
    before, last_update = await _help_once(fake, user)
    fake.redeliver(last_update)
    await settle(fake, quiet=1.0)
    assert len(fake.bot_messages(fake.private_chat(user))) == before


async def test_update_redelivered_after_a_restart_is_handled_once(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """Handled updates are remembered in the database: a new process ignores a redelivered one and
    still handles the next (it only looks up ids it could have seen before it started)."""
    user = fake.add_user("Zhou", language_code="en")
    before, last_update = await _help_once(fake, user)
    await bot_process.stop()
    await bot_process.start()
    fake.redeliver(last_update)
    await settle(fake, quiet=1.0)
    assert len(fake.bot_messages(fake.private_chat(user))) == before
    await fake.send_text(user, None, "/help")
    await fake.wait_for_message(user, timeout=10)
    assert len(fake.bot_messages(fake.private_chat(user))) == before + 1


async def test_restart_keeps_working(fake: FakeTelegram, bot_process: BotProcess) -> None:
    user = fake.add_user("Wu", language_code="en")
    await bot_process.kill()
    await bot_process.start()
    await fake.send_text(user, None, "/help")
    reply = await fake.wait_for_message(user, timeout=10)
    assert reply["text"]


async def test_webhook_mode(fake: FakeTelegram, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = BotProcess(
        fake,
        str(tmp_path / "hook.db"),
        env={
            "BOT_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
            "BOT_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            "BOT_WEBHOOK_SECRET": "s3cret-token",
        },
        log_path=str(tmp_path / "hook.log"),
    )
    await proc.start()
    try:
        assert any(c.method == "setWebhook" and c.ok for c in fake.calls)
        user = fake.add_user("Hook", language_code="en")
        await fake.send_text(user, None, "/help")
        reply = await fake.wait_for_message(user, timeout=10)
        assert "neighbours" in reply["text"]
    finally:
        await proc.stop()
