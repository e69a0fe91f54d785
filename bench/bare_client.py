"""A bare long-poll client: aiohttp and sqlite3, no framework. Per update: one SQLite write (its own
committed transaction, WAL) and one answer (``answerCallbackQuery`` for a tap, ``sendMessage`` for a
command). Run by bench.throughput on the same stand-in and the same update mix as Linli, as a
second reference: what this machine allows for the least work an update can need.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from typing import Any

import aiohttp


async def run(token: str, base_url: str, db: str, concurrency: int) -> None:
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE IF NOT EXISTS seen (update_id INTEGER PRIMARY KEY, kind TEXT, at REAL)")
    api = f"{base_url.rstrip('/')}{token}/"
    limit = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 1)) as session:

        async def call(method: str, params: dict[str, Any]) -> Any:
            async with session.post(api + method, data=params) as resp:
                return (await resp.json())["result"]

        async def handle(update: dict[str, Any]) -> None:
            async with limit:
                if "callback_query" in update:
                    kind, method = "cb", "answerCallbackQuery"
                    params: dict[str, Any] = {"callback_query_id": update["callback_query"]["id"], "text": "ok"}
                elif "message" in update:
                    kind, method = "msg", "sendMessage"
                    params = {"chat_id": update["message"]["chat"]["id"], "text": "ok"}
                else:
                    return
                with con:  # one write, committed, before the answer
                    con.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (update["update_id"], kind, loop.time()))
                await call(method, params)

        await call("deleteWebhook", {})
        print("Application started", flush=True)  # what the harness waits for
        offset = 0
        tasks: set[asyncio.Task[None]] = set()
        while True:
            updates = await call("getUpdates", {"offset": offset, "timeout": 10,
                                                "allowed_updates": json.dumps(["message", "callback_query"])})
            for u in updates:
                offset = max(offset, int(u["update_id"]) + 1)
                task = asyncio.create_task(handle(u))
                tasks.add(task)
                task.add_done_callback(tasks.discard)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    try:
        asyncio.run(run(args.token, args.base_url, args.db, args.concurrency))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
