"""Data access for rewards and vouchers: the typed rows, their loaders and every statement about them.

The rules (redeeming, cancelling, checking a voucher, expiry) are in bot/services/rewards.py; it
decides which of these calls run together in one transaction.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import Database, new_id
from storage.outbox import priority_of
from storage.timeutil import from_db, opt_from_db, to_db


@dataclass(frozen=True, slots=True)
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
    photo_file_id: str | None = None  # the picture staff sent (0150); None: no photo

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
                   refund_on_expiry=bool(r["refund_on_expiry"]), active=bool(r["active"]),
                   photo_file_id=r["photo_file_id"] if "photo_file_id" in r.keys() else None)


@dataclass(frozen=True, slots=True)
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


# -- rewards ------------------------------------------------------------------------------------
async def reward(db: Database, reward_id: int) -> Reward | None:
    row = await db.fetchone("SELECT * FROM rewards WHERE id = :id", {"id": reward_id})
    return None if row is None else Reward.from_row(row)


async def reward_in(conn: aiosqlite.Connection, reward_id: int) -> Reward | None:
    """The reward inside a transaction, None if there is none."""
    async with conn.execute("SELECT * FROM rewards WHERE id = :id", {"id": reward_id}) as cur:
        row = await cur.fetchone()
    return None if row is None else Reward.from_row(row)


async def rewards_of(db: Database, community_id: int, *, include_inactive: bool = False) -> list[Reward]:
    """The community's rewards (active ones only, unless ``include_inactive``), cheapest first."""
    rows = await db.fetchall(
        "SELECT * FROM rewards WHERE community_id = :community" + ("" if include_inactive else " AND active = 1")
        + " ORDER BY cost, id", {"community": community_id})
    return [Reward.from_row(r) for r in rows]


async def reward_name(conn: aiosqlite.Connection, reward_id: int) -> str:
    """The reward's Chinese name, HTML-escaped ("" if there is no such reward)."""
    async with conn.execute("SELECT name_zh FROM rewards WHERE id = :id", {"id": reward_id}) as cur:
        row = await cur.fetchone()
    return html.escape(str(row[0]) if row else "", quote=False)


async def merchant_in_community(conn: aiosqlite.Connection, merchant_id: int, community_id: int) -> bool:
    async with conn.execute("SELECT 1 FROM merchants WHERE id = :id AND community_id = :community",
                            {"id": merchant_id, "community": community_id}) as cur:
        return await cur.fetchone() is not None


async def insert_reward(conn: aiosqlite.Connection, *, community_id: int, name_zh: str, name_en: str,
                        description_zh: str, description_en: str, kind: str, cost: int, stock: int | None,
                        monthly_limit: int | None, valid_days: int, merchant_id: int | None,
                        refund_on_expiry: bool, now: datetime, photo_file_id: str | None = None,
                        add_key: str | None = None) -> int:
    """Write a new reward; returns its id."""
    cur = await conn.execute(
        "INSERT INTO rewards (community_id, name_zh, name_en, description_zh, description_en, kind, cost, stock,"
        " monthly_limit, valid_days, merchant_id, refund_on_expiry, created_at, photo_file_id, add_key)"
        " VALUES (:community_id, :name_zh, :name_en, :description_zh, :description_en, :kind, :cost, :stock,"
        " :monthly_limit, :valid_days, :merchant_id, :refund_on_expiry, :now, :photo_file_id, :add_key) RETURNING id",
        {"community_id": community_id, "name_zh": name_zh, "name_en": name_en, "description_zh": description_zh,
         "description_en": description_en, "kind": kind, "cost": cost, "stock": stock,
         "monthly_limit": monthly_limit, "valid_days": valid_days, "merchant_id": merchant_id,
         "refund_on_expiry": int(refund_on_expiry), "now": to_db(now), "photo_file_id": photo_file_id,
         "add_key": add_key})
    return new_id(await cur.fetchone())


