"""bot/http_client.py: python-telegram-bot's requests over aiohttp behave like its httpx ones."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from telegram import Bot, InputFile
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.devkit.sandbox import FakeTelegram
from bot.http_client import AiohttpRequest
from tests.conftest import TOKEN


def _bot(base_url: str, **kw: float) -> Bot:
    return Bot(TOKEN, base_url=base_url, request=AiohttpRequest(**kw),  # type: ignore[arg-type]
               get_updates_request=AiohttpRequest(connection_pool_size=1))


async def test_calls_files_and_refusals(fake: FakeTelegram) -> None:
    user = fake.add_user("Mei", language_code="en")
    await fake.send_text(user, None, "/start")
    chat = fake.private_chat(user)
    async with _bot(fake.base_url) as bot:
        me = await bot.get_me()
        assert me.username == "linli_test_bot"
        msg = await bot.send_message(chat.id, "你好 <b>bold</b> & more", parse_mode="HTML")
        assert msg.text == "你好 bold & more"
        doc = await bot.send_document(chat.id, InputFile(b"a,b\n1,2\n", filename="report.csv"), caption="表")
        assert doc.document is not None and doc.document.file_name == "report.csv"
        with pytest.raises(BadRequest):
            await bot.send_message(chat.id, "x" * 5000)      # over 4096 characters: the stand-in refuses
    sent = [c for c in fake.api_calls() if c.method in ("sendMessage", "sendDocument") and c.ok]
    assert len(sent) == 2


async def _post(port: int, **kw: float) -> object:
    request = AiohttpRequest(**kw)
    await request.initialize()
    try:
        return await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()


async def test_unreachable_and_slow_servers() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError) as info:            # nobody listens there
        await _post(port, connect_timeout=1.0)
    assert not isinstance(info.value, TimedOut)

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(TimedOut):
            await _post(port, read_timeout=0.3)
        assert await _post(port, read_timeout=5.0) is True
    finally:
        await runner.cleanup()


async def test_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like python-telegram-bot's default client, HTTP(S)_PROXY is honoured (some servers reach
    Telegram only through one)."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Host", ""))
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    try:
        request = AiohttpRequest(connect_timeout=2.0)
        await request.initialize()
        try:
            assert await request.post(f"http://api.telegram.invalid/bot{TOKEN}/getMe") is True
        finally:
            await request.shutdown()
    finally:
        await runner.cleanup()
    assert seen == ["api.telegram.invalid"]


async def test_send_text_makes_the_same_request_as_send_message_and_returns_the_id(fake: FakeTelegram) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
    from telegram.ext import Defaults, ExtBot

    from bot.http_client import send_text
    from bot.ratelimit import ChatRateLimiter

    user = fake.add_user("Mei", language_code="en")
    await fake.send_text(user, None, "/start")
    chat = fake.private_chat(user)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("好", callback_data="ok:1")]])
    # As bot/app.py builds it: the defaults and the rate limiter apply to both.
    bot = ExtBot(TOKEN, base_url=fake.base_url, request=AiohttpRequest(),
                 defaults=Defaults(parse_mode="HTML", link_preview_options=LinkPreviewOptions(is_disabled=True)),
                 rate_limiter=ChatRateLimiter.unthrottled())
    async with bot:
        msg = await bot.send_message(chat.id, "你好 <b>bold</b>", reply_markup=markup)
        sent_id = await send_text(bot, chat.id, "你好 <b>bold</b>", markup)
    assert sent_id == msg.message_id + 1
    first, second = fake.api_calls("sendMessage")[-2:]
    assert first.ok and second.ok and first.params == second.params
    assert second.params["parse_mode"] == "HTML" and "reply_markup" in second.params


async def test_edit_text_makes_the_same_request_as_edit_message_text_and_keeps_its_errors(
        fake: FakeTelegram) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
    from telegram.ext import Defaults, ExtBot

    from bot.http_client import edit_text
    from bot.ratelimit import ChatRateLimiter

    user = fake.add_user("Mei", language_code="en")
    await fake.send_text(user, None, "/start")
    chat = fake.private_chat(user)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("好", callback_data="ok:1")]])
    bot = ExtBot(TOKEN, base_url=fake.base_url, request=AiohttpRequest(),
                 defaults=Defaults(parse_mode="HTML", link_preview_options=LinkPreviewOptions(is_disabled=True)),
                 rate_limiter=ChatRateLimiter.unthrottled())
    async with bot:
        msg = await bot.send_message(chat.id, "旧")
        await bot.edit_message_text("新 <b>1</b>", chat_id=chat.id, message_id=msg.message_id, reply_markup=markup)
        assert await edit_text(bot, chat.id, msg.message_id, "新 <b>2</b>", markup) == msg.message_id
        with pytest.raises(BadRequest, match="not modified"):  # the outbox settles these as sent
            await edit_text(bot, chat.id, msg.message_id, "新 <b>2</b>", markup)
    first, second = [c for c in fake.api_calls("editMessageText") if c.ok][-2:]
    assert {**first.params, "text": ""} == {**second.params, "text": ""}
    assert second.params["parse_mode"] == "HTML" and "reply_markup" in second.params
