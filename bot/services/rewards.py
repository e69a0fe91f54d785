"""The points supermarket: rewards, redemption, vouchers, verification and expiry.

Redemption is one transaction: a conditional stock decrement (``WHERE stock > 0``), the voucher
row and the ledger debit (key ``redeem:<voucher_id>``). The ledger's ``CHECK (balance >= 0)``
refuses an overdraft, which rolls the whole transaction back, so neither stock nor balance can go
below zero however many members press at once. Refunds use ``refund:<voucher_id>``: once only.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from bot.models import N_, InvalidInput, InvalidState, Member, NotAllowed, NotFound, OutOfStock, RateLimited
from bot.services import access, ledger, merchants
from bot.services.merchants import new_code
from storage import rewards as store
from storage.db import Database
from storage.outbox import priority_of
from storage.rewards import Reward as Reward
from storage.rewards import Voucher as Voucher
from storage.timeutil import to_db

KINDS = ("goods", "service", "honour", "venue", "discount")
VERIFY_MAX_FAILURES = 10
VERIFY_WINDOW = timedelta(minutes=10)


class MonthlyLimitReached(InvalidState):
    message = N_("You have reached this month's limit for this reward.")


class SlotTaken(InvalidState):
    message = N_("Sorry, that time slot is already booked. Please pick another.")


async def _audit(conn: aiosqlite.Connection, community_id: int, actor_id: int | None, action: str,
                 object_id: int, now: datetime, **details: Any) -> None:
    await conn.execute(
        "INSERT INTO audit_log (community_id, actor_id, action, object_type, object_id, details, created_at)"
        " VALUES (?, ?, ?, 'voucher', ?, ?, ?)",
        (community_id, actor_id, action, object_id, json.dumps(details, ensure_ascii=False, default=str), to_db(now)))


async def _notify(conn: aiosqlite.Connection, *, key: str, member_id: int, message: str, now: datetime,
                  **params: Any) -> None:
    """Tell the member in their private chat (through the outbox, in the same transaction)."""
    await conn.execute(
        "INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, priority, not_before, created_at)"
        " SELECT ?, tg_user_id, id, 'text', ?, ?, ?, ? FROM members WHERE id = ? AND tg_user_id IS NOT NULL"
        " ON CONFLICT (dedupe_key) DO NOTHING",
        (key, json.dumps({"message": message, "params": params}, ensure_ascii=False), priority_of("text"),
         to_db(now), to_db(now), member_id))


_reward_name = store.reward_name


# -- catalogue ------------------------------------------------------------------------------
def _check_reward(name_zh: str, name_en: str, kind: str, cost: int, stock: int | None, monthly_limit: int | None,
                  valid_days: int, merchant_id: int | None) -> None:
    """What a new reward must be (the names already have their spaces tidied)."""
    if kind not in KINDS:
        raise InvalidInput(N_("The kind must be one of: goods, service, honour, venue, discount:MERCHANT_NUMBER."))
    if kind == "discount" and merchant_id is None:
        raise InvalidInput(N_("A discount needs the merchant's number, e.g. discount:3 (see /merchant list)."))
    if not name_zh:
        raise InvalidInput(N_("Please give the reward a name."))
    if len(name_zh) > 60 or len(name_en) > 60:
        raise InvalidInput(N_("The name is too long: at most 60 characters in each language."))
    if not 0 < cost <= 100_000:
        raise InvalidInput(N_("The cost must be a whole number of points from 1 to 100000."))
    if stock is not None and not 0 <= stock <= 1_000_000:
        raise InvalidInput(N_("The stock must be a number from 0 to 1000000, or - for unlimited."))
    if monthly_limit is not None and not 0 < monthly_limit <= 1000:
        raise InvalidInput(N_("limit= must be a number from 1 to 1000 (how many a member may take a month)."))
    if not 1 <= valid_days <= 365:
        raise InvalidInput(N_("days= must be a number from 1 to 365 (how long a voucher stays valid)."))


async def create_reward(db: Database, *, community_id: int, name_zh: str, name_en: str = "", kind: str, cost: int,
                        now: datetime, stock: int | None = None, monthly_limit: int | None = None,
                        valid_days: int = 30, merchant_id: int | None = None, refund_on_expiry: bool = True,
                        description_zh: str = "", description_en: str = "", actor_id: int | None = None) -> int:
    name_zh = " ".join(name_zh.split())
    name_en = " ".join(name_en.split()) or name_zh
    _check_reward(name_zh, name_en, kind, cost, stock, monthly_limit, valid_days, merchant_id)
    async with db.transaction() as conn:
        if merchant_id is not None:
            async with conn.execute("SELECT 1 FROM merchants WHERE id = ? AND community_id = ?",
                                    (merchant_id, community_id)) as cur:
                if await cur.fetchone() is None:
                    raise InvalidInput(N_("There is no merchant number {id} in your community (see /merchant list)."),
                                       id=merchant_id)
        cur2 = await conn.execute(
            "INSERT INTO rewards (community_id, name_zh, name_en, description_zh, description_en, kind, cost, stock,"
            " monthly_limit, valid_days, merchant_id, refund_on_expiry, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (community_id, name_zh, name_en, description_zh, description_en, kind, cost, stock, monthly_limit,
             valid_days, merchant_id, int(refund_on_expiry), to_db(now)))
        rid = int(cur2.lastrowid or 0)
        await conn.execute(
            "INSERT INTO audit_log (community_id, actor_id, action, object_type, object_id, created_at)"
            " VALUES (?, ?, 'reward.create', 'reward', ?, ?)", (community_id, actor_id, rid, to_db(now)))
    return rid


async def update_reward(db: Database, reward_id: int, *, now: datetime, actor_id: int | None = None,
                        **fields: Any) -> None:
    allowed = {"active", "stock", "cost", "monthly_limit", "valid_days", "refund_on_expiry"}
    if not fields or set(fields) - allowed:
        raise InvalidInput()
    if "cost" in fields and not 0 < int(fields["cost"]) <= 100_000:
        raise InvalidInput()
    if fields.get("stock") is not None and int(fields["stock"]) < 0:
        raise InvalidInput()
    sets = ", ".join(f"{k} = ?" for k in fields)
    async with db.transaction() as conn:
        cur = await conn.execute(f"UPDATE rewards SET {sets} WHERE id = ?", (*fields.values(), reward_id))
        if not cur.rowcount:
            raise NotFound()
        await conn.execute(
            "INSERT INTO audit_log (actor_id, action, object_type, object_id, details, created_at)"
            " VALUES (?, 'reward.update', 'reward', ?, ?, ?)",
            (actor_id, reward_id, json.dumps(fields, default=str), to_db(now)))


async def get_reward(db: Database, reward_id: int) -> Reward | None:
    return await store.reward(db, reward_id)


async def offered_to(db: Database, member: Member, reward_id: int) -> Reward:
    """A reward the member may look at: active, in their community; NotFound otherwise."""
    r = await get_reward(db, reward_id)
    if r is None or not r.active or r.community_id != member.community_id:
        raise NotFound()
    return r


def within_reach(reward: Reward, balance: int) -> bool:
    """Can a member with ``balance`` points redeem it now (affordable, and not out of stock)?"""
    return reward.cost <= balance and reward.stock != 0


async def list_rewards(db: Database, community_id: int, *, balance: int | None = None,
                       include_inactive: bool = False) -> list[Reward]:
    """Active rewards; what ``balance`` affords first (cheapest first within each group)."""
    items = await store.rewards_of(db, community_id, include_inactive=include_inactive)
    if balance is not None:
        items.sort(key=lambda r: (r.cost > balance, (r.stock == 0), r.cost, r.id))
    return items


# -- redeeming ------------------------------------------------------------------------------
def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def redeem(db: Database, *, member_id: int, reward_id: int, now: datetime,
                 slot_start: datetime | None = None, request_key: str | None = None) -> Voucher:
    """Debit, decrement stock and issue a voucher in one transaction; raises a DomainError otherwise.

    ``request_key`` (the confirm button's token): a repeated request returns the voucher issued first.
    """
    async with db.transaction() as conn:
        if request_key is not None:
            async with conn.execute("SELECT * FROM vouchers WHERE request_key = ? AND member_id = ?",
                                    (request_key, member_id)) as cur:
                prev = await cur.fetchone()
            if prev is not None:
                return Voucher.from_row(prev)
        reward = await _reward_for(conn, member_id, reward_id)
        if reward.kind == "venue":
            if slot_start is None or slot_start <= now:
                raise InvalidInput()
        else:
            slot_start = None
        await _check_available(conn, reward, member_id, slot_start, now)
        vid = await _issue(conn, reward, member_id, slot_start, now, request_key)
        await ledger.debit(conn, member_id=member_id, amount=reward.cost, reason="redeem", key=f"redeem:{vid}",
                           now=now, voucher_id=vid, actor_id=member_id)
        await _audit(conn, reward.community_id, member_id, "voucher.issue", vid, now, reward_id=reward_id)
        async with conn.execute("SELECT * FROM vouchers WHERE id = ?", (vid,)) as cur:
            vrow = await cur.fetchone()
    return Voucher.from_row(vrow)


async def _reward_for(conn: aiosqlite.Connection, member_id: int, reward_id: int) -> Reward:
    """An active reward of the member's own community; NotFound otherwise."""
    async with conn.execute("SELECT * FROM rewards WHERE id = ?", (reward_id,)) as cur:
        row = await cur.fetchone()
    async with conn.execute("SELECT community_id FROM members WHERE id = ? AND deleted_at IS NULL",
                            (member_id,)) as cur:
        mrow = await cur.fetchone()
    if row is None or mrow is None:
        raise NotFound()
    reward = Reward.from_row(row)
    if not reward.active or mrow[0] != reward.community_id:
        raise NotFound()
    return reward


async def _check_available(conn: aiosqlite.Connection, reward: Reward, member_id: int, slot_start: datetime | None,
                           now: datetime) -> None:
    """The member's monthly limit, the venue slot and the stock (taken here, so it is one less)."""
    if reward.monthly_limit is not None:
        async with conn.execute(
                "SELECT COUNT(*) FROM vouchers WHERE member_id = ? AND reward_id = ? AND issued_at >= ?"
                " AND state != 'cancelled'", (member_id, reward.id, to_db(_month_start(now)))) as cur:
            n = (await cur.fetchone() or (0,))[0]
        if n >= reward.monthly_limit:
            raise MonthlyLimitReached()
    if slot_start is not None:
        async with conn.execute(
                "SELECT 1 FROM vouchers WHERE reward_id = ? AND slot_start = ? AND state IN ('issued', 'used')",
                (reward.id, to_db(slot_start))) as cur:
            if await cur.fetchone():
                raise SlotTaken()
    if reward.stock is not None:
        cur3 = await conn.execute("UPDATE rewards SET stock = stock - 1 WHERE id = ? AND stock > 0", (reward.id,))
        if cur3.rowcount != 1:
            raise OutOfStock()


async def _issue(conn: aiosqlite.Connection, reward: Reward, member_id: int, slot_start: datetime | None,
                 now: datetime, request_key: str | None) -> int:
    """Write the voucher (a venue's lasts until two hours after its slot starts); returns its id."""
    expires = now + timedelta(days=reward.valid_days)
    if slot_start is not None:
        expires = slot_start + timedelta(hours=2)
    cur4 = await conn.execute(
        "INSERT INTO vouchers (community_id, reward_id, member_id, code, cost, state, slot_start, slot_end,"
        " issued_at, expires_at, request_key) VALUES (?, ?, ?, ?, ?, 'issued', ?, ?, ?, ?, ?)",
        (reward.community_id, reward.id, member_id, new_code(), reward.cost,
         None if slot_start is None else to_db(slot_start),
         None if slot_start is None else to_db(slot_start + timedelta(hours=1)), to_db(now), to_db(expires),
         request_key))
    return int(cur4.lastrowid or 0)


async def _refund(conn: aiosqlite.Connection, v: Any, now: datetime, actor_id: int | None) -> None:
    await ledger.credit(conn, member_id=int(v["member_id"]), amount=int(v["cost"]), reason="refund",
                        key=f"refund:{v['id']}", now=now, voucher_id=int(v["id"]), actor_id=actor_id)
    await conn.execute("UPDATE rewards SET stock = stock + 1 WHERE id = ? AND stock IS NOT NULL", (v["reward_id"],))


async def cancel(db: Database, *, member_id: int, voucher_id: int, now: datetime) -> bool:
    """Cancel an unused voucher and refund it. False if it was already cancelled (a double tap)."""
    async with db.transaction() as conn:
        async with conn.execute("SELECT * FROM vouchers WHERE id = ?", (voucher_id,)) as cur:
            v = await cur.fetchone()
        if v is None or int(v["member_id"]) != member_id:
            raise NotFound()
        if v["state"] == "cancelled":
            return False
        cur2 = await conn.execute("UPDATE vouchers SET state = 'cancelled', closed_at = ? WHERE id = ?"
                                  " AND state = 'issued'", (to_db(now), voucher_id))
        if cur2.rowcount != 1:
            raise InvalidState()
        await _refund(conn, v, now, member_id)
        await _audit(conn, int(v["community_id"]), member_id, "voucher.cancel", voucher_id, now)
    return True


async def member_vouchers(db: Database, member_id: int, limit: int = 30) -> list[tuple[Voucher, Reward]]:
    return await store.member_vouchers(db, member_id, limit)


async def get_voucher(db: Database, voucher_id: int) -> Voucher | None:
    return await store.voucher(db, voucher_id)


async def own_voucher(db: Database, member_id: int, voucher_id: int) -> Voucher:
    """One of the member's own vouchers (NotFound for anyone else's: its existence is not told)."""
    v = await get_voucher(db, voucher_id)
    if v is None or v.member_id != member_id:
        raise NotFound()
    return v


async def verifier(db: Database, tg_user_id: int, admin_ids: Collection[int]) -> tuple[int, int | None]:
    """Who may check vouchers: staff (of their community; returned second) or a linked merchant.
    Returns (their member id, the community where they are staff or None); NotAllowed otherwise."""
    member = await access.member_by_tg(db, tg_user_id)
    if member is None:
        raise NotAllowed()
    staff_of = member.community_id if access.is_staff_of(member, member.community_id, tg_user_id, admin_ids) else None
    if staff_of is None and await merchants.for_member(db, member.id) is None:
        raise NotAllowed()
    return member.id, staff_of


# -- verification ---------------------------------------------------------------------------
def normalise_code(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


class VoucherUsed(InvalidState):
    message = N_("This voucher has already been used.")


class VoucherNotValid(InvalidState):
    message = N_("This voucher is no longer valid (expired or cancelled).")


class NotYourVoucher(NotAllowed):
    message = N_("This voucher is not for your shop.")


class OtherCommunityVoucher(NotYourVoucher):
    message = N_("This voucher belongs to another community.")


class UnknownCode(NotFound):
    message = N_("No voucher has this code. Please check it and try again.")


async def _check_rate(db: Database, actor_id: int, now: datetime) -> None:
    n = await db.fetchval(
        "SELECT COUNT(*) FROM voucher_verify_attempts WHERE actor_id = ? AND ok = 0 AND created_at > ?",
        (actor_id, to_db(now - VERIFY_WINDOW)))
    if int(n or 0) >= VERIFY_MAX_FAILURES:
        raise RateLimited()


async def _record(db: Database, actor_id: int, ok: bool, now: datetime) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO voucher_verify_attempts (actor_id, ok, created_at) VALUES (?, ?, ?)",
                           (actor_id, int(ok), to_db(now)))


async def _authorise(db: Database, actor_id: int, v: Voucher, reward: Reward, staff_of: int | None) -> None:
    """Merchant rewards only at their merchant; other kinds by staff of the community (or a merchant
    named on the reward)."""
    row = await db.fetchone("SELECT id FROM merchants WHERE member_id = ? AND active = 1", (actor_id,))
    my_merchant = None if row is None else int(row[0])
    if reward.merchant_id is not None:
        if my_merchant != reward.merchant_id:
            if my_merchant is None and staff_of is not None and staff_of != v.community_id:
                raise OtherCommunityVoucher()
            raise NotYourVoucher()
    elif staff_of != v.community_id:
        raise OtherCommunityVoucher() if staff_of is not None else NotYourVoucher()


async def check_voucher(db: Database, *, actor_id: int, code: str, now: datetime,
                        staff_of: int | None = None) -> tuple[Voucher, Reward]:
    """Look a code up for a merchant (or staff, ``staff_of`` = their community). Rate-limited per actor:
    failures (unknown code, another merchant's voucher) count towards the limit."""
    await _check_rate(db, actor_id, now)
    norm = normalise_code(code)
    row = await db.fetchone("SELECT * FROM vouchers WHERE code = ?", (norm,)) if 6 <= len(norm) <= 16 else None
    if row is None:
        await _record(db, actor_id, False, now)
        raise UnknownCode()
    v = Voucher.from_row(row)
    reward = await get_reward(db, v.reward_id)
    assert reward is not None
    try:
        await _authorise(db, actor_id, v, reward, staff_of)
    except NotAllowed:
        await _record(db, actor_id, False, now)
        raise
    await _record(db, actor_id, True, now)
    if v.state == "used":
        raise VoucherUsed()
    if v.state != "issued" or v.expires_at <= now:
        raise VoucherNotValid()
    return v, reward


async def use_voucher(db: Database, *, actor_id: int, voucher_id: int, now: datetime,
                      staff_of: int | None = None) -> Voucher:
    """Mark used: once, only by its merchant (or staff), only while valid."""
    v = await get_voucher(db, voucher_id)
    if v is None:
        raise NotFound()
    reward = await get_reward(db, v.reward_id)
    assert reward is not None
    await _authorise(db, actor_id, v, reward, staff_of)
    async with db.transaction() as conn:
        cur = await conn.execute(
            "UPDATE vouchers SET state = 'used', used_at = ?, used_by = ?, closed_at = ? WHERE id = ?"
            " AND state = 'issued' AND expires_at > ?", (to_db(now), actor_id, to_db(now), voucher_id, to_db(now)))
        if cur.rowcount != 1:
            if v.state == "used" or (await _state(conn, voucher_id)) == "used":
                raise VoucherUsed()
            raise VoucherNotValid()
        await _audit(conn, v.community_id, actor_id, "voucher.use", voucher_id, now)
        await _notify(conn, key=f"voucher_used:{voucher_id}", member_id=v.member_id, now=now,
                      message=N_("Your voucher {code} ({name}) has been used. Enjoy!"), code=v.code,
                      name=await _reward_name(conn, v.reward_id))
    v.state = "used"
    v.used_at = now
    return v


_state = store.voucher_state


# -- expiry ---------------------------------------------------------------------------------
async def expire_due(db: Database, now: datetime) -> int:
    """Expire issued vouchers past their validity; refund those whose reward says so. Returns count."""
    rows = await db.fetchall("SELECT id FROM vouchers WHERE state = 'issued' AND expires_at <= ? LIMIT 500",
                             (to_db(now),))
    n = 0
    for (vid,) in rows:
        async with db.transaction() as conn:
            cur = await conn.execute("UPDATE vouchers SET state = 'expired', closed_at = ? WHERE id = ?"
                                     " AND state = 'issued'", (to_db(now), vid))
            if cur.rowcount != 1:
                continue
            async with conn.execute("SELECT v.*, r.refund_on_expiry FROM vouchers v JOIN rewards r"
                                    " ON r.id = v.reward_id WHERE v.id = ?", (vid,)) as c2:
                v = await c2.fetchone()
            assert v is not None
            if v["refund_on_expiry"]:
                await _refund(conn, v, now, None)
            await _audit(conn, int(v["community_id"]), None, "voucher.expire", int(vid), now,
                         refunded=bool(v["refund_on_expiry"]))
            await _notify(conn, key=f"voucher_expired:{vid}", member_id=int(v["member_id"]), now=now,
                          message=N_("Your voucher {code} ({name}) has expired. {n} points are back.")
                          if v["refund_on_expiry"] else N_("Your voucher {code} ({name}) has expired."),
                          code=v["code"], n=int(v["cost"]), name=await _reward_name(conn, int(v["reward_id"])))
            n += 1
    return n


async def voucher_for_request(db: Database, member_id: int, request_key: str) -> Voucher | None:
    """The voucher a confirm button already issued (a repeated tap), if any."""
    return await store.voucher_for_request(db, member_id, request_key)


async def member_voucher_by_code(db: Database, member_id: int, code: str) -> Voucher | None:
    return await store.member_voucher_by_code(db, member_id, normalise_code(code))
