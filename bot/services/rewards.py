"""The points supermarket: rewards, redemption, vouchers, verification and expiry.

Redemption is one transaction: a conditional stock decrement (``WHERE stock > 0``), the voucher
row and the ledger debit (key ``redeem:<voucher_id>``). The ledger's ``CHECK (balance >= 0)``
refuses an overdraft, which rolls the whole transaction back, so neither stock nor balance can go
below zero however many members press at once. Refunds use ``refund:<voucher_id>``: once only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot import codes
from bot.models import N_, InvalidInput, InvalidState, Member, NotAllowed, NotFound, OutOfStock, RateLimited
from bot.numbers import number
from bot.services import access, ledger, merchants
from bot.services.merchants import new_code
from storage import rewards as store
from storage.db import Connection, Database, lock_row
from storage.outbox import audit
from storage.rewards import Reward as Reward
from storage.rewards import Voucher as Voucher

KINDS = ("goods", "service", "honour", "venue", "discount")
COST_MAX = 100_000      # points a reward may cost
STOCK_MAX = 1_000_000   # items a reward may have in stock
LIMIT_MAX = 1000        # how many a member may take a month, if limited
DAYS_MAX = 365          # how long a voucher stays valid
NAME_MAX = 60           # characters of a reward's name, in each language
# What /rewards add answers when one of them is not right (the rules below raise these too).
COST_PROBLEM = N_("The cost must be a whole number of points from 1 to 100000.")
STOCK_PROBLEM = N_("The stock must be a number from 0 to 1000000, or - for unlimited.")
LIMIT_PROBLEM = N_("limit= must be a number from 1 to 1000 (how many a member may take a month).")
DAYS_PROBLEM = N_("days= must be a number from 1 to 365 (how long a voucher stays valid).")
DISCOUNT_PROBLEM = N_("A discount needs the merchant's number, e.g. discount:3 (see /merchant list).")
VERIFY_MAX_FAILURES = 10
VERIFY_WINDOW = timedelta(minutes=10)


class MonthlyLimitReached(InvalidState):
    message = N_("You have reached this month's limit for this reward.")


class SlotTaken(InvalidState):
    message = N_("Sorry, that time slot is already booked. Please pick another.")


async def _audit(conn: Connection, community_id: int, actor_id: int | None, action: str,
                 object_id: int, now: datetime, **details: Any) -> None:
    await audit(conn, community_id=community_id, actor_id=actor_id, action=action, object_type="voucher",
                      object_id=object_id, details=details, now=now)


async def _notify(conn: Connection, *, key: str, member_id: int, message: str, now: datetime,
                  **params: Any) -> None:
    """Tell the member in their private chat (through the outbox, in the same transaction)."""
    await store.tell_member(conn, key=key, member_id=member_id, message=message, params=params, now=now)


_reward_name = store.reward_name


# -- catalogue ------------------------------------------------------------------------------
def is_cost(value: object) -> bool:
    """The one rule for what a reward may cost: a whole number of points from 1 to COST_MAX."""
    return isinstance(value, int) and 0 < value <= COST_MAX


def _check_kind(kind: str, merchant_id: int | None) -> None:
    """One of KINDS; a merchant's discount names the merchant."""
    if kind not in KINDS:
        raise InvalidInput(N_("The kind must be one of: goods, service, honour, venue, discount:MERCHANT_NUMBER."))
    if kind == "discount" and merchant_id is None:
        raise InvalidInput(DISCOUNT_PROBLEM)


def _check_reward(name_zh: str, name_en: str, kind: str, cost: int, stock: int | None, monthly_limit: int | None,
                  valid_days: int, merchant_id: int | None) -> None:
    """What a new reward must be (the names already have their spaces tidied)."""
    _check_kind(kind, merchant_id)
    if not name_zh:
        raise InvalidInput(N_("Please give the reward a name."))
    if len(name_zh) > NAME_MAX or len(name_en) > NAME_MAX:
        raise InvalidInput(N_("The name is too long: at most 60 characters in each language."))
    if not is_cost(cost):
        raise InvalidInput(COST_PROBLEM)
    if stock is not None and not 0 <= stock <= STOCK_MAX:
        raise InvalidInput(STOCK_PROBLEM)
    if monthly_limit is not None and not 0 < monthly_limit <= LIMIT_MAX:
        raise InvalidInput(LIMIT_PROBLEM)
    if not 1 <= valid_days <= DAYS_MAX:
        raise InvalidInput(DAYS_PROBLEM)


