"""Rewards, redemption, vouchers and merchants at the service level."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

import pytest

from bot.models import InsufficientPoints, NotFound, OutOfStock, RateLimited
from bot.services import ledger, merchants, rewards
from storage.db import Database
from tests.factories import make_community, make_member


async def _credit(db: Database, member_id: int, amount: int, now: datetime, key: str) -> None:
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=member_id, amount=amount, reason="task", key=key, now=now)


async def _world(db: Database, now: datetime) -> tuple[int, int, merchants.Merchant, int]:
    cid = await make_community(db, now)
    member = await make_member(db, now, cid, volunteer=True)
    await _credit(db, member, 100, now, f"seed:{member}")
    shop = await merchants.create_merchant(db, community_id=cid, name="Corner Tea Shop", now=now)
    shop = await merchants.accept_invite(db, code=shop.invite_code, tg_user_id=7_000_001, language="zh",
                                         display_name="Tea", now=now)
    return cid, member, shop, await make_member(db, now, cid, staff=True)


async def test_redeem_verify_cancel_flow(db: Database, now: datetime) -> None:
    cid, member, shop, _ = await _world(db, now)
    rid = await rewards.create_reward(db, community_id=cid, name_zh="奶茶", name_en="Milk tea", kind="discount",
                                      cost=30, stock=5, merchant_id=shop.id, now=now)
    v = await rewards.redeem(db, member_id=member, reward_id=rid, now=now)
    assert await ledger.balance(db.reader, member) == 70
    assert (await rewards.get_reward(db, rid)).stock == 4  # type: ignore[union-attr]
    assert len(v.code) == 10
    # another merchant is refused
    other = await merchants.create_merchant(db, community_id=cid, name="Bakery", now=now)
    other = await merchants.accept_invite(db, code=other.invite_code, tg_user_id=7_000_002, language="zh",
                                          display_name="Bread", now=now)
    assert other.member_id is not None and shop.member_id is not None
    with pytest.raises(rewards.NotYourVoucher):
        await rewards.check_voucher(db, actor_id=other.member_id, code=v.code, now=now)
    with pytest.raises(rewards.NotYourVoucher):
        await rewards.use_voucher(db, actor_id=other.member_id, voucher_id=v.id, now=now)
    # the merchant verifies (lower case and spaces are fine), then a second verify is refused
    got, reward = await rewards.check_voucher(db, actor_id=shop.member_id, code=" " + v.code.lower(), now=now)
    assert got.id == v.id and reward.id == rid
    # and so are full-width letters and digits with an ideographic space (a Chinese keyboard's)
    wide = "".join(chr(ord(c) + 0xFEE0) for c in v.code.lower())
    got, _reward = await rewards.check_voucher(db, actor_id=shop.member_id, code=wide[:3] + "\u3000" + wide[3:], now=now)
    assert got.id == v.id
    assert rewards.normalise_code("ab-①²٣ｃ") == "ABC"  # other look-alike digits are not read as a code's
    await rewards.use_voucher(db, actor_id=shop.member_id, voucher_id=v.id, now=now)
    with pytest.raises(rewards.VoucherUsed):
        await rewards.use_voucher(db, actor_id=shop.member_id, voucher_id=v.id, now=now)
    with pytest.raises(rewards.VoucherUsed):
        await rewards.check_voucher(db, actor_id=shop.member_id, code=v.code, now=now)
    # a used voucher cannot be cancelled
    with pytest.raises(rewards.InvalidState):
        await rewards.cancel(db, member_id=member, voucher_id=v.id, now=now)
    # cancel refunds exactly once, even on taps at once (on PostgreSQL each may read 'issued' first)
    v2 = await rewards.redeem(db, member_id=member, reward_id=rid, now=now)
    assert await ledger.balance(db.reader, member) == 40
    results = await asyncio.gather(*(rewards.cancel(db, member_id=member, voucher_id=v2.id, now=now)
                                     for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]
    assert await ledger.balance(db.reader, member) == 70
    assert await ledger.ledger_sum(db.reader, member) == 70
    assert (await rewards.get_reward(db, rid)).stock == 4  # type: ignore[union-attr]
    with pytest.raises(rewards.VoucherNotValid):
        await rewards.use_voucher(db, actor_id=shop.member_id, voucher_id=v2.id, now=now)


async def test_staff_fulfil_goods_not_merchant(db: Database, now: datetime) -> None:
    cid, member, shop, staff = await _world(db, now)
    rid = await rewards.create_reward(db, community_id=cid, name_zh="大米", kind="goods", cost=10, now=now)
    v = await rewards.redeem(db, member_id=member, reward_id=rid, now=now)
    assert shop.member_id is not None
    with pytest.raises(rewards.NotYourVoucher):
        await rewards.check_voucher(db, actor_id=shop.member_id, code=v.code, now=now)
    # staff of another community are told whose voucher it is, not "your shop"
    with pytest.raises(rewards.OtherCommunityVoucher):
        await rewards.check_voucher(db, actor_id=staff, code=v.code, now=now, staff_of=cid + 1000)
    await rewards.check_voucher(db, actor_id=staff, code=v.code, now=now, staff_of=cid)
    await rewards.use_voucher(db, actor_id=staff, voucher_id=v.id, now=now, staff_of=cid)
    # someone else's voucher cannot be cancelled by another member
    with pytest.raises(NotFound):
        await rewards.cancel(db, member_id=staff, voucher_id=v.id, now=now)


async def test_insufficient_points_changes_nothing(db: Database, now: datetime) -> None:
    cid, member, _, _ = await _world(db, now)
    rid = await rewards.create_reward(db, community_id=cid, name_zh="电饭煲", kind="goods", cost=500, stock=2, now=now)
    with pytest.raises(InsufficientPoints):
        await rewards.redeem(db, member_id=member, reward_id=rid, now=now)
    assert (await rewards.get_reward(db, rid)).stock == 2  # type: ignore[union-attr]
    assert await db.fetchval("SELECT COUNT(*) FROM vouchers") == 0
    assert await ledger.balance(db.reader, member) == 100


async def test_twenty_members_race_for_last_three(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    members = [await make_member(db, now, cid) for _ in range(20)]
    for m in members:
        await _credit(db, m, 50, now, f"seed:{m}")
    rid = await rewards.create_reward(db, community_id=cid, name_zh="鸡蛋", kind="goods", cost=50, stock=3, now=now)
    results = await asyncio.gather(*(rewards.redeem(db, member_id=m, reward_id=rid, now=now) for m in members),
                                   return_exceptions=True)
    ok = [r for r in results if isinstance(r, rewards.Voucher)]
    refused = [r for r in results if isinstance(r, OutOfStock)]
    assert len(ok) == 3 and len(refused) == 17
    assert (await rewards.get_reward(db, rid)).stock == 0  # type: ignore[union-attr]
    assert await db.fetchval("SELECT COUNT(*) FROM vouchers") == 3
    assert await db.fetchval("SELECT MIN(balance) FROM members") >= 0
    assert await db.fetchval("SELECT COUNT(*) FROM members WHERE balance = 0") == 3
    assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE reason = 'redeem'") == 3


async def test_codes_unguessable() -> None:
    alphabet = set(merchants.ALPHABET)
    assert not alphabet & set("01OIL")
    assert 10 * math.log2(len(merchants.ALPHABET)) >= 40
    codes = {merchants.new_code() for _ in range(2000)}
    assert len(codes) == 2000


async def test_verification_rate_limited(db: Database, now: datetime) -> None:
    cid, member, shop, _ = await _world(db, now)
    rid = await rewards.create_reward(db, community_id=cid, name_zh="奶茶", kind="discount", cost=10,
                                      merchant_id=shop.id, now=now)
    v = await rewards.redeem(db, member_id=member, reward_id=rid, now=now)
    assert shop.member_id is not None
    for i in range(rewards.VERIFY_MAX_FAILURES):
        with pytest.raises(rewards.UnknownCode):
            await rewards.check_voucher(db, actor_id=shop.member_id, code=f"WRONG{i:05d}", now=now)
    with pytest.raises(RateLimited):  # even the right code waits
        await rewards.check_voucher(db, actor_id=shop.member_id, code=v.code, now=now)
    later = now + rewards.VERIFY_WINDOW + timedelta(seconds=1)
    got, _ = await rewards.check_voucher(db, actor_id=shop.member_id, code=v.code, now=later)
    assert got.id == v.id


async def test_venue_slot_taken_and_monthly_limit(db: Database, now: datetime) -> None:
    cid, member, _, _ = await _world(db, now)
    other = await make_member(db, now, cid)
    await _credit(db, other, 100, now, f"seed:{other}")
    rid = await rewards.create_reward(db, community_id=cid, name_zh="活动室", kind="venue", cost=5, now=now,
                                      monthly_limit=1)
    slot = now + timedelta(days=2)
    await rewards.redeem(db, member_id=member, reward_id=rid, now=now, slot_start=slot)
    with pytest.raises(rewards.SlotTaken):
        await rewards.redeem(db, member_id=other, reward_id=rid, now=now, slot_start=slot)
    with pytest.raises(rewards.MonthlyLimitReached):
        await rewards.redeem(db, member_id=member, reward_id=rid, now=now, slot_start=slot + timedelta(hours=1))
    v = await rewards.redeem(db, member_id=other, reward_id=rid, now=now, slot_start=slot + timedelta(hours=1))
    assert v.slot_start == slot + timedelta(hours=1)
    assert await ledger.balance(db.reader, other) == 95


async def test_expiry_sweep_refunds_per_reward(db: Database, now: datetime) -> None:
    cid, member, _, _ = await _world(db, now)
    refund = await rewards.create_reward(db, community_id=cid, name_zh="A", kind="goods", cost=10, stock=1,
                                         valid_days=7, now=now)
    keep = await rewards.create_reward(db, community_id=cid, name_zh="B", kind="goods", cost=20, stock=1,
                                       valid_days=7, refund_on_expiry=False, now=now)
    va = await rewards.redeem(db, member_id=member, reward_id=refund, now=now)
    vb = await rewards.redeem(db, member_id=member, reward_id=keep, now=now)
    assert await ledger.balance(db.reader, member) == 70
    assert await rewards.expire_due(db, now + timedelta(days=6)) == 0
    later = now + timedelta(days=8)
    assert await rewards.expire_due(db, later) == 2
    assert await rewards.expire_due(db, later) == 0  # a second run changes nothing
    assert await ledger.balance(db.reader, member) == 80
    assert (await rewards.get_voucher(db, va.id)).state == "expired"  # type: ignore[union-attr]
    assert (await rewards.get_voucher(db, vb.id)).state == "expired"  # type: ignore[union-attr]
    assert (await rewards.get_reward(db, refund)).stock == 1  # type: ignore[union-attr]
    assert (await rewards.get_reward(db, keep)).stock == 0  # type: ignore[union-attr]


async def test_list_affordable_first(db: Database, now: datetime) -> None:
    cid, _, _, _ = await _world(db, now)
    cheap = await rewards.create_reward(db, community_id=cid, name_zh="A", kind="goods", cost=10, now=now)
    dear = await rewards.create_reward(db, community_id=cid, name_zh="B", kind="goods", cost=1000, now=now)
    off = await rewards.create_reward(db, community_id=cid, name_zh="C", kind="goods", cost=5, now=now)
    await rewards.update_reward(db, off, active=0, now=now)
    items = await rewards.list_rewards(db, cid, balance=50)
    assert [r.id for r in items] == [cheap, dear]


async def test_who_sees_which_voucher_and_who_checks_them(db: Database, now: datetime) -> None:
    """Rules in the rewards service: a member sees and cancels only their own vouchers, looks only at
    active rewards of their community; staff and linked merchants check vouchers, nobody else."""
    from bot.models import Member, NotAllowed
    from bot.services import access

    cid, member, shop, staff = await _world(db, now)
    rid = await rewards.create_reward(db, community_id=cid, name_zh="茶", kind="goods", cost=10, stock=1, now=now)
    v = await rewards.redeem(db, member_id=member, reward_id=rid, now=now)
    assert (await rewards.own_voucher(db, member, v.id)).code == v.code
    with pytest.raises(NotFound):
        await rewards.own_voucher(db, staff, v.id)
    me = await access.member_by_id(db, member)
    assert isinstance(me, Member)
    assert (await rewards.offered_to(db, me, rid)).id == rid
    elsewhere = await make_community(db, now)
    theirs = await rewards.create_reward(db, community_id=elsewhere, name_zh="别处", kind="goods", cost=1, now=now)
    with pytest.raises(NotFound):
        await rewards.offered_to(db, me, theirs)
    reward = await rewards.get_reward(db, rid)
    assert reward is not None and reward.stock == 0
    assert not rewards.within_reach(reward, 1000)  # out of stock
    more = await rewards.get_reward(db, await rewards.create_reward(db, community_id=cid, name_zh="多", kind="goods",
                                                                    cost=20, now=now))
    assert more is not None and rewards.within_reach(more, 20) and not rewards.within_reach(more, 19)
    staff_tg = int(await db.fetchval("SELECT tg_user_id FROM members WHERE id = ?", (staff,)))
    member_tg = int(await db.fetchval("SELECT tg_user_id FROM members WHERE id = ?", (member,)))
    assert await rewards.verifier(db, staff_tg, ()) == (staff, cid)
    assert await rewards.verifier(db, 7_000_001, ()) == (shop.member_id, None)
    with pytest.raises(NotAllowed):
        await rewards.verifier(db, member_tg, ())
