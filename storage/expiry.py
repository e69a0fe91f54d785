"""Data access for expiring points (bot/services/expiry.py holds the rules).

An expiry is an ordinary ledger row (reason ``expired``, a negative delta, one idempotency key per
member and deadline), written through storage/ledger.py. What is read here: the communities whose
policy may be on, who holds points, a member's credits before a moment and debits so far (both
on the index ``ledger_member_totals``: a member's own rows, never the whole ledger), the sweep's
memory in ``kv`` and the points expired in a period (for reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.db import Database
from storage.timeutil import DEFAULT_TIMEZONE, to_db

EXPIRED = "expired"  # the ledger reason of an expiry


@dataclass(frozen=True, slots=True)
class Community:
    id: int
    tz: str
    settings: str | None


async def communities(db: Database) -> list[Community]:
    """Every active community with its time zone and settings (the policy is in the settings)."""
    rows = await db.fetchall("SELECT id, timezone, settings FROM communities WHERE active = 1 ORDER BY id")
    return [Community(int(r["id"]), str(r["timezone"] or DEFAULT_TIMEZONE), r["settings"]) for r in rows]


async def community(db: Database, community_id: int) -> Community | None:
    r = await db.fetchone("SELECT id, timezone, settings FROM communities WHERE id = :id", {"id": community_id})
    return None if r is None else Community(int(r["id"]), str(r["timezone"] or DEFAULT_TIMEZONE), r["settings"])


async def holders(db: Database, community_id: int) -> list[int]:
    """Members of the community with points (erased ones too: their points still count)."""
    rows = await db.fetchall("SELECT id FROM members WHERE community_id = :community AND balance > 0 ORDER BY id",
                             {"community": community_id})
    return [int(r["id"]) for r in rows]


@dataclass(frozen=True, slots=True)
class Standing:
    """A member's points as expiry sees them: credits before a moment, every debit so far, the balance."""

    credited_before: int
    debited: int
    balance: int


_STANDING = (
    "SELECT COALESCE((SELECT SUM(delta) FROM ledger WHERE member_id = :member AND delta > 0"
    " AND created_at < :before), 0) AS credited,"
    " COALESCE((SELECT -SUM(delta) FROM ledger WHERE member_id = :member AND delta < 0), 0) AS debited,"
    " (SELECT balance FROM members WHERE id = :member) AS balance"
)


def _standing(row: aiosqlite.Row | None) -> Standing:
    return Standing(0, 0, 0) if row is None else Standing(int(row[0]), int(row[1]), int(row[2] or 0))


async def standing(conn: aiosqlite.Connection, member_id: int, before: datetime) -> Standing:
    async with conn.execute(_STANDING, {"member": member_id, "before": to_db(before)}) as cur:
        return _standing(await cur.fetchone())


async def standing_of(db: Database, member_id: int, before: datetime) -> Standing:
    """The same on the read connection (for /points)."""
    return _standing(await db.fetchone(_STANDING, {"member": member_id, "before": to_db(before)}))


async def done(db: Database, key: str) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM kv WHERE key = :key", {"key": key}))


async def remember_done(db: Database, key: str, now: datetime) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO kv (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING",
                           {"key": key, "value": to_db(now)})


async def expired_between(db: Database, community_id: int | None, start: datetime, end: datetime) -> int:
    """Points expired in [start, end), in one community or (None) all of them."""
    scope = "community_id = :community" if community_id is not None else "1 = 1"
    return int(await db.fetchval(
        f"SELECT COALESCE(-SUM(delta), 0) FROM ledger WHERE {scope} AND reason = :reason"
        " AND created_at >= :s AND created_at < :e",
        {"community": community_id, "reason": EXPIRED, "s": to_db(start), "e": to_db(end)}) or 0)
