"""Broadcast: the daily digest to N volunteers through the real bot process, flood limits on.

    .venv/bin/python -m bench.broadcast [--volunteers 2000] [--timeout 240]

The digest sweep (bot/services/digest.py via bot/jobs/sweeps.py) queues one private digest per
volunteer into the outbox; the outbox job sends them. Measured: private messages per second from
the first to the last digest delivered, as a fraction of Telegram's 30 messages/s, and the 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.common import (
    PinnedBot,
    features,
    fresh_db,
    migrate_async,
    report,
    seed,
    stand_in,
    users_with_chats,
    write_section,
)
from bot.devkit.harness import TOKEN


async def broadcast(volunteers: int, timeout: float, *, db_name: str = "broadcast.db") -> dict[str, Any]:
    fake = await stand_in(flood_limits=True)
    path = fresh_db(db_name)
    await migrate_async(path)
    bot_user = fake.users[int(TOKEN.split(":")[0])]
    group = fake.add_group("Broadcast volunteers", members=[bot_user])
    # Open requests in the volunteers' area, so every volunteer's digest has something to say.
    seed(path, members=volunteers, tasks=40, open_tasks=20, group_chat_id=group.id, digest_time="00:00")
    users_with_chats(fake, volunteers)
    start_index = len(fake.calls)
    bot = PinnedBot(fake, path, env={"BOT_SWEEP_INTERVAL": "1", "BOT_OUTBOX_INTERVAL": "0.1"})
    started = time.time()
    try:
        await bot.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def private_sent() -> list[Any]:
            return [c for c in fake.calls[start_index:] if c.method == "sendMessage"
                    and int(c.params.get("chat_id", 0)) > 0]

        while loop.time() < deadline and len(private_sent()) < volunteers:
            await asyncio.sleep(0.5)
        sent = private_sent()
    finally:
        await bot.stop()
        await fake.stop()
    times = sorted(c.time for c in sent)
    span = (times[-1] - times[0]) if len(times) > 1 else float("nan")
    rate = (len(times) - 1) / span if len(times) > 1 else 0.0
    return {"sent": len(sent), "distinct": len({int(c.params['chat_id']) for c in sent}), "span": span,
            "rate": rate, "first_after": (times[0] - started) if times else float("nan"),
            "too_many": fake.stats.too_many_requests,
            "errors": sorted({f"{e.method}: {e.description}" for e in fake.errors})[:5]}


async def main_async(args: argparse.Namespace) -> None:
    r = await broadcast(args.volunteers, args.timeout)
    body = report([
        f"- Daily digest to {args.volunteers} registered volunteers (one private message each), real bot"
        " process, stand-in flood limits on (30 messages/s overall, 1/s per chat).",
        f"- Private messages delivered: {r['sent']} to {r['distinct']} chats; first one {r['first_after']:.1f} s"
        f" after the bot started; last one {r['span']:.1f} s after the first.",
        f"- Achieved: **{r['rate']:.1f} messages/s = {r['rate'] / 30:.2f} of 30/s** (target >= 0.9).",
        f"- 429 Too Many Requests answered by the stand-in: **{r['too_many']}**.",
        f"- Refused calls (first 5 kinds): {r['errors'] or 'none'}.",
        f"- Features present: {features()}.",
    ])
    write_section("Broadcast", body, "bench.broadcast")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volunteers", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=240)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
