"""Shared helpers for the benchmarks: machine facts, seeding, the stand-in, timing, RESULTS.md.

Read-only helpers only inspect the stand-in (recorded calls and callback records); nothing here
changes how the bot or the stand-in behave.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.devkit.harness import TOKEN, BotProcess
from bot.devkit.sandbox import FakeTelegram, User
from storage.db import open_database
from storage.periods import register as register_periods
from storage.pg import is_postgres_url
from storage.timeutil import to_db

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
FIRST_TG_ID = 800_000_001

# ---------------------------------------------------------------------------------------------
# machine and reporting
# ---------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    return (f"{os.cpu_count()} CPUs (nproc), {cpu_model()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}; "
            f"shared machine, load average when the section was written {loadavg()}")


def command_line(module: str) -> str:
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    return f".venv/bin/python -m {module}" + (f" {args}" if args else "")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def write_section(name: str, body: str, module: str, *, pinned: str = "") -> None:
    """Replace (or append) the ``## name`` section of bench/RESULTS.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"## {name}\n\n- Command: `{command_line(module)}`{pinned}\n- Machine: {machine()}\n"
            f"- Run: {stamp}\n\n{body.strip()}\n")
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nSee bench/README.md.\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        current = pattern.sub(lambda _m: text + "\n", current)
    else:
        current = current.rstrip() + "\n\n" + text
    RESULTS.write_text(current.rstrip() + "\n")


def report(lines: Iterable[str]) -> str:
    text = "\n".join(lines)
    print(text)
    return text


def pin_note() -> str:
    """``taskset -c 0`` for the bot process when available (one core, as the target says)."""
    return "taskset" if _have_taskset() else ""


def pin_driver(wanted: bool) -> bool:
    """Whether the bot process is to be pinned to CPU 0 (``wanted``: not ``--no-pin``, and taskset
    works); if so this process, the driver and the stand-in, moves to CPU 1."""
    pin = wanted and bool(pin_note())
    if pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    return pin


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    """Seconds taken by each of ``repeat`` calls of ``fn``, after one call that warms the caches."""
    await fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


