"""Claim storm: N volunteers tap Claim on one event with S places within one second, for several N
(the knee), the bot pinned to one core.

    .venv/bin/python -m bench.claim_storm [--taps 100,500,1000,2000] [--slots 20] [--spread 1.0] [--runs 3]
                                          [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import (
    PinnedBot,
    cpu_seconds,
    features,
    fresh_db,
    loadavg,
    migrate_async,
    ms,
    percentile,
    pin_driver,
    report,
    seed,
    stand_in,
    users_with_chats,
    write_section,
)
from bench.throughput import digest_moment, link_cards, post_cards
from bot.devkit.harness import TOKEN, settle


async def storm(volunteers: int, slots: int, spread: float, *, db_name: str = "claim_storm.db",
                pin: bool = False) -> dict[str, Any]:
    fake = await stand_in(flood_limits=True)
    path = fresh_db(db_name)
    await migrate_async(path)
    bot_user = fake.users[int(TOKEN.split(":")[0])]
    group = fake.add_group("Storm volunteers", members=[bot_user])
    now = datetime.now(UTC)
    # The digests are stored as due at least 12 hours ahead: the bot's first sweep decides no
    # digest for 2,000 members while the taps come in, whatever the time of day.
    seeded = seed(path, members=volunteers + 1, group_chat_id=group.id, event_slots=slots, now=now,
                  digest_next=digest_moment(now))
    assert seeded.event_task_id is not None
    users = users_with_chats(fake, volunteers + 1)[1:]  # member 1 (staff) created the event
    for u in users:
        fake.add_member(group, u, announce=False)
    cards = await post_cards(fake, group.id, [seeded.event_task_id])
    link_cards(path, cards)
    card = cards[seeded.event_task_id]
    bot = PinnedBot(fake, path, pin=pin, env={"BOT_SWEEP_INTERVAL": "3600"})
    try:
        await bot.start()
        await _started(fake, bot)
        load_before, cpu0 = loadavg(), cpu_seconds(bot.pid)
        ids = []
        t0 = time.perf_counter()
        for i, user in enumerate(users):
            ids.append(await fake.press_raw_callback(user, card, f"cl:{seeded.event_task_id}"))
            target = t0 + spread * (i + 1) / len(users)
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        sent_in = time.perf_counter() - t0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline and not all(fake.callbacks[q].answered for q in ids):
            await asyncio.sleep(0.02)
        answer_time = {str(c.params.get("callback_query_id")): c.time for c in fake.calls
                       if c.method == "answerCallbackQuery"}
        latencies = [answer_time[q] - fake.callbacks[q].wall_time for q in ids if q in answer_time]
        await settle(fake, quiet=1.0, timeout=120)
        cpu, load_after = cpu_seconds(bot.pid) - cpu0, loadavg()
    finally:
        await bot.stop()
        await fake.stop()
    con = sqlite3.connect(path)
    active = con.execute("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state = 'active'",
                         (seeded.event_task_id,)).fetchone()[0]
    state = con.execute("SELECT state FROM tasks WHERE id = ?", (seeded.event_task_id,)).fetchone()[0]
    con.close()
    answered = sum(1 for q in ids if fake.callbacks[q].answered)
    return {"taps": len(ids), "sent_in": sent_in, "cpu": cpu, "load": f"{load_before} -> {load_after}", "claims": active, "state": state, "answered": answered,
            "latencies": latencies, "errors": sorted({f"{e.method}: {e.description}" for e in fake.errors}),
            "answers": sorted({str((fake.callbacks[q].answer or {}).get("text")) for q in ids})[:5]}


async def _started(fake: Any, bot: PinnedBot) -> None:
    """Wait for the bot's start-up work (its first sweeps and timed jobs, the last of which, the series
    job a second after start, says its first run) and then for a quiet half second: the storm is
    measured alone, not on top of the start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while "series job:" not in bot.log() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    await settle(fake, quiet=0.5, timeout=30)


async def main_async(args: argparse.Namespace) -> None:
    pin = pin_driver(args.pin)  # the driver and stand-in on CPU 1, the bot alone on CPU 0
    sizes = [int(x) for x in args.taps.split(",")]
    results: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for i in range(args.runs):  # sizes interleaved, so each meets the same machine load
        for n in sizes:
            results[n].append(await storm(n, args.slots, args.spread, db_name=f"claim_storm_{n}_{i}.db", pin=pin))
    lines = [
        "Measured (each row one run on a fresh database and bot):",
        "",
        f"| taps | run | sent within | active claims (expected {args.slots}) | event | answered | p50 | p99 | max"
        " | bot CPU | load before -> after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        for i, x in enumerate(results[n], 1):
            lat = x["latencies"]
            lines.append(f"| {n} | {i} | {x['sent_in']:.2f} s | {x['claims']} | {x['state']} | {x['answered']} / {x['taps']}"
                         f" | {ms(percentile(lat, 50))} | {ms(percentile(lat, 99))}"
                         f" | {ms(max(lat) if lat else float('nan'))} | {x['cpu']:.2f} s | {x['load']} |")
    lines += ["", "| taps in 1 s | p99 best / median / worst | p99 < 1 s | counts exact |", "|---|---|---|---|"]
    for n in sizes:
        p99s = [percentile(x["latencies"], 99) for x in results[n]]
        exact = all(x["claims"] == args.slots and x["answered"] == x["taps"] for x in results[n])
        lines.append(f"| {n} | {ms(min(p99s))} / {ms(percentile(p99s, 50))} / {ms(max(p99s))}"
                     f" | {sum(1 for p in p99s if p < 1.0)} of {len(p99s)} runs | {'yes' if exact else 'NO'} |")
    every = [x for n in sizes for x in results[n]]
    lines += [
        "",
        f"- Distinct answers shown (first run of the largest size): {results[sizes[-1]][0]['answers']}.",
        f"- Refused calls: {sorted({e for x in every for e in x['errors']}) or 'none'}.",
        f"- Features present: {features()}.",
        "",
        "Description (fixed text, not measured):",
        "",
        f"- N volunteers each tap Claim once on one event with {args.slots} places, spread evenly over"
        f" {args.spread:g} s; latency = the stand-in queued the tap -> it recorded the bot's"
        " answerCallbackQuery; 'bot CPU' = user + system time of the bot process from the first tap to"
        " quiescence (claim details and the card edit included).",
        "- The stand-in's flood limits are on, but answerCallbackQuery is exempt from them on both sides"
        " (as on Telegram), so they do not touch the answer times measured here; they pace only the"
        f" {args.slots} claim details and the card edit.",
        f"- Bot pinned: {'yes, taskset -c 0 (the driver and stand-in on CPU 1)' if pin else 'no'}.",
    ]
    write_section("Claim storm", report(lines), "bench.claim_storm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--taps", default="100,500,1000,2000", help="comma-separated tap counts")
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
