"""Data access for honours (milestones, each granted to a member once) and the month-top sweep's memory.

The rules (which milestones, when the group hears of one) are in bot/services/points.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.db import Database
from storage.timeutil import to_db


@dataclass(frozen=True, slots=True)
class Honoured:
    """What granting an honour needs to know of the member."""

    community_id: int | None
    tg_user_id: int | None
    display_name: str | None
    announce_consent: bool
    announce_asked: bool  # was ever asked whether the group may hear of them


async def honoured(conn: aiosqlite.Connection, member_id: int) -> Honoured | None:
    async with conn.execute("SELECT community_id, tg_user_id, display_name, announce_consent, announce_asked_at"
                            " FROM members WHERE id = :member", {"member": member_id}) as cur:
        m = await cur.fetchone()
    if m is None:
        return None
    return Honoured(m["community_id"], m["tg_user_id"], m["display_name"], bool(m["announce_consent"]),
                    m["announce_asked_at"] is not None)


async def insert(conn: aiosqlite.Connection, *, community_id: int | None, member_id: int, code: str,
                 now: datetime) -> bool:
    """Record the honour; False if the member already has it."""
    cur = await conn.execute(
        "INSERT INTO honours (community_id, member_id, code, created_at) VALUES (:community, :member, :code, :now)"
        " ON CONFLICT (member_id, code) DO NOTHING",
        {"community": community_id, "member": member_id, "code": code, "now": to_db(now)})
    return bool(cur.rowcount or 0)


async def group_chat_in(conn: aiosqlite.Connection, community_id: int) -> int | None:
    """The community's volunteer group (inside a transaction), None if it has none."""
    async with conn.execute("SELECT group_chat_id FROM communities WHERE id = :id", {"id": community_id}) as cur:
        c = await cur.fetchone()
    return None if c is None or c["group_chat_id"] is None else int(c["group_chat_id"])


async def completed_claims(conn: aiosqlite.Connection, member_id: int) -> int:
    """How many of the member's claims were completed."""
    async with conn.execute("SELECT COUNT(*) FROM claims WHERE member_id = :member AND state = 'completed'",
                            {"member": member_id}) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class Zone:
    community_id: int
    tz: str | None


async def active_communities(db: Database) -> list[Zone]:
    """Every active community with its time zone."""
    return [Zone(int(r["id"]), r["timezone"]) for r in
            await db.fetchall("SELECT id, timezone FROM communities WHERE active = 1")]


async def done(db: Database, key: str) -> bool:
    """Has the sweep step ``key`` been remembered as done?"""
    return bool(await db.fetchval("SELECT 1 FROM kv WHERE key = :key", {"key": key}))


async def remember_done(conn: aiosqlite.Connection, key: str, now: datetime) -> None:
    await conn.execute("INSERT INTO kv (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING",
                       {"key": key, "value": to_db(now)})