async def create_reward(db: Database, *, community_id: int, name_zh: str, name_en: str = "", kind: str, cost: int,
                        now: datetime, stock: int | None = None, monthly_limit: int | None = None,
                        valid_days: int = 30, merchant_id: int | None = None, refund_on_expiry: bool = True,
                        description_zh: str = "", description_en: str = "", actor_id: int | None = None,
                        photo_file_id: str | None = None, add_key: str | None = None) -> int:
    """Add a reward; with ``add_key`` (the reward dialog's one-time key) a repeated call returns the first's id."""
    name_zh = " ".join(name_zh.split())
    name_en = " ".join(name_en.split()) or name_zh
    _check_reward(name_zh, name_en, kind, cost, stock, monthly_limit, valid_days, merchant_id)
    async with db.transaction() as conn:
        if add_key is not None and (first := await store.added_with(conn, add_key)) is not None:
            return first
        if merchant_id is not None and not await store.merchant_in_community(conn, merchant_id, community_id):
            raise InvalidInput(N_("There is no merchant number {id} in your community (see /merchant list)."),
                               id=merchant_id)
        rid = await store.insert_reward(
            conn, community_id=community_id, name_zh=name_zh, name_en=name_en, description_zh=description_zh,
            description_en=description_en, kind=kind, cost=cost, stock=stock, monthly_limit=monthly_limit,
            valid_days=valid_days, merchant_id=merchant_id, refund_on_expiry=refund_on_expiry, now=now,
            photo_file_id=photo_file_id, add_key=add_key)
        await audit(conn, community_id=community_id, actor_id=actor_id, action="reward.create",
                          object_type="reward", object_id=rid, now=now)
    return rid


async def update_reward(db: Database, reward_id: int, *, now: datetime, actor_id: int | None = None,
                        **fields: Any) -> None:
    if not fields or set(fields) - store.UPDATABLE:
        raise InvalidInput()
    if "cost" in fields and not is_cost(int(fields["cost"])):
        raise InvalidInput()
    if fields.get("stock") is not None and int(fields["stock"]) < 0:
        raise InvalidInput()
    async with db.transaction() as conn:
        if not await store.update_reward(conn, reward_id, fields):
            raise NotFound()
        await audit(conn, actor_id=actor_id, action="reward.update", object_type="reward", object_id=reward_id,
                          details=fields, now=now)


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
        # PostgreSQL: redemptions of one reward decide one after another (monthly limit, slot, the
        # request key); the stock is a guarded decrement and the balance a CHECK on both databases.
        await lock_row(conn, "rewards", reward_id)
        if request_key is not None:
            prev = await store.voucher_for_request_in(conn, member_id, request_key)
            if prev is not None:
                return prev
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
        issued = await store.voucher_in(conn, vid)
    assert issued is not None
    return issued


async def _reward_for(conn: Connection, member_id: int, reward_id: int) -> Reward:
    """An active reward of the member's own community; NotFound otherwise."""
    reward = await store.reward_in(conn, reward_id)
    community_id = await store.live_member_community(conn, member_id)
    if reward is None or community_id is None or not reward.active or community_id != reward.community_id:
        raise NotFound()
    return reward


async def _check_available(conn: Connection, reward: Reward, member_id: int, slot_start: datetime | None,
                           now: datetime) -> None:
    """The member's monthly limit, the venue slot and the stock (taken here, so it is one less)."""
    if reward.monthly_limit is not None:
        if await store.issued_since(conn, member_id, reward.id, _month_start(now)) >= reward.monthly_limit:
            raise MonthlyLimitReached()
    if slot_start is not None and await store.slot_booked(conn, reward.id, slot_start):
        raise SlotTaken()
    if reward.stock is not None and not await store.take_stock(conn, reward.id):
        raise OutOfStock()


async def _issue(conn: Connection, reward: Reward, member_id: int, slot_start: datetime | None,
                 now: datetime, request_key: str | None) -> int:
    """Write the voucher (a venue's lasts until two hours after its slot starts); returns its id."""
    expires = now + timedelta(days=reward.valid_days)
    if slot_start is not None:
        expires = slot_start + timedelta(hours=2)
    return await store.insert_voucher(
        conn, reward=reward, member_id=member_id, code=new_code(), slot_start=slot_start,
        slot_end=None if slot_start is None else slot_start + timedelta(hours=1), now=now, expires=expires,
        request_key=request_key)


async def _refund(conn: Connection, v: Voucher, now: datetime, actor_id: int | None) -> None:
    await ledger.credit(conn, member_id=v.member_id, amount=v.cost, reason="refund",
                        key=f"refund:{v.id}", now=now, voucher_id=v.id, actor_id=actor_id)
    await store.return_stock(conn, v.reward_id)