async def added_with(conn: aiosqlite.Connection, add_key: str) -> int | None:
    """The id of the reward added with this one-time key, None if there is none yet."""
    async with conn.execute("SELECT id FROM rewards WHERE add_key = :key", {"key": add_key}) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row[0])


UPDATABLE = frozenset({"active", "stock", "cost", "monthly_limit", "valid_days", "refund_on_expiry"})


async def update_reward(conn: aiosqlite.Connection, reward_id: int, fields: dict[str, Any]) -> bool:
    """Set the given columns (names from ``UPDATABLE`` only); False if there is no such reward."""
    if not fields or set(fields) - UPDATABLE:
        raise ValueError(f"not updatable: {sorted(set(fields) - UPDATABLE)}")
    sets = ", ".join(f"{k} = :{k}" for k in fields)
    cur = await conn.execute(f"UPDATE rewards SET {sets} WHERE id = :reward_id", {**fields, "reward_id": reward_id})
    return bool(cur.rowcount)


async def take_stock(conn: aiosqlite.Connection, reward_id: int) -> bool:
    """One less in stock; False if none is left (the stock never goes below zero)."""
    cur = await conn.execute("UPDATE rewards SET stock = stock - 1 WHERE id = :id AND stock > 0", {"id": reward_id})
    return cur.rowcount == 1


async def return_stock(conn: aiosqlite.Connection, reward_id: int) -> None:
    """One more in stock (a reward with unlimited stock stays unlimited)."""
    await conn.execute("UPDATE rewards SET stock = stock + 1 WHERE id = :id AND stock IS NOT NULL", {"id": reward_id})


# -- vouchers -----------------------------------------------------------------------------------
async def voucher(db: Database, voucher_id: int) -> Voucher | None:
    row = await db.fetchone("SELECT * FROM vouchers WHERE id = :id", {"id": voucher_id})
    return None if row is None else Voucher.from_row(row)


async def voucher_in(conn: aiosqlite.Connection, voucher_id: int) -> Voucher | None:
    """The voucher inside a transaction, None if there is none."""
    async with conn.execute("SELECT * FROM vouchers WHERE id = :id", {"id": voucher_id}) as cur:
        row = await cur.fetchone()
    return None if row is None else Voucher.from_row(row)


async def voucher_by_code(db: Database, code: str) -> Voucher | None:
    row = await db.fetchone("SELECT * FROM vouchers WHERE code = :code", {"code": code})
    return None if row is None else Voucher.from_row(row)


async def member_vouchers(db: Database, member_id: int, limit: int) -> list[tuple[Voucher, Reward]]:
    """The member's vouchers (issued ones first, newest first) with their rewards."""
    rows = await db.fetchall(
        "SELECT v.*, r.id AS r_id FROM vouchers v JOIN rewards r ON r.id = v.reward_id WHERE v.member_id = :member"
        " ORDER BY (v.state = 'issued') DESC, v.id DESC LIMIT :limit", {"member": member_id, "limit": limit})
    out = []
    for r in rows:
        found = await reward(db, int(r["r_id"]))
        assert found is not None
        out.append((Voucher.from_row(r), found))
    return out


async def voucher_state(conn: aiosqlite.Connection, voucher_id: int) -> str | None:
    async with conn.execute("SELECT state FROM vouchers WHERE id = :id", {"id": voucher_id}) as cur:
        row = await cur.fetchone()
    return None if row is None else str(row[0])


_BY_REQUEST = "SELECT * FROM vouchers WHERE request_key = :key AND member_id = :member"


async def voucher_for_request(db: Database, member_id: int, request_key: str) -> Voucher | None:
    """The voucher a confirm button already issued (a repeated tap), if any."""
    row = await db.fetchone(_BY_REQUEST, {"key": request_key, "member": member_id})
    return None if row is None else Voucher.from_row(row)


