"""A city on one bot: 100 communities, 50,000 members, 1,000,000 ledger rows.

    .venv/bin/python -m bench.city [--communities 100] [--members 50000] [--ledger 1000000] [--tasks 100000]
                                   [--repeat 30] [--digest-members 50000] [--digest-seconds 240]
                                   [--digest-ledger 100000] [--reuse] [--no-pin]

1. Idle sweeps: on the city database (filled with plain sqlite3 like bench/sweeps.py, plus the
   ledger, through its running-totals trigger), at 10:00 Shanghai with today's digests decided, the
   real code of each timer is timed ``--repeat`` times: the digest sweep (``sweep_digests``), the
   card job's selection (``storage.cards.TO_DRAW``), the reminder sweep (``sweep_reminders``) and the
   outbox's next batch (``NEXT_BATCH``), with 100,000 sent messages of history.
2. A full day's digest: the real bot process, stand-in flood limits on, Linli's pacing on (the
   default), ``--digest-members`` volunteers whose digest is due when the bot starts. For
   ``--digest-seconds`` a volunteer taps Claim on an open task every 2 s; the bench records how
   long the answer and the claim details (the private message with the Withdraw button) take
   while the digests go out, the digests' rate, the 429s, the bot's CPU and RSS. It stops the bot
   after that window: the time for all of them is computed from the rate (and said to be).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import time
from datetime import timedelta
from typing import Any

from bench import common
from bench.common import (
    PinnedBot,
    cpu_seconds,
    db_size,
    fresh_db,
    loadavg,
    migrate_async,
    ms,
    percentile,
    pin_driver,
    report,
    rss_kb,
    seed,
    stand_in,
    timed,
    users_with_chats,
    write_section,
)
from bench.sweeps import NOW, fill, settle_digests
from bench.throughput import link_cards, post_cards
from bot.devkit.harness import TOKEN
from bot.jobs.outbox_drain import BATCH
from bot.services import digest, notifications
from storage.cards import TO_DRAW as CARDS
from storage.outbox import NEXT_BATCH
from storage.periods import register as register_periods
from storage.timeutil import to_db


def add_ledger(path: str, rows: int, members: int, communities: int) -> None:
    """``rows`` credits over the last 90 days, through the ledger's triggers (running totals)."""
    con = sqlite3.connect(path, isolation_level=None)
    register_periods(con)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("BEGIN")
    rng = random.Random(3)
    span = 90 * 24 * 3600
    batch: list[tuple[Any, ...]] = []
    for n in range(1, rows + 1):
        member = 1 + rng.randrange(members)
        batch.append((1 + member % communities, member, 1 + rng.randrange(5), "task_completed", f"city:{n}",
                      to_db(NOW - timedelta(seconds=rng.randrange(span)))))
        if len(batch) >= 50_000 or n == rows:
            con.executemany("INSERT INTO ledger (community_id, member_id, delta, reason, idempotency_key, created_at)"
                            " VALUES (?, ?, ?, ?, ?, ?)", batch)
            batch = []
    # Idle: every card shown as it should be (bench/sweeps.py leaves 20 to post or edit).
    con.execute("UPDATE tasks SET group_message_id = COALESCE(group_message_id, 10000 + id),"
                " card_rendered = card_version")
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


async def idle_sweeps(path: str, repeat: int) -> dict[str, list[float]]:
    from storage import open_database

    db = await open_database(path)
    try:
        async def digests() -> None:
            assert await digest.sweep_digests(db, NOW) == 0

        async def cards() -> None:
            assert await db.fetchall(CARDS) == []

        async def reminders() -> None:
            async with db.transaction() as conn:
                await notifications.sweep_reminders(conn, NOW)

        async def outbox() -> None:
            assert await db.fetchall(NEXT_BATCH, {"now": to_db(NOW), "n": BATCH}) == []

        return {"digest sweep": await timed(digests, repeat), "card job selection": await timed(cards, repeat),
                "reminder sweep": await timed(reminders, repeat), "outbox next batch": await timed(outbox, repeat)}
    finally:
        await db.close()


