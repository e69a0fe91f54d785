"""The storage of the ledger, rewards and vouchers, digests, sweeps and reports: what each named
function returns and what it refuses (the rules on top are tested under tests/services)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from storage import digest, honours, ledger, notifications, reports, rewards
from storage.db import Database
from storage.timeutil import to_db
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task


async def _reward(db: Database, now: datetime, cid: int, **fields: object) -> rewards.Reward:
    values: dict[str, object] = {"name_zh": "米", "name_en": "Rice", "description_zh": "", "description_en": "",
                                 "kind": "goods", "cost": 5, "stock": 1, "monthly_limit": None, "valid_days": 30,
                                 "merchant_id": None, "refund_on_expiry": True}
    values.update(fields)
    async with db.transaction() as conn:
        rid = await rewards.insert_reward(conn, community_id=cid, now=now, **values)  # type: ignore[arg-type]
    found = await rewards.reward(db, rid)
    assert found is not None
    return found


async def test_ledger_rows_are_written_once_per_key_and_never_overdraw(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, volunteer=True)
    async with db.transaction() as conn:
        assert await ledger.append(conn, member_id=mid, delta=5, reason="task_completed", key="k1", now=now) is True
        assert await ledger.append(conn, member_id=mid, delta=5, reason="task_completed", key="k1", now=now) is False
        assert await ledger.append(conn, member_id=10**9, delta=5, reason="task_completed", key="k2", now=now) is None
    with pytest.raises(ledger.Overdraft):
        async with db.transaction() as conn:
            await ledger.append(conn, member_id=mid, delta=-6, reason="redeem", key="k3", now=now)
    assert await ledger.balance_of(db, mid) == await ledger.total_of(db, mid) == 5
    assert await ledger.count_of(db, mid) == 1
    assert await ledger.earned_since(db, mid, now) == 5
    assert await ledger.earned_since(db, mid, now + timedelta(seconds=1)) == 0
    [entry] = await ledger.entries(db, mid, limit=10)
    assert (entry.delta, entry.reason, entry.task_id, entry.created_at) == (5, "task_completed", None, now)


async def test_ledger_running_totals_and_month_top_read_as_typed_rows(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    a = await make_member(db, now, cid, volunteer=True, name="A")
    b = await make_member(db, now, cid, volunteer=True, name="B", leaderboard_opt_out=1)
    tid = await make_task(db, now, cid, a)
    async with db.transaction() as conn:
        await ledger.append(conn, member_id=a, delta=3, reason="task_completed", key="a", now=now, task_id=tid)
        await ledger.append(conn, member_id=b, delta=7, reason="event_attended", key="b", now=now)
        await ledger.append(conn, member_id=b, delta=99, reason="refund", key="c", now=now)
        top = await ledger.top_earner(conn, cid, now - timedelta(days=1), now + timedelta(days=1),
                                      ("task_completed", "event_attended"))
    assert top == (b, 7)
    people = await ledger.top_people(db, cid, "all", 10)
    assert [(e.subject_id, e.points, e.opt_out) for e in people] == [(b, 7, True), (a, 3, False)]
    assert [(e.id, e.name, e.delta) for e in await ledger.task_entries(db, tid)] == [(1, "A", 3)]
    kept = await ledger.kept_totals(db)
    assert kept[(cid, "m", a, "all")] == 3
    assert sorted(e.delta for e in await ledger.earnings(db, ("task_completed", "event_attended"))) == [3, 7]


async def test_stock_never_goes_below_zero_and_a_voucher_closes_once(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, volunteer=True)
    r = await _reward(db, now, cid, stock=1)
    async with db.transaction() as conn:
        assert await rewards.take_stock(conn, r.id) is True
        assert await rewards.take_stock(conn, r.id) is False
        vid = await rewards.insert_voucher(conn, reward=r, member_id=mid, code="ABC12345", slot_start=None,
                                           slot_end=None, now=now, expires=now + timedelta(days=1), request_key="t1")
        assert await rewards.close_issued(conn, vid, "cancelled", now) is True
        assert await rewards.close_issued(conn, vid, "expired", now) is False
        assert await rewards.mark_used(conn, vid, mid, now) is False
        await rewards.return_stock(conn, r.id)
    v = await rewards.voucher_for_request(db, mid, "t1")
    assert v is not None and v.state == "cancelled" and v.cost == 5
    assert (await rewards.reward(db, r.id)).stock == 1  # type: ignore[union-attr]
    with pytest.raises(AttributeError):
        v.state = "issued"  # type: ignore[misc]  # rows are frozen


async def test_update_reward_takes_only_known_columns(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    r = await _reward(db, now, cid)
    async with db.transaction() as conn:
        assert await rewards.update_reward(conn, r.id, {"cost": 9, "active": 0}) is True
        assert await rewards.update_reward(conn, 10**9, {"cost": 9}) is False
        with pytest.raises(ValueError):
            await rewards.update_reward(conn, r.id, {"community_id": 2})
    assert await rewards.rewards_of(db, cid) == []
    assert [x.cost for x in await rewards.rewards_of(db, cid, include_inactive=True)] == [9]



async def test_staff_changes_reach_only_their_communitys_reward_and_known_columns(db: Database, now: datetime) -> None:
    cid, other = await make_community(db, now), await make_community(db, now)
    r = await _reward(db, now, cid, stock=2)
    async with db.transaction() as conn:
        assert await rewards.change(conn, r.id, cid, {"name_zh": "大米", "photo_file_id": "AgAC"}) is True
        assert await rewards.change(conn, r.id, other, {"cost": 1}) is False  # another community's
        with pytest.raises(ValueError):
            await rewards.change(conn, r.id, cid, {"community_id": other})
        assert await rewards.add_stock(conn, r.id, cid, 3, most=10) == 5
        assert await rewards.add_stock(conn, r.id, cid, 6, most=10) is None  # over the most
        assert await rewards.add_stock(conn, r.id, other, 1, most=10) is None
        assert await rewards.change(conn, r.id, cid, {"stock": None}) is True
        assert await rewards.add_stock(conn, r.id, cid, 1, most=10) is None  # unlimited stays unlimited
    found = await rewards.reward(db, r.id)
    assert found is not None and (found.name_zh, found.photo_file_id, found.stock, found.cost) == ("大米", "AgAC", None, 5)

async def test_mark_once_and_member_settings(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, volunteer=True)
    async with db.transaction() as conn:
        assert await notifications.mark_once(conn, "x", now) is True
        assert await notifications.mark_once(conn, "x", now) is False
        await notifications.set_member_settings(conn, mid, {"digest_hour": 7, "quiet_start": "22:00"}, now)
        with pytest.raises(ValueError):
            await notifications.set_member_settings(conn, mid, {"is_staff": 1}, now)
    row = await db.fetchone("SELECT digest_hour, quiet_start FROM members WHERE id = ?", (mid,))
    assert tuple(row) == (7, "22:00")  # type: ignore[arg-type]


async def test_due_tasks_are_typed_with_their_community(db: Database, now: datetime) -> None:
    cid = await make_community(db, now, timezone="Asia/Shanghai")
    staff = await make_member(db, now, cid, staff=True)
    vol = await make_member(db, now, cid, volunteer=True)
    tid = await make_task(db, now, cid, staff, starts_at=to_db(now + timedelta(hours=5)))
    await make_claim(db, now - timedelta(hours=1), tid, vol)
    async with db.transaction() as conn:
        [task] = await notifications.starting_later(conn, now)
        assert (task.id, task.tz, task.starts_at, task.created_by) == (tid, "Asia/Shanghai", now + timedelta(hours=5), staff)
        assert await notifications.active_claimers(conn, tid, claimed_before=now) == [vol]
        assert await notifications.active_claimers(conn, tid, claimed_before=now - timedelta(hours=2)) == []
        assert await notifications.staff_ids(conn, cid) == [staff]


async def test_matching_requests_bind_each_skill(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    vol = await make_member(db, now, cid, volunteer=True)
    shop = await make_task(db, now, cid, staff, category="shopping", address="Room 301")
    await make_task(db, now, cid, staff, category="repair")
    walk = await make_task(db, now, cid, staff, category="walk")
    async with db.transaction() as conn:
        found = await digest.matching_requests(conn, community_id=cid, member_id=vol, area_id=None,
                                               skills=["shopping", "walk"], limit=8)
        none = await digest.matching_requests(conn, community_id=cid, member_id=vol, area_id=None, skills=[], limit=8)
    assert sorted(t.id for t in found) == [shop, walk]
    assert [t.address for t in found if t.id == shop] == ["Room 301"]
    assert none == []


async def test_exports_take_only_their_table_columns(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    ids = [await make_member(db, now, cid) for _ in range(3)]
    got = [r async for r in reports.export_rows(db, "members", ["id", "phone"], community_id=cid, start=now,
                                                 end=now, chunk=2)]
    assert [r[0] for r in got] == ids
    with pytest.raises(ValueError):
        [r async for r in reports.export_rows(db, "members", ["id", "tg_user_id"], community_id=cid, start=now,
                                              end=now)]


async def test_an_honour_is_recorded_once(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, volunteer=True)
    async with db.transaction() as conn:
        assert await honours.insert(conn, community_id=cid, member_id=mid, code="first_task", now=now) is True
        assert await honours.insert(conn, community_id=cid, member_id=mid, code="first_task", now=now) is False
        h = await honours.honoured(conn, mid)
        await honours.remember_done(conn, "month_top:x", now)
        await honours.remember_done(conn, "month_top:x", now)
    assert h is not None and h.community_id == cid and not h.announce_asked
    assert await honours.done(db, "month_top:x")
