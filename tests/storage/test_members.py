"""Member, community and merchant rows come out of storage typed, one loader each."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from storage import categories as category_store
from storage import communities as community_store
from storage import housekeeping as housekeeping_store
from storage import members as member_store
from storage import merchants as merchant_store
from storage.db import Database
from tests.factories import make_community, make_member


async def test_a_member_row_is_typed(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, tg_user_id=4242, staff=True, skills=json.dumps(["repair"]), digest_hour=7)
    member = await member_store.by_tg(db, 4242)
    assert member is not None and member.id == mid and member.community_id == cid
    assert member.is_staff is True and member.is_resident is False and member.skills == ("repair",)
    assert member.registered_at == now and member.registered and member.deleted_at is None
    assert member.digest_hour == 7 and member.quiet_start == "22:00"
    async with db.transaction() as conn:
        assert await member_store.get(conn, mid) == member
        assert await member_store.get_by_tg(conn, 4242) == member


async def test_erased_members_are_found_by_id_only(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, tg_user_id=4343, deleted_at="2026-01-01T00:00:00.000000Z")
    assert await member_store.by_tg(db, 4343) is None
    async with db.transaction() as conn:
        assert await member_store.get(conn, mid) is None
    erased = await member_store.by_id(db, mid)
    assert erased is not None and erased.deleted_at is not None and not erased.registered


async def test_is_merchant_is_filled_in_only_by_its_loader(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, tg_user_id=4444)
    async with db.transaction() as conn:
        shop = await merchant_store.add(conn, community_id=cid, name="Tea", invite_code="CODE1", now=now)
        await merchant_store.link(conn, shop, mid)
    with_flag = await member_store.by_tg_with_merchant(db, 4444)
    plain = await member_store.by_tg(db, 4444)
    assert with_flag is not None and with_flag.is_merchant
    assert plain is not None and not plain.is_merchant
    linked = await merchant_store.active_of_member(db, mid)
    assert linked is not None and linked.id == shop and linked.member_id == mid and linked.active


async def test_a_community_row_is_typed(db: Database, now: datetime) -> None:
    cid = await make_community(db, now, name="Garden", group_chat_id=-777, settings={"a": 1}, review_required=1)
    async with db.transaction() as conn:
        community = await community_store.get(conn, cid)
        assert await community_store.of_group(conn, -777) == community
        assert await community_store.names_of(conn, [cid, cid + 100]) == {cid: "Garden"}
    assert community is not None and community.name == "Garden" and community.group_chat_id == -777
    assert community.settings == {"a": 1} and community.review_required is True and community.active is True


async def test_category_updates_name_their_columns(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    async with db.transaction() as conn:
        await category_store.put(conn, community_id=cid, code="garden", name_zh="园艺", name_en="Garden", points=3, sort=1)
        assert await category_store.update(conn, cid, "garden", {"default_points": 5}) == 1
        assert await category_store.update(conn, cid, "nothing", {"default_points": 5}) == 0
        with pytest.raises(ValueError):
            await category_store.update(conn, cid, "garden", {"community_id": 1})
    [garden] = await category_store.of_community(db, cid)
    assert (garden.code, garden.points, garden.active) == ("garden", 5, True)


async def test_a_housekeeping_run_is_recorded_once_and_old_records_go(db: Database, now: datetime) -> None:
    async with db.transaction() as conn:
        await housekeeping_store.record_done(conn, "prune:2026-01-01", now, forget_before="prune:2026-01-01")
        await housekeeping_store.record_done(conn, "prune:2026-01-09", now, forget_before="prune:2026-01-02")
        await housekeeping_store.record_done(conn, "prune:2026-01-09", now, forget_before="prune:2026-01-02")
    assert not await housekeeping_store.done(db, "prune:2026-01-01")
    assert await housekeeping_store.done(db, "prune:2026-01-09")