async def digest_day(members: int, seconds: float, ledger: int, pin: bool) -> dict[str, Any]:
    fake = await stand_in(flood_limits=True)
    path = fresh_db("city_digest.db")
    await migrate_async(path)
    bot_user = fake.users[int(TOKEN.split(":")[0])]
    group = fake.add_group("City volunteers", members=[bot_user])
    # digest_time 00:00: every volunteer's digest is due when the bot starts, whatever the hour.
    seeded = seed(path, members=members, tasks=2000, open_tasks=20, open_slots=200, ledger=ledger,
                  group_chat_id=group.id, digest_time="00:00")
    users = users_with_chats(fake, members)
    tappers = users[1::max(1, members // 200)][:200]
    for u in tappers:
        fake.add_member(group, u, announce=False)
    cards = await post_cards(fake, group.id, seeded.open_task_ids)
    link_cards(path, cards)
    bot = PinnedBot(fake, path, pin=pin, env={"BOT_SWEEP_INTERVAL": "30", "BOT_OUTBOX_INTERVAL": "0.5"})
    mark = len(fake.calls)
    taps: list[tuple[Any, str, int, float]] = []  # (user, query id, task id, sent at)
    queued: list[tuple[float, int]] = []
    try:
        await bot.start()
        t0, cpu0, load_before = time.time(), cpu_seconds(bot.pid), loadavg()
        reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rng = random.Random(4)
        i = 0
        while time.time() - t0 < seconds:
            user = tappers[i % len(tappers)]
            tid = rng.choice(seeded.open_task_ids)
            taps.append((user, await fake.press_raw_callback(user, cards[tid], f"cl:{tid}"), tid, time.time()))
            i += 1
            try:
                queued.append((time.time() - t0, reader.execute(
                    "SELECT COUNT(*) FROM outbox WHERE kind LIKE 'digest%'").fetchone()[0]))
            except sqlite3.OperationalError:
                pass
            await asyncio.sleep(2.0)
        await asyncio.sleep(3.0)  # the last tap's details
        cpu, load_after, (rss, peak) = cpu_seconds(bot.pid) - cpu0, loadavg(), rss_kb(bot.pid)
        sent_digests = reader.execute("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'digest%' AND state = 'sent'").fetchone()[0]
        all_digests = reader.execute("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'digest%'").fetchone()[0]
        reader.close()
    finally:
        await bot.stop()
        await fake.stop()
    calls = fake.calls[mark:]
    answer_at = {str(c.params.get("callback_query_id")): c.time for c in calls if c.method == "answerCallbackQuery"}
    answers, details = [], []
    for user, qid, tid, sent in taps:
        if qid in answer_at:
            answers.append(answer_at[qid] - sent)
        got = [c.time for c in calls if c.method == "sendMessage" and c.time >= sent
               and str(c.params.get("chat_id")) == str(user.id) and f"wd:{tid}" in str(c.params.get("reply_markup"))]
        details.append(min(got) - sent if got else float("inf"))
    private = sorted(c.time for c in calls if c.method == "sendMessage" and int(c.params.get("chat_id", 0)) > 0)
    window = [x for x in private if x - t0 > 10]  # after the first sweep had queued some
    rate = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else float("nan")
    decided_at = next((s for s, n in queued if n >= all_digests), None)
    return {"members": members, "seconds": seconds, "sent_digests": sent_digests, "all_digests": all_digests,
            "rate": rate, "too_many": fake.stats.too_many_requests, "answers": answers, "details": details,
            "cpu": cpu, "rss": rss, "peak": peak, "load": f"{load_before} -> {load_after}", "decided_at": decided_at,
            "errors": sorted({f"{e.method}: {e.description}" for e in fake.errors})[:5], "db_mb": db_size(path) / 1e6}


async def main_async(args: argparse.Namespace) -> None:
    pin = pin_driver(args.pin)  # the driver and stand-in on CPU 1, the bot alone on CPU 0
    t0 = time.perf_counter()
    path = str(common.OUT / "city.db")
    reused = args.reuse and os.path.exists(path)
    if not reused:
        path = fresh_db("city.db")
        await migrate_async(path)
        fill(path, communities=args.communities, members=args.members, tasks=args.tasks, pending=0, history=100_000)
        add_ledger(path, args.ledger, args.members, args.communities)
        settle_digests(path, args.members)
    seeded_in = time.perf_counter() - t0
    load_before = loadavg()
    idle = await idle_sweeps(path, args.repeat)
    load_after = loadavg()
    lines = [
        f"Idle sweeps, measured: {args.communities} communities, {args.members:,} members, {args.ledger:,} ledger"
        f" rows, {args.tasks:,} tasks, 100,000 sent outbox rows; database {db_size(path) / 1e6:.0f} MB ("
        f"{'kept from an earlier run' if reused else f'filled in {seeded_in:.0f} s'}); {args.repeat} calls each after one untimed; load {load_before} -> {load_after}.",
        "",
        "| sweep (target < 100 ms) | p50 | p99 | max | |",
        "|---|---|---|---|---|",
    ]
    for name, values in idle.items():
        lines.append(f"| {name} | {percentile(values, 50) * 1000:.2f} ms | {percentile(values, 99) * 1000:.2f} ms"
                     f" | {max(values) * 1000:.2f} ms |"
                     f" {'met' if max(values) < 0.1 else 'MISSED'} |")
    print("\n".join(lines), flush=True)
    idle_lines = len(lines)
    if args.digest_members:
        d = await digest_day(args.digest_members, args.digest_seconds, args.digest_ledger, pin)
        ans, det = d["answers"], d["details"]
        late = sum(1 for x in det if x > 2.0)
        decided = "not within the window" if d["decided_at"] is None else f"{d['decided_at']:.0f} s"
        lines += [
            "",
            f"A day's digest, measured: {d['members']:,} volunteers in one community ({args.digest_ledger:,} ledger"
            f" rows), digest due at start; the bot ran for {d['seconds']:.0f} s with a Claim tap every 2 s"
            f" (bot pinned: {'yes' if pin else 'no'}; load {d['load']}).",
            "",
            "| figure | value |",
            "|---|---|",
            f"| digests queued by the end / sent | {d['all_digests']:,} / {d['sent_digests']:,} |",
            f"| all of them queued (decided) after | {decided} |",
            f"| private messages/s (from 10 s after start) | {d['rate']:.1f} (Telegram's limit: 30/s per bot) |",
            f"| 429 Too Many Requests | {d['too_many']} |",
            f"| Claim answers during it: p50 / p99 / max | {ms(percentile(ans, 50))} / {ms(percentile(ans, 99))} / {ms(max(ans) if ans else float('nan'))} ({len(ans)} of {len(det)} taps) |",
            f"| claim details in the volunteer's chat: p50 / p99 / max | {ms(percentile(det, 50))} / {ms(percentile(det, 99))} / {ms(max(det) if det else float('nan'))} ({late} over 2 s) |",
            f"| bot CPU over the window | {d['cpu']:.1f} s ({100 * d['cpu'] / d['seconds']:.0f} % of one core) |",
            f"| bot RSS at the end / peak | {d['rss'] / 1024:.0f} / {d['peak'] / 1024:.0f} MiB |",
            f"| refused calls | {d['errors'] or 'none'} |",
            "",
            f"- Computed, not measured: at {d['rate']:.1f} messages/s all {d['members']:,} digests take"
            f" {d['members'] / d['rate'] / 60:.0f} min (the run stopped after {d['seconds']:.0f} s).",
        ]
    report(lines[idle_lines:])  # (the idle sweeps were printed already)
    write_section("City", "\n".join(lines), "bench.city")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--communities", type=int, default=100)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--ledger", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--digest-members", type=int, default=50_000)
    parser.add_argument("--digest-seconds", type=float, default=240)
    parser.add_argument("--digest-ledger", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="keep bench/out/city.db if a run left one")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
