"""The voucher expiry job (injected clock) and merchant invites."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.clock import FrozenClock
from bot.jobs.vouchers import expire_vouchers
from bot.models import InvalidState, NotFound
from bot.services import ledger, merchants, rewards
from storage.db import Database
from tests.factories import make_community, make_member


async def test_expiry_job_uses_the_clock(db: Database, now: datetime, clock: FrozenClock) -> None:
    cid = await make_community(db, now)
    member = await make_member(db, now, cid)
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=member, amount=40, reason="task", key="seed", now=now)
    rid = await rewards.create_reward(db, community_id=cid, name_zh="A", kind="service", cost=40, valid_days=3,
                                      now=now, refund_on_expiry=True)
    v = await rewards.redeem(db, member_id=member, reward_id=rid, now=now)
    ctx = SimpleNamespace(db=db, now=clock.now)
    await expire_vouchers(ctx)  # type: ignore[arg-type]
    assert (await rewards.get_voucher(db, v.id)).state == "issued"  # type: ignore[union-attr]
    clock.advance(days=3, seconds=1)
    await expire_vouchers(ctx)  # type: ignore[arg-type]
    await expire_vouchers(ctx)  # type: ignore[arg-type]
    assert (await rewards.get_voucher(db, v.id)).state == "expired"  # type: ignore[union-attr]
    assert await ledger.balance(db.reader, member) == 40
    assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE reason = 'refund'") == 1
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE dedupe_key = ?", (f"voucher_expired:{v.id}",)) == 1
    # an expired voucher cannot be used or cancelled any more
    with pytest.raises(InvalidState):
        await rewards.cancel(db, member_id=member, voucher_id=v.id, now=clock.now())


async def test_merchant_invite_links_one_account(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    m = await merchants.create_merchant(db, community_id=cid, name="  Tea   Shop ", now=now)
    assert m.name == "Tea Shop" and len(m.invite_code) == 12
    linked = await merchants.accept_invite(db, code=m.invite_code, tg_user_id=42, language="zh",
                                           display_name="Tea", now=now)
    again = await merchants.accept_invite(db, code=m.invite_code, tg_user_id=42, language="zh",
                                          display_name="Tea", now=now)
    assert linked.member_id == again.member_id is not None
    with pytest.raises(InvalidState):  # a forwarded link cannot take the shop over
        await merchants.accept_invite(db, code=m.invite_code, tg_user_id=43, language="zh",
                                      display_name="X", now=now)
    with pytest.raises(NotFound):
        await merchants.accept_invite(db, code="NOPE", tg_user_id=44, language="zh", display_name="X", now=now)
    assert await db.fetchval("SELECT community_id FROM members WHERE tg_user_id = 42") == cid
    assert await db.fetchval("SELECT COUNT(*) FROM members WHERE tg_user_id IN (43, 44)") == 0


async def test_expired_voucher_not_usable(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    member = await make_member(db, now, cid)
    staff = await make_member(db, now, cid, staff=True)
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=member, amount=40, reason="task", key="seed2", now=now)
    rid = await rewards.create_reward(db, community_id=cid, name_zh="A", kind="goods", cost=10, valid_days=1, now=now)
    v = await rewards.redeem(db, member_id=member, reward_id=rid, now=now)
    later = now + timedelta(days=2)
    with pytest.raises(rewards.VoucherNotValid):
        await rewards.check_voucher(db, actor_id=staff, code=v.code, now=later, staff_of=cid)
    with pytest.raises(rewards.VoucherNotValid):
        await rewards.use_voucher(db, actor_id=staff, voucher_id=v.id, now=later, staff_of=cid)
