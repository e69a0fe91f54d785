"""A community's help categories and the points each is worth (staff keep the list).

The points of a category are the rule for new tasks of that category; each task keeps the points
it was published with (``tasks.points``), so changing a rule never rewrites history. A removed
category is hidden from new requests; tasks that have it keep showing its name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from bot.models import N_, InvalidInput, NotAllowed, NotFound, NotRegistered
from bot.numbers import number
from bot.services.members import clean_name
from storage.db import Database
from storage.outbox import audit

MAX_POINTS = 100
MAX_CATEGORIES = 30
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


@dataclass(frozen=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    points: int
    active: bool


def _community_of_staff(row: aiosqlite.Row | None) -> int:
    if row is None or row["registered_at"] is None or row["community_id"] is None:
        raise NotRegistered()
    if not row["is_staff"]:
        raise NotAllowed()
    return int(row["community_id"])


_STAFF_SQL = "SELECT community_id, is_staff, registered_at FROM members WHERE id = ? AND deleted_at IS NULL"


async def _staff_community(conn: aiosqlite.Connection, staff_id: int) -> int:
    async with conn.execute(_STAFF_SQL, (staff_id,)) as cur:
        return _community_of_staff(await cur.fetchone())


def parse_names(text: str) -> tuple[str, str]:
    """'中文名 / English name' (or one name for both)."""
    zh, _, en = text.partition("/")
    name_zh = clean_name(zh, limit=30)
    name_en = clean_name(en, limit=30) if en.strip() else name_zh
    return name_zh, name_en


def parse_points(text: str) -> int:
    return number(text, N_("Points must be a whole number from 0 to {max}."), low=0, high=MAX_POINTS, max=MAX_POINTS)


def check_code(code: str) -> str:
    code = code.lower()
    if not _CODE.match(code):
        raise InvalidInput(N_("A category code is a short word in Latin letters, e.g. garden or pets."))
    return code


async def listing(db: Database, staff_id: int) -> list[Category]:
    """The categories of the staff member's community, removed ones last (staff only)."""
    community_id = _community_of_staff(await db.fetchone(_STAFF_SQL, (staff_id,)))
    rows = await db.fetchall("SELECT code, name_zh, name_en, default_points, active FROM categories"
                             " WHERE community_id = ? ORDER BY active DESC, sort, id", (community_id,))
    return [Category(str(r["code"]), str(r["name_zh"]), str(r["name_en"]), int(r["default_points"]),
                     bool(r["active"])) for r in rows]


async def add(db: Database, now: datetime, staff_id: int, *, code: str, points: int, name_zh: str,
              name_en: str) -> None:
    code = check_code(code)
    async with db.transaction() as conn:
        cid = await _staff_community(conn, staff_id)
        async with conn.execute("SELECT active FROM categories WHERE community_id = ? AND code = ?",
                                (cid, code)) as cur:
            existing = await cur.fetchone()
        if existing is not None and existing["active"]:
            raise InvalidInput(N_("There is already a category {code}."), code=code)
        async with conn.execute("SELECT COUNT(*), COALESCE(MAX(sort), 0) FROM categories WHERE community_id = ?"
                                " AND active = 1", (cid,)) as cur:
            count, top = await cur.fetchone() or (0, 0)
        if int(count) >= MAX_CATEGORIES:
            raise InvalidInput(N_("A community can have at most {n} categories."), n=MAX_CATEGORIES)
        await conn.execute(
            "INSERT INTO categories (community_id, code, name_zh, name_en, default_points, sort) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (community_id, code) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en,"
            " default_points = excluded.default_points, sort = excluded.sort, active = 1",
            (cid, code, name_zh, name_en, points, int(top) + 1))
        await audit(conn, now=now, action="category.added", community_id=cid, actor_id=staff_id,
                    object_type="category", details={"code": code, "points": points})


async def _update(db: Database, now: datetime, staff_id: int, code: str, sql: str, params: tuple[object, ...],
                  action: str, details: dict[str, object]) -> None:
    async with db.transaction() as conn:
        cid = await _staff_community(conn, staff_id)
        if code == "*":
            cur = await conn.execute(f"UPDATE categories SET {sql} WHERE community_id = ? AND active = 1", (*params, cid))
        else:
            cur = await conn.execute(f"UPDATE categories SET {sql} WHERE community_id = ? AND code = ?",
                                     (*params, cid, code.lower()))
        if not cur.rowcount:
            raise NotFound()
        await audit(conn, now=now, action=action, community_id=cid, actor_id=staff_id, object_type="category",
                    details={"code": code, **details})


async def set_points(db: Database, now: datetime, staff_id: int, code: str, points: int) -> None:
    """Points for new tasks of a category ('*': every category)."""
    await _update(db, now, staff_id, code, "default_points = ?", (points,), "category.points", {"points": points})


async def rename(db: Database, now: datetime, staff_id: int, code: str, name_zh: str, name_en: str) -> None:
    await _update(db, now, staff_id, check_code(code), "name_zh = ?, name_en = ?", (name_zh, name_en),
                  "category.renamed", {"zh": name_zh, "en": name_en})


async def set_active(db: Database, now: datetime, staff_id: int, code: str, active: bool) -> None:
    code = check_code(code)
    if not active:
        async with db.transaction() as conn:
            cid = await _staff_community(conn, staff_id)
            async with conn.execute("SELECT COUNT(*) FROM categories WHERE community_id = ? AND active = 1"
                                    " AND code <> ?", (cid, code)) as cur:
                others = (await cur.fetchone() or (0,))[0]
        if not others:
            raise InvalidInput(N_("Keep at least one category, or residents cannot ask for help."))
    await _update(db, now, staff_id, code, "active = ?", (int(active),),
                  "category.restored" if active else "category.removed", {})
