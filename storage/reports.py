"""Data access for staff reports (bot/services/reports.py): read-only statistics and exports.

Every function reads one community (``community_id``) or, given None, all of them, over the
period [start, end). Nothing here changes state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from storage.db import Database
from storage.timeutil import from_db, to_db


def _scope(community_id: int | None, col: str) -> str:
    return "1=1" if community_id is None else f"{col} = :community"


def _params(community_id: int | None, start: datetime, end: datetime) -> dict[str, Any]:
    return {"community": community_id, "s": to_db(start), "e": to_db(end)}


async def _count(db: Database, sql: str, params: dict[str, Any]) -> int:
    return int(await db.fetchval(sql, params) or 0)


@dataclass(frozen=True, slots=True)
class NameCount:
    """One line of a top-five list: a name and how many (tasks, points, absences)."""

    name: str
    n: int
    member_id: int | None = None  # the person named (lists of people), if the query selects it third


async def _ranked(db: Database, sql: str, params: dict[str, Any]) -> list[NameCount]:
    return [NameCount(str(r[0]), int(r[1]), int(r[2]) if len(r) > 2 else None)
            for r in await db.fetchall(sql, params)]


# -- tasks ------------------------------------------------------------------------------------
_TASK_COUNTS = {
    "requested": "kind='request' AND created_at >= :s AND created_at < :e",
    "published": "published_at >= :s AND published_at < :e",
    "claimed": "first_claim_at >= :s AND first_claim_at < :e",
    "completed": "state='completed' AND completed_at >= :s AND completed_at < :e",
    "cancelled": "state='cancelled' AND cancelled_at >= :s AND cancelled_at < :e",
    "expired": "state='expired' AND updated_at >= :s AND updated_at < :e",
}


async def task_counts(db: Database, community_id: int | None, start: datetime, end: datetime) -> dict[str, int]:
    """Tasks requested, published, first claimed, completed, cancelled and expired in the period."""
    w, p = _scope(community_id, "community_id"), _params(community_id, start, end)
    return {name: await _count(db, f"SELECT COUNT(*) FROM tasks WHERE {w} AND {cond}", p)
            for name, cond in _TASK_COUNTS.items()}


async def _spans(db: Database, sql: str, params: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    return [(from_db(r[0]), from_db(r[1])) for r in await db.fetchall(sql, params)]


async def publish_to_claim(db: Database, community_id: int | None, start: datetime,
                           end: datetime) -> list[tuple[datetime, datetime]]:
    """(published, first claimed) of the tasks published in the period that someone claimed."""
    return await _spans(db, f"SELECT published_at, first_claim_at FROM tasks WHERE {_scope(community_id, 'community_id')}"
                        " AND published_at >= :s AND published_at < :e AND first_claim_at IS NOT NULL",
                        _params(community_id, start, end))


async def publish_to_completion(db: Database, community_id: int | None, start: datetime,
                                end: datetime) -> list[tuple[datetime, datetime]]:
    """(published, completed) of the tasks completed in the period."""
    return await _spans(db, f"SELECT published_at, completed_at FROM tasks WHERE {_scope(community_id, 'community_id')}"
                        " AND state='completed' AND completed_at >= :s AND completed_at < :e"
                        " AND published_at IS NOT NULL", _params(community_id, start, end))


async def top_categories(db: Database, community_id: int | None, start: datetime, end: datetime) -> list[NameCount]:
    return await _ranked(db, f"SELECT category, COUNT(*) n FROM tasks WHERE {_scope(community_id, 'community_id')}"
                         " AND published_at >= :s AND published_at < :e GROUP BY category ORDER BY n DESC, category"
                         " LIMIT 5", _params(community_id, start, end))


async def top_areas(db: Database, community_id: int | None, start: datetime, end: datetime) -> list[NameCount]:
    return await _ranked(db, "SELECT a.name, COUNT(*) n FROM tasks t JOIN areas a ON a.id=t.area_id"
                         f" WHERE {_scope(community_id, 't.community_id')} AND t.published_at >= :s"
                         " AND t.published_at < :e GROUP BY a.id ORDER BY n DESC, a.name LIMIT 5",
                         _params(community_id, start, end))


async def daily_states(db: Database, community_id: int | None, start: datetime, end: datetime,
                       tz: tzinfo = UTC) -> list[tuple[str, str, int]]:
    """(local day in ``tz``, state now, how many) of the tasks created each day of the period.

    Days are the community's, not UTC's: a task asked for at 07:00 in Shanghai (23:00 UTC the
    evening before) counts on its own morning. Read as rows and counted here (reports are rare and
    a period holds thousands of tasks, not millions), so any time zone is exact, DST included.
    """
    rows = await db.fetchall(
        f"SELECT created_at, state FROM tasks WHERE {_scope(community_id, 'community_id')}"
        " AND created_at >= :s AND created_at < :e", _params(community_id, start, end))
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (from_db(r[0]).astimezone(tz).date().isoformat(), str(r[1]))
        counts[key] = counts.get(key, 0) + 1
    return [(day, state, n) for (day, state), n in sorted(counts.items())]


# -- people -----------------------------------------------------------------------------------
_CLAIMS = "FROM claims c JOIN tasks t ON t.id=c.task_id WHERE "


async def active_volunteers(db: Database, community_id: int | None, start: datetime, end: datetime) -> int:
    """Members who claimed a task in the period."""
    return await _count(db, f"SELECT COUNT(DISTINCT c.member_id) {_CLAIMS}{_scope(community_id, 't.community_id')}"
                        " AND c.claimed_at >= :s AND c.claimed_at < :e", _params(community_id, start, end))


async def closed_claims(db: Database, community_id: int | None, start: datetime, end: datetime, *,
                        no_show_only: bool = False) -> int:
    """Claims closed in the period (completed or no-show; only no-shows if ``no_show_only``)."""
    states = "c.state='no_show'" if no_show_only else "c.state IN ('completed','no_show')"
    return await _count(db, f"SELECT COUNT(*) {_CLAIMS}{_scope(community_id, 't.community_id')} AND {states}"
                        " AND c.updated_at >= :s AND c.updated_at < :e", _params(community_id, start, end))


async def new_members(db: Database, community_id: int | None, start: datetime, end: datetime) -> int:
    return await _count(db, f"SELECT COUNT(*) FROM members WHERE {_scope(community_id, 'community_id')}"
                        " AND deleted_at IS NULL AND registered_at >= :s AND registered_at < :e",
                        _params(community_id, start, end))


async def unreachable_members(db: Database, community_id: int | None) -> int:
    """Registered members the bot cannot write to (blocked it, or never started it)."""
    return await _count(db, f"SELECT COUNT(*) FROM members WHERE {_scope(community_id, 'community_id')}"
                        " AND deleted_at IS NULL AND registered_at IS NOT NULL AND (reachable = 0 OR started_bot = 0)",
                        {"community": community_id})


async def most_absent(db: Database, community_id: int | None, start: datetime, end: datetime) -> list[NameCount]:
    """Volunteers marked absent at an event in the period, most often first."""
    return await _ranked(db, "SELECT COALESCE(m.display_name, '#' || m.id), COUNT(*) n, m.id FROM no_shows ns"
                         f" JOIN members m ON m.id=ns.member_id WHERE {_scope(community_id, 'ns.community_id')}"
                         " AND ns.created_at >= :s AND ns.created_at < :e GROUP BY m.id ORDER BY n DESC, m.id LIMIT 5",
                         _params(community_id, start, end))


# -- points -----------------------------------------------------------------------------------
async def points_credited(db: Database, community_id: int | None, start: datetime, end: datetime) -> int:
    """Points given in the period (refunds of vouchers do not count)."""
    return await _count(db, f"SELECT COALESCE(SUM(delta),0) FROM ledger WHERE {_scope(community_id, 'community_id')}"
                        " AND delta > 0 AND reason <> 'refund' AND created_at >= :s AND created_at < :e",
                        _params(community_id, start, end))


async def points_redeemed(db: Database, community_id: int | None, start: datetime, end: datetime) -> int:
    return await _count(db, f"SELECT COALESCE(-SUM(delta),0) FROM ledger WHERE {_scope(community_id, 'community_id')}"
                        " AND reason='redeem' AND created_at >= :s AND created_at < :e", _params(community_id, start, end))


_EARNED = "l.delta > 0 AND l.reason <> 'refund' AND l.created_at >= :s AND l.created_at < :e"


async def top_earners(db: Database, community_id: int | None, start: datetime, end: datetime) -> list[NameCount]:
    return await _ranked(db, "SELECT COALESCE(m.display_name, '#' || m.id), SUM(l.delta) n, m.id FROM ledger l"
                         f" JOIN members m ON m.id=l.member_id WHERE {_scope(community_id, 'l.community_id')}"
                         f" AND {_EARNED} GROUP BY m.id ORDER BY n DESC, m.id LIMIT 5", _params(community_id, start, end))


async def top_organisations(db: Database, community_id: int | None, start: datetime, end: datetime) -> list[NameCount]:
    return await _ranked(db, "SELECT o.name, SUM(l.delta) n FROM ledger l JOIN organisations o ON o.id=l.organisation_id"
                         f" WHERE {_scope(community_id, 'l.community_id')} AND {_EARNED}"
                         " GROUP BY o.id ORDER BY n DESC, o.name LIMIT 5", _params(community_id, start, end))


# -- exports ----------------------------------------------------------------------------------
# Each table's columns (in the file's order) and the time column its period is read on ("": all rows).
EXPORTS: dict[str, tuple[list[str], str]] = {
    "tasks": (["id", "community_id", "kind", "category", "title", "state", "slots", "points", "area_id",
               "organisation_id", "created_at", "published_at", "first_claim_at", "completed_at", "cancelled_at"],
              "created_at"),
    "claims": (["id", "task_id", "member_id", "state", "claimed_at", "done_at", "updated_at"], "claimed_at"),
    "ledger": (["id", "community_id", "member_id", "delta", "reason", "note", "task_id", "voucher_id",
                "organisation_id", "created_at"], "created_at"),
    "vouchers": (["id", "community_id", "reward_id", "member_id", "code", "cost", "state", "issued_at",
                  "expires_at", "used_at"], "issued_at"),
    "members": (["id", "community_id", "display_name", "area_id", "is_resident", "is_volunteer", "is_staff",
                 "organisation_id", "balance", "reachable", "registered_at"], ""),
    "organisations": (["id", "community_id", "name", "active", "created_at"], ""),
}
EXTRA_COLUMNS = frozenset({"phone"})  # columns an export may add to its table's list


async def export_rows(db: Database, table: str, cols: list[str], *, community_id: int | None, start: datetime,
                      end: datetime, chunk: int = 500) -> AsyncIterator[tuple[Any, ...]]:
    """Yield the rows of ``table`` (``cols``, id first) in chunks by id (keyset pagination), so large
    exports never sit in memory."""
    known = set(EXPORTS[table][0]) | EXTRA_COLUMNS
    if set(cols) - known or cols[:1] != ["id"]:
        raise ValueError(f"not an export column of {table}: {sorted(set(cols) - known)}")
    time_col = EXPORTS[table][1]
    prefix = "c." if table == "claims" else ""
    sel = ", ".join(prefix + c for c in cols)
    src = "claims c JOIN tasks t ON t.id = c.task_id" if table == "claims" else table
    cond = _scope(community_id, "t.community_id" if table == "claims" else "community_id")
    params: dict[str, Any] = {"community": community_id, "chunk": chunk}
    if time_col:
        cond += f" AND {prefix}{time_col} >= :s AND {prefix}{time_col} < :e"
        params |= {"s": to_db(start), "e": to_db(end)}
    if table == "members":
        cond += " AND deleted_at IS NULL"
    last = 0
    while True:
        rows = await db.fetchall(f"SELECT {sel} FROM {src} WHERE {cond} AND {prefix}id > :last"
                                 f" ORDER BY {prefix}id LIMIT :chunk", {**params, "last": last})
        if not rows:
            return
        for r in rows:
            yield tuple(r)
        last = int(rows[-1][0])
