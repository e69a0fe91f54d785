"""Update delivery: long polling, offsets, redelivery, webhooks, flood control, a real Application."""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, Update
from telegram.error import Conflict, RetryAfter
from telegram.ext import AIORateLimiter, ApplicationBuilder, CommandHandler, ContextTypes

from bot.devkit.sandbox import FakeTelegram, FloodConfig, User

# python-telegram-bot itself warns about RetryAfter.retry_after's future type when building the error.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def test_long_polling_returns_promptly_and_respects_offset(server: FakeTelegram, tg: Bot) -> None:
    user = server.add_user("Li")
    started = time.monotonic()
    assert await tg.get_updates(timeout=0) == ()
    poll = asyncio.create_task(tg.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    assert not poll.done()  # held open
    await server.send_text(user, None, "/start")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 2
    assert [u.message.text for u in updates] == ["/start"]
    first_id = updates[0].update_id
    await server.send_text(user, None, "second")
    again = await tg.get_updates()
    assert [u.update_id for u in again] == [first_id, first_id + 1]  # not yet confirmed
    confirmed = await tg.get_updates(offset=first_id + 1)
    assert [u.message.text for u in confirmed] == ["second"]
    assert await tg.get_updates(offset=first_id + 2, timeout=0) == ()
    started = time.monotonic()
    assert await tg.get_updates(offset=first_id + 2, timeout=1) == ()
    assert time.monotonic() - started >= 0.9


async def test_limit_and_allowed_updates(server: FakeTelegram, tg: Bot) -> None:
    user = server.add_user("Wu")
    for i in range(5):
        await server.send_text(user, None, f"m{i}")
    assert len(await tg.get_updates(limit=2)) == 2
    last = (await tg.get_updates())[-1].update_id
    await tg.get_updates(offset=last + 1, allowed_updates=["callback_query"])
    await server.send_text(user, None, "filtered out")
    assert await tg.get_updates(offset=last + 1) == ()
    await tg.get_updates(offset=last + 1, allowed_updates=[])
    await server.send_text(user, None, "visible again")
    assert (await tg.get_updates(offset=last + 1))[0].message.text == "visible again"


async def test_concurrent_get_updates_conflict(server: FakeTelegram, tg: Bot) -> None:
    first = asyncio.create_task(tg.get_updates(timeout=3))
    await asyncio.sleep(0.1)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}{server.bot.token}/getUpdates", json={"timeout": 0}) as resp:
            assert (await resp.json())["result"] == []
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first


async def test_redelivery_and_duplicates(server: FakeTelegram, tg: Bot) -> None:
    user = server.add_user("Zhao")
    await server.send_text(user, None, "/start")
    [update] = await tg.get_updates()
    assert await tg.get_updates(offset=update.update_id + 1) == ()
    server.redeliver(update.update_id)
    # The copy survives the bot's current offset once, like Telegram re-sending after a crash.
    [again] = await tg.get_updates(offset=update.update_id + 1)
    assert again.update_id == update.update_id and again.to_dict() == update.to_dict()
    assert await tg.get_updates(offset=update.update_id + 1) == ()
    server.duplicate_next_updates(True)
    await server.send_text(user, None, "twice")
    pair = await tg.get_updates(offset=update.update_id + 1)
    assert len(pair) == 2 and pair[0].update_id == pair[1].update_id and pair[0].to_dict() == pair[1].to_dict()
    server.duplicate_next_updates(False)
    assert await tg.get_updates(offset=pair[0].update_id + 1) == ()
    await server.send_text(user, None, "once")
    assert len(await tg.get_updates(offset=pair[0].update_id + 1)) == 1


async def test_application_sees_redelivered_update(server: FakeTelegram) -> None:
    seen: list[int] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)

    app = ApplicationBuilder().token(server.bot.token).base_url(server.base_url).build()
    app.add_handler(CommandHandler("start", record))
    user = server.add_user("Again")
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            await server.send_text(user, None, "/start")
            await server.wait_for(lambda: seen, timeout=5)
            server.redeliver(seen[0])
            await server.wait_for(lambda: len(seen) == 2, timeout=5)
        finally:
            await app.updater.stop()
            await app.stop()
    assert seen[0] == seen[1]


async def test_flood_limit_per_group(server: FakeTelegram, tg: Bot) -> None:
    owner = server.add_user("Owner")
    group = server.add_group("热闹群", creator=owner)
    await server.add_bot_to_group(group, added_by=owner)
    for i in range(20):
        await tg.send_message(group.id, f"notice {i}")
    with pytest.raises(RetryAfter) as excinfo:
        await tg.send_message(group.id, "one too many")
    assert "retry after" in str(excinfo.value).lower() or "retry in" in str(excinfo.value).lower()
    assert server.errors[-1].description in {f"Too Many Requests: retry after {n}" for n in (1, 2, 3)}
    assert server.stats.too_many_requests == 1
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}{server.bot.token}/sendMessage",
                                json={"chat_id": group.id, "text": "raw"}) as resp:
            body = await resp.json()
    assert resp.status == 429 and body["parameters"]["retry_after"] >= 1
    assert body["description"] == f"Too Many Requests: retry after {body['parameters']['retry_after']}"
    server.set_flood_limits(False)
    await tg.send_message(group.id, "limits off")
    assert server.stats.too_many_requests == 2