async def voucher_for_request_in(conn: aiosqlite.Connection, member_id: int, request_key: str) -> Voucher | None:
    """``voucher_for_request`` inside a transaction."""
    async with conn.execute(_BY_REQUEST, {"key": request_key, "member": member_id}) as cur:
        row = await cur.fetchone()
    return None if row is None else Voucher.from_row(row)


async def member_voucher_by_code(db: Database, member_id: int, code: str) -> Voucher | None:
    row = await db.fetchone("SELECT * FROM vouchers WHERE code = :code AND member_id = :member",
                            {"code": code, "member": member_id})
    return None if row is None else Voucher.from_row(row)


async def live_member_community(conn: aiosqlite.Connection, member_id: int) -> int | None:
    """The community of a member who is not erased (None if there is no such member)."""
    async with conn.execute("SELECT community_id FROM members WHERE id = :id AND deleted_at IS NULL",
                            {"id": member_id}) as cur:
        row = await cur.fetchone()
    return None if row is None else row[0]


async def issued_since(conn: aiosqlite.Connection, member_id: int, reward_id: int, since: datetime) -> int:
    """How many of this reward the member took since ``since`` (cancelled ones do not count)."""
    async with conn.execute(
            "SELECT COUNT(*) FROM vouchers WHERE member_id = :member AND reward_id = :reward AND issued_at >= :since"
            " AND state != 'cancelled'", {"member": member_id, "reward": reward_id, "since": to_db(since)}) as cur:
        return int((await cur.fetchone() or (0,))[0])


async def slot_booked(conn: aiosqlite.Connection, reward_id: int, slot_start: datetime) -> bool:
    async with conn.execute(
            "SELECT 1 FROM vouchers WHERE reward_id = :reward AND slot_start = :slot AND state IN ('issued', 'used')",
            {"reward": reward_id, "slot": to_db(slot_start)}) as cur:
        return await cur.fetchone() is not None


async def insert_voucher(conn: aiosqlite.Connection, *, reward: Reward, member_id: int, code: str,
                         slot_start: datetime | None, slot_end: datetime | None, now: datetime, expires: datetime,
                         request_key: str | None) -> int:
    """Write an issued voucher for ``reward`` at its cost; returns its id."""
    cur = await conn.execute(
        "INSERT INTO vouchers (community_id, reward_id, member_id, code, cost, state, slot_start, slot_end,"
        " issued_at, expires_at, request_key) VALUES (:community, :reward, :member, :code, :cost, 'issued',"
        " :slot_start, :slot_end, :now, :expires, :request_key) RETURNING id",
        {"community": reward.community_id, "reward": reward.id, "member": member_id, "code": code,
         "cost": reward.cost, "slot_start": None if slot_start is None else to_db(slot_start),
         "slot_end": None if slot_end is None else to_db(slot_end), "now": to_db(now), "expires": to_db(expires),
         "request_key": request_key})
    return new_id(await cur.fetchone())


async def close_issued(conn: aiosqlite.Connection, voucher_id: int, state: str, now: datetime) -> bool:
    """Move an issued voucher to ``state`` ('cancelled' or 'expired'); False if it was not issued."""
    cur = await conn.execute("UPDATE vouchers SET state = :state, closed_at = :now WHERE id = :id"
                             " AND state = 'issued'", {"state": state, "now": to_db(now), "id": voucher_id})
    return cur.rowcount == 1


async def mark_used(conn: aiosqlite.Connection, voucher_id: int, actor_id: int, now: datetime) -> bool:
    """Mark an issued, unexpired voucher used; False otherwise (already used, or no longer valid)."""
    cur = await conn.execute(
        "UPDATE vouchers SET state = 'used', used_at = :now, used_by = :actor, closed_at = :now WHERE id = :id"
        " AND state = 'issued' AND expires_at > :now", {"now": to_db(now), "actor": actor_id, "id": voucher_id})
    return cur.rowcount == 1


