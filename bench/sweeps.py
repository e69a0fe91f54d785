"""The idle cost of the timers at city size, before and after they read only what is due.

Micro-measurements of single statements (not the bot): builds one database with the real migrations,
fills it with plain sqlite3, then times

- the digest sweep between digest times, 50,000 members in 100 communities: before, the loop the
  sweep ran (list every member of every community, one write transaction per member already past
  their digest time, whose "once a day" key is found taken); after, the two index lookups of
  ``bot.services.digest.sweep_digests`` (``storage.digest.DUE_COMMUNITIES``, ``DUE_MEMBERS``) and the whole real
  function through aiosqlite;
- the card job's selection at 100,000 tasks (20 cards to post or edit): the old query and
  ``bot.jobs.cards._SQL``;
- the outbox's next batch of 30 with 50,000 pending (and 100,000 sent rows of history): the old
  ``ORDER BY priority DESC, id`` and ``storage.outbox.NEXT_BATCH``; also with the 50,000 pending
  not due yet (deferred to after quiet hours), with none or 30 of the digests due.

"Before" runs the old statements (kept here verbatim) on the same, fully migrated database. Each is
timed ``--repeat`` times (the old digest loop ``--repeat-slow`` times); the median, p90, p99 and
maximum wall time are printed with the load average before and after: the machine is shared, so
read the figures relative to each other. Prints only; writes nothing to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import fresh_db, machine, migrate_async, percentile
from bot.jobs.outbox_drain import BATCH
from bot.services import digest
from storage import digest as digest_store
from storage.cards import TO_DRAW as CARDS_NOW
from storage.outbox import BULK, FIRST, NEXT_BATCH, NOTICE
from storage.periods import register as register_periods
from storage.timeutil import to_db

TZ = "Asia/Shanghai"
NOW = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)   # 10:00 in Shanghai: today's 08:00 digests are done

# -- the statements as they were -----------------------------------------------------------------
CARDS_BEFORE = CARDS_NOW.split(" WHERE ((t.group_message_id")[0] + (
    " WHERE ((t.group_message_id IS NULL AND t.state IN ('open', 'full') AND c.group_chat_id IS NOT NULL)"
    " OR (t.group_message_id > 0 AND t.card_version > t.card_rendered)) ORDER BY t.id LIMIT 50")
OUTBOX_BEFORE = ("SELECT * FROM outbox WHERE state = 'pending' AND not_before <= ?"
                 " ORDER BY priority DESC, id LIMIT ?")
_MARK = "INSERT INTO sent_notifications (key, created_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"


def _due(local: datetime, hhmm: str) -> bool:
    hh, mm = (int(x) for x in hhmm.split(":"))
    return (local.hour, local.minute) >= (hh, mm)


def digest_sweep_before(con: sqlite3.Connection, now: datetime) -> None:
    """The old ``sweep_digests`` without building digests (between digest times it built none)."""
    stamp = to_db(now)
    for c in con.execute("SELECT * FROM communities WHERE active = 1").fetchall():
        local = now.astimezone(ZoneInfo(c["timezone"]))
        day = local.date().isoformat()
        cid = int(c["id"])
        con.execute("BEGIN IMMEDIATE")
        if _due(local, c["digest_time"]):
            con.execute(_MARK, (f"digest:group:{cid}:{day}", stamp))
        con.execute("COMMIT")
        members = con.execute(
            "SELECT id, is_staff, is_volunteer, digest_enabled, digest_hour FROM members WHERE community_id = ?"
            " AND deleted_at IS NULL AND registered_at IS NOT NULL AND (is_staff = 1 OR is_volunteer = 1)",
            (cid,)).fetchall()
        for m in members:
            hhmm = c["digest_time"] if m["digest_hour"] is None else f"{int(m['digest_hour']):02d}:00"
            if not _due(local, hhmm):
                continue
            mid = int(m["id"])
            con.execute("BEGIN IMMEDIATE")
            if m["is_staff"]:
                con.execute(_MARK, (f"digest:staff:{mid}:{day}", stamp))
            if m["is_volunteer"] and m["digest_enabled"]:
                con.execute(_MARK, (f"digest:vol:{mid}:{day}", stamp))
            con.execute("COMMIT")


def digest_sweep_after(con: sqlite3.Connection, now: datetime) -> None:
    stamp = to_db(now)
    con.execute(digest_store.DUE_COMMUNITIES, (stamp,)).fetchall()
    con.execute(digest_store.DUE_MEMBERS, (stamp,)).fetchall()


# -- the data ------------------------------------------------------------------------------------
def fill(path: str, *, communities: int, members: int, tasks: int, pending: int, history: int) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    register_periods(con)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("BEGIN")
    stamp = to_db(NOW - timedelta(days=30))
    con.executemany("INSERT INTO communities (id, name, group_chat_id, join_code, timezone, digest_time, created_at)"
                    " VALUES (?, ?, ?, ?, ?, '08:00', ?)",
                    [(c, f"C{c}", -4_000_000 - c, f"join{c}", TZ, stamp) for c in range(1, communities + 1)])
    rows = []
    for i in range(1, members + 1):
        role = i % 20   # 1 in 20 staff, 1 in 20 residents only, the rest volunteers (1 in 10 digest off)
        rows.append((i, 800_000_000 + i, 1 + i % communities, f"M{i}", int(role == 0), int(role == 1),
                     int(role > 1), int(i % 10 != 3), 18 if i % 7 == 0 else None, stamp, stamp, stamp))
    con.executemany("INSERT INTO members (id, tg_user_id, community_id, language, display_name, is_staff, is_resident,"
                    " is_volunteer, digest_enabled, digest_hour, registered_at, started_bot, created_at, updated_at)"
                    " VALUES (?, ?, ?, 'zh', ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)", rows)
    task_rows = []
    for t in range(1, tasks + 1):
        todo = t > tasks - 20   # the newest 20: 10 cards to post, 10 to edit
        post = todo and t % 2 == 0
        task_rows.append((t, 1 + t % communities, 1 + t % members, "open" if todo else "completed",
                          -4_000_000 - (1 + t % communities), None if post else 10_000 + t,
                          2 if todo else 1, 1, stamp, stamp))
    con.executemany("INSERT INTO tasks (id, community_id, created_by, category, title, state, group_chat_id,"
                    " group_message_id, card_version, card_rendered, created_at, updated_at)"
                    " VALUES (?, ?, ?, 'shopping', 'Task', ?, ?, ?, ?, ?, ?, ?)", task_rows)
    sent = [(f"h{i}", 800_000_000 + 1 + i % members, "text", NOTICE, stamp, "sent", stamp) for i in range(history)]
    con.executemany("INSERT INTO outbox (dedupe_key, chat_id, kind, priority, not_before, state, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)", sent)
    waiting = []
    for i in range(pending):   # a digest broadcast with claims and notices in between
        kind, prio = (("task_claimed_volunteer", FIRST) if i % 50 == 0 else ("text", NOTICE) if i % 50 == 1
                      else ("digest_volunteer", BULK))
        waiting.append((f"p{i}", 800_000_000 + 1 + i % members, kind, prio, to_db(NOW - timedelta(seconds=pending - i)),
                        "pending", to_db(NOW)))
    con.executemany("INSERT INTO outbox (dedupe_key, chat_id, kind, priority, not_before, state, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)", waiting)
    con.execute("COMMIT")
    con.close()


def settle_digests(path: str, members: int) -> None:
    """Today's digests decided, as the 08:00 sweep leaves it: the keys taken, next ones tomorrow."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    local = NOW.astimezone(ZoneInfo(TZ))
    day = local.date().isoformat()
    stamp = to_db(NOW)
    keys = [(f"digest:group:{c}:{day}", stamp) for (c,) in con.execute("SELECT id FROM communities").fetchall()]
    for mid, staff, vol, on in con.execute("SELECT id, is_staff, is_volunteer, digest_enabled FROM members"):
        if staff:
            keys.append((f"digest:staff:{mid}:{day}", stamp))
        if vol and on:
            keys.append((f"digest:vol:{mid}:{day}", stamp))
    con.executemany(_MARK, keys)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo(TZ))
    at8, at18 = to_db(tomorrow + timedelta(hours=8)), to_db(tomorrow - timedelta(hours=6))  # 18:00 is today
    con.execute("UPDATE communities SET digest_next_at = ?", (at8,))
    con.execute("UPDATE members SET digest_next_at = CASE WHEN digest_hour = 18 THEN ? ELSE ? END"
                " WHERE digest_next_at IS NOT NULL", (at18, at8))
    con.execute("COMMIT")
    con.close()


