"""Scale: service-call latency, database size and the bot's peak memory as the ledger grows.

    .venv/bin/python -m bench.scale [--members 10000] [--tasks 100000] [--ledger 10000,100000,1000000]
                                    [--repeat 200] [--no-bot] [--database sqlite|postgresql|sqlite,postgresql]

Calls the services directly (the code behind /points, /leaderboard, /tasks, one reminder sweep,
one digest build, the expiring-points sweep between deadlines; points expiry is on; the waiting-list
sweep with no offer due, over a waiting-list history of a tenth of the ledger's rows), ``--repeat``
times each with random members, and reports p50/p99. Then runs
the real bot process on the largest database, sends it some updates and reads its peak RSS.
``--database postgresql``: the same, on a PostgreSQL copy of each seeded database (bench/common.py,
``Databases``); with both, each size is seeded once and measured on each in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import (
    PG_NOTE,
    Databases,
    PinnedBot,
    add_database_option,
    database_size,
    features,
    fresh_db,
    migrate_async,
    percentile,
    read,
    report,
    rss_kb,
    section_name,
    seed,
    stand_in,
    timed,
    users_with_chats,
    write_section,
)
from bench.driver import Step, drive
from bot.services import digest, expiry, notifications, points, tasks, waitlist
from storage import open_database
from storage.periods import month_key

TARGETS = {"/points": 10, "/leaderboard": 50, "/tasks": 20, "reminder sweep": 100, "digest build": 500,
           "expiry sweep, idle": 100, "waitlist sweep, idle": 100}
POLICY_ON = '{"points_expiry": {"years": 1, "since": "2020-01-01T00:00:00.000000Z"}}'  # expiring points, on
OPEN_TASKS = 500


async def measure(path: str, members: int, repeat: int, once: dict[str, float] | None = None) -> dict[str, list[float]]:
    """p50/p99 inputs per call on the database ``path`` (or a ``postgresql://`` URL); ``once`` gets
    the seconds of the expiry sweep's yearly run (every holder)."""
    db = await open_database(path)
    async with db.transaction() as conn:  # expiring points on: /points shows what expires when
        await conn.execute("UPDATE communities SET settings = ? WHERE id = 1", (POLICY_ON,))
    rng = random.Random(5)
    now = datetime.now(UTC)
    tz = "Asia/Shanghai"

    def tg() -> int:
        return 800_000_001 + rng.randrange(members)

    async def reminder() -> None:
        async with db.transaction() as conn:
            await notifications.sweep_reminders(conn, now)

    async def build_digest() -> None:
        # One community's daily digest: the group digest, the staff digest and one volunteer's.
        async with db.transaction() as conn:
            await digest.group_digest(conn, 1, now, tz)
            await digest.staff_digest(conn, 1, now)
            await digest.volunteer_digest(conn, 1 + rng.randrange(members), now, tz)

    try:
        out = {
            "/points": await timed(lambda: points.summary(db, tg_user_id=tg(), now=now), repeat),
            "/leaderboard": await timed(lambda: points.leaderboard(db, tg_user_id=tg(), now=now), max(20, repeat // 4)),
            "/tasks": await timed(lambda: tasks.list_open(db, 1, limit=10), repeat),
            "reminder sweep": await timed(reminder, max(10, repeat // 10)),
            "digest build": await timed(build_digest, max(10, repeat // 10)),
        }
        # The first sweep does the year's work (each holder's points at the last deadline, and the
        # December warning); after that, between deadlines, the sweep only looks up what it did.
        t0 = time.perf_counter()
        await expiry.sweep_expiry(db, now)
        if once is not None:
            once["expiry sweep, yearly run"] = time.perf_counter() - t0
        out["expiry sweep, idle"] = await timed(lambda: expiry.sweep_expiry(db, now), max(10, repeat // 4))
        out["waitlist sweep, idle"] = await timed(lambda: waitlist.sweep(db, now), max(10, repeat // 4))
        return out
    finally:
        await db.close()


WAITLIST_STATES = ("kept", "declined", "lapsed", "left", "waiting")


def seed_waitlist(path: str, rows: int, tasks: int) -> None:
    """A waiting-list history of ``rows`` entries (answered long ago, a few still waiting), and
    a handful of open offers not yet due: what the idle sweep must not pay for."""
    con = sqlite3.connect(path)
    old, due = "2025-01-01T00:00:00.000000Z", "2999-01-01T00:00:00.000000Z"
    with con:
        con.executemany(
            "INSERT INTO waitlist (community_id, task_id, member_id, state, joined_at, offered_at, offer_until,"
            " updated_at) VALUES (1, :task, :member, :state, :old, :old, :until, :old)",
            ({"task": 1 + i % tasks, "member": 1 + i // tasks, "state": WAITLIST_STATES[i % 5] if i >= 10 else "offered",
              "old": old, "until": due if i < 10 else old} for i in range(rows)))
    con.close()


def _queries() -> dict[str, str]:
    """The heaviest statements (to find a missing index), the same text on both databases."""
    month = month_key(datetime.now(UTC), None)
    return {
        "leaderboard": "SELECT m.id, t.pts FROM earning_totals t JOIN members m ON m.id = t.subject_id"
                       f" WHERE t.community_id = 1 AND t.scope = 'm' AND t.period = '{month}' AND t.pts > 0"
                       " AND m.deleted_at IS NULL ORDER BY t.pts DESC, t.subject_id LIMIT 10",
        "/points month sum": "SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE member_id = 5 AND created_at >= '2026-11-01'"
                             " AND delta > 0",
        "/tasks": "SELECT * FROM tasks WHERE community_id = 1 AND state = 'open' ORDER BY id DESC LIMIT 10",
        "waitlist sweep": "SELECT id FROM waitlist WHERE state = 'offered' AND offer_until <= '2026-11-28'"
                          " ORDER BY offer_until LIMIT 100",
        "reminder sweep": "SELECT t.id FROM tasks t WHERE t.state IN ('open', 'full', 'in_progress')"
                          " AND t.starts_at IS NOT NULL AND t.starts_at > '2026-11-28'",
    }


def plans(path: str) -> list[str]:
    """EXPLAIN QUERY PLAN of the heaviest statements on an SQLite database."""
    con = sqlite3.connect(path)
    out = []
    for name, sql in _queries().items():
        detail = "; ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + sql))
        out.append(f"  - {name}: {detail}")
    con.close()
    return out


async def pg_plans(url: str) -> list[str]:
    """EXPLAIN of the same statements on PostgreSQL (the plan's lines joined, indentation dropped)."""
    out = []
    for name, sql in _queries().items():
        detail = "; ".join(str(r[0]).strip() for r in await read(url, "EXPLAIN (COSTS OFF) " + sql))
        out.append(f"  - {name}: {detail}")
    return out


async def bot_memory(path: str, members: int, updates: int) -> tuple[int, int, float]:
    """Run the real bot on the database, send /points, /leaderboard and /tasks; (RSS, peak RSS) KiB."""
    fake = await stand_in(flood_limits=False)
    users = users_with_chats(fake, min(members, 300))
    # Linli's own pacing off, as the stand-in's is: with it every reply waits its turn under
    # 28 messages/s and the answer time would measure that, not the database.
    bot = PinnedBot(fake, path, env={"BOT_SWEEP_INTERVAL": "3600", "BOT_FLOOD_CONTROL": "false"})
    commands = ("/points", "/leaderboard", "/tasks")
    steps: list[Step] = []
    for i in range(updates):
        user, text = users[i % len(users)], commands[i % 3]

        async def step(user: Any = user, text: str = text) -> tuple[str, Any]:
            await fake.send_text(user, None, text)
            return "msg", user.id
        steps.append(step)
    try:
        await bot.start()
        timing = await drive(fake, steps, window=20)
        cur, peak = rss_kb(bot.pid)
    finally:
        await bot.stop()
        await fake.stop()
    return cur, peak, percentile(timing.latencies, 99)


async def main_async(args: argparse.Namespace) -> None:
    sizes = [int(x) for x in args.ledger.split(",")]
    kinds: list[str] = list(args.database)
    sizes_line: list[str] = []
    last: dict[str, str] = {}
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    async with Databases(kinds) as dbs:
        for n in sizes:
            path = fresh_db(f"scale-{n}.db")
            await migrate_async(path)
            seeded = seed(path, members=args.members, tasks=args.tasks, open_tasks=OPEN_TASKS, ledger=n)
            seed_waitlist(path, max(10, n // 10), args.tasks)
            print(f"seeded {n} ledger rows in {seeded.seconds:.1f} s", flush=True)
            copied: dict[str, float] = {}
            for kind in kinds:  # every copy made before any measurement writes (settings, the expiry sweep)
                t0 = time.perf_counter()
                last[kind] = await dbs.publish(path, kind)
                copied[kind] = time.perf_counter() - t0
            for kind in kinds:
                once: dict[str, float] = {}
                results[kind, n] = await measure(last[kind], args.members, args.repeat, once)
                size = await database_size(last[kind])
                sizes_line.append(
                    f"{kind}, {n:,} ledger rows: {size / 1e6:.1f} MB (seeded in {seeded.seconds:.0f} s"
                    + (f", copied to PostgreSQL in {copied[kind]:.0f} s" if kind != "sqlite" else "")
                    + f"; the expiry sweep's yearly run over every holder {once['expiry sweep, yearly run']:.1f} s)")
        lines = [
            f"Database: 1 community, {args.members:,} registered volunteers, {args.tasks:,} tasks ({OPEN_TASKS} open),"
            f" one completed claim per closed task, ledger rows spread over 90 days; services called directly"
            f" ({args.repeat} calls for /points and /tasks, fewer for the heavier ones; first call not timed).",
            "",
            *_table(results, kinds, sizes),
            "",
            "- Database size: " + "; ".join(sizes_line) + ".",
            "- Missed targets: " + ("; ".join(_missed(results)) or "none") + ".",
        ]
        for kind in kinds:
            lines += [f"- Query plans on the largest database ({kind}):",
                      *(plans(last[kind]) if kind == "sqlite" else await pg_plans(last[kind]))]
        if args.bot:
            for kind in kinds:
                cur, peak, p99 = await bot_memory(last[kind], args.members, args.updates)
                lines.append(f"- Bot process on the {sizes[-1]:,}-row database ({kind}) after {args.updates} updates"
                             f" (/points, /leaderboard, /tasks): RSS {cur / 1024:.0f} MiB, peak RSS **{peak / 1024:.0f} MiB**;"
                             f" answer p99 {p99 * 1000:.0f} ms (20 in flight, flood pacing off as in Throughput).")
    lines.append(f"- Features present: {features()}.")
    if "postgresql" in kinds:
        lines.append(PG_NOTE)
    body = report(lines)
    write_section(section_name("Scale", kinds), body, "bench.scale")


def _table(results: dict[tuple[str, int], dict[str, list[float]]], kinds: list[str], sizes: list[int]) -> list[str]:
    """p50 / p99 per call (rows) and database and size (columns)."""
    columns = [(k, n) for n in sizes for k in kinds]
    named = len(kinds) > 1 or kinds != ["sqlite"]
    rows = ["| call (target) | " + " | ".join((f"{k}, " if named else "") + f"{n:,} rows p50 / p99"
                                             for k, n in columns) + " |",
            "|---|" + "---|" * len(columns)]
    for call, target in TARGETS.items():
        cells = [f"{percentile(results[c][call], 50) * 1000:.2f} / **{percentile(results[c][call], 99) * 1000:.2f} ms**"
                 for c in columns]
        rows.append(f"| {call} (< {target} ms) | " + " | ".join(cells) + " |")
    return rows


def _missed(results: dict[tuple[str, int], dict[str, list[float]]]) -> list[str]:
    out = []
    for (kind, n), calls in results.items():
        for call, target in TARGETS.items():
            p99 = percentile(calls[call], 99) * 1000
            if p99 > target:
                out.append(f"{call} at {n:,} rows on {kind} ({p99:.1f} ms > {target} ms)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--ledger", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--no-bot", dest="bot", action="store_false")
    add_database_option(parser)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
