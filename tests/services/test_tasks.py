"""Dispatch service: publishing, review, race-safe claims, withdraw, cancel, forged input."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest

from bot.models import (
    AlreadyClaimed,
    DomainError,
    InvalidInput,
    InvalidState,
    NotAllowed,
    NotFound,
    TaskFull,
)
from bot.services import tasks
from storage.db import Database
from tests.factories import make_category, make_community, make_member


async def _setup(db: Database, now: datetime, **settings: object) -> tuple[int, int, int, int]:
    cid = await make_community(db, now, settings=dict(settings))
    await make_category(db, cid, name_zh="买菜", name_en="Shopping", default_points=3)
    resident = await make_member(db, now, cid, resident=True, address="Bldg 3, Room 502", phone="13800138000")
    staff = await make_member(db, now, cid, staff=True)
    vol = await make_member(db, now, cid, volunteer=True)
    return cid, resident, staff, vol


async def _outbox(db: Database, kind: str) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,)))


async def test_resident_request_publish_claim_and_points(db: Database, now: datetime) -> None:
    _cid, resident, _, vol = await _setup(db, now)
    tid = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="Buy rice", submit_key="k1"))
    again = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="Buy rice", submit_key="k1"))
    assert again == tid
    assert await db.fetchval("SELECT COUNT(*) FROM tasks") == 1
    row = await db.fetchone("SELECT * FROM tasks WHERE id = ?", (tid,))
    assert row is not None and row["state"] == "open" and row["points"] == 3 and row["address"] == "Bldg 3, Room 502"
    res = await tasks.claim(db, now, vol, tid)
    assert res.state == "in_progress" and res.taken == 1
    with pytest.raises(AlreadyClaimed):
        await tasks.claim(db, now, vol, tid)
    assert await _outbox(db, "task_claimed_volunteer") == 1
    assert await _outbox(db, "task_who_is_coming") == 1
    assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action = 'task.claim'") == 1


async def test_own_request_and_non_volunteer_refused(db: Database, now: datetime) -> None:
    _cid, resident, staff, vol = await _setup(db, now)
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET is_volunteer = 1 WHERE id = ?", (resident,))
    tid = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="x"))
    with pytest.raises(DomainError):
        await tasks.claim(db, now, resident, tid)
    with pytest.raises(NotAllowed):
        await tasks.claim(db, now, staff, tid)
    other = await make_community(db, now)
    outsider = await make_member(db, now, other, volunteer=True)
    with pytest.raises(tasks.OtherCommunity):
        await tasks.claim(db, now, outsider, tid)
    with pytest.raises(NotFound):
        await tasks.claim(db, now, vol, 99999)
    assert await db.fetchval("SELECT COUNT(*) FROM claims") == 0


async def test_event_twenty_of_fifty_concurrent(db: Database, now: datetime) -> None:
    cid, _, staff, _ = await _setup(db, now)
    tid = await tasks.create_task(db, now, staff, tasks.NewTask("other", title="Guard the blossoms", kind="event",
                                                                slots=20, points=5), staff=True)
    vols = [await make_member(db, now, cid, volunteer=True) for _ in range(50)]
    results = await asyncio.gather(*(tasks.claim(db, now, v, tid) for v in vols), return_exceptions=True)
    ok = [r for r in results if isinstance(r, tasks.ClaimResult)]
    full = [r for r in results if isinstance(r, TaskFull)]
    assert len(ok) == 20 and len(full) == 30
    assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state = 'active'", (tid,)) == 20
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "full"
    # withdraw reopens, reclaim fills again
    first = ok[0]
    claimer = await db.fetchval("SELECT member_id FROM claims WHERE id = ?", (first.claim_id,))
    await tasks.withdraw(db, now, claimer, tid)
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "open"
    with pytest.raises(InvalidState):
        await tasks.withdraw(db, now, claimer, tid)
    res = await tasks.claim(db, now, claimer, tid)
    assert res.state == "full"


async def test_cancel_before_and_after_claim(db: Database, now: datetime) -> None:
    _cid, resident, _staff, vol = await _setup(db, now)
    t1 = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="a"))
    assert await tasks.cancel(db, now, resident, t1) == []
    with pytest.raises(InvalidState):
        await tasks.claim(db, now, vol, t1)
    with pytest.raises(InvalidState):
        await tasks.cancel(db, now, resident, t1)
    t2 = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="b"))
    await tasks.claim(db, now, vol, t2)
    with pytest.raises(NotAllowed):
        await tasks.cancel(db, now, vol, t2)
    assert await tasks.cancel(db, now, resident, t2) == [vol]
    assert await _outbox(db, "task_cancelled") == 1


async def test_review_required(db: Database, now: datetime) -> None:
    _cid, resident, staff, vol = await _setup(db, now, review_required=True)
    tid = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="a"))
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "pending_review"
    assert await _outbox(db, "task_review") == 1
    with pytest.raises(InvalidState):
        await tasks.claim(db, now, vol, tid)
    with pytest.raises(NotAllowed):
        await tasks.review(db, now, vol, tid, approve=True)
    assert await tasks.review(db, now, staff, tid, approve=True) == "open"
    assert await _outbox(db, "task_reviewed") == 1
    with pytest.raises(InvalidState):
        await tasks.review(db, now, staff, tid, approve=True)


def test_parse_and_mask() -> None:
    assert tasks.parse_task_id("cl:12", "cl") == 12
    for bad in ("cl:", "cl:abc", "cl:-1", "cl:0", "dt:1", None, "cl:１２", "cl:" + "9" * 40):
        with pytest.raises(InvalidInput):
            tasks.parse_task_id(bad, "cl")
    masked = tasks.mask_phones("Call me 13800138000 or 138-0013-8000, room 502")
    assert "13800138000" not in masked and "0013" not in masked and "502" in masked


def test_task_label_for_people_in_the_task() -> None:
    from bot.services.tasks import label

    assert label("Guard the blossoms", "long text") == "Guard the blossoms"
    assert label(None, "请帮我买两个馒头送到家，谢谢！") == "请帮我买两个馒头送到家，谢谢！"
    long = label(None, "Please buy   rice and oil for me, my phone is 13912345678, thanks a lot")
    assert long is not None and long.endswith("…") and len(long) <= 25 and "\n" not in long
    assert "13912345678" not in (label(None, "call 13912345678") or "")
    assert label(None, "   ") is None and label(None, None) is None


async def test_typed_place_names_a_listed_area(db: Database, now: datetime) -> None:
    """A place typed as "Building 3, flat 2" puts the task in the listed area Building 3 (the card
    shows the area, never the address); an unlisted place gets no area, not the requester's home."""
    cid, resident, staff, _vol = await _setup(db, now)
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO areas (community_id, name) VALUES (?, 'Building 3'), (?, 'Building 7')",
                           (cid, cid))
        await conn.execute("UPDATE members SET area_id = (SELECT id FROM areas WHERE name = 'Building 7')"
                           " WHERE id = ?", (resident,))
    b3 = await db.fetchval("SELECT id FROM areas WHERE name = 'Building 3'")
    b7 = await db.fetchval("SELECT id FROM areas WHERE name = 'Building 7'")
    cases = [(tasks.NewTask("shopping", description="a", address="building 3, flat 2"), resident, b3),
             (tasks.NewTask("shopping", description="b", address="Riverside market"), resident, None),
             (tasks.NewTask("shopping", description="c"), resident, b7),
             (tasks.NewTask("shopping", description="d", is_proxy=True, proxy_name="Gran", proxy_phone="1",
                            proxy_address="Building 31"), staff, None),
             (tasks.NewTask("shopping", description="e", is_proxy=True, proxy_name="Gran", proxy_phone="1",
                            proxy_address="Ｂｕｉｌｄｉｎｇ ３ 2-101"), staff, b3)]
    for new, creator, area in cases:
        tid = await tasks.create_task(db, now, creator, new, staff=creator == staff)
        assert await db.fetchval("SELECT area_id FROM tasks WHERE id = ?", (tid,)) == area, new.description