# -- timing --------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm the page cache and the statement cache
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def line(name: str, values: list[float]) -> str:
    def f(s: float) -> str:
        return f"{s * 1000:9.3f}"
    return (f"| {name:<58} | {len(values):>4} | {f(percentile(values, 50))} | {f(percentile(values, 90))} |"
            f" {f(percentile(values, 99))} | {f(max(values))} |")


def plan(con: sqlite3.Connection, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> str:
    return " | ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())


async def real_idle_sweep(path: str, repeat: int) -> list[float]:
    from storage.db import open_database

    db = await open_database(path)
    try:
        await digest.sweep_digests(db, NOW)
        out = []
        for _ in range(repeat):
            start = time.perf_counter()
            queued = await digest.sweep_digests(db, NOW)
            out.append(time.perf_counter() - start)
            assert queued == 0
        return out
    finally:
        await db.close()


async def first_pass(path: str) -> float:
    """The first sweep after the migration (everybody's time worked out), at 07:00, before digest time."""
    from storage.db import open_database

    db = await open_database(path)
    try:
        start = time.perf_counter()
        assert await digest.sweep_digests(db, NOW - timedelta(hours=3)) == 0
        return time.perf_counter() - start
    finally:
        await db.close()


def measure(*, members: int, communities: int, tasks: int, pending: int, history: int, repeat: int,
            repeat_slow: int) -> tuple[list[str], list[str]]:
    """Build the database and time every statement; returns the table rows and notes (plans)."""
    path = fresh_db("sweeps.db")
    asyncio.run(migrate_async(path))
    started = time.perf_counter()
    fill(path, communities=communities, members=members, tasks=tasks, pending=pending, history=history)
    first = asyncio.run(first_pass(path))
    settle_digests(path, members)
    notes = [f"built in {time.perf_counter() - started:.1f} s; the first digest sweep after the migration"
             f" (works out everybody's next time, before digest time) took {first:.2f} s"]

    con = sqlite3.connect(path, isolation_level=None)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA synchronous = NORMAL")
    stamp = to_db(NOW)
    rows: list[str] = []
    rows.append(line(f"digest sweep, idle, {members} members: before (old loop)",
                     timed(lambda: digest_sweep_before(con, NOW), repeat_slow)))
    rows.append(line("digest sweep, idle: after (the two due lookups)",
                     timed(lambda: digest_sweep_after(con, NOW), repeat)))
    rows.append(line("digest sweep, idle: after (sweep_digests via aiosqlite)",
                     asyncio.run(real_idle_sweep(path, repeat))))
    assert len(con.execute(CARDS_BEFORE).fetchall()) == len(con.execute(CARDS_NOW).fetchall()) == 20
    rows.append(line(f"card selection, {tasks} tasks, 20 to do: before",
                     timed(lambda: con.execute(CARDS_BEFORE).fetchall(), repeat)))
    rows.append(line("card selection: after", timed(lambda: con.execute(CARDS_NOW).fetchall(), repeat)))
    before = [r["id"] for r in con.execute(OUTBOX_BEFORE, (stamp, BATCH))]
    after = [r["id"] for r in con.execute(NEXT_BATCH, {"now": stamp, "n": BATCH})]
    assert len(before) == len(after) == BATCH and set(before) == set(after)
    rows.append(line(f"outbox next batch, {pending} pending due: before",
                     timed(lambda: con.execute(OUTBOX_BEFORE, (stamp, BATCH)).fetchall(), repeat)))
    rows.append(line("outbox next batch: after",
                     timed(lambda: con.execute(NEXT_BATCH, {"now": stamp, "n": BATCH}).fetchall(), repeat)))
    notes += [f"- outbox before: {plan(con, OUTBOX_BEFORE, (stamp, BATCH))}",
             "- outbox after: " + " | ".join(x for x in plan(con, NEXT_BATCH, {"now": stamp, "n": BATCH}).split(" | ") if "outbox" in x),
             f"- cards before: {plan(con, CARDS_BEFORE).split(' | ')[0]}",
             f"- cards after: {plan(con, CARDS_NOW).split(' | ')[0]}",
             f"- digest after: {plan(con, digest_store.DUE_MEMBERS, (stamp,))}"]
    # Everything pending deferred (quiet hours): the poll every 0.5 s finds nothing; then 30 due.
    later = to_db(NOW + timedelta(hours=8))
    con.execute("UPDATE outbox SET not_before = ? WHERE state = 'pending'", (later,))
    rows.append(line(f"outbox next batch, {pending} deferred, none due: before",
                     timed(lambda: con.execute(OUTBOX_BEFORE, (stamp, BATCH)).fetchall(), repeat)))
    rows.append(line("outbox next batch, deferred, none due: after",
                     timed(lambda: con.execute(NEXT_BATCH, {"now": stamp, "n": BATCH}).fetchall(), repeat)))
    con.execute("UPDATE outbox SET not_before = ? WHERE state = 'pending' AND id IN"
                " (SELECT id FROM outbox WHERE state = 'pending' AND priority = ? LIMIT ?)", (stamp, BULK, BATCH))
    rows.append(line(f"outbox next batch, {pending} deferred + 30 due: before",
                     timed(lambda: con.execute(OUTBOX_BEFORE, (stamp, BATCH)).fetchall(), repeat)))
    rows.append(line("outbox next batch, deferred + 30 due: after",
                     timed(lambda: con.execute(NEXT_BATCH, {"now": stamp, "n": BATCH}).fetchall(), repeat)))
    con.close()
    return rows, notes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=50_000)
    p.add_argument("--communities", type=int, default=100)
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--pending", type=int, default=50_000)
    p.add_argument("--history", type=int, default=100_000, help="sent outbox rows")
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--repeat-slow", type=int, default=5, help="runs of the old digest loop (seconds each)")
    args = p.parse_args()
    load_before = os.getloadavg()
    rows, notes = measure(members=args.members, communities=args.communities, tasks=args.tasks,
                          pending=args.pending, history=args.history, repeat=args.repeat,
                          repeat_slow=args.repeat_slow)
    load_after = os.getloadavg()
    print(f"Machine: {machine()}")
    print(f"Load average (1, 5, 15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f};"
          f" after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print("\nWall time per run, ms:\n")
    print(f"| {'statement':<58} | runs |    median |       p90 |       p99 |       max |")
    print(f"|{'-' * 60}|------|-----------|-----------|-----------|-----------|")
    print("\n".join(rows))
    print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
