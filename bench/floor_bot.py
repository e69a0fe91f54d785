"""The floor: a minimal python-telegram-bot bot that only answers callback queries.

Run by bench.throughput against the same stand-in as Linli; Linli's throughput is reported as a
ratio of this bot's. Same library, same polling and the same concurrency (64) as Linli, no
database and no work: the fastest a python-telegram-bot bot can answer taps here.
"""

from __future__ import annotations

import argparse
import logging

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes


async def answer(update: Update, _ctx: ContextTypes.DEFAULT_TYPE) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer("ok")


def build(token: str, base_url: str, concurrency: int = 64, request: str = "httpx") -> Application:  # type: ignore[type-arg]
    builder = Application.builder().token(token).base_url(base_url).concurrent_updates(concurrency)
    if request == "aiohttp":  # the HTTP client Linli uses (bot/request.py), for a like-for-like figure
        from bot.request import AiohttpRequest

        builder = builder.request(AiohttpRequest()).get_updates_request(AiohttpRequest(connection_pool_size=1))
    app = builder.build()
    app.add_handler(CallbackQueryHandler(answer))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--request", choices=["httpx", "aiohttp"], default="httpx")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    build(args.token, args.base_url, args.concurrency, args.request).run_polling(allowed_updates=["callback_query"])


if __name__ == "__main__":
    main()
