"""Points read-side: balance, history, leaderboards; honours (milestones granted once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiosqlite

from bot.models import InvalidInput, NotRegistered
from bot.services.tasks import label
from storage import members as member_store
from storage.db import Database
from storage.outbox import enqueue
from storage.periods import ALL, month_key, week_key
from storage.timeutil import from_db, to_db

ASK_GRACE = timedelta(minutes=10)  # a first honour's group announcement waits this long after the question
MILESTONES = {1: "first_task", 10: "tasks_10", 50: "tasks_50", 100: "tasks_100"}
EARNING_REASONS = ("task_completed", "task_auto_confirmed", "event_attended", "case_resolved", "revoke")
PAGE_SIZE = 10


@dataclass(frozen=True)
class Entry:
    id: int
    delta: int
    reason: str
    note: str | None
    task_id: int | None
    task_title: str | None
    created_at: datetime


@dataclass(frozen=True)
class Summary:
    member_id: int
    balance: int
    ledger_sum: int
    this_month: int
    last: list[Entry]


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class Rank:
    place: int
    name: str | None      # None: the member opted out of appearing by name
    points: int
    is_me: bool = False


async def _member(db: Database, tg_user_id: int) -> tuple[int, int | None, str]:
    row = await db.fetchone("SELECT m.id, m.community_id, COALESCE(c.timezone, 'Asia/Shanghai') AS tz FROM members m"
                            " LEFT JOIN communities c ON c.id = m.community_id"
                            " WHERE m.tg_user_id = ? AND m.deleted_at IS NULL AND m.registered_at IS NOT NULL",
                            (tg_user_id,))
    if row is None:
        raise NotRegistered()
    return int(row["id"]), row["community_id"], str(row["tz"])


def month_start(now: datetime, tz: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def week_start(now: datetime, tz: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _entry(r: aiosqlite.Row) -> Entry:
    return Entry(int(r["id"]), int(r["delta"]), str(r["reason"]), r["note"], r["task_id"], label(r["title"], r["description"]),
                 from_db(str(r["created_at"])))


_ENTRY_SQL = ("SELECT l.id, l.delta, l.reason, l.note, l.task_id, t.title, t.description, l.created_at FROM ledger l"
              " LEFT JOIN tasks t ON t.id = l.task_id WHERE l.member_id = ? ORDER BY l.created_at DESC, l.id DESC")


async def summary(db: Database, *, tg_user_id: int, now: datetime, last: int = 5) -> Summary:
    member_id, _community, tz = await _member(db, tg_user_id)
    bal = int(await db.fetchval("SELECT balance FROM members WHERE id = ?", (member_id,)) or 0)
    total = int(await db.fetchval("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE member_id = ?", (member_id,)) or 0)
    month = int(await db.fetchval("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE member_id = ? AND created_at >= ?"
                                  " AND delta > 0", (member_id, to_db(month_start(now, tz)))) or 0)
    rows = await db.fetchall(_ENTRY_SQL + " LIMIT ?", (member_id, last))
    return Summary(member_id, bal, total, month, [_entry(r) for r in rows])


async def history(db: Database, *, tg_user_id: int, page: int = 0, page_size: int = PAGE_SIZE) -> Page:
    member_id, _c, _tz = await _member(db, tg_user_id)
    total = int(await db.fetchval("SELECT COUNT(*) FROM ledger WHERE member_id = ?", (member_id,)) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)
    rows = await db.fetchall(_ENTRY_SQL + " LIMIT ? OFFSET ?", (member_id, page_size, page * page_size))
    return Page([_entry(r) for r in rows], page, pages, total)


async def leaderboard(db: Database, *, tg_user_id: int, now: datetime, period: str = "month", by: str = "people",
                      limit: int = 10) -> list[Rank]:
    """Points earned (credits minus revokes; spending does not count) per person or organisation."""
    if period not in ("week", "month", "all") or by not in ("people", "org"):
        raise InvalidInput()
    member_id, community_id, tz = await _member(db, tg_user_id)
    # Running totals kept by a trigger on the ledger (migration 0080): ten index rows, not a sum.
    key = {"week": week_key(now, tz), "month": month_key(now, tz)}.get(period, ALL)
    if by == "people":
        rows = await db.fetchall(
            "SELECT m.id, m.display_name, m.leaderboard_opt_out, t.pts FROM earning_totals t"
            " JOIN members m ON m.id = t.subject_id WHERE t.community_id = ? AND t.scope = 'm' AND t.period = ?"
            " AND t.pts > 0 AND m.deleted_at IS NULL ORDER BY t.pts DESC, t.subject_id LIMIT ?",
            (community_id, key, limit))
        return [Rank(i + 1, None if r["leaderboard_opt_out"] else str(r["display_name"] or "?"), int(r["pts"]),
                     int(r["id"]) == member_id) for i, r in enumerate(rows)]
    rows = await db.fetchall(
        "SELECT o.id, o.name, t.pts FROM earning_totals t JOIN organisations o ON o.id = t.subject_id"
        " WHERE t.community_id = ? AND t.scope = 'o' AND t.period = ? AND t.pts > 0"
        " ORDER BY t.pts DESC, t.subject_id LIMIT ?", (community_id, key, limit))
    return [Rank(i + 1, str(r["name"]), int(r["pts"])) for i, r in enumerate(rows)]


async def totals_mismatches(db: Database) -> list[tuple[int, str, int, str, int, int]]:
    """Running totals that differ from a fresh sum of the ledger: (community, scope, subject, period,
    kept, summed). Empty when they agree; ``linli doctor`` and the tests check it."""
    marks = ", ".join("?" * len(EARNING_REASONS))
    summed: dict[tuple[int, str, int, str], int] = {}
    for r in await db.fetchall(
            f"SELECT l.community_id, l.member_id, l.organisation_id, l.delta, l.created_at, c.timezone FROM ledger l"
            f" JOIN communities c ON c.id = l.community_id WHERE l.reason IN ({marks})", EARNING_REASONS):
        at = from_db(str(r["created_at"]))
        for scope, subject in (("m", r["member_id"]), ("o", r["organisation_id"])):
            if subject is None:
                continue
            for period in (ALL, month_key(at, r["timezone"]), week_key(at, r["timezone"])):
                k = (int(r["community_id"]), scope, int(subject), period)
                summed[k] = summed.get(k, 0) + int(r["delta"])
    kept = {(int(r[0]), str(r[1]), int(r[2]), str(r[3])): int(r[4]) for r in await db.fetchall(
        "SELECT community_id, scope, subject_id, period, pts FROM earning_totals")}
    return [(*k, kept.get(k, 0), summed.get(k, 0)) for k in sorted(set(kept) | set(summed))
            if kept.get(k, 0) != summed.get(k, 0)]


async def set_opt_out(db: Database, *, tg_user_id: int, opt_out: bool, now: datetime) -> bool:
    member_id, _c, _tz = await _member(db, tg_user_id)
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET leaderboard_opt_out = ?, updated_at = ? WHERE id = ?",
                           (int(opt_out), to_db(now), member_id))
    return opt_out


# -- honours -------------------------------------------------------------------------------
async def _grant(conn: aiosqlite.Connection, *, member_id: int, code: str, now: datetime,
                 params: dict[str, object] | None = None) -> bool:
    async with conn.execute("SELECT community_id, tg_user_id, display_name, announce_consent, announce_asked_at"
                            " FROM members WHERE id = ?", (member_id,)) as cur:
        m = await cur.fetchone()
    if m is None:
        return False
    cur2 = await conn.execute("INSERT INTO honours (community_id, member_id, code, created_at) VALUES (?, ?, ?, ?)"
                              " ON CONFLICT (member_id, code) DO NOTHING", (m["community_id"], member_id, code,
                                                                            to_db(now)))
    if not (cur2.rowcount or 0):
        return False
    payload = {"code": code, **(params or {})}
    if m["tg_user_id"] is not None:
        await enqueue(conn, chat_id=int(m["tg_user_id"]), kind="honour_member", now=now, payload=payload,
                      member_id=member_id, dedupe_key=f"honour:{member_id}:{code}")
    announce_at = now
    if m["announce_asked_at"] is None and m["tg_user_id"] is not None:
        # Never asked (no claim since asking began): asked now, and the group hears of it only
        # after a while, so the answer counts (the group message reads the consent when it is sent).
        await member_store.ask_announce(conn, member_id=member_id, tg_user_id=int(m["tg_user_id"]), now=now)
        announce_at = now + ASK_GRACE
    if m["announce_consent"] and m["community_id"] is not None:
        async with conn.execute("SELECT group_chat_id FROM communities WHERE id = ?", (m["community_id"],)) as cur:
            c = await cur.fetchone()
        if c is not None and c["group_chat_id"] is not None:
            await enqueue(conn, chat_id=int(c["group_chat_id"]), kind="honour_group", now=now,
                          payload={**payload, "member_id": member_id, "community_id": int(m["community_id"])},
                          dedupe_key=f"honour:{member_id}:{code}:group", not_before=announce_at)
    return True


async def grant_task_honours(conn: aiosqlite.Connection, *, member_id: int, now: datetime) -> list[str]:
    """Milestones after a completed claim (first task, 10, 50, 100); each granted once."""
    async with conn.execute("SELECT COUNT(*) FROM claims WHERE member_id = ? AND state = 'completed'",
                            (member_id,)) as cur:
        row = await cur.fetchone()
    count = int(row[0]) if row else 0
    granted = []
    for n, code in MILESTONES.items():
        if count >= n and await _grant(conn, member_id=member_id, code=code, now=now, params={"count": n}):
            granted.append(code)
    return granted


async def grant_month_top(db: Database, *, community_id: int, month: str, now: datetime) -> int | None:
    """The month's top volunteer (``month`` = 'YYYY-MM' in the community's time zone); granted once."""
    tz = str(await db.fetchval("SELECT timezone FROM communities WHERE id = ?", (community_id,)) or "Asia/Shanghai")
    year, mon = (int(x) for x in month.split("-"))
    start = datetime(year, mon, 1, tzinfo=ZoneInfo(tz))
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=ZoneInfo(tz))
    marks = ", ".join("?" * len(EARNING_REASONS))
    async with db.transaction() as conn:
        async with conn.execute(
                f"SELECT member_id, SUM(delta) AS pts FROM ledger WHERE community_id = ? AND created_at >= ?"
                f" AND created_at < ? AND reason IN ({marks}) GROUP BY member_id HAVING pts > 0"
                f" ORDER BY pts DESC, MIN(created_at) LIMIT 1",
                (community_id, to_db(start), to_db(end), *EARNING_REASONS)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        await _grant(conn, member_id=int(row["member_id"]), code=f"top_month:{month}", now=now,
                     params={"month": month, "points": int(row["pts"])})
        return int(row["member_id"])


async def sweep_month_top(db: Database, now: datetime) -> int:
    """Once a month, per community: grant last month's top volunteer (in the community's time zone).

    Remembered in ``kv`` so the sweep does the work once; the honour itself is unique anyway.
    """
    granted = 0
    for row in await db.fetchall("SELECT id, timezone FROM communities WHERE active = 1"):
        local = now.astimezone(ZoneInfo(str(row["timezone"] or "Asia/Shanghai")))
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        last_month = (first - timedelta(days=1)).strftime("%Y-%m")
        key = f"month_top:{row['id']}:{last_month}"
        if await db.fetchval("SELECT 1 FROM kv WHERE key = ?", (key,)):
            continue
        if await grant_month_top(db, community_id=int(row["id"]), month=last_month, now=now) is not None:
            granted += 1
        async with db.transaction() as conn:
            await conn.execute("INSERT OR IGNORE INTO kv (key, value) VALUES (?, ?)", (key, to_db(now)))
    return granted


async def task_entries(db: Database, *, task_id: int) -> list[tuple[int, str, int, str]]:
    """The ledger rows of one task: (entry number, member name, points, reason), for staff to revoke."""
    rows = await db.fetchall(
        "SELECT l.id, COALESCE(m.display_name, '?'), l.delta, l.reason FROM ledger l JOIN members m ON m.id = l.member_id"
        " WHERE l.task_id = ? ORDER BY l.id LIMIT 200", (task_id,))
    return [(int(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]
