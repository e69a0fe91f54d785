"""A community's help categories and the points each is worth (staff keep the list).

The points of a category are the rule for new tasks of that category; each task keeps the points
it was published with (``tasks.points``), so changing a rule never rewrites history. A removed
category is hidden from new requests; tasks that have it keep showing its name.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.models import N_, InvalidInput, NotAllowed, NotFound, NotRegistered
from bot.numbers import number
from bot.services.members import clean_name
from storage import categories as category_store
from storage import members as member_store
from storage.categories import Category as Category
from storage.db import Connection, Database
from storage.members import Member
from storage.outbox import audit

MAX_POINTS = 100
MAX_CATEGORIES = 30
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


def _community_of_staff(member: Member | None) -> int:
    if member is None or member.deleted_at is not None or member.registered_at is None or member.community_id is None:
        raise NotRegistered()
    if not member.is_staff:
        raise NotAllowed()
    return member.community_id


async def _staff_community(conn: Connection, staff_id: int) -> int:
    return _community_of_staff(await member_store.get(conn, staff_id))


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
    community_id = _community_of_staff(await member_store.by_id(db, staff_id))
    return await category_store.of_community(db, community_id)


async def add(db: Database, now: datetime, staff_id: int, *, code: str, points: int, name_zh: str,
              name_en: str) -> None:
    code = check_code(code)
    async with db.transaction() as conn:
        cid = await _staff_community(conn, staff_id)
        if await category_store.is_active(conn, cid, code):
            raise InvalidInput(N_("There is already a category {code}."), code=code)
        count, top = await category_store.active_count_and_last_sort(conn, cid)
        if count >= MAX_CATEGORIES:
            raise InvalidInput(N_("A community can have at most {n} categories."), n=MAX_CATEGORIES)
        await category_store.put(conn, community_id=cid, code=code, name_zh=name_zh, name_en=name_en, points=points,
                                 sort=top + 1)
        await audit(conn, now=now, action="category.added", community_id=cid, actor_id=staff_id,
                    object_type="category", details={"code": code, "points": points})


async def _update(db: Database, now: datetime, staff_id: int, code: str, values: dict[str, object],
                  action: str, details: dict[str, object]) -> None:
    async with db.transaction() as conn:
        cid = await _staff_community(conn, staff_id)
        if not await category_store.update(conn, cid, code if code == "*" else code.lower(), values):
            raise NotFound()
        await audit(conn, now=now, action=action, community_id=cid, actor_id=staff_id, object_type="category",
                    details={"code": code, **details})


async def set_points(db: Database, now: datetime, staff_id: int, code: str, points: int) -> None:
    """Points for new tasks of a category ('*': every category)."""
    await _update(db, now, staff_id, code, {"default_points": points}, "category.points", {"points": points})


async def rename(db: Database, now: datetime, staff_id: int, code: str, name_zh: str, name_en: str) -> None:
    await _update(db, now, staff_id, check_code(code), {"name_zh": name_zh, "name_en": name_en},
                  "category.renamed", {"zh": name_zh, "en": name_en})


async def set_active(db: Database, now: datetime, staff_id: int, code: str, active: bool) -> None:
    code = check_code(code)
    if not active:
        async with db.transaction() as conn:
            cid = await _staff_community(conn, staff_id)
            others = await category_store.other_active(conn, cid, code)
        if not others:
            raise InvalidInput(N_("Keep at least one category, or residents cannot ask for help."))
    await _update(db, now, staff_id, code, {"active": int(active)},
                  "category.restored" if active else "category.removed", {})
