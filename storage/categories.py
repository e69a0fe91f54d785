"""Data access for a community's help categories and the points each is worth."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from storage.db import Database, first


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    points: int
    active: bool


async def of_community(db: Database, community_id: int) -> list[Category]:
    """Every category of the community, removed ones last."""
    rows = await db.fetchall("SELECT code, name_zh, name_en, default_points, active FROM categories"
                             " WHERE community_id = :c ORDER BY active DESC, sort, id", {"c": community_id})
    return [Category(str(r["code"]), str(r["name_zh"]), str(r["name_en"]), int(r["default_points"]),
                     bool(r["active"])) for r in rows]


async def is_active(conn: aiosqlite.Connection, community_id: int, code: str) -> bool | None:
    """Whether the category is in use; None if the community never had it."""
    row = await first(conn, "SELECT active FROM categories WHERE community_id = :c AND code = :code",
                      {"c": community_id, "code": code})
    return None if row is None else bool(row["active"])


async def active_count_and_last_sort(conn: aiosqlite.Connection, community_id: int) -> tuple[int, int]:
    """How many categories are in use, and the highest sort position among them (0 if none)."""
    row = await first(conn, "SELECT COUNT(*), COALESCE(MAX(sort), 0) FROM categories WHERE community_id = :c"
                      " AND active = 1", {"c": community_id})
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def other_active(conn: aiosqlite.Connection, community_id: int, code: str) -> int:
    """How many categories other than this one are in use."""
    row = await first(conn, "SELECT COUNT(*) FROM categories WHERE community_id = :c AND active = 1 AND code <> :code",
                      {"c": community_id, "code": code})
    return 0 if row is None else int(row[0])


async def put(conn: aiosqlite.Connection, *, community_id: int, code: str, name_zh: str, name_en: str, points: int,
              sort: int) -> None:
    """Add the category, or bring back a removed one with these names and points."""
    await conn.execute(
        "INSERT INTO categories (community_id, code, name_zh, name_en, default_points, sort)"
        " VALUES (:c, :code, :zh, :en, :points, :sort)"
        " ON CONFLICT (community_id, code) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en,"
        " default_points = excluded.default_points, sort = excluded.sort, active = 1",
        {"c": community_id, "code": code, "zh": name_zh, "en": name_en, "points": points, "sort": sort})


# The columns ``update`` may set (names come from here, never from input).
COLUMNS = frozenset({"default_points", "name_zh", "name_en", "active"})


async def update(conn: aiosqlite.Connection, community_id: int, code: str, values: dict[str, object]) -> int:
    """Set ``values`` (column: value) on the category ``code`` ('*': every category in use); returns how many changed."""
    if not values or not set(values) <= COLUMNS:
        raise ValueError(f"not category columns: {sorted(set(values) - COLUMNS)}")
    sets = ", ".join(f"{col} = :{col}" for col in values)
    if code == "*":
        cur = await conn.execute(f"UPDATE categories SET {sets} WHERE community_id = :c AND active = 1",
                                 {**values, "c": community_id})
    else:
        cur = await conn.execute(f"UPDATE categories SET {sets} WHERE community_id = :c AND code = :code",
                                 {**values, "c": community_id, "code": code})
    return cur.rowcount or 0


async def default_points(conn: aiosqlite.Connection, community_id: int, category: str) -> int | None:
    """The points a task of this category is worth by default, None if the category is not listed."""
    found = await first(conn, "SELECT default_points FROM categories WHERE community_id = :c AND code = :code",
                        {"c": community_id, "code": category})
    return None if found is None else int(found[0])