async def test_flood_limit_overall() -> None:
    server = FakeTelegram(flood=FloodConfig(global_rate=0.5))
    server.add_bot()
    await server.start()
    try:
        users = [server.add_user(f"U{i}") for i in range(4)]
        for user in users:
            await server.send_text(user, None, "/start")
        async with Bot(server.bot.token, base_url=server.base_url) as tg:
            for i in range(30):
                await tg.send_message(users[i % 4].id, f"broadcast {i}")
            with pytest.raises(RetryAfter):
                await tg.send_message(users[3].id, "number 31")
            assert server.stats.too_many_requests == 1
            assert server.stats.by_method["sendMessage"] == 31
            assert server.errors[-1].error_code == 429
    finally:
        await server.stop()


async def test_private_chat_flood_bucket(server: FakeTelegram, tg: Bot, alice: User) -> None:
    for i in range(10):
        await tg.send_message(alice.id, str(i))
    with pytest.raises(RetryAfter):
        await tg.send_message(alice.id, "11")


async def test_application_polling_with_rate_limiter(server: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        args = " ".join(context.args or [])
        await context.bot.send_message(update.effective_chat.id, f"欢迎! {args}".strip())

    app = (
        ApplicationBuilder()
        .token(server.bot.token)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=2))
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    user = server.add_user("Chen", language_code="zh-hans")
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            await server.send_text(user, None, "/start ref_42")
            reply = await server.wait_for_message(user, timeout=5)
            assert reply.text == "欢迎! ref_42"
        finally:
            await app.updater.stop()
            await app.stop()
    assert not [e for e in server.errors if e.error_code != 409]


async def test_webhook_delivery(server: FakeTelegram, tg: Bot) -> None:
    received: list[tuple[dict, str | None]] = []
    fail_first = {"left": 1}

    async def hook(request: web.Request) -> web.Response:
        if fail_first["left"]:
            fail_first["left"] -= 1
            return web.Response(status=500)
        received.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        assert await tg.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        with pytest.raises(Conflict, match="webhook is active"):
            await tg.get_updates()
        user = server.add_user("Hook")
        await server.send_text(user, None, "/start")
        await server.wait_for(lambda: received, timeout=3)
        update, secret = received[0]
        assert secret == "s3cret" and update["message"]["text"] == "/start"
        info = await tg.get_webhook_info()
        assert info.url.endswith("/hook") and info.pending_update_count == 0
        assert info.last_error_message is not None  # the first attempt failed
        assert await tg.delete_webhook()
        await server.send_text(user, None, "polling again")
        assert (await tg.get_updates())[-1].message.text == "polling again"
    finally:
        await runner.cleanup()


async def test_control_http_endpoints_and_transcript(server: FakeTelegram, tg: Bot) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as http:
        async with http.post("/_sandbox/add_user", json={"first_name": "Driver", "user_id": 5151}) as resp:
            user = (await resp.json())["result"]
        async with http.post("/_sandbox/send_text", json={"user_id": user["id"], "text": "/start"}) as resp:
            assert (await resp.json())["result"]["text"] == "/start"
        [update] = await tg.get_updates()
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        sent = await tg.send_message(5151, "pick", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Yes", callback_data="y")]]))
        async with http.post("/_sandbox/wait_for_message", json={"chat_id": 5151, "contains": "pick"}) as resp:
            assert (await resp.json())["result"]["buttons"] == ["Yes"]
        async with http.post("/_sandbox/press_button", json={"user_id": 5151, "chat_id": 5151,
                                                              "message_id": sent.message_id, "callback_data": "y"}) as resp:
            query_id = (await resp.json())["result"]["query_id"]
        async with http.post("/_sandbox/press_button", json={"user_id": 5151, "chat_id": 5151,
                                                              "message_id": sent.message_id, "callback_data": "n"}) as resp:
            assert resp.status == 400
        await tg.answer_callback_query(query_id, "done", show_alert=True)
        async with http.get("/_sandbox/stats") as resp:
            assert (await resp.json())["result"]["by_method"]["answerCallbackQuery"] == 1
        async with http.get("/_sandbox/transcript") as resp:
            text = await resp.text()
    assert "Driver: /start" in text and "[Yes]" in text and "alert: done" in text
    assert update.message.from_user.id == 5151


async def test_standalone_entry_point() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.devkit.sandbox", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line.startswith("base_url") and "http://127.0.0.1:" in line
        base_url = line.split()[1]
        async with aiohttp.ClientSession() as session, session.get(f"{base_url}123456:TEST/getMe") as resp:
            assert (await resp.json())["result"]["is_bot"] is True
    finally:
        proc.send_signal(2)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0 and b"sandbox stopped" in out