async def issued_past(db: Database, now: datetime, limit: int = 500) -> list[int]:
    """Ids of issued vouchers whose validity ended by ``now``."""
    rows = await db.fetchall("SELECT id FROM vouchers WHERE state = 'issued' AND expires_at <= :now LIMIT :limit",
                             {"now": to_db(now), "limit": limit})
    return [int(r[0]) for r in rows]


async def refund_on_expiry(conn: aiosqlite.Connection, reward_id: int) -> bool:
    async with conn.execute("SELECT refund_on_expiry FROM rewards WHERE id = :id", {"id": reward_id}) as cur:
        row = await cur.fetchone()
    return bool(row and row[0])


# -- checking codes -----------------------------------------------------------------------------
async def failed_checks_since(db: Database, actor_id: int, since: datetime) -> int:
    n = await db.fetchval(
        "SELECT COUNT(*) FROM voucher_verify_attempts WHERE actor_id = :actor AND ok = 0 AND created_at > :since",
        {"actor": actor_id, "since": to_db(since)})
    return int(n or 0)


async def record_check(conn: aiosqlite.Connection, actor_id: int, ok: bool, now: datetime) -> None:
    await conn.execute("INSERT INTO voucher_verify_attempts (actor_id, ok, created_at) VALUES (:actor, :ok, :now)",
                       {"actor": actor_id, "ok": int(ok), "now": to_db(now)})


async def active_merchant_of(db: Database, member_id: int) -> int | None:
    """The id of the active merchant the member runs, None if none."""
    row = await db.fetchone("SELECT id FROM merchants WHERE member_id = :member AND active = 1", {"member": member_id})
    return None if row is None else int(row[0])


# -- what goes with them: the member's notice -------------------------------
async def tell_member(conn: aiosqlite.Connection, *, key: str, member_id: int, message: str,
                      params: dict[str, Any], now: datetime) -> None:
    """Queue a text for the member's private chat (nothing if they have no Telegram account)."""
    await conn.execute(
        "INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, priority, not_before, created_at)"
        " SELECT :key, tg_user_id, id, 'text', :payload, :priority, :now, :now FROM members"
        " WHERE id = :member AND tg_user_id IS NOT NULL ON CONFLICT (dedupe_key) DO NOTHING",
        {"key": key, "payload": json.dumps({"message": message, "params": params}, ensure_ascii=False),
         "priority": priority_of("text"), "now": to_db(now), "member": member_id})


# -- managing rewards (staff) ----------------------------------------------------------------
# The columns staff may change through the reward dialog (the service checks each value).
EDITABLE = ("name_zh", "name_en", "kind", "merchant_id", "cost", "stock", "photo_file_id", "active")


async def change(conn: aiosqlite.Connection, reward_id: int, community_id: int, fields: dict[str, Any]) -> bool:
    """Set ``fields`` (names from ``EDITABLE``) of a reward of the community; False if there is none."""
    if not fields or set(fields) - set(EDITABLE):
        raise ValueError(f"not editable: {sorted(set(fields) - set(EDITABLE))}")
    sets = ", ".join(f"{name} = :{name}" for name in fields)  # names from EDITABLE only
    cur = await conn.execute(f"UPDATE rewards SET {sets} WHERE id = :rid AND community_id = :cid",
                             {**fields, "rid": reward_id, "cid": community_id})
    return cur.rowcount == 1


async def add_stock(conn: aiosqlite.Connection, reward_id: int, community_id: int, add: int, most: int) -> int | None:
    """Add ``add`` to a counted stock as long as it stays at most ``most``; the new stock, or None when
    the reward is not the community's, has unlimited stock or would go over ``most``."""
    async with conn.execute(
            "UPDATE rewards SET stock = stock + :add WHERE id = :rid AND community_id = :cid"
            " AND stock IS NOT NULL AND stock + :add <= :most RETURNING stock",
            {"add": add, "rid": reward_id, "cid": community_id, "most": most}) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row[0])