@pytest.mark.parametrize(("slots", "points", "ok"), [(1, 0, True), (200, 100, True), (0, 5, False), (201, 5, False),
                                                     (20, 101, False), (20, -1, False)])
async def test_an_events_places_can_be_1_to_200_and_points_0_to_100(db: Database, now: datetime, slots: int,
                                                                     points: int, ok: bool) -> None:
    _, _, staff, _ = await _setup(db, now)
    new = tasks.NewTask("other", title="Guard the blossoms", kind="event", slots=slots, points=points)
    if ok:
        assert await tasks.create_task(db, now, staff, new, staff=True) > 0
        return
    with pytest.raises(InvalidInput):
        await tasks.create_task(db, now, staff, new, staff=True)
    assert await db.fetchval("SELECT COUNT(*) FROM tasks") == 0


@pytest.mark.parametrize(("field", "value", "ok"), [("slots", "1", True), ("slots", "200", True), ("slots", "0", False),
                                                   ("slots", "201", False), ("points", "0", True),
                                                   ("points", "100", True), ("points", "101", False)])
def test_an_edit_keeps_the_same_places_and_points(field: str, value: str, ok: bool) -> None:
    """/edittask and a series' edit (tasks.edited_value) allow what publishing allows: 1-200 places, 0-100 points."""
    if ok:
        assert tasks.edited_value(field, value) == int(value)
        return
    with pytest.raises(InvalidInput):
        tasks.edited_value(field, value)


async def test_a_tasks_times_lie_ahead_within_90_days_and_end_after_start(db: Database, now: datetime) -> None:
    from datetime import timedelta

    _, _, staff, _ = await _setup(db, now)
    hour, day = timedelta(hours=1), timedelta(days=1)
    refused = [(now - hour, now + hour), (now + 91 * day, None), (now + 2 * hour, now + hour), (now + hour, now + 91 * day)]
    for starts, ends in refused:
        with pytest.raises(InvalidInput):
            await tasks.create_task(db, now, staff, tasks.NewTask("other", title="Clean-up", kind="event", slots=5,
                                                                  starts_at=starts, ends_at=ends), staff=True)
    assert await db.fetchval("SELECT COUNT(*) FROM tasks") == 0
    assert await tasks.create_task(db, now, staff, tasks.NewTask("other", title="Clean-up", kind="event", slots=5,
                                                                 starts_at=now + day, ends_at=now + day + hour), staff=True)
    assert tasks.time_allowed(now + 90 * day, now) and not tasks.time_allowed(now, now)


