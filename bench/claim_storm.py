"""Claim storm: N volunteers tap Claim on one event with S places within one second.

    .venv/bin/python -m bench.claim_storm [--volunteers 500] [--slots 20] [--spread 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from typing import Any

from bench.common import (
    PinnedBot,
    features,
    fresh_db,
    migrate_async,
    ms,
    percentile,
    report,
    seed,
    stand_in,
    users_with_chats,
    write_section,
)
from bench.throughput import link_cards, post_cards
from bot.harness import TOKEN, settle


async def storm(volunteers: int, slots: int, spread: float, *, db_name: str = "claim_storm.db") -> dict[str, Any]:
    fake = await stand_in(flood_limits=True)
    path = fresh_db(db_name)
    await migrate_async(path)
    bot_user = fake.users[int(TOKEN.split(":")[0])]
    group = fake.add_group("Storm volunteers", members=[bot_user])
    seeded = seed(path, members=volunteers + 1, group_chat_id=group.id, event_slots=slots)
    assert seeded.event_task_id is not None
    users = users_with_chats(fake, volunteers + 1)[1:]  # member 1 (staff) created the event
    for u in users:
        fake.add_member(group, u, announce=False)
    cards = await post_cards(fake, group.id, [seeded.event_task_id])
    link_cards(path, cards)
    card = cards[seeded.event_task_id]
    bot = PinnedBot(fake, path, env={"BOT_SWEEP_INTERVAL": "3600"})
    try:
        await bot.start()
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
        await settle(fake, quiet=1.0, timeout=30)
    finally:
        await bot.stop()
        await fake.stop()
    con = sqlite3.connect(path)
    active = con.execute("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state = 'active'",
                         (seeded.event_task_id,)).fetchone()[0]
    state = con.execute("SELECT state FROM tasks WHERE id = ?", (seeded.event_task_id,)).fetchone()[0]
    con.close()
    answered = sum(1 for q in ids if fake.callbacks[q].answered)
    return {"taps": len(ids), "sent_in": sent_in, "claims": active, "state": state, "answered": answered,
            "latencies": latencies, "errors": sorted({f"{e.method}: {e.description}" for e in fake.errors}),
            "answers": sorted({str((fake.callbacks[q].answer or {}).get("text")) for q in ids})[:5]}


async def main_async(args: argparse.Namespace) -> None:
    runs = [await storm(args.volunteers, args.slots, args.spread, db_name=f"claim_storm_{i}.db")
            for i in range(args.runs)]
    r = runs[0]
    p99s = [percentile(x["latencies"], 99) for x in runs]
    ok_counts = all(x["claims"] == args.slots and x["answered"] == x["taps"] for x in runs)
    lines = [
        f"- {r['taps']} volunteers tapped Claim on one {args.slots}-place event within {r['sent_in']:.2f} s"
        f" (real bot process, flood limits on); {len(runs)} run(s), each on a fresh database and bot.",
        "",
        f"| run | active claims (expected {args.slots}) | event state | answered | p50 | p99 | max |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, x in enumerate(runs, 1):
        lat = x["latencies"]
        lines.append(f"| {i} | {x['claims']} | {x['state']} | {x['answered']} / {x['taps']} | {ms(percentile(lat, 50))}"
                     f" | {ms(percentile(lat, 99))} | {ms(max(lat) if lat else float('nan'))} |")
    lines += [
        "",
        f"- p99 over the runs: best {ms(min(p99s))}, median {ms(percentile(p99s, 50))}, worst {ms(max(p99s))}"
        " (target p99 < 1 s).",
        f"- Verdict: counts {'exact in every run' if ok_counts else 'WRONG in some run'}; p99 target met in"
        f" {sum(1 for p in p99s if p < 1.0)} of {len(runs)} runs.",
        f"- Distinct answers shown: {r['answers']}.",
        f"- Refused calls: {sorted({e for x in runs for e in x['errors']}) or 'none'}.",
        f"- Features present: {features()}.",
    ]
    write_section("Claim storm", report(lines), "bench.claim_storm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volunteers", type=int, default=500)
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
