"""Merchants: invited by staff, linked to their own Telegram account through an invite code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot import codes
from bot.models import N_, InvalidInput, InvalidState, NotFound
from storage.db import Database
from storage.timeutil import to_db

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L


def new_code(length: int = 10) -> str:
    """A short readable random code: 10 characters of 31 give about 49 bits."""
    return codes.text(ALPHABET, length)


@dataclass
class Merchant:
    id: int
    community_id: int
    name: str
    member_id: int | None
    invite_code: str
    active: bool


def _from_row(row: object) -> Merchant:
    r = row  # sqlite3.Row
    return Merchant(id=int(r["id"]), community_id=int(r["community_id"]), name=str(r["name"]),  # type: ignore[index]
                    member_id=None if r["member_id"] is None else int(r["member_id"]),  # type: ignore[index]
                    invite_code=str(r["invite_code"]), active=bool(r["active"]))  # type: ignore[index]


async def create_merchant(db: Database, *, community_id: int, name: str, now: datetime,
                          actor_id: int | None = None) -> Merchant:
    name = " ".join(name.split())
    if not name or len(name) > 80:
        raise InvalidInput(N_("A merchant's name is 1 to 80 characters, e.g. /merchant new Wang's Tea Shop"))
    code = new_code(12)
    async with db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO merchants (community_id, name, invite_code, created_at) VALUES (?, ?, ?, ?)",
            (community_id, name, code, to_db(now)))
        mid = int(cur.lastrowid or 0)
        await conn.execute(
            "INSERT INTO audit_log (community_id, actor_id, action, object_type, object_id, details, created_at)"
            " VALUES (?, ?, 'merchant.create', 'merchant', ?, ?, ?)",
            (community_id, actor_id, mid, json.dumps({"name": name}, ensure_ascii=False), to_db(now)))
    return Merchant(mid, community_id, name, None, code, True)


async def get(db: Database, merchant_id: int) -> Merchant | None:
    row = await db.fetchone("SELECT * FROM merchants WHERE id = ?", (merchant_id,))
    return None if row is None else _from_row(row)


async def for_member(db: Database, member_id: int) -> Merchant | None:
    row = await db.fetchone("SELECT * FROM merchants WHERE member_id = ? AND active = 1", (member_id,))
    return None if row is None else _from_row(row)


async def list_merchants(db: Database, community_id: int) -> list[Merchant]:
    rows = await db.fetchall("SELECT * FROM merchants WHERE community_id = ? AND active = 1 ORDER BY id",
                             (community_id,))
    return [_from_row(r) for r in rows]


async def accept_invite(db: Database, *, code: str, tg_user_id: int, language: str, display_name: str,
                        now: datetime) -> Merchant:
    """Link the Telegram account to the merchant (idempotent for the same account)."""
    row = await db.fetchone("SELECT * FROM merchants WHERE invite_code = ? AND active = 1", (code,))
    if row is None:
        raise NotFound()
    merchant = _from_row(row)
    async with db.transaction() as conn:
        async with conn.execute("SELECT id FROM members WHERE tg_user_id = ? AND deleted_at IS NULL",
                                (tg_user_id,)) as cur:
            mrow = await cur.fetchone()
        if mrow is None:
            cur2 = await conn.execute(
                "INSERT INTO members (tg_user_id, community_id, language, display_name, registered_at,"
                " started_bot, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                (tg_user_id, merchant.community_id, language, display_name[:64] or "merchant", to_db(now),
                 to_db(now), to_db(now)))
            member_id = int(cur2.lastrowid or 0)
        else:
            member_id = int(mrow[0])
        if merchant.member_id == member_id:
            return merchant
        if merchant.member_id is not None:
            raise InvalidState()
        async with conn.execute("SELECT 1 FROM merchants WHERE member_id = ?", (member_id,)) as cur:
            if await cur.fetchone():
                raise InvalidState()
        await conn.execute("UPDATE merchants SET member_id = ? WHERE id = ? AND member_id IS NULL",
                           (member_id, merchant.id))
        await conn.execute(
            "INSERT INTO audit_log (community_id, actor_id, action, object_type, object_id, created_at)"
            " VALUES (?, ?, 'merchant.link', 'merchant', ?, ?)", (merchant.community_id, member_id, merchant.id,
                                                                 to_db(now)))
    merchant.member_id = member_id
    return merchant