async def test_a_withdrawal_queues_the_edit_of_each_who_is_coming_message_naming_that_volunteer(
        db: Database, now: datetime) -> None:
    """The resident's "Li is coming" is corrected when Li withdraws (each such message once, even after
    a second claim and withdrawal); a message about another volunteer is left alone."""
    cid, resident, _, vol = await _setup(db, now)
    other = await make_member(db, now, cid, volunteer=True)
    tid = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="Buy rice"))
    for minute in (0, 2):
        await tasks.claim(db, now + timedelta(minutes=minute), vol, tid)
        await tasks.withdraw(db, now + timedelta(minutes=minute + 1), vol, tid)
    await tasks.claim(db, now + timedelta(minutes=5), other, tid)
    coming = [int(r[0]) for r in await db.fetchall("SELECT id FROM outbox WHERE kind = 'task_who_is_coming' ORDER BY id")]
    assert len(coming) == 3
    edits = await db.fetchall("SELECT chat_id, member_id, payload FROM outbox WHERE kind = 'task_coming_ended' ORDER BY id")
    resident_chat = await db.fetchval("SELECT tg_user_id FROM members WHERE id = ?", (resident,))
    assert [(r[0], r[1]) for r in edits] == [(resident_chat, resident)] * 2
    assert [json.loads(r[2]) for r in edits] == [{"task_id": tid, "outbox_id": o, "volunteer_id": vol}
                                                 for o in coming[:2]]


async def test_the_details_go_again_only_to_the_volunteer_holding_the_task_and_once_per_double_tap(
        db: Database, now: datetime) -> None:
    cid, resident, _staff, vol = await _setup(db, now)
    other = await make_member(db, now, cid, volunteer=True)
    tid = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="Buy rice"))
    with pytest.raises(DomainError):
        await tasks.details_again(db, now, vol, tid)    # not claimed yet
    await tasks.claim(db, now, vol, tid)
    assert await tasks.held_mine(db, vol) == [tid] and await tasks.held_mine(db, other) == []
    await tasks.details_again(db, now, vol, tid)
    await tasks.details_again(db, now + timedelta(seconds=1), vol, tid)   # a double tap
    assert await _outbox(db, "task_claimed_volunteer") == 2   # the claim's, and one again
    for forged in (other, resident):
        with pytest.raises(DomainError):
            await tasks.details_again(db, now, forged, tid)
    with pytest.raises(DomainError):
        await tasks.details_again(db, now, vol, 10**12)
    await tasks.withdraw(db, now, vol, tid)
    with pytest.raises(DomainError):
        await tasks.details_again(db, now + timedelta(minutes=5), vol, tid)
    assert await tasks.held_mine(db, vol) == []
    assert await _outbox(db, "task_claimed_volunteer") == 2


async def test_staff_hear_privately_of_a_request_made_while_the_bot_is_out_of_the_group(
        db: Database, now: datetime) -> None:
    cid, resident, staff, _vol = await _setup(db, now)
    first = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="Buy rice"))
    assert await tasks.reaches_volunteers(db, first) and await _outbox(db, "text") == 0
    async with db.transaction() as conn:    # the bot was removed from the group
        await conn.execute("UPDATE communities SET group_chat_id = NULL WHERE id = ?", (cid,))
    second = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="Buy eggs"))
    assert not await tasks.reaches_volunteers(db, second)
    rows = await db.fetchall("SELECT member_id, payload FROM outbox WHERE kind = 'text'")
    assert [r["member_id"] for r in rows] == [staff]
    assert json.loads(rows[0]["payload"])["params"]["id"] == second
    await tasks.create_task(db, now, staff, tasks.NewTask("shopping", description="Staff's own"), staff=True)
    assert await _outbox(db, "text") == 1   # staff publishing are told in their own answer


async def test_a_tap_on_a_full_event_points_to_its_waiting_list(db: Database, now: datetime) -> None:
    cid, resident, staff, vol = await _setup(db, now)
    late = await make_member(db, now, cid, volunteer=True)
    event = await tasks.create_task(db, now, staff, tasks.NewTask("other", title="Clean-up", kind="event", slots=1,
                                                                  points=5), staff=True)
    request = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description="Buy rice"))
    for tid in (event, request):
        await tasks.claim(db, now, vol, tid)
    with pytest.raises(TaskFull) as refused:
        await tasks.claim(db, now, late, event)
    assert "waiting list" in refused.value.message
    with pytest.raises(TaskFull) as refused:
        await tasks.claim(db, now, late, request)
    assert "waiting list" not in refused.value.message
