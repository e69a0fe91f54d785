"""Read-only statistics for staff reports. Never changes state."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.db import Database
from storage.timeutil import from_db, to_db


@dataclass
class Stats:
    community_id: int | None
    start: datetime
    end: datetime
    counts: dict[str, int] = field(default_factory=dict)
    median_claim_minutes: float | None = None
    median_complete_minutes: float | None = None
    active_volunteers: int = 0
    new_members: int = 0
    no_show_rate: float | None = None
    points_credited: int = 0
    points_redeemed: int = 0
    top_categories: list[tuple[str, int]] = field(default_factory=list)
    top_areas: list[tuple[str, int]] = field(default_factory=list)
    top_volunteers: list[tuple[str, int]] = field(default_factory=list)
    top_organisations: list[tuple[str, int]] = field(default_factory=list)
    # Volunteers marked absent at an event in the period, most often first (staff only see /stats).
    no_shows: list[tuple[str, int]] = field(default_factory=list)
    unreachable_members: int = 0
    claim_minutes: list[float] = field(default_factory=list)
    # Tasks created each day of the period (UTC date), by the state they are in now.
    daily_states: dict[str, dict[str, int]] = field(default_factory=dict)


def _scope(community_id: int | None, col: str) -> tuple[str, tuple[Any, ...]]:
    if community_id is None:
        return "1=1", ()
    return f"{col} = ?", (community_id,)


def _minutes(a: str, b: str) -> float:
    return (from_db(b) - from_db(a)).total_seconds() / 60


async def compute_stats(db: Database, *, community_id: int | None, start: datetime, end: datetime) -> Stats:
    """Stats for [start, end); community_id None means all communities (super-admins only)."""
    s, e = to_db(start), to_db(end)
    st = Stats(community_id, start, end)
    w, p = _scope(community_id, "community_id")
    wt, pt = _scope(community_id, "t.community_id")

    async def count(sql: str, params: tuple[Any, ...]) -> int:
        return int(await db.fetchval(sql, params) or 0)

    st.counts = {
        "requested": await count(f"SELECT COUNT(*) FROM tasks WHERE {w} AND kind='request' AND created_at >= ? AND created_at < ?", (*p, s, e)),
        "published": await count(f"SELECT COUNT(*) FROM tasks WHERE {w} AND published_at >= ? AND published_at < ?", (*p, s, e)),
        "claimed": await count(f"SELECT COUNT(*) FROM tasks WHERE {w} AND first_claim_at >= ? AND first_claim_at < ?", (*p, s, e)),
        "completed": await count(f"SELECT COUNT(*) FROM tasks WHERE {w} AND state='completed' AND completed_at >= ? AND completed_at < ?", (*p, s, e)),
        "cancelled": await count(f"SELECT COUNT(*) FROM tasks WHERE {w} AND state='cancelled' AND cancelled_at >= ? AND cancelled_at < ?", (*p, s, e)),
        "expired": await count(f"SELECT COUNT(*) FROM tasks WHERE {w} AND state='expired' AND updated_at >= ? AND updated_at < ?", (*p, s, e)),
    }
    rows = await db.fetchall(f"SELECT published_at, first_claim_at FROM tasks WHERE {w} AND published_at >= ? AND published_at < ? AND first_claim_at IS NOT NULL", (*p, s, e))
    st.claim_minutes = sorted(_minutes(r[0], r[1]) for r in rows)
    st.median_claim_minutes = statistics.median(st.claim_minutes) if st.claim_minutes else None
    rows = await db.fetchall(f"SELECT published_at, completed_at FROM tasks WHERE {w} AND state='completed' AND completed_at >= ? AND completed_at < ? AND published_at IS NOT NULL", (*p, s, e))
    done = [_minutes(r[0], r[1]) for r in rows]
    st.median_complete_minutes = statistics.median(done) if done else None
    st.active_volunteers = await count(f"SELECT COUNT(DISTINCT c.member_id) FROM claims c JOIN tasks t ON t.id=c.task_id WHERE {wt} AND c.claimed_at >= ? AND c.claimed_at < ?", (*pt, s, e))
    st.new_members = await count(f"SELECT COUNT(*) FROM members WHERE {w} AND deleted_at IS NULL AND registered_at >= ? AND registered_at < ?", (*p, s, e))
    closed = await count(f"SELECT COUNT(*) FROM claims c JOIN tasks t ON t.id=c.task_id WHERE {wt} AND c.state IN ('completed','no_show') AND c.updated_at >= ? AND c.updated_at < ?", (*pt, s, e))
    noshow = await count(f"SELECT COUNT(*) FROM claims c JOIN tasks t ON t.id=c.task_id WHERE {wt} AND c.state='no_show' AND c.updated_at >= ? AND c.updated_at < ?", (*pt, s, e))
    st.no_show_rate = noshow / closed if closed else None
    rows = await db.fetchall(f"SELECT COALESCE(m.display_name, '#' || m.id), COUNT(*) n FROM no_shows ns JOIN members m ON m.id=ns.member_id WHERE {_scope(community_id, 'ns.community_id')[0]} AND ns.created_at >= ? AND ns.created_at < ? GROUP BY m.id ORDER BY n DESC, m.id LIMIT 5", (*p, s, e))
    st.no_shows = [(str(r[0]), int(r[1])) for r in rows]
    st.points_credited = await count(f"SELECT COALESCE(SUM(delta),0) FROM ledger WHERE {w} AND delta > 0 AND reason <> 'refund' AND created_at >= ? AND created_at < ?", (*p, s, e))
    st.points_redeemed = await count(f"SELECT COALESCE(-SUM(delta),0) FROM ledger WHERE {w} AND reason='redeem' AND created_at >= ? AND created_at < ?", (*p, s, e))
    rows = await db.fetchall(f"SELECT category, COUNT(*) n FROM tasks WHERE {w} AND published_at >= ? AND published_at < ? GROUP BY category ORDER BY n DESC, category LIMIT 5", (*p, s, e))
    st.top_categories = [(str(r[0]), int(r[1])) for r in rows]
    rows = await db.fetchall(f"SELECT a.name, COUNT(*) n FROM tasks t JOIN areas a ON a.id=t.area_id WHERE {wt} AND t.published_at >= ? AND t.published_at < ? GROUP BY a.id ORDER BY n DESC, a.name LIMIT 5", (*pt, s, e))
    st.top_areas = [(str(r[0]), int(r[1])) for r in rows]
    wl, pl = _scope(community_id, "l.community_id")
    rows = await db.fetchall(f"SELECT COALESCE(m.display_name, '#' || m.id), SUM(l.delta) n FROM ledger l JOIN members m ON m.id=l.member_id WHERE {wl} AND l.delta > 0 AND l.reason <> 'refund' AND l.created_at >= ? AND l.created_at < ? GROUP BY m.id ORDER BY n DESC, m.id LIMIT 5", (*pl, s, e))
    st.top_volunteers = [(str(r[0]), int(r[1])) for r in rows]
    rows = await db.fetchall(f"SELECT o.name, SUM(l.delta) n FROM ledger l JOIN organisations o ON o.id=l.organisation_id WHERE {wl} AND l.delta > 0 AND l.reason <> 'refund' AND l.created_at >= ? AND l.created_at < ? GROUP BY o.id ORDER BY n DESC, o.name LIMIT 5", (*pl, s, e))
    st.top_organisations = [(str(r[0]), int(r[1])) for r in rows]
    st.unreachable_members = await count(f"SELECT COUNT(*) FROM members WHERE {w} AND deleted_at IS NULL AND registered_at IS NOT NULL AND (reachable = 0 OR started_bot = 0)", p)
    for row in await db.fetchall(
        f"SELECT substr(created_at, 1, 10) AS day, state, COUNT(*) FROM tasks WHERE {w} AND created_at >= ?"
        " AND created_at < ? GROUP BY day, state ORDER BY day",
        (*p, s, e),
    ):
        st.daily_states.setdefault(str(row[0]), {})[str(row[1])] = int(row[2])
    return st


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


def export_columns(table: str, *, with_phone: bool) -> list[str]:
    cols = list(EXPORTS[table][0])
    if table == "members" and with_phone:
        cols.insert(3, "phone")
    return cols


async def iter_export(db: Database, table: str, *, community_id: int | None, start: datetime, end: datetime,
                      with_phone: bool, chunk: int = 500) -> Any:
    """Yield rows in chunks by id (keyset pagination) so large exports never sit in memory."""
    cols = export_columns(table, with_phone=with_phone)
    time_col = EXPORTS[table][1]
    prefix = "c." if table == "claims" else ""
    sel = ", ".join(prefix + c for c in cols)
    src = "claims c JOIN tasks t ON t.id = c.task_id" if table == "claims" else table
    cond, params = _scope(community_id, "t.community_id" if table == "claims" else "community_id")
    if time_col:
        cond += f" AND {prefix}{time_col} >= ? AND {prefix}{time_col} < ?"
        params = (*params, to_db(start), to_db(end))
    if table == "members":
        cond += " AND deleted_at IS NULL"
    last = 0
    while True:
        rows = await db.fetchall(f"SELECT {sel} FROM {src} WHERE {cond} AND {prefix}id > ? ORDER BY {prefix}id LIMIT ?",
                                 (*params, last, chunk))
        if not rows:
            return
        for r in rows:
            yield tuple(r)
        last = int(rows[-1][0])


def parse_period(text: str | None, now: datetime, tz: Any) -> tuple[datetime, datetime] | None:
    """'week' (default), 'month', 'YYYY-MM', or 'YYYY-MM-DD..YYYY-MM-DD' (end day included), in local time."""
    from datetime import timedelta

    local = now.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    arg = (text or "week").strip().lower()
    try:
        if arg in ("week", "本周"):
            start = day - timedelta(days=day.weekday())
            return start, start + timedelta(days=7)
        if arg in ("month", "本月"):
            start = day.replace(day=1)
        elif ".." in arg:
            a, b = arg.split("..", 1)
            s = datetime.strptime(a.strip(), "%Y-%m-%d").replace(tzinfo=tz)
            e = datetime.strptime(b.strip(), "%Y-%m-%d").replace(tzinfo=tz) + timedelta(days=1)
            return (s, e) if s < e and (e - s).days <= 3700 else None
        else:
            start = datetime.strptime(arg, "%Y-%m").replace(tzinfo=tz)
            if not 2000 <= start.year <= 2100:
                return None
    except ValueError:
        return None
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, end