async def cancel(db: Database, *, member_id: int, voucher_id: int, now: datetime) -> bool:
    """Cancel an unused voucher and refund it. False if it was already cancelled (a double tap)."""
    async with db.transaction() as conn:
        v = await store.voucher_in(conn, voucher_id)
        if v is None or v.member_id != member_id:
            raise NotFound()
        if v.state == "cancelled":
            return False
        if not await store.close_issued(conn, voucher_id, "cancelled", now):
            # PostgreSQL's read committed: a second tap read 'issued' while the first was cancelling
            now_v = await store.voucher_in(conn, voucher_id)
            if now_v is not None and now_v.state == "cancelled":
                return False
            raise InvalidState()
        await _refund(conn, v, now, member_id)
        await _audit(conn, v.community_id, member_id, "voucher.cancel", voucher_id, now)
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
    """What someone typed as a voucher code (``codes.typed``: full-width letters too, spaces dropped)."""
    return codes.typed(text)


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
    if await store.failed_checks_since(db, actor_id, now - VERIFY_WINDOW) >= VERIFY_MAX_FAILURES:
        raise RateLimited()


async def _record(db: Database, actor_id: int, ok: bool, now: datetime) -> None:
    async with db.transaction() as conn:
        await store.record_check(conn, actor_id, ok, now)


async def _authorise(db: Database, actor_id: int, v: Voucher, reward: Reward, staff_of: int | None) -> None:
    """Merchant rewards only at their merchant; other kinds by staff of the community (or a merchant
    named on the reward)."""
    my_merchant = await store.active_merchant_of(db, actor_id)
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
    v = await store.voucher_by_code(db, norm) if 6 <= len(norm) <= 16 else None
    if v is None:
        await _record(db, actor_id, False, now)
        raise UnknownCode()
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
        if not await store.mark_used(conn, voucher_id, actor_id, now):
            if v.state == "used" or (await _state(conn, voucher_id)) == "used":
                raise VoucherUsed()
            raise VoucherNotValid()
        await _audit(conn, v.community_id, actor_id, "voucher.use", voucher_id, now)
        await _notify(conn, key=f"voucher_used:{voucher_id}", member_id=v.member_id, now=now,
                      message=N_("Your voucher {code} ({name}) has been used. Enjoy!"), code=v.code,
                      name=await _reward_name(conn, v.reward_id))
    return replace(v, state="used", used_at=now)


_state = store.voucher_state


# -- expiry ---------------------------------------------------------------------------------
async def expire_due(db: Database, now: datetime) -> int:
    """Expire issued vouchers past their validity; refund those whose reward says so. Returns count."""
    n = 0
    for vid in await store.issued_past(db, now):
        async with db.transaction() as conn:
            n += await _expire(conn, vid, now)
    return n


async def _expire(conn: Connection, vid: int, now: datetime) -> int:
    """Expire one voucher (1), or nothing if it is no longer issued (0)."""
    if not await store.close_issued(conn, vid, "expired", now):
        return 0
    v = await store.voucher_in(conn, vid)
    assert v is not None
    refund = await store.refund_on_expiry(conn, v.reward_id)
    if refund:
        await _refund(conn, v, now, None)
    await _audit(conn, v.community_id, None, "voucher.expire", vid, now, refunded=refund)
    await _notify(conn, key=f"voucher_expired:{vid}", member_id=v.member_id, now=now,
                  message=N_("Your voucher {code} ({name}) has expired. {n} points are back.")
                  if refund else N_("Your voucher {code} ({name}) has expired."),
                  code=v.code, n=v.cost, name=await _reward_name(conn, v.reward_id))
    return 1


async def voucher_for_request(db: Database, member_id: int, request_key: str) -> Voucher | None:
    """The voucher a confirm button already issued (a repeated tap), if any."""
    return await store.voucher_for_request(db, member_id, request_key)


async def member_voucher_by_code(db: Database, member_id: int, code: str) -> Voucher | None:
    return await store.member_voucher_by_code(db, member_id, normalise_code(code))


# -- managing the rewards (staff, through the reward dialog) ----------------------------------
# A typed number out of its field's range (or no number at all): said before the question is asked again.
NUMBER_PROBLEM = N_("Sorry, that is not a whole number from {low} to {high}.")
NAME_PROBLEM = N_("Please type the name as text, up to {n} characters.")


class Unlimited(InvalidState):
    message = N_("This reward has no stock limit, so there is nothing to restock.")


class TooMuchStock(InvalidInput):
    message = N_("That would make more than {high} in stock. Please type a smaller number.")


