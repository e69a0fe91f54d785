"""Throughput: the real bot process fed N updates (claim/withdraw taps, /points, /tasks), flood
limits off, against a minimal python-telegram-bot floor bot on the same stand-in.

    .venv/bin/python -m bench.throughput [--updates 5000] [--window 200] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from typing import Any

from bench.common import (
    PinnedBot,
    fresh_db,
    migrate_async,
    ms,
    percentile,
    pin_note,
    report,
    rss_kb,
    seed,
    stand_in,
    users_with_chats,
    write_section,
)
from bench.driver import Step, Timing, drive
from bot.harness import TOKEN
from bot.sandbox import FakeTelegram, StoredMessage, User

OPEN_TASKS = 200


async def post_cards(fake: FakeTelegram, group_id: int, task_ids: list[int]) -> dict[int, StoredMessage]:
    """Group cards with a Claim button (``cl:<task_id>``), posted through the stand-in's own API."""
    cards = {}
    group = fake.groups[group_id]
    for tid in task_ids:
        await fake.call_api(None, "sendMessage", {
            "chat_id": group_id, "text": f"Task {tid}",
            "reply_markup": {"inline_keyboard": [[{"text": "Claim", "callback_data": f"cl:{tid}"}]]}})
        cards[tid] = group.messages[-1]
    return cards


def link_cards(path: str, cards: dict[int, StoredMessage]) -> None:
    """Point each task's group_message_id at its card in the stand-in (so card edits land)."""
    import sqlite3

    con = sqlite3.connect(path)
    with con:
        con.executemany("UPDATE tasks SET group_message_id = ? WHERE id = ?",
                        [(m.message_id, tid) for tid, m in cards.items()])
    con.close()


def _private_button(fake: FakeTelegram, user: User, data: str) -> StoredMessage | None:
    chat = fake.private_chat(user)
    if chat is None:
        return None
    return next((m for m in reversed(chat.messages)
                 if any(b.get("callback_data") == data for b in m.inline_buttons)), None)


