"""Data access for fair urgent alerts: which on-duty volunteers an urgent request may ping, and
the memory of each volunteer's pings (``members.urgent_last_at``, ``urgent_day``, ``urgent_today``,
migration 0170). The rule (how many per task, the daily cap) is in bot/services/alerts.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.db import Database
from storage.timeutil import DEFAULT_TIMEZONE, to_db


@dataclass(frozen=True, slots=True)
class Place:
    """A community's time zone and settings (JSON text), as the alert rule needs them."""

    tz: str
    settings: str | None


async def place(conn: aiosqlite.Connection, community_id: int) -> Place:
    async with conn.execute("SELECT timezone, settings FROM communities WHERE id = :community",
                            {"community": community_id}) as cur:
        row = await cur.fetchone()
    if row is None:
        return Place(DEFAULT_TIMEZONE, None)
    return Place(str(row["timezone"] or DEFAULT_TIMEZONE), row["settings"])


@dataclass(frozen=True, slots=True)
class OnDuty:
    member_id: int
    tg_user_id: int


# Matching area, then matching skill, then fewest pings today, then least recently pinged (never
# pinged first), then the oldest member; nobody who reached ``cap`` pings today, nor anyone in their
# quiet hours [quiet_start, quiet_end) at :hm (the community's local "HH:MM"; equal ends: none), whom
# the outbox would not send the ping to. (``skills LIKE :skill`` compares category codes, which the
# services keep in lower case on both sides: no case to ignore, unlike a name search.)
_PICK = (
    "SELECT id, tg_user_id FROM members WHERE community_id = :community AND is_volunteer = 1 AND on_duty = 1"
    " AND registered_at IS NOT NULL AND deleted_at IS NULL AND reachable = 1 AND started_bot = 1"
    " AND tg_user_id IS NOT NULL AND id <> :requester"
    " AND (urgent_day IS NULL OR urgent_day <> :day OR urgent_today < :cap)"
    " AND NOT ((quiet_start < quiet_end AND :hm >= quiet_start AND :hm < quiet_end)"
    " OR (quiet_start > quiet_end AND (:hm >= quiet_start OR :hm < quiet_end)))"
    " ORDER BY CASE WHEN area_id = :area THEN 0 ELSE 1 END, CASE WHEN skills LIKE :skill THEN 0 ELSE 1 END,"
    " CASE WHEN urgent_day = :day THEN urgent_today ELSE 0 END,"
    " CASE WHEN urgent_last_at IS NULL THEN 0 ELSE 1 END, urgent_last_at, id LIMIT :limit"
)


async def pick_on_duty(conn: aiosqlite.Connection, *, community_id: int, requester_id: int, area_id: int | None,
                       category: str, day: str, cap: int, limit: int, hm: str) -> list[OnDuty]:
    """Up to ``limit`` on-duty volunteers who may be pinged, in the order they should be (``hm``: the
    community's local time, "HH:MM", to leave out those in their quiet hours)."""
    async with conn.execute(_PICK, {"community": community_id, "requester": requester_id, "area": area_id,
                                    "skill": f'%"{category}"%', "day": day, "cap": cap, "limit": limit,
                                    "hm": hm}) as cur:
        rows = await cur.fetchall()
    return [OnDuty(int(r["id"]), int(r["tg_user_id"])) for r in rows]


async def record_ping(conn: aiosqlite.Connection, member_id: int, day: str, now: datetime) -> None:
    """Count one more ping for the member on ``day`` (a new day starts the count again)."""
    await conn.execute(
        "UPDATE members SET urgent_today = CASE WHEN urgent_day = :day THEN urgent_today + 1 ELSE 1 END,"
        " urgent_day = :day, urgent_last_at = :now WHERE id = :member",
        {"day": day, "now": to_db(now), "member": member_id})


async def unrecord_ping(db: Database, member_id: int, day: str) -> None:
    """Count one ping fewer for the member on ``day`` (one queued but never sent); never below 0."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET urgent_today = urgent_today - 1"
                           " WHERE id = :member AND urgent_day = :day AND urgent_today > 0",
                           {"member": member_id, "day": day})


async def pings_on(conn: aiosqlite.Connection, member_id: int, day: str) -> int:
    """How many urgent pings the member had on ``day``."""
    async with conn.execute("SELECT CASE WHEN urgent_day = :day THEN urgent_today ELSE 0 END FROM members"
                            " WHERE id = :member", {"day": day, "member": member_id}) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0