@dataclass(frozen=True)
class Manager:
    """Someone who may manage a community's rewards: its staff (a super-admin registered in it too)."""

    member_id: int
    community_id: int


async def manager(db: Database, tg_user_id: int, admin_ids: Collection[int]) -> Manager:
    """The rewards this person may manage (their community's); NotAllowed for anyone but its staff."""
    member = await access.require_staff(db, tg_user_id, admin_ids)
    if member is None or member.community_id is None:
        raise NotAllowed()
    return Manager(member.id, member.community_id)


async def managed(db: Database, who: Manager, reward_id: int) -> Reward:
    """A reward the manager may change (on offer or withdrawn); NotFound for another community's."""
    r = await get_reward(db, reward_id)
    if r is None or r.community_id != who.community_id:
        raise NotFound()
    return r


def read_cost(text: object) -> int:
    """A typed cost (1 to COST_MAX points), else InvalidInput saying so."""
    return number(text, NUMBER_PROBLEM, low=1, high=COST_MAX)


def read_stock(text: object) -> int:
    """A typed stock (0 to STOCK_MAX), else InvalidInput saying so."""
    return number(text, NUMBER_PROBLEM, low=0, high=STOCK_MAX)


def read_restock(text: object) -> int:
    """How many to add to the stock (1 to STOCK_MAX), else InvalidInput saying so."""
    return number(text, NUMBER_PROBLEM, low=1, high=STOCK_MAX)


def read_name(text: object) -> str:
    """A typed name, its spaces tidied (1 to NAME_MAX characters), else InvalidInput saying so."""
    name = " ".join(text.split()) if isinstance(text, str) else ""
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput(NAME_PROBLEM, n=NAME_MAX)
    return name


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """The changes as stored, each checked by the rule of its field (InvalidInput otherwise)."""
    out = dict(fields)
    if "name_zh" in out:
        out["name_zh"] = read_name(out["name_zh"])
    if out.get("name_en"):
        out["name_en"] = read_name(out["name_en"])
    if "kind" in out:
        _check_kind(out["kind"], out.get("merchant_id") if out["kind"] == "discount" else None)
        out["merchant_id"] = out.get("merchant_id") if out["kind"] == "discount" else None
    if "cost" in out and not is_cost(out["cost"]):
        raise InvalidInput(NUMBER_PROBLEM, low=1, high=COST_MAX)
    if out.get("stock") is not None and not (isinstance(out["stock"], int) and 0 <= out["stock"] <= STOCK_MAX):
        raise InvalidInput(NUMBER_PROBLEM, low=0, high=STOCK_MAX)
    if "photo_file_id" in out and out["photo_file_id"] is not None and not 0 < len(str(out["photo_file_id"])) <= 250:
        raise InvalidInput()
    if "active" in out:
        out["active"] = int(bool(out["active"]))
    return out


async def change_reward(db: Database, who: Manager, reward_id: int, *, now: datetime, **fields: Any) -> Reward:
    """Change a reward of the manager's community (names, kind and merchant, cost, stock, photo, on offer
    or withdrawn); every value checked first. Vouchers already issued keep their cost and stay valid."""
    changes = _checked(fields)
    async with db.transaction() as conn:
        if changes.get("merchant_id") is not None and not await store.merchant_in_community(
                conn, int(changes["merchant_id"]), who.community_id):
            raise InvalidInput(N_("There is no merchant number {id} in your community (see /merchant list)."),
                               id=changes["merchant_id"])
        if not await store.change(conn, reward_id, who.community_id, changes):
            raise NotFound()
        await audit(conn, now=now, action="reward.update", community_id=who.community_id, actor_id=who.member_id,
                    object_type="reward", object_id=reward_id, details=changes)
        changed = await store.reward_in(conn, reward_id)
    assert changed is not None
    return changed


async def restock(db: Database, who: Manager, reward_id: int, *, add: int, now: datetime) -> int:
    """Add ``add`` items to a counted stock (racing redemptions take theirs meanwhile); the new stock."""
    if not 1 <= add <= STOCK_MAX:
        raise InvalidInput(NUMBER_PROBLEM, low=1, high=STOCK_MAX)
    r = await managed(db, who, reward_id)
    if r.stock is None:
        raise Unlimited()
    async with db.transaction() as conn:
        stock = await store.add_stock(conn, reward_id, who.community_id, add, STOCK_MAX)
        if stock is None:
            raise TooMuchStock(high=STOCK_MAX)
        await audit(conn, now=now, action="reward.restock", community_id=who.community_id, actor_id=who.member_id,
                    object_type="reward", object_id=reward_id, details={"add": add, "stock": stock})
    return stock
