"""Data access for tasks, claims and cases (storage/tasks.py, claims.py, cases.py): typed rows that
match the tables, and the statements the dispatch and completion services compose."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta

import pytest

from storage import cases as case_store
from storage import claims as claim_store
from storage import members as member_store
from storage import tasks as task_store
from storage.db import Database
from storage.timeutil import to_db
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task


async def _columns(db: Database, table: str) -> list[str]:
    if getattr(db, "dialect", "sqlite") != "sqlite":
        return [str(r[0]) for r in await db.fetchall(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = :t ORDER BY ordinal_position", {"t": table})]
    return [str(r["name"]) for r in await db.fetchall(f"PRAGMA table_info({table})")]


@pytest.mark.parametrize(("table", "row_type"), [("tasks", task_store.Task), ("claims", claim_store.Claim),
                                                 ("cases", case_store.Case)])
async def test_each_row_type_has_exactly_the_columns_of_its_table(db: Database, table: str, row_type: type) -> None:
    # A migration that adds a column must add it to the row type too, at the end: from_row takes
    # the values of SELECT * in order.
    assert [f.name for f in fields(row_type)] == await _columns(db, table)


async def _setup(db: Database, now: datetime) -> tuple[int, int, int, int]:
    cid = await make_community(db, now)
    resident = await make_member(db, now, cid, resident=True, name="Grandma Wang", address="3-201")
    volunteer = await make_member(db, now, cid, volunteer=True, name="Xiao Li")
    tid = await make_task(db, now, cid, resident, requester_id=resident, slots=2, description="rice")
    return cid, resident, volunteer, tid


async def test_a_task_is_loaded_the_same_in_every_kind_of_transaction(db: Database, now: datetime) -> None:
    cid, resident, _, tid = await _setup(db, now)
    outside = await task_store.row(db, tid)
    async with db.transaction() as conn:
        inside = await task_store.get(conn, tid)
    in_write = await db.write(lambda conn: task_store.get_sync(conn, tid))
    assert outside == inside == in_write
    assert outside is not None and outside.community_id == cid and outside.requester_id == resident
    assert outside.description == "rice" and outside.slots == 2 and outside.state == "open"
    assert await task_store.row(db, tid + 99) is None


async def test_the_open_list_names_the_requester_and_the_claim_read_the_organisation(
        db: Database, now: datetime) -> None:
    cid, _, volunteer, tid = await _setup(db, now)
    async with db.transaction() as conn:
        cur = await conn.execute("INSERT INTO organisations (community_id, name, invite_code, created_at)"
                                 " VALUES (?, 'Red Cross', 'rc1', ?) RETURNING id", (cid, to_db(now)))
        org = int((await cur.fetchone())[0])
    event = await make_task(db, now, cid, volunteer, kind="event", organisation_id=org)
    page = await task_store.open_page(db, cid, offset=0, limit=5)
    assert [(t.id, t.requester_name, t.requester_address) for t in page] == [
        (event, None, None), (tid, "Grandma Wang", "3-201")]
    claimed = await db.write(lambda conn: task_store.for_claim_sync(conn, event))
    assert claimed is not None and claimed.organisation_name == "Red Cross" and claimed.kind == "event"


async def test_claims_taken_reactivated_and_counted(db: Database, now: datetime) -> None:
    _, _, volunteer, tid = await _setup(db, now)
    later = now + timedelta(minutes=5)
    claim_id = await db.write(lambda conn: claim_store.insert_sync(conn, tid, volunteer, now))
    assert await claim_store.state_of(db, tid, volunteer) == "active"
    await db.write(lambda conn: claim_store.withdraw_sync(conn, claim_id, later))
    assert await db.write(lambda conn: claim_store.taken_sync(conn, tid)) == 0
    await db.write(lambda conn: claim_store.reactivate_sync(conn, claim_id, later))
    async with db.transaction() as conn:
        mine = await claim_store.of(conn, tid, volunteer)
        assert await claim_store.taken(conn, tid) == 1
        assert await claim_store.holds(conn, tid, volunteer)
        assert not await claim_store.holds(conn, tid, volunteer, ("done", "completed"))
    assert mine is not None and (mine.id, mine.state, mine.claimed_at) == (claim_id, "active", to_db(later))
    assert await claim_store.count_in(db, tid, "active") == 1


async def test_done_claims_go_back_to_active_with_their_names_kept_in_claim_order(db: Database, now: datetime) -> None:
    cid, _, first, tid = await _setup(db, now)
    second = await make_member(db, now, cid, volunteer=True, name="Lao Zhang")
    await make_claim(db, now, tid, second, state="done")
    await make_claim(db, now, tid, first, state="done")
    async with db.transaction() as conn:
        assert await claim_store.done_names(conn, tid) == ["Lao Zhang", "Xiao Li"]
        assert await claim_store.member_ids(conn, tid, ("done",)) == [second, first]
        await claim_store.done_back_to_active(conn, tid, now)
        assert await claim_store.member_ids(conn, tid, ("done",)) == []
        holders = await claim_store.active_holders(conn, tid)
    assert sorted(h.member_id for h in holders) == sorted([first, second])
    assert [a.display_name for a in await claim_store.attendees(db, tid)] == ["Lao Zhang", "Xiao Li"]


async def test_a_no_show_is_recorded_once(db: Database, now: datetime) -> None:
    cid, resident, volunteer, tid = await _setup(db, now)
    await make_claim(db, now, tid, volunteer)
    for _ in range(2):
        async with db.transaction() as conn:
            await claim_store.set_state(conn, tid, volunteer, "no_show", now)
            await claim_store.record_no_show(conn, now, community_id=cid, task_id=tid, member_id=volunteer,
                                             recorded_by=resident)
    assert await db.fetchval("SELECT COUNT(*) FROM no_shows WHERE task_id = ?", (tid,)) == 1
    assert await claim_store.state_of(db, tid, volunteer) == "no_show"


async def test_a_transition_bumps_the_card_and_changes_only_named_columns(db: Database, now: datetime) -> None:
    _, _, _, tid = await _setup(db, now)
    before = await task_store.row(db, tid)
    async with db.transaction() as conn:
        await task_store.bump(conn, tid, now + timedelta(hours=1), state="in_progress", slots=3)
        with pytest.raises(ValueError):
            await task_store.bump(conn, tid, now, requester_id=1)  # not a column a transition changes
    after = await task_store.row(db, tid)
    assert before is not None and after is not None
    assert (after.state, after.slots, after.card_version) == ("in_progress", 3, before.card_version + 1)
    assert after.updated_at == to_db(now + timedelta(hours=1)) and after.title == before.title


async def test_review_publishes_or_cancels(db: Database, now: datetime) -> None:
    cid, resident, _, _ = await _setup(db, now)
    staff = await make_member(db, now, cid, staff=True)
    waiting = [await make_task(db, now, cid, resident, state="pending_review", published_at=None) for _ in range(2)]
    async with db.transaction() as conn:
        assert await task_store.reviewed(conn, waiting[0], now, staff_id=staff, approve=True) == "open"
        assert await task_store.reviewed(conn, waiting[1], now, staff_id=staff, approve=False) == "cancelled"
    approved, rejected = [await task_store.row(db, t) for t in waiting]
    assert approved is not None and rejected is not None
    assert (approved.published_at, approved.cancelled_at, approved.reviewed_by) == (to_db(now), None, staff)
    assert (rejected.published_at, rejected.cancelled_at) == (None, to_db(now))


async def test_a_case_is_opened_given_reasons_and_resolved(db: Database, now: datetime) -> None:
    cid, resident, _, tid = await _setup(db, now)
    async with db.transaction() as conn:
        assert await case_store.open_id(conn, tid) is None
        case_id = await case_store.open_case(conn, now, community_id=cid, task_id=tid, opened_by=resident,
                                             reason=None)
        await case_store.add_reason(conn, case_id, "late")
        await case_store.add_reason(conn, case_id, "rude")
        assert await case_store.open_id(conn, tid) == case_id
        await case_store.resolve(conn, case_id, now, resolution="partial", points=1, resolved_by=resident)
        case = await case_store.get(conn, case_id)
        assert await case_store.open_id(conn, tid) is None
    assert case is not None
    assert (case.reason, case.state, case.resolution, case.points) == ("late / rude", "resolved", "partial", 1)
    assert await case_store.task_points(db, case_id) == 2


async def test_the_people_a_task_tells(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    boss = await make_member(db, now, cid, staff=True)
    helper = await make_member(db, now, cid, staff=True, registered=False)
    await make_member(db, now, cid, staff=True, deleted_at=to_db(now))
    async with db.transaction() as conn:
        assert await member_store.registered_staff_ids(conn, cid) == [boss]
        assert await member_store.chat_of(conn, boss) is not None
    gone = await make_member(db, now, cid, volunteer=True, deleted_at=to_db(now))
    assert await db.write(lambda conn: member_store.chat_of_sync(conn, gone)) is None
    row = await db.write(lambda conn: member_store.row_sync(conn, helper))
    assert row is not None and row["id"] == helper


EVERY_TASK_STATE = ("draft", "pending_review", "open", "full", "in_progress", "awaiting_confirmation", "completed",
                    "cancelled", "expired")


async def test_the_queries_for_tasks_still_to_be_done_take_the_active_states_and_no_other(
        db: Database, now: datetime) -> None:
    """One list (storage.tasks.ACTIVE_TASK_STATES) for the services and the reminder, unreachable and
    digest queries: a task in each state, claimed and starting tomorrow; only the active ones are found."""
    from storage import digest as digest_store
    from storage import notifications as notification_store

    assert task_store.ACTIVE_TASK_STATES == ("open", "full", "in_progress")
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    vol = await make_member(db, now, cid, volunteer=True)
    starts = now + timedelta(days=1)
    by_state = {}
    for state in EVERY_TASK_STATE:
        by_state[state] = await make_task(db, now, cid, staff, state=state, slots=5, starts_at=to_db(starts))
        await make_claim(db, now, by_state[state], vol, update_task=False)
    active = {by_state[s] for s in task_store.ACTIVE_TASK_STATES}
    async with db.transaction() as conn:
        assert {t.id for t in await notification_store.starting_later(conn, now)} == active
        assert {t.task_id for t in await notification_store.unfinished_of(conn, vol)} == active
        day = await digest_store.claimed_for_day(conn, vol, starts - timedelta(hours=1), starts + timedelta(hours=1))
        assert {t.id for t in day} == active
        await conn.execute("UPDATE members SET reachable = 0 WHERE id = :id", {"id": vol})
        assert [u.id for u in await digest_store.unreachable_volunteers(conn, cid)] == [vol]
        await conn.execute("UPDATE tasks SET state = 'completed' WHERE id IN (:a, :b, :c)",
                           dict(zip("abc", sorted(active), strict=True)))
        assert await digest_store.unreachable_volunteers(conn, cid) == []
