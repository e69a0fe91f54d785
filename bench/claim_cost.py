"""Claim cost: the claim service alone (``bot.services.tasks.claim``), one claim after another on
one event with a place for each, on SQLite and on PostgreSQL: what a tap costs in the database,
without the bot, the stand-in or a queue of taps in front of it. Prints only (no RESULTS.md section).

    .venv/bin/python -m bench.claim_cost [--claims 500] [--rounds 3] [--database sqlite,postgresql]

Each round seeds a fresh database (bench/common.py; on PostgreSQL a copy of it, see ``Databases``)
with 2N volunteers and an event of N places, then times N claims in a row (p50/p90/p99 per claim)
and then N taps of the others, refused from the glance (the event full); and the CPU per call of
this process and of the PostgreSQL server (less sensitive to a busy machine than the wall time).
The same process, so the PostgreSQL figures include asyncpg and the round trips to a server on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from bench.common import (
    Databases,
    add_database_option,
    fresh_db,
    loadavg,
    migrate_async,
    percentile,
    seed,
)
from bot.models import TaskFull
from bot.services import tasks
from storage.db import open_database


async def one_round(database: str, dbs: Databases, claims: int, i: int) -> dict[str, list[float]]:
    """Seconds per call (``claim``, ``refused (full)``) and CPU per call (``... CPU``: this process
    and the PostgreSQL server's, from /proc; time.process_time counts this process's threads,
    SQLite's included)."""
    path = fresh_db(f"claim_cost_{i}.db")
    await migrate_async(path)
    seeded = seed(path, members=2 * claims + 1, event_slots=claims)
    event = seeded.event_task_id
    assert event is not None
    db = await open_database(await dbs.publish(path, database), migrate=False)
    now = datetime.now(UTC)
    out: dict[str, list[float]] = {}
    try:
        # member 1 (staff) created the event; the first N volunteers take its places, the next N are refused
        for what, members in (("claim", range(2, claims + 2)), ("refused (full)", range(claims + 2, 2 * claims + 2))):
            cpu0, server0 = time.process_time(), dbs.server_cpu() if database != "sqlite" else 0.0
            for member in members:
                t0 = time.perf_counter()
                try:
                    await tasks.claim(db, now, member, event)
                except TaskFull:
                    pass
                out.setdefault(what, []).append(time.perf_counter() - t0)
            out[f"{what} CPU"] = [(time.process_time() - cpu0) / claims]
            out[f"{what} server CPU"] = [(dbs.server_cpu() - server0) / claims if database != "sqlite" else 0.0]
    finally:
        await db.close()
    return out


async def main_async(args: argparse.Namespace) -> None:
    kinds: list[str] = list(args.database)
    got: dict[tuple[str, str], list[float]] = {}
    loads = []
    async with Databases(kinds) as dbs:
        for i in range(args.rounds):  # databases interleaved, so each meets the same machine load
            for kind in kinds:
                before = loadavg()
                for what, values in (await one_round(kind, dbs, args.claims, i)).items():
                    got.setdefault((kind, what), []).extend(values)
                loads.append(f"{kind} round {i + 1}: {before} -> {loadavg()}")
    print(f"{args.claims} claims per round, {args.rounds} rounds; wall ms per call p50 / p90 / p99 / max;"
          " CPU ms per call (this process + the PostgreSQL server), each round")
    for kind in kinds:
        for what in ("claim", "refused (full)"):
            wall = got[kind, what]
            cpu = ", ".join(f"{c * 1000:.2f} + {s * 1000:.2f}"
                            for c, s in zip(got[kind, f"{what} CPU"], got[kind, f"{what} server CPU"], strict=True))
            print(f"  {kind:<10} {what:<15} " + " / ".join(f"{percentile(wall, q) * 1000:.2f}" for q in (50, 90, 99))
                  + f" / {max(wall) * 1000:.2f}   CPU {cpu}")
    print("load average (1/5 min):\n  " + "\n  ".join(loads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    add_database_option(parser)
    parser.set_defaults(database=["sqlite", "postgresql"])
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
