"""Data access for rewards and vouchers: the typed rows and their loaders.

The rules (redeeming, cancelling, checking a voucher, expiry) are in bot/services/rewards.py.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import Database
from storage.timeutil import from_db, opt_from_db


@dataclass
class Reward:
    id: int
    community_id: int
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    kind: str
    cost: int
    stock: int | None
    monthly_limit: int | None
    valid_days: int
    merchant_id: int | None
    refund_on_expiry: bool
    active: bool

    def name(self, lang: str) -> str:
        return self.name_en if lang.startswith("en") and self.name_en else self.name_zh

    def description(self, lang: str) -> str:
        return self.description_en if lang.startswith("en") and self.description_en else self.description_zh

    @classmethod
    def from_row(cls, r: Any) -> Reward:
        return cls(id=int(r["id"]), community_id=int(r["community_id"]), name_zh=r["name_zh"], name_en=r["name_en"],
                   description_zh=r["description_zh"], description_en=r["description_en"], kind=r["kind"],
                   cost=int(r["cost"]), stock=None if r["stock"] is None else int(r["stock"]),
                   monthly_limit=None if r["monthly_limit"] is None else int(r["monthly_limit"]),
                   valid_days=int(r["valid_days"]),
                   merchant_id=None if r["merchant_id"] is None else int(r["merchant_id"]),
                   refund_on_expiry=bool(r["refund_on_expiry"]), active=bool(r["active"]))


@dataclass
class Voucher:
    id: int
    community_id: int
    reward_id: int
    member_id: int
    code: str
    cost: int
    state: str
    slot_start: datetime | None
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None

    @classmethod
    def from_row(cls, r: Any) -> Voucher:
        return cls(id=int(r["id"]), community_id=int(r["community_id"]), reward_id=int(r["reward_id"]),
                   member_id=int(r["member_id"]), code=r["code"], cost=int(r["cost"]), state=r["state"],
                   slot_start=opt_from_db(r["slot_start"]), issued_at=from_db(r["issued_at"]),
                   expires_at=from_db(r["expires_at"]), used_at=opt_from_db(r["used_at"]))



async def reward(db: Database, reward_id: int) -> Reward | None:
    row = await db.fetchone("SELECT * FROM rewards WHERE id = ?", (reward_id,))
    return None if row is None else Reward.from_row(row)


async def rewards_of(db: Database, community_id: int, *, include_inactive: bool = False) -> list[Reward]:
    """The community's rewards (active ones only, unless ``include_inactive``), cheapest first."""
    rows = await db.fetchall(
        "SELECT * FROM rewards WHERE community_id = ?" + ("" if include_inactive else " AND active = 1")
        + " ORDER BY cost, id", (community_id,))
    return [Reward.from_row(r) for r in rows]


async def reward_name(conn: aiosqlite.Connection, reward_id: int) -> str:
    """The reward's Chinese name, HTML-escaped ("" if there is no such reward)."""
    async with conn.execute("SELECT name_zh FROM rewards WHERE id = ?", (reward_id,)) as cur:
        row = await cur.fetchone()
    return html.escape(str(row[0]) if row else "", quote=False)


async def voucher(db: Database, voucher_id: int) -> Voucher | None:
    row = await db.fetchone("SELECT * FROM vouchers WHERE id = ?", (voucher_id,))
    return None if row is None else Voucher.from_row(row)


async def member_vouchers(db: Database, member_id: int, limit: int) -> list[tuple[Voucher, Reward]]:
    """The member's vouchers (issued ones first, newest first) with their rewards."""
    rows = await db.fetchall(
        "SELECT v.*, r.id AS r_id FROM vouchers v JOIN rewards r ON r.id = v.reward_id WHERE v.member_id = ?"
        " ORDER BY (v.state = 'issued') DESC, v.id DESC LIMIT ?", (member_id, limit))
    out = []
    for r in rows:
        found = await reward(db, int(r["r_id"]))
        assert found is not None
        out.append((Voucher.from_row(r), found))
    return out


async def voucher_state(conn: aiosqlite.Connection, voucher_id: int) -> str | None:
    async with conn.execute("SELECT state FROM vouchers WHERE id = ?", (voucher_id,)) as cur:
        row = await cur.fetchone()
    return None if row is None else str(row[0])


async def voucher_for_request(db: Database, member_id: int, request_key: str) -> Voucher | None:
    """The voucher a confirm button already issued (a repeated tap), if any."""
    row = await db.fetchone("SELECT * FROM vouchers WHERE request_key = ? AND member_id = ?", (request_key, member_id))
    return None if row is None else Voucher.from_row(row)


async def member_voucher_by_code(db: Database, member_id: int, code: str) -> Voucher | None:
    row = await db.fetchone("SELECT * FROM vouchers WHERE code = ? AND member_id = ?", (code, member_id))
    return None if row is None else Voucher.from_row(row)
