"""Data access for communities (and their default categories): every SQL statement about them, by name."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import Connection, Database, first, new_id, pg_twin
from storage.timeutil import DEFAULT_TIMEZONE, to_db


@dataclass(frozen=True, slots=True)
class Community:
    """A community row (``SELECT *`` from communities), typed; ``settings`` parsed from JSON."""

    id: int
    name: str
    group_chat_id: int | None
    join_code: str
    timezone: str
    language: str
    digest_time: str
    review_required: bool
    settings: dict[str, Any]
    welcome_message_id: int | None
    created_by: int | None
    active: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | sqlite3.Row) -> Community:
        r = dict(row)
        return cls(id=int(r["id"]), name=str(r["name"]), group_chat_id=_opt_int(r["group_chat_id"]),
                   join_code=str(r["join_code"]), timezone=str(r["timezone"]), language=str(r["language"]),
                   digest_time=str(r["digest_time"]), review_required=bool(r["review_required"]),
                   settings=json.loads(r["settings"] or "{}"), welcome_message_id=_opt_int(r["welcome_message_id"]),
                   created_by=_opt_int(r["created_by"]), active=bool(r["active"]))


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


async def get(conn: aiosqlite.Connection, community_id: int) -> Community | None:
    """The community inside a transaction, None if there is none."""
    row = await first(conn, "SELECT * FROM communities WHERE id = :id", {"id": community_id})
    return None if row is None else Community.from_row(row)


async def of_group(conn: aiosqlite.Connection, group_chat_id: int) -> Community | None:
    """The community whose volunteer group this chat is, inside a transaction."""
    row = await first(conn, "SELECT * FROM communities WHERE group_chat_id = :g", {"g": group_chat_id})
    return None if row is None else Community.from_row(row)


async def names_of(conn: aiosqlite.Connection, ids: Iterable[int]) -> dict[int, str]:
    """The names of these communities, by id (missing ones left out)."""
    wanted = sorted(set(ids))
    params = {f"id{i}": v for i, v in enumerate(wanted)}
    if not params:
        return {}
    rows = await conn.execute_fetchall(
        f"SELECT id, name FROM communities WHERE id IN ({', '.join(':' + k for k in params)})", params)
    return {int(r[0]): str(r[1]) for r in rows}


async def add(conn: aiosqlite.Connection, *, name: str, group_chat_id: int, join_code: str, language: str,
              created_by: int, now: datetime, timezone: str = DEFAULT_TIMEZONE) -> int:
    cur = await conn.execute(
        "INSERT INTO communities (name, group_chat_id, join_code, language, timezone, created_by, created_at)"
        " VALUES (:name, :g, :code, :language, :tz, :by, :now) RETURNING id",
        {"name": name, "g": group_chat_id, "code": join_code, "language": language, "tz": timezone,
         "by": created_by, "now": to_db(now)})
    return new_id(await cur.fetchone())


async def add_categories(conn: aiosqlite.Connection, community_id: int, categories: Iterable[tuple[str, str, str]]) -> None:
    """The community's first categories, (code, Chinese name, English name), in this order."""
    for sort, (code, zh, en) in enumerate(categories):
        await conn.execute(
            "INSERT INTO categories (community_id, code, name_zh, name_en, sort) VALUES (:c, :code, :zh, :en, :sort)",
            {"c": community_id, "code": code, "zh": zh, "en": en, "sort": sort})


async def set_welcome_message(conn: aiosqlite.Connection, community_id: int, message_id: int) -> None:
    await conn.execute("UPDATE communities SET welcome_message_id = :m WHERE id = :id",
                       {"m": message_id, "id": community_id})


async def active_by_join_code(db: Database, code: str) -> dict[str, object] | None:
    """The active community with this join code: its id and name."""
    row = await db.fetchone("SELECT id, name FROM communities WHERE join_code = :code AND active = 1", {"code": code})
    return None if row is None else dict(row)


async def active(db: Database) -> list[dict[str, object]]:
    """The active communities (id and name), oldest first."""
    return [dict(r) for r in await db.fetchall("SELECT id, name FROM communities WHERE active = 1 ORDER BY id")]


async def active_areas_of(db: Database, community_id: int) -> list[dict[str, object]]:
    """The community's listed areas in use (id and name), by name."""
    rows = await db.fetchall("SELECT id, name FROM areas WHERE community_id = :c AND active = 1 ORDER BY name",
                             {"c": community_id})
    return [dict(r) for r in rows]


async def active_categories_of(db: Database, community_id: int) -> list[dict[str, object]]:
    """The community's categories in use (code and names), in their order."""
    rows = await db.fetchall("SELECT code, name_zh, name_en FROM categories WHERE community_id = :c AND active = 1"
                             " ORDER BY sort", {"c": community_id})
    return [dict(r) for r in rows]


# The group a community was removed from is kept in its settings (JSON in TEXT on both databases).
_LEAVE = pg_twin(
    "UPDATE communities SET active = 0, group_chat_id = NULL,"
    " settings = json_set(COALESCE(settings, '{}'), '$.removed_group_chat_id', :g) WHERE id = :id",
    "UPDATE communities SET active = 0, group_chat_id = NULL, settings = jsonb_set(COALESCE(settings, '{}')::jsonb,"
    " '{removed_group_chat_id}', to_jsonb(CAST(:g AS BIGINT)))::text WHERE id = :id")
