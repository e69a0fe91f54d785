"""Data access for organisations: the volunteer teams of a community, joined with an invite code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.db import Database, first, new_id
from storage.timeutil import to_db


@dataclass(frozen=True, slots=True)
class Organisation:
    id: int
    name: str


async def name_taken(conn: aiosqlite.Connection, community_id: int, name: str) -> bool:
    return await first(conn, "SELECT 1 FROM organisations WHERE community_id = :c AND name = :name",
                       {"c": community_id, "name": name}) is not None


async def add(conn: aiosqlite.Connection, *, community_id: int, name: str, invite_code: str, now: datetime) -> int:
    cur = await conn.execute(
        "INSERT INTO organisations (community_id, name, invite_code, created_at) VALUES (:c, :name, :code, :now) RETURNING id",
        {"c": community_id, "name": name, "code": invite_code, "now": to_db(now)})
    return new_id(await cur.fetchone())


async def active_of(db: Database, community_id: int) -> list[dict[str, object]]:
    """The community's active organisations (id, name, invite code), by name."""
    rows = await db.fetchall("SELECT id, name, invite_code FROM organisations WHERE community_id = :c AND active = 1"
                             " ORDER BY name", {"c": community_id})
    return [dict(r) for r in rows]


async def active_by_code(conn: aiosqlite.Connection, community_id: int | None, code: str) -> Organisation | None:
    """The community's active organisation with this invite code."""
    row = await first(conn, "SELECT id, name FROM organisations WHERE invite_code = :code AND community_id = :c"
                      " AND active = 1", {"code": code, "c": community_id})
    return None if row is None else Organisation(int(row["id"]), str(row["name"]))


async def active_by_id(conn: aiosqlite.Connection, community_id: int | None,
                       organisation_id: int | None) -> Organisation | None:
    """The community's active organisation with this id."""
    row = await first(conn, "SELECT id, name FROM organisations WHERE id = :id AND community_id = :c AND active = 1",
                      {"id": organisation_id, "c": community_id})
    return None if row is None else Organisation(int(row["id"]), str(row["name"]))


async def community_of_code(db: Database, invite_code: str) -> int | None:
    """The community of the active organisation with this invite code."""
    row = await db.fetchone("SELECT community_id FROM organisations WHERE invite_code = :code AND active = 1",
                            {"code": invite_code})
    return None if row is None else int(row["community_id"])
