"""/mytasks' read of a member's waiting lists (storage/waitlist.py ``of_member``): where each stands,
how many wait, offers with their end; read from the member's partial index, not the whole history."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.services import tasks, waitlist
from storage import waitlist as store
from storage.db import Database
from tests.both import only_sqlite
from tests.factories import make_community, make_member


async def test_positions_counts_and_offers(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    ann, bo, chen = [await make_member(db, now, cid, volunteer=True) for _ in range(3)]
    ev = await tasks.create_task(db, now, staff, tasks.NewTask(
        "other", title="Tree planting", kind="event", slots=1, points=5, starts_at=now + timedelta(days=3)), staff=True)
    await tasks.claim(db, now, ann, ev)
    await waitlist.join(db, now, bo, ev)
    await waitlist.join(db, now, chen, ev)
    [c] = await store.of_member(db, chen)
    assert (c.id, c.title, c.state, c.position, c.waiting, c.offer_until) == (ev, "Tree planting", "waiting", 2, 2, None)
    await tasks.withdraw(db, now, ann, ev)  # Bo is offered the place; Chen is next
    [b] = await store.of_member(db, bo)
    assert b.state == "offered" and b.offer_until is not None and b.position == 0
    [c] = await store.of_member(db, chen)
    assert (c.position, c.waiting) == (1, 1)
    await waitlist.leave(db, now, chen, ev)
    assert await store.of_member(db, chen) == []
    assert await store.of_member(db, ann) == []


async def test_reads_the_member_index(db: Database) -> None:
    only_sqlite(db, "SQLite's query plan")
    plan = await db.fetchall(
        "EXPLAIN QUERY PLAN SELECT w.task_id FROM waitlist w CROSS JOIN tasks t WHERE t.id = w.task_id"
        " AND w.member_id = 1 AND w.state IN ('waiting', 'offered') ORDER BY w.id DESC LIMIT 10")
    assert any("waitlist_member" in str(tuple(r)) for r in plan), [tuple(r) for r in plan]


async def test_an_event_that_has_started_is_no_longer_waited_for(db: Database, now: datetime) -> None:
    """/mytasks does not show "position 1 of 1" for last Saturday's event that staff have not closed."""
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    ann, bo = [await make_member(db, now, cid, volunteer=True) for _ in range(2)]
    ev = await tasks.create_task(db, now, staff, tasks.NewTask(
        "other", title="Tree planting", kind="event", slots=1, points=5, starts_at=now + timedelta(days=3)), staff=True)
    await tasks.claim(db, now, ann, ev)
    await waitlist.join(db, now, bo, ev)
    assert [w.id for w in await tasks.waiting_mine(db, bo, now + timedelta(days=2))] == [ev]
    assert await tasks.waiting_mine(db, bo, now + timedelta(days=3, minutes=1)) == []  # it began: nothing to wait for
