"""Data access for the points ledger: append-only rows, one unique idempotency key each.

``members.balance`` is kept by a trigger on insert; its ``CHECK (balance >= 0)`` refuses an
overdraft, reported here as ``Overdraft``. The rules (amounts, who may move points) are in
bot/services/ledger.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import Database, first
from storage.timeutil import DEFAULT_TIMEZONE, from_db, to_db


class Overdraft(Exception):
    """The row would take the member's balance below zero (nothing was written)."""


async def append(conn: aiosqlite.Connection, *, member_id: int, delta: int, reason: str, key: str, now: datetime,
                 task_id: int | None = None, voucher_id: int | None = None, actor_id: int | None = None,
                 note: str | None = None) -> bool | None:
    """Write one row in the caller's transaction, in the member's community and organisation.
    True if written, False if ``key`` was used before, None if there is no such member."""
    async with conn.execute(
        "SELECT community_id, organisation_id FROM members WHERE id = :member", {"member": member_id}
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    try:
        cur2 = await conn.execute(
            "INSERT INTO ledger (community_id, member_id, delta, reason, note, task_id, voucher_id,"
            " organisation_id, idempotency_key, actor_id, created_at)"
            " VALUES (:community, :member, :delta, :reason, :note, :task, :voucher, :organisation, :key, :actor, :now)"
            " ON CONFLICT (idempotency_key) DO NOTHING",
            {"community": row[0], "member": member_id, "delta": delta, "reason": reason, "note": note, "task": task_id,
             "voucher": voucher_id, "organisation": row[1], "key": key, "actor": actor_id, "now": to_db(now)},
        )
    except sqlite3.IntegrityError as exc:
        if "CHECK" in str(exc).upper() or "balance" in str(exc):
            raise Overdraft() from None
        raise
    return (cur2.rowcount or 0) > 0


_BALANCE = "SELECT balance FROM members WHERE id = :member"
_TOTAL = "SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE member_id = :member"


async def balance(conn: aiosqlite.Connection, member_id: int) -> int:
    async with conn.execute(_BALANCE, {"member": member_id}) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def total(conn: aiosqlite.Connection, member_id: int) -> int:
    """The sum of the member's rows (equal to the balance the trigger keeps)."""
    async with conn.execute(_TOTAL, {"member": member_id}) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


# -- reading a member's account (on the read connection) ----------------------------------------
@dataclass(frozen=True, slots=True)
class Account:
    """A registered member as the ledger's readers need them: who, where, and their time zone."""

    member_id: int
    community_id: int | None
    tz: str


async def account_by_tg(db: Database, tg_user_id: int) -> Account | None:
    """The registered (not erased) member of a Telegram user, None if there is none."""
    row = await db.fetchone("SELECT m.id, m.community_id, COALESCE(c.timezone, :default_tz) AS tz FROM members m"
                            " LEFT JOIN communities c ON c.id = m.community_id WHERE m.tg_user_id = :tg"
                            " AND m.deleted_at IS NULL AND m.registered_at IS NOT NULL",
                            {"tg": tg_user_id, "default_tz": DEFAULT_TIMEZONE})
    return None if row is None else Account(int(row["id"]), row["community_id"], str(row["tz"]))


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger row as its member sees it, with the task it was for (title and description)."""

    id: int
    delta: int
    reason: str
    note: str | None
    task_id: int | None
    task_title: str | None
    task_description: str | None
    created_at: datetime


async def balance_of(db: Database, member_id: int) -> int:
    return int(await db.fetchval(_BALANCE, {"member": member_id}) or 0)


async def total_of(db: Database, member_id: int) -> int:
    """The sum of the member's rows (equal to the balance the trigger keeps)."""
    return int(await db.fetchval(_TOTAL, {"member": member_id}) or 0)


async def earned_since(db: Database, member_id: int, since: datetime) -> int:
    """The points the member was credited from ``since`` on (debits do not count)."""
    return int(await db.fetchval("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE member_id = :member"
                                 " AND created_at >= :since AND delta > 0",
                                 {"member": member_id, "since": to_db(since)}) or 0)


async def count_of(db: Database, member_id: int) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM ledger WHERE member_id = :member", {"member": member_id}) or 0)


_ENTRIES = ("SELECT l.id, l.delta, l.reason, l.note, l.task_id, t.title, t.description, l.created_at FROM ledger l"
            " LEFT JOIN tasks t ON t.id = l.task_id WHERE l.member_id = :member ORDER BY l.created_at DESC, l.id DESC"
            " LIMIT :limit OFFSET :offset")


def _entry(r: Any) -> Entry:
    return Entry(int(r[0]), int(r[1]), str(r[2]), r[3], r[4], r[5], r[6], from_db(str(r[7])))


async def entries(db: Database, member_id: int, *, limit: int, offset: int = 0) -> list[Entry]:
    """The member's rows, newest first."""
    rows = await db.fetchall(_ENTRIES, {"member": member_id, "limit": limit, "offset": offset})
    return [_entry(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Figures:
    """What /points shows of a member, read together (``figures``)."""

    account: Account
    settings: str | None   # their community's settings (the points policy is there)
    balance: int
    total: int             # the sum of their rows
    earned: int            # credited since the moment ``figures`` was given (debits do not count)
    last: list[Entry]      # their latest rows, newest first


def figures(conn: Any, tg_user_id: int, since: Callable[[str], datetime], last: int) -> Figures | None:
    """A ``Database.read`` function: the registered member of a Telegram user with their community,
    balance, sums and latest rows in three statements (one round trip to the reader; on PostgreSQL
    one pooled connection); ``since(tz)`` is the moment "earned" counts from, in their time zone.
    None if there is no such member."""
    m = conn.execute("SELECT m.id, m.community_id, COALESCE(c.timezone, :default_tz), c.settings, m.balance"
                     " FROM members m LEFT JOIN communities c ON c.id = m.community_id WHERE m.tg_user_id = :tg"
                     " AND m.deleted_at IS NULL AND m.registered_at IS NOT NULL",
                     {"tg": tg_user_id, "default_tz": DEFAULT_TIMEZONE}).fetchone()
    if m is None:
        return None
    account = Account(int(m[0]), m[1], str(m[2]))
    sums = conn.execute("SELECT COALESCE(SUM(delta), 0),"
                        " COALESCE(SUM(CASE WHEN created_at >= :since AND delta > 0 THEN delta ELSE 0 END), 0)"
                        " FROM ledger WHERE member_id = :member",
                        {"member": account.member_id, "since": to_db(since(account.tz))}).fetchone()
    rows = conn.execute(_ENTRIES, {"member": account.member_id, "limit": last, "offset": 0}).fetchall()
    return Figures(account, m[3], int(m[4] or 0), int(sums[0] or 0), int(sums[1] or 0), [_entry(r) for r in rows])


@dataclass(frozen=True, slots=True)
class TaskEntry:
    """One ledger row of a task, as staff see it to take points back."""

    id: int
    name: str
    delta: int
    reason: str
    member_id: int = 0


async def task_entries(db: Database, task_id: int, *, limit: int = 200) -> list[TaskEntry]:
    rows = await db.fetchall(
        "SELECT l.id, COALESCE(m.display_name, '?'), l.delta, l.reason, l.member_id FROM ledger l"
        " JOIN members m ON m.id = l.member_id"
        " WHERE l.task_id = :task ORDER BY l.id LIMIT :limit", {"task": task_id, "limit": limit})
    return [TaskEntry(int(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4])) for r in rows]


# -- running totals (kept by a trigger on the ledger, migration 0080) ---------------------------
@dataclass(frozen=True, slots=True)
class Earned:
    """A person's or organisation's points in a period (``opt_out``: the person asked not to be named)."""

    subject_id: int
    name: str | None
    points: int
    opt_out: bool = False


async def top_people(db: Database, community_id: int | None, period: str, limit: int) -> list[Earned]:
    rows = await db.fetchall(
        "SELECT m.id, m.display_name, m.leaderboard_opt_out, t.pts FROM earning_totals t"
        " JOIN members m ON m.id = t.subject_id WHERE t.community_id = :community AND t.scope = 'm'"
        " AND t.period = :period AND t.pts > 0 AND m.deleted_at IS NULL ORDER BY t.pts DESC, t.subject_id LIMIT :limit",
        {"community": community_id, "period": period, "limit": limit})
    return [Earned(int(r["id"]), r["display_name"], int(r["pts"]), bool(r["leaderboard_opt_out"])) for r in rows]


async def top_organisations(db: Database, community_id: int | None, period: str, limit: int) -> list[Earned]:
    rows = await db.fetchall(
        "SELECT o.id, o.name, t.pts FROM earning_totals t JOIN organisations o ON o.id = t.subject_id"
        " WHERE t.community_id = :community AND t.scope = 'o' AND t.period = :period AND t.pts > 0"
        " ORDER BY t.pts DESC, t.subject_id LIMIT :limit", {"community": community_id, "period": period, "limit": limit})
    return [Earned(int(r["id"]), str(r["name"]), int(r["pts"])) for r in rows]


TotalKey = tuple[int, str, int, str]  # (community, scope 'm' or 'o', subject, period)


async def kept_totals(db: Database) -> dict[TotalKey, int]:
    """Every running total as the trigger keeps it."""
    rows = await db.fetchall("SELECT community_id, scope, subject_id, period, pts FROM earning_totals")
    return {(int(r[0]), str(r[1]), int(r[2]), str(r[3])): int(r[4]) for r in rows}


@dataclass(frozen=True, slots=True)
class Earning:
    """A ledger row that counts towards the running totals, with its community's time zone."""

    community_id: int
    member_id: int
    organisation_id: int | None
    delta: int
    created_at: datetime
    tz: str | None


def _reasons(reasons: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``IN (...)`` placeholders for ``reasons`` and their values."""
    names = {f"reason{i}": r for i, r in enumerate(reasons)}
    return ", ".join(":" + n for n in names), names


async def earnings(db: Database, reasons: tuple[str, ...]) -> list[Earning]:
    marks, params = _reasons(reasons)
    rows = await db.fetchall(
        f"SELECT l.community_id, l.member_id, l.organisation_id, l.delta, l.created_at, c.timezone FROM ledger l"
        f" JOIN communities c ON c.id = l.community_id WHERE l.reason IN ({marks})", params)
    return [Earning(int(r["community_id"]), int(r["member_id"]), r["organisation_id"], int(r["delta"]),
                    from_db(str(r["created_at"])), r["timezone"]) for r in rows]


async def top_earner(conn: aiosqlite.Connection, community_id: int, start: datetime, end: datetime,
                     reasons: tuple[str, ...]) -> tuple[int, int] | None:
    """(member, points) of who earned most in [start, end) (the earliest to get there on a tie)."""
    marks, params = _reasons(reasons)
    async with conn.execute(
            f"SELECT member_id, SUM(delta) AS pts FROM ledger WHERE community_id = :community AND created_at >= :start"
            f" AND created_at < :end AND reason IN ({marks}) GROUP BY member_id HAVING SUM(delta) > 0"
            f" ORDER BY pts DESC, MIN(created_at) LIMIT 1",
            {"community": community_id, "start": to_db(start), "end": to_db(end), **params}) as cur:
        row = await cur.fetchone()
    return None if row is None else (int(row["member_id"]), int(row["pts"]))


async def set_leaderboard_opt_out(conn: aiosqlite.Connection, member_id: int, opt_out: bool, now: datetime) -> None:
    """Whether the member's name is left off the leaderboards."""
    await conn.execute("UPDATE members SET leaderboard_opt_out = :opt_out, updated_at = :now WHERE id = :member",
                       {"opt_out": int(opt_out), "now": to_db(now), "member": member_id})


async def entry(conn: aiosqlite.Connection, ledger_id: int) -> aiosqlite.Row | None:
    """One ledger row, None if there is none."""
    return await first(conn, "SELECT * FROM ledger WHERE id = :id", {"id": ledger_id})


async def key_used(conn: aiosqlite.Connection, key: str) -> bool:
    """Whether a ledger row was written with this idempotency key."""
    return await first(conn, "SELECT id FROM ledger WHERE idempotency_key = :key", {"key": key}) is not None
