"""Data access for communities: the reads the handlers need, by name."""

from __future__ import annotations

from storage.db import Connection, Database


async def join_code_of_group(db: Database, group_chat_id: int | None, *, active_only: bool = False) -> str | None:
    """The join code of the community whose volunteer group this chat is."""
    sql = "SELECT join_code FROM communities WHERE group_chat_id = ?" + (" AND active = 1" if active_only else "")
    code = await db.fetchval(sql, (group_chat_id,))
    return None if code is None else str(code)


async def id_of_group(db: Database, group_chat_id: int) -> int | None:
    v = await db.fetchval("SELECT id FROM communities WHERE group_chat_id = ?", (group_chat_id,))
    return int(v) if v is not None else None


async def name_of(db: Database, community_id: int) -> str | None:
    v = await db.fetchval("SELECT name FROM communities WHERE id = ?", (community_id,))
    return None if v is None else str(v)


async def timezone_of(db: Database, community_id: int) -> str | None:
    v = await db.fetchval("SELECT timezone FROM communities WHERE id = ?", (community_id,))
    return str(v) if v else None


async def language_of(db: Database, community_id: int) -> str | None:
    v = await db.fetchval("SELECT language FROM communities WHERE id = ?", (community_id,))
    return str(v) if v else None


async def language_of_group(db: Database, group_chat_id: int) -> str | None:
    """The language of the community whose volunteer group this chat is."""
    v = await db.fetchval("SELECT language FROM communities WHERE group_chat_id = ?", (group_chat_id,))
    return str(v) if v else None


async def move_group(conn: Connection, old_chat_id: int, new_chat_id: int) -> None:
    """The community's volunteer group has a new chat id (it became a supergroup)."""
    await conn.execute("UPDATE communities SET group_chat_id = :new WHERE group_chat_id = :old",
                       {"new": new_chat_id, "old": old_chat_id})