def _have_taskset() -> bool:
    try:
        return subprocess.run(["taskset", "-c", "0", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def loadavg() -> str:
    """The 1-minute load average and nproc, as recorded with each figure (a shared machine)."""
    one, five, _fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f} (1/5 min), nproc {os.cpu_count()}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time (s) a process has used so far, from /proc (nan if unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def rss_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB of a process, from /proc."""
    cur = peak = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    except OSError:
        pass
    return cur, peak


# ---------------------------------------------------------------------------------------------
# the stand-in and the bot process
# ---------------------------------------------------------------------------------------------


class PinnedBot(BotProcess):
    """The real bot process (or another command), optionally pinned to CPU 0 with ``taskset``; its
    database is a path or, from ``Databases.publish``, a ``postgresql://`` URL (its DATABASE_URL)."""

    def __init__(self, server: FakeTelegram, database: str, *args: Any, pin: bool = False,
                 command: list[str] | None = None, **kwargs: Any) -> None:
        if is_postgres_url(database):
            kwargs["env"] = {**kwargs.get("env", {}), "DATABASE_URL": database}
        super().__init__(server, database, *args, **kwargs)
        self.pin = pin
        self.command = command

    async def start(self, timeout: float | None = 60.0, *, ready: str = "Application started") -> None:
        real_popen = subprocess.Popen
        prefix = ["taskset", "-c", "0"] if self.pin else []
        command = self.command

        def popen(cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
            return real_popen([*prefix, *(command or cmd)], **kw)

        subprocess.Popen = popen  # type: ignore[assignment,misc]
        try:
            await super().start(timeout, ready=ready)
        finally:
            subprocess.Popen = real_popen  # type: ignore[misc]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


async def stand_in(*, flood_limits: bool) -> FakeTelegram:
    fake = FakeTelegram(flood_limits=flood_limits)
    fake.add_bot(token=TOKEN, username="linli_bench_bot")
    await fake.start()
    return fake


def users_with_chats(fake: FakeTelegram, count: int, first_id: int = FIRST_TG_ID) -> list[User]:
    """Stand-in users whose private chat with the bot already exists (as after /start)."""
    out = []
    for i in range(count):
        user = fake.add_user(f"V{i}", user_id=first_id + i, language_code="zh-hans")
        fake.private_chat(user, create=True)
        out.append(user)
    return out


def api_calls(fake: FakeTelegram, method: str, since: int = 0) -> list[Any]:
    return [c for c in fake.calls[since:] if c.method == method]


async def wait_until(predicate: Any, timeout: float, poll: float = 0.02) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(poll)
    return bool(predicate())


# ---------------------------------------------------------------------------------------------
# seeding (plain sqlite3, one transaction, executemany)
# ---------------------------------------------------------------------------------------------


@dataclass
class Seeded:
    path: str
    community_id: int
    group_chat_id: int
    members: int
    tg_ids: list[int]
    open_task_ids: list[int]
    event_task_id: int | None
    seconds: float


async def migrate_async(path: str) -> None:
    db = await open_database(path)
    await db.close()


CATEGORIES = ("shopping", "escort", "repair", "company", "tech", "other")


def seed(
    path: str,
    *,
    members: int,
    tasks: int = 0,
    open_tasks: int = 0,
    ledger: int = 0,
    group_chat_id: int = -4_000_001,
    event_slots: int | None = None,
    open_slots: int = 1,
    digest_time: str = "08:00",
    now: datetime | None = None,
    rng_seed: int = 9,
    digest_next: datetime | None = None,
) -> Seeded:
    """Fill an already-migrated database. Members are registered volunteers (tg ids from FIRST_TG_ID).

    ``tasks`` historic tasks (completed, with a done claim), of which the newest ``open_tasks`` are
    open requests with a group card; ``ledger`` credit rows spread over members and the last 90 days.
    ``digest_next``: the moment every digest is next due (as the digest sweep stores it after
    deciding today's), so a benchmark does not depend on the time of day it runs; by default the
    bot works it out at its first sweep (today's digest is sent if its time has passed).
    """
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    rng = random.Random(rng_seed)
    stamp = to_db(now)
    con = sqlite3.connect(path, isolation_level=None)
    register_periods(con)  # the ledger's running-totals trigger names weeks and months with these
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    cid = 1
    con.execute(
        "INSERT INTO communities (id, name, group_chat_id, join_code, digest_time, created_at)"
        " VALUES (?, 'Bench community', ?, 'benchjoin', ?, ?)", (cid, group_chat_id, digest_time, stamp))
    con.execute("INSERT INTO areas (id, community_id, name) VALUES (1, ?, 'Block 1')", (cid,))
    con.executemany("INSERT INTO organisations (id, community_id, name, invite_code, created_at) VALUES (?, ?, ?, ?, ?)",
                    [(i, cid, f"Org {i}", f"org{i}", stamp) for i in range(1, 11)])
    con.executemany(
        "INSERT INTO categories (community_id, code, name_zh, name_en, default_points, sort) VALUES (?, ?, ?, ?, 2, ?)",
        [(cid, c, c, c, i) for i, c in enumerate(CATEGORIES)])
    tg_ids = [FIRST_TG_ID + i for i in range(members)]
    con.executemany(
        "INSERT INTO members (id, tg_user_id, community_id, language, display_name, phone, area_id, is_volunteer,"
        " is_resident, is_staff, organisation_id, skills, quiet_start, quiet_end, consent_at, registered_at,"
        " started_bot, announce_asked_at, created_at, updated_at)"
        " VALUES (?, ?, ?, 'zh', ?, ?, 1, 1, ?, ?, ?, '[\"shopping\"]', '00:00', '00:00', ?, ?, 1, ?, ?, ?)",
        # A community in its steady state: every volunteer was asked about announcements long ago
        # (the question at a first claim comes 5 s later and would be left unsent when a run stops).
        [(i + 1, tg, cid, f"Volunteer {i + 1}", f"+86139{i:08d}", 1 if i % 10 == 0 else 0, 1 if i == 0 else 0,
          1 + i % 10, stamp, stamp, stamp, stamp, stamp) for i, tg in enumerate(tg_ids)])
    open_ids: list[int] = []
    if tasks:
        done_rows = []
        task_rows = []
        for t in range(1, tasks + 1):
            is_open = t > tasks - open_tasks
            created = to_db(now - timedelta(minutes=(tasks - t) * 2))
            requester = 1 + (t * 7) % members
            task_rows.append((t, cid, requester, requester, CATEGORIES[t % len(CATEGORIES)], f"Task {t}", 1,
                              open_slots if is_open else 1,
                              "open" if is_open else "completed", group_chat_id, 10_000 + t, created, created))
            if is_open:
                open_ids.append(t)
            else:
                done_rows.append((t, 1 + (t * 13) % members, "completed", created, created))
        con.executemany(
            "INSERT INTO tasks (id, community_id, requester_id, created_by, category, title, area_id, slots, kind, state,"
            " group_chat_id, group_message_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'request', ?, ?, ?, ?, ?)",
            task_rows)
        con.executemany("INSERT OR IGNORE INTO claims (task_id, member_id, state, claimed_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                        done_rows)
    event_id = None
    if event_slots:
        event_id = tasks + 1
        start = to_db(now + timedelta(days=2))
        con.execute(
            "INSERT INTO tasks (id, community_id, created_by, kind, category, title, area_id, slots, state, starts_at,"
            " group_chat_id, group_message_id, created_at, updated_at)"
            " VALUES (?, ?, 1, 'event', 'other', 'Bench event', 1, ?, 'open', ?, ?, ?, ?, ?)",
            (event_id, cid, event_slots, start, group_chat_id, 10_000 + event_id, stamp, stamp))
    if ledger:
        span = 90 * 24 * 3600
        rows = []
        for n in range(1, ledger + 1):
            member = 1 + rng.randrange(members)
            when = to_db(now - timedelta(seconds=rng.randrange(span)))
            task = 1 + rng.randrange(tasks) if tasks else None
            rows.append((cid, member, 1 + rng.randrange(5), "task_completed", task, 1 + (member - 1) % 10,
                         f"bench:{n}", when))
            if len(rows) >= 50_000:
                con.executemany(
                    "INSERT INTO ledger (community_id, member_id, delta, reason, task_id, organisation_id,"
                    " idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                rows = []
        if rows:
            con.executemany(
                "INSERT INTO ledger (community_id, member_id, delta, reason, task_id, organisation_id,"
                " idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if digest_next is not None:
        con.execute("UPDATE members SET digest_next_at = ?", (to_db(digest_next),))
        con.execute("UPDATE communities SET digest_next_at = ?", (to_db(digest_next),))
    con.execute("COMMIT")  # no ANALYZE: the bot never runs it, so the planner works as in production
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return Seeded(path, cid, group_chat_id, members, tg_ids, open_ids, event_id, time.perf_counter() - started)


def fresh_db(name: str) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return str(path)


def db_size(path: str) -> int:
    return sum(Path(path + s).stat().st_size for s in ("", "-wal") if Path(path + s).exists())


def features() -> str:
    """Which feature modules exist right now (so results say what was measured)."""
    base = ROOT / "bot"
    have = {
        "dispatch/claims (bot/services/tasks.py)": (base / "services" / "tasks.py").exists(),
        "points (bot/services/points.py)": (base / "services" / "points.py").exists(),
        "digest (bot/services/digest.py)": (base / "services" / "digest.py").exists(),
    }
    return "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in have.items())


# ---------------------------------------------------------------------------------------------
# the database the bot runs on: the seeded SQLite file, or a copy of it on PostgreSQL
# ---------------------------------------------------------------------------------------------

DATABASES = ("sqlite", "postgresql")
PG_NOTE = ("- PostgreSQL (computed): a throwaway server on 127.0.0.1 over TCP (tests/pg.py: fsync and"
           " synchronous_commit off, as in the tests), its processes not pinned (they share both cores with"
           " the driver and stand-in); the bot's database is a copy of the same seeded SQLite file"
           " (storage/copy.py, then ANALYZE).")


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database", default="sqlite", type=database_list,
        help="sqlite (default), postgresql, or sqlite,postgresql (both, interleaved in the same run);"
             " PostgreSQL is a throwaway server on 127.0.0.1 started for the run (tests/pg.py)")


def database_list(text: str) -> list[str]:
    """``--database``: one name or a comma-separated list of them (each once, in the order given)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    wrong = [n for n in names if n not in DATABASES]
    if wrong or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"takes {' or '.join(DATABASES)} (comma-separated, each once), not {text!r}")
    return names


def section_name(base: str, databases: Sequence[str]) -> str:
    """The RESULTS.md section: the benchmark's own for SQLite alone, its PostgreSQL column otherwise."""
    return base if list(databases) == ["sqlite"] else f"{base}, {' and '.join(databases)}"


class Databases:
    """Where a benchmark's bot runs. Every benchmark seeds a SQLite file (``seed``); on ``sqlite``
    the bot opens that file. On ``postgresql`` the file is copied into a fresh database on a
    throwaway server (tests/pg.py's: initdb in a temporary folder, 127.0.0.1, a free port; fsync off
    as in the tests), migrated by Alembic, with ``linli migrate-data``'s own copy (storage/copy.py:
    COPY, then balances and running totals verified), followed by ANALYZE (what autovacuum does
    within a minute of a bulk load on a real server). The same rows on both databases.

    ``async with Databases(["sqlite", "postgresql"]) as dbs:`` starts the server if one is needed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.server: Any = None
        self._count = 0

    async def __aenter__(self) -> Databases:
        if "postgresql" in self.names:
            from tests.pg import start_server

            self.server = await asyncio.to_thread(start_server)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await asyncio.to_thread(server.stop)

    def server_cpu(self) -> float:
        """CPU seconds (user + system) the PostgreSQL server's processes have used so far: the
        postmaster, its children alive now and those it has reaped (connections closed)."""
        if self.server is None:
            return 0.0
        try:
            postmaster = int((self.server.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return float("nan")
        try:
            fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
            total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # its own and its reaped children's
        except (OSError, ValueError):
            return float("nan")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    total += cpu_seconds(int(stat.parent.name))
            except (OSError, IndexError, ValueError):
                continue
        return total

    async def publish(self, path: str, database: str) -> str:
        """What the bot opens for the seeded file ``path`` on ``database``: the path, or a URL."""
        if database == "sqlite":
            return path
        import asyncpg

        from storage.copy import copy_to_postgres

        self._count += 1
        name = f"bench_{Path(path).stem.replace('-', '_')}_{self._count}"
        admin = await asyncpg.connect(self.server.url())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        url = str(self.server.url(name))
        await migrate_async(url)
        await copy_to_postgres(path, url)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        return url


async def read(database: str, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
    """Rows of a read-only statement on a bot's database (a path or a URL), beside or after the bot."""
    db = await open_database(database, migrate=False)
    try:
        return list(await db.fetchall(sql, params))
    finally:
        await db.close()


async def database_size(database: str) -> int:
    """Bytes on disk: the SQLite file and its WAL, or PostgreSQL's pg_database_size."""
    if not is_postgres_url(database):
        return db_size(database)
    return int((await read(database, "SELECT pg_database_size(current_database())"))[0][0])
