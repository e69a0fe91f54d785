"""Data access for merchants: shops a community's vouchers are used at, linked to a member's account."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import Database, first, new_id
from storage.timeutil import to_db


@dataclass(frozen=True, slots=True)
class Merchant:
    id: int
    community_id: int
    name: str
    member_id: int | None
    invite_code: str
    active: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | sqlite3.Row) -> Merchant:
        return cls(id=int(row["id"]), community_id=int(row["community_id"]), name=str(row["name"]),
                   member_id=None if row["member_id"] is None else int(row["member_id"]),
                   invite_code=str(row["invite_code"]), active=bool(row["active"]))


def _merchant(row: Any) -> Merchant | None:
    return None if row is None else Merchant.from_row(row)


async def add(conn: aiosqlite.Connection, *, community_id: int, name: str, invite_code: str, now: datetime) -> int:
    cur = await conn.execute(
        "INSERT INTO merchants (community_id, name, invite_code, created_at) VALUES (:c, :name, :code, :now) RETURNING id",
        {"c": community_id, "name": name, "code": invite_code, "now": to_db(now)})
    return new_id(await cur.fetchone())


async def get(db: Database, merchant_id: int) -> Merchant | None:
    return _merchant(await db.fetchone("SELECT * FROM merchants WHERE id = :id", {"id": merchant_id}))


async def active_of_member(db: Database, member_id: int) -> Merchant | None:
    """The active merchant this member's account is linked to."""
    return _merchant(await db.fetchone("SELECT * FROM merchants WHERE member_id = :m AND active = 1",
                                       {"m": member_id}))


async def active_of(db: Database, community_id: int) -> list[Merchant]:
    """The community's active merchants, oldest first."""
    rows = await db.fetchall("SELECT * FROM merchants WHERE community_id = :c AND active = 1 ORDER BY id",
                             {"c": community_id})
    return [Merchant.from_row(r) for r in rows]


async def active_by_code(db: Database, code: str) -> Merchant | None:
    """The active merchant with this invite code."""
    return _merchant(await db.fetchone("SELECT * FROM merchants WHERE invite_code = :code AND active = 1",
                                       {"code": code}))


async def has_member(conn: aiosqlite.Connection, member_id: int) -> bool:
    """Whether this member's account is linked to a merchant (active or not) already."""
    return await first(conn, "SELECT 1 FROM merchants WHERE member_id = :m", {"m": member_id}) is not None


async def link(conn: aiosqlite.Connection, merchant_id: int, member_id: int) -> None:
    """Link the merchant to the member's account, unless it is linked already."""
    await conn.execute("UPDATE merchants SET member_id = :m WHERE id = :id AND member_id IS NULL",
                       {"m": member_id, "id": merchant_id})
