"""Claim storm: N volunteers tap Claim on one event with S places within one second, for several N
(the knee), the bot pinned to one core.

    .venv/bin/python -m bench.claim_storm [--taps 100,500,1000,2000] [--slots 20] [--spread 1.0] [--runs 3]
                                          [--no-pin] [--database sqlite|postgresql|sqlite,postgresql] [--floor]

``--floor`` adds the floor (bench/floor_bot.py: python-telegram-bot with Linli's HTTP client, answering
every tap "ok", no database) to each round, on the same stand-in, taps and pinning: what any
python-telegram-bot bot does at best on this machine, run by run next to Linli.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import (
    PG_NOTE,
    Databases,
    PinnedBot,
    add_database_option,
    cpu_seconds,
    features,
    fresh_db,
    loadavg,
    migrate_async,
    ms,
    percentile,
    pin_driver,
    read,
    report,
    section_name,
    seed,
    stand_in,
    users_with_chats,
    write_section,
)
from bench.throughput import digest_moment, link_cards, post_cards
from bot.devkit.harness import TOKEN, settle


async def storm(volunteers: int, slots: int, spread: float, *, db_name: str = "claim_storm.db",
                pin: bool = False, database: str = "sqlite", dbs: Databases | None = None) -> dict[str, Any]:
    """One storm on a fresh bot and database (``database`` "postgresql": a copy on ``dbs``'s server)."""
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
    url = await dbs.publish(path, database) if dbs is not None and database != "floor" else path
    floor = database == "floor"
    command = ([sys.executable, "-m", "bench.floor_bot", "--token", TOKEN, "--base-url", fake.base_url]
               if floor else None)
    bot = PinnedBot(fake, url, pin=pin, env={"BOT_SWEEP_INTERVAL": "3600"}, command=command)
    try:
        await bot.start()
        if floor:
            await settle(fake, quiet=0.5, timeout=30)
        else:
            await _started(fake, bot)
        load_before, cpu0 = loadavg(), cpu_seconds(bot.pid)
        server0 = dbs.server_cpu() if dbs is not None and database not in ("sqlite", "floor") else 0.0
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
        server = dbs.server_cpu() - server0 if dbs is not None and database not in ("sqlite", "floor") else 0.0
    finally:
        await bot.stop()
        await fake.stop()
    answered = sum(1 for q in ids if fake.callbacks[q].answered)
    common = {"database": database, "taps": len(ids), "sent_in": sent_in, "cpu": cpu, "server_cpu": server,
              "load": f"{load_before} -> {load_after}", "answered": answered, "latencies": latencies,
              "errors": sorted({f"{e.method}: {e.description}" for e in fake.errors}),
              "answers": sorted({str((fake.callbacks[q].answer or {}).get("text")) for q in ids})[:5]}
    if floor:  # no database: nothing to count but the answers
        return {**common, "claims": None, "state": "-"}
    active = (await read(url, "SELECT COUNT(*) FROM claims WHERE task_id = ? AND state = 'active'",
                         (seeded.event_task_id,)))[0][0]
    state = (await read(url, "SELECT state FROM tasks WHERE id = ?", (seeded.event_task_id,)))[0][0]
    return {**common, "claims": active, "state": state}


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
    kinds = list(args.database)
    bots = [*kinds, *(["floor"] if args.floor else [])]
    results: dict[tuple[str, int], list[dict[str, Any]]] = {(d, n): [] for d in bots for n in sizes}
    async with Databases(kinds) as dbs:
        for i in range(args.runs):  # sizes and bots interleaved, so each meets the same machine load
            for n in sizes:
                for d in bots:
                    results[d, n].append(await storm(n, args.slots, args.spread, db_name=f"claim_storm_{n}_{i}.db",
                                                     pin=pin, database=d, dbs=dbs))
    lines = [
        "Measured (each row one run on a fresh database and bot):",
        "",
        f"| database | taps | run | sent within | active claims (expected {args.slots}) | event | answered | p50 | p99"
        " | max | bot CPU | server CPU | load before -> after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (d, n), runs in results.items():
        for i, x in enumerate(runs, 1):
            lat = x["latencies"]
            lines.append(f"| {d} | {n} | {i} | {x['sent_in']:.2f} s | {'-' if x['claims'] is None else x['claims']} | {x['state']}"
                         f" | {x['answered']} / {x['taps']} | {ms(percentile(lat, 50))} | {ms(percentile(lat, 99))}"
                         f" | {ms(max(lat) if lat else float('nan'))} | {x['cpu']:.2f} s"
                         f" | {x['server_cpu']:.2f} s | {x['load']} |")
    lines += ["", "| database | taps in 1 s | p99 best / median / worst | bot CPU per tap, median"
              " | server CPU per tap, median | p99 < 1 s | counts exact |", "|---|---|---|---|---|---|---|"]
    for (d, n), runs in results.items():
        p99s = [percentile(x["latencies"], 99) for x in runs]
        exact = all(x["claims"] in (args.slots, None) and x["answered"] == x["taps"] for x in runs)
        lines.append(f"| {d} | {n} | {ms(min(p99s))} / {ms(percentile(p99s, 50))} / {ms(max(p99s))}"
                     f" | {ms(percentile([x['cpu'] / x['taps'] for x in runs], 50))}"
                     f" | {ms(percentile([x['server_cpu'] / x['taps'] for x in runs], 50))}"
                     f" | {sum(1 for p in p99s if p < 1.0)} of {len(p99s)} runs | {'yes' if exact else 'NO'} |")
    every = [x for runs in results.values() for x in runs]
    lines += [
        "",
        f"- Distinct answers shown (first run of the largest size): {results[kinds[-1], sizes[-1]][0]['answers']}.",
        *(_floor_lines(results, kinds, sizes) if args.floor else []),
        f"- Refused calls: {sorted({e for x in every for e in x['errors']}) or 'none'}.",
        f"- Features present: {features()}.",
        "",
        "Description (fixed text, not measured):",
        "",
        f"- N volunteers each tap Claim once on one event with {args.slots} places, spread evenly over"
        f" {args.spread:g} s; latency = the stand-in queued the tap -> it recorded the bot's"
        " answerCallbackQuery; 'bot CPU' = user + system time of the bot process from the first tap to"
        " quiescence, 1 s without a Bot API call (the claim details included; the card's last edit usually"
        " comes later: a card is edited at most every 5 s, and it was redrawn just before the taps);"
        " 'server CPU' the same for the PostgreSQL"
        " server's processes (0 on SQLite, whose work is in the bot's own CPU).",
        "- The stand-in's flood limits are on, but answerCallbackQuery is exempt from them on both sides"
        " (as on Telegram), so they do not touch the answer times measured here; they pace only the"
        f" {args.slots} claim details and the card edit.",
        f"- Bot pinned: {'yes, taskset -c 0 (the driver and stand-in on CPU 1)' if pin else 'no'}.",
        *([PG_NOTE] if "postgresql" in kinds else []),
        *(["- 'floor' rows: bench/floor_bot.py (python-telegram-bot with Linli's HTTP client, 64 updates at"
           " once, answers every tap 'ok', no database, no claims to count) on the same stand-in, taps and"
           " pinning, in the same rounds."] if args.floor else []),
    ]
    write_section(section_name("Claim storm", kinds), report(lines), "bench.claim_storm")


def _floor_lines(results: dict[tuple[str, int], list[dict[str, Any]]], kinds: list[str],
                 sizes: list[int]) -> list[str]:
    """Linli's CPU per storm over the floor's, round by round (the rounds alternate, so each pair met
    about the same machine), for each database and size."""
    out = []
    for d in kinds:
        for n in sizes:
            ratios = [x["cpu"] / f["cpu"] for x, f in zip(results[d, n], results["floor", n], strict=True)
                      if f["cpu"] > 0]
            if ratios:
                out.append(f"- {d}, {n} taps: bot CPU per storm / the floor's in the same round:"
                           f" {', '.join(f'{r:.2f}' for r in ratios)} (median {percentile(ratios, 50):.2f}).")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--taps", default="100,500,1000,2000", help="comma-separated tap counts")
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--floor", action="store_true",
                        help="also storm the floor (bench/floor_bot.py) in each round, for comparison")
    add_database_option(parser)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
