"""Test data written straight into the database (for service tests that need a world to act in).

Feature tests should prefer the real services once they exist; these keep tests of one part
independent of another part's flows.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from typing import Any

from storage.db import Database
from storage.timeutil import to_db

_seq = itertools.count(1)


async def insert(db: Database, table: str, values: dict[str, Any]) -> int:
    """One row of ``values`` (column → value) into ``table``; its id."""
    names = ", ".join(f":{column}" for column in values)
    async with db.transaction() as conn:
        # RETURNING, not lastrowid: the same on PostgreSQL (and tables without an id give 0)
        cur = await conn.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({names}) RETURNING *", values)
        row = await cur.fetchone()
        return int(row["id"]) if row is not None and "id" in row.keys() else 0


async def returned_id(cursor: Any) -> int:
    """The id an ``INSERT ... RETURNING id`` gave (on both databases; ``lastrowid`` is SQLite's alone)."""
    row = await cursor.fetchone()
    return int(row[0])


async def make_community(db: Database, now: datetime, *, name: str = "Sunny Lane", group_chat_id: int | None = None,
                         no_group: bool = False, **fields: Any) -> int:
    """A community, bound to a made-up group chat unless ``group_chat_id`` names one or ``no_group``
    (the bot is in no group of it: not added yet, or removed)."""
    n = next(_seq)
    values: dict[str, Any] = {
        "name": name,
        "group_chat_id": None if no_group else group_chat_id if group_chat_id is not None else -100_000 - n,
        "join_code": f"code{n:05d}",
        "created_at": to_db(now),
    }
    if "settings" in fields and not isinstance(fields["settings"], str):
        fields["settings"] = json.dumps(fields["settings"])
    return await insert(db, "communities", {**values, **fields})


async def make_category(db: Database, community_id: int, code: str = "shopping", name_zh: str = "跑腿",
                        name_en: str = "Errands", default_points: int = 1) -> None:
    await insert(db, "categories", {"community_id": community_id, "code": code, "name_zh": name_zh,
                                    "name_en": name_en, "default_points": default_points})


async def make_member(db: Database, now: datetime, community_id: int | None, *, tg_user_id: int | None = None,
                      name: str | None = None, volunteer: bool = False, resident: bool = False,
                      staff: bool = False, language: str = "zh", registered: bool = True, **fields: Any) -> int:
    n = next(_seq)
    values: dict[str, Any] = {
        "tg_user_id": tg_user_id if tg_user_id is not None else 5_000_000 + n,
        "community_id": community_id,
        "language": language,
        "display_name": name or f"Member {n}",
        "is_volunteer": int(volunteer),
        "is_resident": int(resident),
        "is_staff": int(staff),
        "registered_at": to_db(now) if registered else None,
        "consent_at": to_db(now) if registered else None,
        "started_bot": 1,
        "created_at": to_db(now),
        "updated_at": to_db(now),
    }
    return await insert(db, "members", {**values, **fields})
