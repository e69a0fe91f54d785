"""Data access for areas: the buildings and streets of a community that people and tasks are in."""

from __future__ import annotations

import aiosqlite

from storage.db import Database, Row, first


async def name_of(db: Database, area_id: int) -> str | None:
    value = await db.fetchval("SELECT name FROM areas WHERE id = :id", {"id": area_id})
    return str(value) if value else None


async def add(conn: aiosqlite.Connection, community_id: int, name: str) -> None:
    """List an area (again, if it was removed)."""
    await conn.execute("INSERT INTO areas (community_id, name) VALUES (:c, :name)"
                       " ON CONFLICT (community_id, name) DO UPDATE SET active = 1", {"c": community_id, "name": name})


async def active_id(conn: aiosqlite.Connection, community_id: int, name: str) -> int | None:
    row = await first(conn, "SELECT id FROM areas WHERE community_id = :c AND name = :name AND active = 1",
                      {"c": community_id, "name": name})
    return None if row is None else int(row["id"])


async def name_taken(conn: aiosqlite.Connection, community_id: int, name: str, *, but: int) -> bool:
    """Whether another area of the community (listed or removed) has this name."""
    return await first(conn, "SELECT 1 FROM areas WHERE community_id = :c AND name = :name AND id <> :but",
                       {"c": community_id, "name": name, "but": but}) is not None


async def rename(conn: aiosqlite.Connection, area_id: int, name: str) -> None:
    await conn.execute("UPDATE areas SET name = :name WHERE id = :id", {"name": name, "id": area_id})


async def remove(conn: aiosqlite.Connection, community_id: int, name: str) -> bool:
    """Unlist an area; False if no listed area has this name."""
    cur = await conn.execute("UPDATE areas SET active = 0 WHERE community_id = :c AND name = :name AND active = 1",
                             {"c": community_id, "name": name})
    return bool(cur.rowcount)


async def active_in(conn: aiosqlite.Connection, community_id: int) -> list[Row]:
    """The community's listed areas (id, name) in use, inside a transaction."""
    return list(await conn.execute_fetchall("SELECT id, name FROM areas WHERE community_id = :c AND active = 1",
                                            {"c": community_id}))
