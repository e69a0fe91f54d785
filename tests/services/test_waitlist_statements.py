"""Withdraw and the waiting list lock the event's row and read it in one statement, as a claim does
(storage/tasks.py ``for_claim_sync(lock=True)``: PostgreSQL's ``SELECT … FOR UPDATE OF t``): never a
bare ``SELECT 1 … FOR UPDATE`` followed by a second read of the same row. Statements counted on both
databases (tests/services/test_claim_statements.py's counter); nothing is timed."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.services import tasks, waitlist
from storage.db import _LOCKABLE, Database
from tests.services.test_claim_statements import Counted
from tests.services.test_waitlist import _event

BARE_LOCK = _LOCKABLE["tasks"]


def _check(db: Database, counted: Counted) -> int:
    """No bare lock; on PostgreSQL the task's row is locked by the statement that reads it."""
    assert BARE_LOCK not in counted.statements, counted.statements
    if getattr(db, "dialect", "sqlite") != "sqlite":
        reads = [s for s in counted.statements if s.startswith("SELECT") and " FROM tasks " in s]
        assert reads and all(" FOR UPDATE" in s for s in reads), reads
    return len(counted.statements)


async def test_a_withdrawal_locks_and_reads_the_task_in_one_statement(db: Database, now: datetime) -> None:
    _cid, tid, (a, b) = await _event(db, now, 1, 2)
    await tasks.claim(db, now, a, tid)
    await waitlist.join(db, now, b, tid)
    counted = Counted(db)
    with counted.fresh():
        await tasks.withdraw(counted, now, a, tid)  # type: ignore[arg-type]
    # the task locked and read; the claim withdrawn, the card bumped; b offered the place (the
    # event locked and read again by the fill, which any transaction freeing a place calls); audit,
    # the volunteer's details scrubbed. PostgreSQL sent 20 (a bare lock, then the read) before.
    assert _check(db, counted) == 19, counted.statements


async def test_declining_an_offered_place_locks_and_reads_the_task_in_one_statement(db: Database,
                                                                                     now: datetime) -> None:
    _cid, tid, (a, b, c) = await _event(db, now, 1, 3)
    await tasks.claim(db, now, a, tid)
    await waitlist.join(db, now, b, tid)
    await waitlist.join(db, now, c, tid)
    await tasks.withdraw(db, now, a, tid)  # b is offered the place
    counted = Counted(db)
    with counted.fresh():
        await waitlist.decline(counted, now, b, tid)  # type: ignore[arg-type]
    # PostgreSQL sent 20 before: a bare lock, the entry, then the event read unlocked
    assert _check(db, counted) == 19, counted.statements


async def test_leaving_with_an_offered_place_locks_and_reads_the_task_in_one_statement(db: Database,
                                                                                        now: datetime) -> None:
    _cid, tid, (a, b) = await _event(db, now, 1, 2)
    await tasks.claim(db, now, a, tid)
    await waitlist.join(db, now, b, tid)
    await tasks.withdraw(db, now, a, tid)
    counted = Counted(db)
    with counted.fresh():
        await waitlist.leave(counted, now, b, tid)  # type: ignore[arg-type]
    # PostgreSQL sent 12 before
    assert _check(db, counted) == 11, counted.statements


async def test_a_lapsed_offer_locks_and_reads_the_task_in_one_statement(db: Database, now: datetime) -> None:
    _cid, tid, (a, b) = await _event(db, now, 1, 2)
    await tasks.claim(db, now, a, tid)
    await waitlist.join(db, now, b, tid)
    await tasks.withdraw(db, now, a, tid)
    counted = Counted(db)
    with counted.fresh():
        assert await waitlist.sweep(counted, now + timedelta(hours=3)) == 1  # type: ignore[arg-type]
    # the lapsed offers; the event locked and read by the entry's id, then the entry as it is now.
    # Before: the entry, a bare lock, the entry again, the event unlocked (16 on PostgreSQL, 14 on SQLite).
    assert _check(db, counted) == 14, counted.statements


async def test_staff_removing_a_volunteer_lock_and_read_the_event_in_one_statement(db: Database,
                                                                                   now: datetime) -> None:
    from bot.services import roster
    from tests.services.test_roster import _event as _full_event

    _staff, tid, (a, _b) = await _full_event(db, now, 1, 2)
    counted = Counted(db)
    with counted.fresh():   # the transaction itself (the staff check before it reads committed data)
        ended = await counted.write(lambda conn: roster._end(conn, now, tid, a, None, roster.REMOVED))
    assert ended.given == [_b]
    _check(db, counted)   # it read the event without any lock on PostgreSQL before