_REMOVED_FROM = pg_twin(
    "SELECT * FROM communities WHERE active = 0 AND group_chat_id IS NULL"
    " AND json_extract(settings, '$.removed_group_chat_id') = :g ORDER BY id DESC LIMIT 1",
    "SELECT * FROM communities WHERE active = 0 AND group_chat_id IS NULL"
    " AND (settings::jsonb ->> 'removed_group_chat_id')::bigint = :g ORDER BY id DESC LIMIT 1")
_REJOIN = pg_twin(
    "UPDATE communities SET active = 1, group_chat_id = :g,"
    " settings = json_remove(settings, '$.removed_group_chat_id') WHERE id = :id",
    "UPDATE communities SET active = 1, group_chat_id = :g,"
    " settings = (settings::jsonb - 'removed_group_chat_id')::text WHERE id = :id")


async def leave_group(conn: aiosqlite.Connection, community_id: int, group_chat_id: int) -> None:
    """The bot left the group: the community goes inactive and remembers the group (``removed_from``)."""
    await conn.execute(_LEAVE, {"g": group_chat_id, "id": community_id})


async def removed_from(conn: aiosqlite.Connection, group_chat_id: int) -> Community | None:
    """The inactive community the bot was last removed from this group, if any."""
    row = await first(conn, _REMOVED_FROM, {"g": group_chat_id})
    return None if row is None else Community.from_row(row)


async def rejoin_group(conn: aiosqlite.Connection, community_id: int, group_chat_id: int) -> None:
    """The community is active again in this group."""
    await conn.execute(_REJOIN, {"g": group_chat_id, "id": community_id})


async def redraw_group_cards(conn: aiosqlite.Connection, community_id: int, group_chat_id: int) -> None:
    """Every card of the community's tasks posted in this group is drawn again (unchanged ones are skipped)."""
    await conn.execute("UPDATE tasks SET card_version = card_version + 1 WHERE community_id = :c"
                       " AND group_chat_id = :g AND group_message_id > 0", {"c": community_id, "g": group_chat_id})


async def join_code_of_group(db: Database, group_chat_id: int | None, *, active_only: bool = False) -> str | None:
    """The join code of the community whose volunteer group this chat is."""
    sql = "SELECT join_code FROM communities WHERE group_chat_id = :g" + (" AND active = 1" if active_only else "")
    code = await db.fetchval(sql, {"g": group_chat_id})
    return None if code is None else str(code)


async def id_of_group(db: Database, group_chat_id: int) -> int | None:
    v = await db.fetchval("SELECT id FROM communities WHERE group_chat_id = :g", {"g": group_chat_id})
    return int(v) if v is not None else None


async def name_of(db: Database, community_id: int) -> str | None:
    v = await db.fetchval("SELECT name FROM communities WHERE id = :id", {"id": community_id})
    return None if v is None else str(v)


async def timezone_of(db: Database, community_id: int) -> str | None:
    v = await db.fetchval("SELECT timezone FROM communities WHERE id = :id", {"id": community_id})
    return str(v) if v else None


async def language_of(db: Database, community_id: int) -> str | None:
    v = await db.fetchval("SELECT language FROM communities WHERE id = :id", {"id": community_id})
    return str(v) if v else None


async def language_of_group(db: Database, group_chat_id: int) -> str | None:
    """The language of the community whose volunteer group this chat is."""
    v = await db.fetchval("SELECT language FROM communities WHERE group_chat_id = ?", (group_chat_id,))
    return str(v) if v else None


async def move_group(conn: Connection, old_chat_id: int, new_chat_id: int) -> None:
    """The community's volunteer group has a new chat id (it became a supergroup)."""
    await conn.execute("UPDATE communities SET group_chat_id = :new WHERE group_chat_id = :old",
                       {"new": new_chat_id, "old": old_chat_id})


async def settings_of(db: Database, community_id: int) -> str | None:
    """The community's settings (JSON text; None if it has none)."""
    v = await db.fetchval("SELECT settings FROM communities WHERE id = :id", {"id": community_id})
    return None if v is None else str(v)


async def settings_in(conn: aiosqlite.Connection, community_id: int) -> str | None:
    """The same inside the caller's transaction (to change them)."""
    async with conn.execute("SELECT settings FROM communities WHERE id = :id", {"id": community_id}) as cur:
        row = await cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


async def set_settings(conn: aiosqlite.Connection, community_id: int, settings: str) -> None:
    await conn.execute("UPDATE communities SET settings = :settings WHERE id = :id",
                       {"settings": settings, "id": community_id})


# -- what a new task takes from its community (bot/services/tasks.py) --------------------------
@dataclass(frozen=True, slots=True)
class ReviewSetting:
    """Whether residents' requests wait for staff review: the column, and the settings text (JSON)
    that may say so too."""

    required: bool
    settings: str | None


async def review_setting(conn: aiosqlite.Connection, community_id: int) -> ReviewSetting | None:
    found = await first(conn, "SELECT settings, review_required FROM communities WHERE id = :id", {"id": community_id})
    return None if found is None else ReviewSetting(bool(found[1]), found[0])


async def set_review_required(conn: aiosqlite.Connection, community_id: int, required: bool) -> None:
    await conn.execute("UPDATE communities SET review_required = :v WHERE id = :id",
                       {"v": int(required), "id": community_id})
