"""Flood control: per-chat windows, callback answers never wait, a 429 holds up only its own call."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter

from bot.ratelimit import ChatRateLimiter, SlidingWindow
from bot.updates import lane


async def test_sliding_window_never_exceeds_its_limit() -> None:
    window = SlidingWindow(5, 0.2)
    stamps: list[float] = []

    async def one() -> None:
        await window.acquire()
        stamps.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(15)))
    stamps.sort()
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 0.2 - 1e-3


async def test_answers_are_not_delayed_by_a_busy_chat_or_a_429() -> None:
    limiter = ChatRateLimiter(overall=(100, 1.0), per_private=(1, 1.0), max_retries=1)
    calls: list[tuple[str, float]] = []
    failed_once: set[int] = set()

    async def send(endpoint: str, n: int) -> Any:
        if endpoint == "sendMessage" and n == 0 and n not in failed_once:
            failed_once.add(n)
            raise RetryAfter(timedelta(seconds=1))
        calls.append((endpoint, time.monotonic()))
        return True

    start = time.monotonic()
    tasks = [
        asyncio.create_task(limiter.process_request(send, ("sendMessage", i), {}, "sendMessage", {"chat_id": 42}, None))
        for i in range(3)
    ]
    await asyncio.sleep(0.05)
    await limiter.process_request(send, ("answerCallbackQuery", 0), {}, "answerCallbackQuery", {"callback_query_id": "1"}, None)
    answered_at = next(t for e, t in calls if e == "answerCallbackQuery")
    assert answered_at - start < 0.5
    # Another chat is not held up by chat 42's window or its 429.
    await limiter.process_request(send, ("sendMessage", 9), {}, "sendMessage", {"chat_id": 43}, None)
    assert time.monotonic() - start < 0.5
    await asyncio.gather(*tasks)
    assert len([e for e, _ in calls if e == "sendMessage"]) == 4


def test_lanes() -> None:
    from telegram import CallbackQuery, Chat, Message, Update, User

    user = User(7, "A", False)
    chat = Chat(7, "private")
    msg = Update(1, message=Message(1, None, chat, from_user=user, text="x"))  # type: ignore[arg-type]
    cb = Update(2, callback_query=CallbackQuery("q", user, "ci", data="x"))
    assert lane(msg) == ("msg", 7)
    assert lane(cb) == ("cb", 7)


def test_parameters_a_method_does_not_accept_are_dropped() -> None:
    from bot.ratelimit import drop_unknown_parameters

    data = {"chat_id": 1, "message_id": 2, "reply_markup": "{}", "parse_mode": "HTML"}
    drop_unknown_parameters("editMessageReplyMarkup", data)
    assert data == {"chat_id": 1, "message_id": 2, "reply_markup": "{}"}
    send = {"chat_id": 1, "text": "x", "parse_mode": "HTML"}
    drop_unknown_parameters("sendMessage", send)
    assert send["parse_mode"] == "HTML"


def test_error_text_is_escaped_for_html() -> None:
    from bot.i18n import translator
    from bot.models import InvalidInput
    from bot.ui import error_text

    text = error_text(translator("en"), InvalidInput("Please write: /revoke <entry number> <reason>"))
    assert "&lt;entry number&gt;" in text
    named = error_text(translator("en"), InvalidInput("{taken} taken <b>", taken="<i>x"))
    assert named == "&lt;i&gt;x taken &lt;b&gt;"
