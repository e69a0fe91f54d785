"""The floor: a minimal python-telegram-bot bot, the same library, HTTP client and polling as Linli.

Run by bench.throughput against the same stand-in and the same update mix as Linli (Claim and
Withdraw taps, /points and /tasks); Linli's throughput is reported as a ratio of this bot's. It
answers every tap with ``answerCallbackQuery`` and every command with one ``sendMessage``, with
the same concurrency (64), no database and no other work: the fastest a python-telegram-bot bot
answers this mix here. ``--request httpx`` is python-telegram-bot's default client (kept only to
show what the HTTP client costs; it is not the floor Linli is compared with).
"""

from __future__ import annotations

import argparse
import logging

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes


async def answer(update: Update, _ctx: ContextTypes.DEFAULT_TYPE) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer("ok")


async def reply(update: Update, _ctx: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message is not None:
        await update.effective_message.reply_text("ok")


def linli_request_class() -> type:
    """Linli's HTTP client (bot/http_client.py; bot/http_client.py once renamed)."""
    try:
        from bot.http_client import AiohttpRequest  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from bot.http_client import AiohttpRequest  # type: ignore[no-redef,unused-ignore]
    return AiohttpRequest  # type: ignore[no-any-return,unused-ignore]


def build(token: str, base_url: str, concurrency: int = 64, request: str = "aiohttp") -> Application:  # type: ignore[type-arg]
    builder = Application.builder().token(token).base_url(base_url).concurrent_updates(concurrency)
    if request == "aiohttp":
        cls = linli_request_class()
        builder = builder.request(cls()).get_updates_request(cls(connection_pool_size=1))
    app = builder.build()
    app.add_handler(CallbackQueryHandler(answer))
    app.add_handler(CommandHandler(["points", "tasks"], reply))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--request", choices=["httpx", "aiohttp"], default="aiohttp")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    build(args.token, args.base_url, args.concurrency, args.request).run_polling(
        allowed_updates=["callback_query", "message"])


if __name__ == "__main__":
    main()
