"""Managing rewards at the service level: who may, the ranges of typed values, changes that check
every value first, restocking beside redemptions, withdrawing while vouchers stay valid."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from bot.models import InvalidInput, NotAllowed, NotFound
from bot.services import ledger, merchants, rewards
from storage.db import Database
from tests.factories import make_community, make_member

STAFF_TG, VOLUNTEER_TG = 8_100_001, 8_100_002


async def _world(db: Database, now: datetime) -> tuple[int, int, int]:
    """A community with a staff member and a volunteer holding 100 points: (community, volunteer, reward)."""
    cid = await make_community(db, now)
    await make_member(db, now, cid, tg_user_id=STAFF_TG, staff=True)
    vol = await make_member(db, now, cid, tg_user_id=VOLUNTEER_TG, volunteer=True)
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=vol, amount=100, reason="task", key=f"seed:{vol}", now=now)
    rid = await rewards.create_reward(db, community_id=cid, name_zh="大米", name_en="Rice", kind="goods",
                                      cost=10, stock=2, now=now)
    return cid, vol, rid


@pytest.mark.parametrize("typed", ["abc", "-3", "²", "①", "٣", "0", "100001", "1e3", "", "  "])
def test_a_typed_cost_is_a_whole_number_in_range(typed: str) -> None:
    with pytest.raises(InvalidInput) as err:
        rewards.read_cost(typed)
    assert err.value.message == rewards.NUMBER_PROBLEM
    assert (err.value.params["low"], err.value.params["high"]) == (1, rewards.COST_MAX)


def test_typed_numbers_and_names_that_are_taken() -> None:
    assert rewards.read_cost(" ３０ ") == 30
    assert rewards.read_stock("0") == 0 and rewards.read_restock("12") == 12
    with pytest.raises(InvalidInput):
        rewards.read_restock("0")
    assert rewards.read_name("  硒茶  九折券 ") == "硒茶 九折券"
    for bad in ("", "   ", "x" * 61, None):
        with pytest.raises(InvalidInput):
            rewards.read_name(bad)


async def test_only_staff_manage_and_only_their_own_communitys_rewards(db: Database, now: datetime) -> None:
    cid, _vol, rid = await _world(db, now)
    with pytest.raises(NotAllowed):
        await rewards.manager(db, VOLUNTEER_TG, admin_ids=())
    who = await rewards.manager(db, STAFF_TG, admin_ids=())
    assert who.community_id == cid and (await rewards.managed(db, who, rid)).name_en == "Rice"
    other = await make_community(db, now)
    await make_member(db, now, other, tg_user_id=8_100_003, staff=True)
    stranger = await rewards.manager(db, 8_100_003, admin_ids=())
    with pytest.raises(NotFound):
        await rewards.managed(db, stranger, rid)
    with pytest.raises(NotFound):
        await rewards.change_reward(db, stranger, rid, now=now, cost=1)
    with pytest.raises(NotFound):
        await rewards.restock(db, stranger, rid, add=5, now=now)
    assert (await rewards.get_reward(db, rid)).cost == 10  # type: ignore[union-attr]


async def test_a_change_is_checked_whole_before_anything_is_written(db: Database, now: datetime) -> None:
    cid, _vol, rid = await _world(db, now)
    who = await rewards.manager(db, STAFF_TG, admin_ids=())
    for bad in ({"cost": 0}, {"cost": 100_001}, {"stock": -1}, {"name_zh": ""}, {"kind": "food"},
                {"kind": "discount"}, {"name_zh": "米", "cost": -3}):
        with pytest.raises(InvalidInput):
            await rewards.change_reward(db, who, rid, now=now, **bad)
    with pytest.raises(InvalidInput):  # another community's shop
        other_shop = await merchants.create_merchant(db, community_id=await make_community(db, now), name="X", now=now)
        await rewards.change_reward(db, who, rid, now=now, kind="discount", merchant_id=other_shop.id)
    r = await rewards.get_reward(db, rid)
    assert r is not None and (r.name_zh, r.kind, r.cost, r.stock, r.merchant_id) == ("大米", "goods", 10, 2, None)
    shop = await merchants.create_merchant(db, community_id=cid, name="Tea", now=now)
    r = await rewards.change_reward(db, who, rid, now=now, kind="discount", merchant_id=shop.id, cost=12,
                                    name_zh=" 硒茶 ", name_en="Tea", photo_file_id="AgAC-1", stock=None)
    assert (r.name_zh, r.kind, r.merchant_id, r.cost, r.stock, r.photo_file_id) == ("硒茶", "discount", shop.id, 12,
                                                                                     None, "AgAC-1")
    r = await rewards.change_reward(db, who, rid, now=now, kind="goods")
    assert r.merchant_id is None  # only a discount names a shop
    assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action = 'reward.update' AND object_id = ?",
                             (rid,)) == 2


@pytest.mark.parametrize("cost", [1, 2, rewards.COST_MAX])
async def test_a_cost_in_range_is_taken_wherever_a_reward_gets_one(db: Database, now: datetime, cost: int) -> None:
    """One rule (rewards.is_cost) for a new reward, a change and the plain update."""
    cid, _vol, rid = await _world(db, now)
    who = await rewards.manager(db, STAFF_TG, admin_ids=())
    assert rewards.is_cost(cost)
    new = await rewards.create_reward(db, community_id=cid, name_zh="茶", kind="goods", cost=cost, now=now)
    assert (await rewards.get_reward(db, new)).cost == cost  # type: ignore[union-attr]
    assert (await rewards.change_reward(db, who, rid, now=now, cost=cost)).cost == cost
    await rewards.update_reward(db, rid, cost=cost, now=now)


@pytest.mark.parametrize("cost", [0, -3, rewards.COST_MAX + 1, 10**9])
async def test_a_cost_out_of_range_is_refused_wherever_a_reward_gets_one(db: Database, now: datetime,
                                                                         cost: int) -> None:
    cid, _vol, rid = await _world(db, now)
    who = await rewards.manager(db, STAFF_TG, admin_ids=())
    assert not rewards.is_cost(cost)
    with pytest.raises(InvalidInput) as err:
        await rewards.create_reward(db, community_id=cid, name_zh="茶", kind="goods", cost=cost, now=now)
    assert err.value.message == rewards.COST_PROBLEM
    with pytest.raises(InvalidInput):
        await rewards.change_reward(db, who, rid, now=now, cost=cost)
    with pytest.raises(InvalidInput):
        await rewards.update_reward(db, rid, cost=cost, now=now)
    assert [r.cost for r in await rewards.list_rewards(db, cid)] == [10]


async def test_restock_adds_to_what_redemptions_left(db: Database, now: datetime) -> None:
    cid, vol, rid = await _world(db, now)
    who = await rewards.manager(db, STAFF_TG, admin_ids=())
    results = await asyncio.gather(rewards.restock(db, who, rid, add=3, now=now),
                                   rewards.redeem(db, member_id=vol, reward_id=rid, now=now), return_exceptions=True)
    assert not any(isinstance(x, Exception) for x in results), results
    assert (await rewards.get_reward(db, rid)).stock == 4  # type: ignore[union-attr]  # 2 + 3 - 1
    with pytest.raises(rewards.TooMuchStock):
        await rewards.restock(db, who, rid, add=rewards.STOCK_MAX, now=now)
    await rewards.change_reward(db, who, rid, now=now, stock=None)
    with pytest.raises(rewards.Unlimited):
        await rewards.restock(db, who, rid, add=1, now=now)
    assert cid


async def test_a_withdrawn_reward_is_not_offered_but_its_vouchers_stay_valid(db: Database, now: datetime) -> None:
    cid, vol, rid = await _world(db, now)
    who = await rewards.manager(db, STAFF_TG, admin_ids=())
    voucher = await rewards.redeem(db, member_id=vol, reward_id=rid, now=now)
    await rewards.change_reward(db, who, rid, now=now, active=False)
    assert [r.id for r in await rewards.list_rewards(db, cid)] == []
    with pytest.raises(NotFound):
        await rewards.redeem(db, member_id=vol, reward_id=rid, now=now)
    staff_id = await db.fetchval("SELECT id FROM members WHERE tg_user_id = ?", (STAFF_TG,))
    v, _ = await rewards.check_voucher(db, actor_id=staff_id, code=voucher.code, now=now, staff_of=cid)
    assert v.state == "issued"
    await rewards.change_reward(db, who, rid, now=now, active=True)
    assert [r.id for r in await rewards.list_rewards(db, cid)] == [rid]


async def test_the_dialogs_key_adds_one_reward_however_often_it_is_saved(db: Database, now: datetime) -> None:
    cid, _vol, _rid = await _world(db, now)
    made = [await rewards.create_reward(db, community_id=cid, name_zh="硒茶", kind="goods", cost=5, stock=3, now=now,
                                        photo_file_id="AgAC", add_key="k1") for _ in range(2)]
    assert made[0] == made[1]
    r = await rewards.get_reward(db, made[0])
    assert r is not None and r.photo_file_id == "AgAC" and r.name_en == "硒茶"
    assert await db.fetchval("SELECT COUNT(*) FROM rewards WHERE name_zh = '硒茶'") == 1
    other = await rewards.create_reward(db, community_id=cid, name_zh="硒茶", kind="goods", cost=5, now=now,
                                        add_key="k2")
    assert other != made[0]