def build_steps(fake: FakeTelegram, n: int, cards: dict[int, StoredMessage], cmd_users: list[User],
                tap_users: list[User], rng: random.Random) -> list[Step]:
    steps: list[Step] = []
    task_ids = list(cards)
    n_cmd = min(len(cmd_users), n // 5)
    holding: dict[int, int] = {}  # tap user -> task it claimed last (its next tap withdraws)
    for i in range(n):
        if i % 5 == 4 and n_cmd:
            user = cmd_users[(i // 5) % len(cmd_users)]
            text = "/points" if (i // 5) % 2 == 0 else "/tasks"

            async def step(user: User = user, text: str = text) -> tuple[str, Any]:
                await fake.send_text(user, None, text)
                return "msg", user.id
        else:
            slot = i % len(tap_users)
            user = tap_users[slot]
            held = holding.pop(slot, None)
            if held is not None:
                tid, data = held, f"wd:{held}"
            else:
                tid = rng.choice(task_ids)
                data = f"cl:{tid}"
                holding[slot] = tid

            async def step(user: User = user, tid: int = tid, data: str = data) -> tuple[str, Any]:
                # Withdraw is pressed where the bot puts it: the volunteer's private details message
                # (on the group card it would be refused); if that has not arrived yet, on the card.
                target = _private_button(fake, user, data) if data.startswith("wd:") else None
                return "cb", await fake.press_raw_callback(user, target or cards[tid], data)
        steps.append(step)
    return steps


async def run_linli(n: int, window: int, pin: bool, flood_control: bool = True) -> tuple[Timing, dict[str, Any]]:
    fake = await stand_in(flood_limits=False)
    path = fresh_db("throughput.db")
    await migrate_async(path)
    cmd_count = max(1, n // 5)
    tap_count = 1000
    bot_user = fake.users[int(TOKEN.split(":")[0])]
    group = fake.add_group("Bench volunteers", members=[bot_user])
    seeded = seed(path, members=cmd_count + tap_count, tasks=OPEN_TASKS * 5, open_tasks=OPEN_TASKS,
                  ledger=20_000, group_chat_id=group.id, open_slots=20)
    users = users_with_chats(fake, cmd_count + tap_count)
    for u in users[cmd_count:]:
        fake.add_member(group, u, announce=False)
    cards = await post_cards(fake, group.id, seeded.open_task_ids)
    link_cards(path, cards)
    env = {"BOT_SWEEP_INTERVAL": "3600", "BOT_FLOOD_CONTROL": "true" if flood_control else "false"}
    bot = PinnedBot(fake, path, pin=pin, env=env)
    try:
        await bot.start()
        # warm-up: one of each kind, not timed
        await drive(fake, build_steps(fake, 10, cards, users[:cmd_count], users[cmd_count:], random.Random(1)))
        steps = build_steps(fake, n, cards, users[:cmd_count], users[cmd_count:], random.Random(9))
        timing = await drive(fake, steps, window=window)
        _cur, peak = rss_kb(bot.pid)
        extra = {"errors": len(fake.errors), "peak_rss_kb": peak,
                 "answers": {k: v for k, v in fake.stats.by_method.items() if k != "getUpdates"}}
        sample = [c.params.get("text") for c in fake.calls if c.method == "answerCallbackQuery"][-3:]
        extra["sample_answers"] = sample
        extra["error_list"] = sorted({f"{e.method}: {e.description}" for e in fake.errors})
    finally:
        await bot.stop()
        await fake.stop()
    return timing, extra


async def run_floor(n: int, window: int, pin: bool, request: str = "httpx") -> Timing:
    fake = await stand_in(flood_limits=False)
    bot_user = fake.users[int(TOKEN.split(":")[0])]
    group = fake.add_group("Floor", members=[bot_user])
    users = users_with_chats(fake, 1000)
    cards = await post_cards(fake, group.id, list(range(1, OPEN_TASKS + 1)))
    proc = PinnedBot(fake, fresh_db("floor-unused.db"), pin=pin,
                     command=[sys.executable, "-m", "bench.floor_bot", "--token", TOKEN,
                              "--base-url", fake.base_url, "--request", request])
    rng = random.Random(9)
    ids = list(cards)

    def steps(count: int) -> list[Step]:
        out: list[Step] = []
        for i in range(count):
            user, tid = users[i % len(users)], rng.choice(ids)

            async def step(user: User = user, tid: int = tid) -> tuple[str, Any]:
                return "cb", await fake.press_raw_callback(user, cards[tid], f"cl:{tid}")
            out.append(step)
        return out
    try:
        await proc.start()
        await drive(fake, steps(10))
        timing = await drive(fake, steps(n), window=window)
    finally:
        await proc.stop()
        await fake.stop()
    return timing


def describe(name: str, t: Timing) -> list[str]:
    return [f"| {name} | {t.sent} | {t.answered} | {t.unanswered} | {t.elapsed:.2f} s | {t.rate:.0f} |"
            f" {ms(percentile(t.latencies, 50))} | {ms(percentile(t.latencies, 99))} |"]


async def main_async(args: argparse.Namespace) -> None:
    pin = args.pin and bool(pin_note())
    if pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the driver and stand-in on CPU 1, the bot alone on CPU 0
    floor = await run_floor(args.updates, args.window, pin)
    floor_aiohttp = await run_floor(args.updates, args.window, pin, "aiohttp")
    # The stand-in's flood limits are off, so Linli's own pacing is lifted too (BOT_FLOOD_CONTROL=false):
    # this measures how fast it handles updates. The paced run shows what Telegram's limits allow.
    linli, extra = await run_linli(args.updates, args.window, pin, flood_control=False)
    paced, _extra = await run_linli(args.updates, args.window, pin, flood_control=True)
    ratio = linli.rate / floor.rate if floor.rate else float("nan")
    ratio_aiohttp = linli.rate / floor_aiohttp.rate if floor_aiohttp.rate else float("nan")
    from bench.common import features
    lines = [
        "| bot | updates sent | answered | unanswered | wall time | updates/s | p50 | p99 |",
        "|---|---|---|---|---|---|---|---|",
        *describe("floor (bench/floor_bot.py, callbacks only; stock python-telegram-bot, httpx)", floor),
        *describe("floor with Linli's HTTP client (`--request aiohttp`, bot/request.py)", floor_aiohttp),
        *describe("Linli (`python -m bot run`, BOT_FLOOD_CONTROL=false)", linli),
        *describe("Linli, paced to Telegram's limits (BOT_FLOOD_CONTROL=true, the default)", paced),
        "",
        f"- Linli / floor: **{ratio:.2f}** (target >= 0.5); Linli updates/s: **{linli.rate:.0f}** (target >= 300"
        f" on one core); Linli / floor with the same HTTP client: {ratio_aiohttp:.2f}; bot pinned to one core: {'yes (taskset -c 0; the driver and stand-in on CPU 1)' if pin else 'no'}.",
        f"- Mix: 4 of 5 updates are Claim taps and Withdraw taps (each volunteer withdraws the task it claimed last) on {OPEN_TASKS} open tasks' group cards by 1,000"
        f" volunteers; 1 of 5 is /points or /tasks in a private chat. At most {args.window} updates are"
        " unanswered at any moment (closed loop); latency = stand-in queued the update -> the stand-in"
        " recorded answerCallbackQuery / the first sendMessage into that chat.",
        "- The paced run is bounded by the 28 messages/s Linli allows itself overall: about a third of the"
        " updates send a private message (a /points or /tasks reply, the claim details).",
        f"- Linli peak RSS: {extra['peak_rss_kb'] / 1024:.0f} MiB; stand-in errors (refused calls): {extra['errors']};"
        f" calls by method: {extra['answers']}.",
        f"- Refused calls: {extra['error_list'] or 'none'}.",
        f"- Features present: {features()}. Sample tap answers: {extra['sample_answers']}.",
    ]
    body = report(lines)
    write_section("Throughput", body, "bench.throughput", pinned="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
