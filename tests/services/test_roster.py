"""Staff and an event's volunteers (bot/services/roster.py): removal and "not coming" before the start
free the place for the first one waiting; who may, when, and what a second press does."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.models import NotAllowed
from bot.services import reliability, roster, tasks, waitlist
from storage import tasks as task_store
from storage.db import Database
from tests.factories import make_community, make_member

ADMINS: tuple[int, ...] = ()


async def _event(db: Database, now: datetime, slots: int, volunteers: int,
                 starts_in: timedelta = timedelta(days=3), staff_tg: int = 9001) -> tuple[int, int, list[int]]:
    """An event whose places are all claimed, the other volunteers waiting in order; (staff tg, event, members)."""
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True, tg_user_id=staff_tg)
    vols = [await make_member(db, now, cid, volunteer=True) for _ in range(volunteers)]
    tid = await tasks.create_task(db, now, staff, tasks.NewTask("other", title="Fair", kind="event", slots=slots,
                                                                starts_at=now + starts_in), staff=True)
    for v in vols[:slots]:
        await tasks.claim(db, now, v, tid)
    for v in vols[slots:]:
        await waitlist.join(db, now, v, tid)
    return staff_tg, tid, vols


async def _claim_state(db: Database, tid: int, member: int) -> str:
    return str(await db.fetchval("SELECT state FROM claims WHERE task_id = :t AND member_id = :m",
                                 {"t": tid, "m": member}))


async def test_removal_gives_the_place_on_and_leaves_no_mark(db: Database, now: datetime) -> None:
    staff, tid, (a, b, c, d) = await _event(db, now, 2, 4)
    seen = await roster.roster(db, task_id=tid, tg_user_id=staff, admin_ids=ADMINS, now=now)
    assert [p.member_id for p in seen.places] == [a, b] and [w.member_id for w in seen.waiting] == [c, d]
    ended = await roster.remove(db, task_id=tid, member_id=a, tg_user_id=staff, admin_ids=ADMINS, now=now)
    assert (ended.how, ended.given) == (roster.REMOVED, [c])
    assert await _claim_state(db, tid, a) == "withdrawn"
    assert (await reliability.of_member(db, a, now)).percent == 100
    assert await db.fetchval("SELECT COUNT(*) FROM late_withdrawals") == 0  # not the volunteer's doing
    with pytest.raises(roster.NoPlace):  # a second press changes nothing
        await roster.remove(db, task_id=tid, member_id=a, tg_user_id=staff, admin_ids=ADMINS, now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'task_place_ended'") == 1
    # The one given the place may be removed before keeping it: the next one waiting has it.
    assert (await roster.remove(db, task_id=tid, member_id=c, tg_user_id=staff, admin_ids=ADMINS, now=now)).given == [d]
    assert await db.fetchval("SELECT state FROM waitlist WHERE task_id = :t AND member_id = :m",
                             {"t": tid, "m": c}) == "removed"


async def test_not_coming_is_a_no_show_only_before_the_start(db: Database, now: datetime) -> None:
    staff, tid, (a, b) = await _event(db, now, 1, 2)
    await roster.mark_no_show(db, task_id=tid, member_id=a, tg_user_id=staff, admin_ids=ADMINS, now=now)
    assert await _claim_state(db, tid, a) == "no_show"
    assert (await reliability.of_member(db, a, now)).no_shows == 1
    await waitlist.decline(db, now, b, tid)  # b gives it back: a free place, but not for a
    with pytest.raises(waitlist.MarkedNotComing):
        await tasks.claim(db, now, a, tid)

    staff, tid, (c, _d) = await _event(db, now, 1, 2, starts_in=timedelta(hours=1), staff_tg=9002)
    later = now + timedelta(hours=2)
    with pytest.raises(roster.Started):
        await roster.mark_no_show(db, task_id=tid, member_id=c, tg_user_id=staff, admin_ids=ADMINS, now=later)
    assert not (await roster.roster(db, task_id=tid, tg_user_id=staff, admin_ids=ADMINS, now=later)).before_start
    assert await _claim_state(db, tid, c) == "active"


async def test_only_staff_of_the_community_and_only_open_events(db: Database, now: datetime) -> None:
    staff, tid, (a, b) = await _event(db, now, 1, 2)
    with pytest.raises(NotAllowed):
        await roster.remove(db, task_id=tid, member_id=a, tg_user_id=123, admin_ids=ADMINS, now=now)
    other_staff, _other, _ = await _event(db, now, 1, 1, staff_tg=9002)
    with pytest.raises(NotAllowed):  # staff of another community
        await roster.remove(db, task_id=tid, member_id=a, tg_user_id=other_staff, admin_ids=ADMINS, now=now)
    assert (await roster.remove(db, task_id=tid, member_id=a, tg_user_id=55, admin_ids=(55,), now=now)).given == [b]
    await tasks.cancel(db, now, await db.fetchval("SELECT id FROM members WHERE tg_user_id = :u", {"u": staff}), tid)
    with pytest.raises(roster.EventClosed):
        await roster.remove(db, task_id=tid, member_id=b, tg_user_id=staff, admin_ids=ADMINS, now=now)


async def test_closing_an_event_ends_its_waiting_list_and_tells_those_still_waiting(db: Database, now: datetime) -> None:
    """After /closeevent nobody stays 'waiting' on an event that took place, nobody given a place is
    later told their offer lapsed (their place was counted at the close), and those waiting hear once."""
    from bot.services import completion

    staff, tid, (a, b, c, d) = await _event(db, now, 2, 4)
    await tasks.withdraw(db, now, a, tid)  # c is offered a's place (and holds it until they answer)
    await completion.close_event(db, task_id=tid, tg_user_id=staff, now=now + timedelta(days=3, hours=2))
    states = {r[0]: r[1] for r in await db.fetchall("SELECT member_id, state FROM waitlist WHERE task_id = :t",
                                                    {"t": tid})}
    assert states == {c: "kept", d: "closed"}
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'waitlist_closed'") == 1
    assert await db.fetchval("SELECT member_id FROM outbox WHERE kind = 'waitlist_closed'") == d
    assert await waitlist.sweep(db, now + timedelta(days=10)) == 0  # no lapse after the close
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'waitlist_lapsed'") == 0
    assert b  # b held a place throughout


async def test_a_volunteer_who_said_done_keeps_the_place(db: Database, now: datetime) -> None:
    """Their Done stands until the close decides (it left a withdrawn claim carrying a Done)."""
    from bot.services import completion

    staff, tid, (a, b) = await _event(db, now, 2, 2, starts_in=timedelta(hours=1))
    later = now + timedelta(hours=2)   # the event is under way
    tg_a = int(await db.fetchval("SELECT tg_user_id FROM members WHERE id = :m", {"m": a}))
    await completion.mark_done(db, task_id=tid, tg_user_id=tg_a, now=later)
    with pytest.raises(roster.DoneAlready):
        await roster.remove(db, task_id=tid, member_id=a, tg_user_id=staff, admin_ids=ADMINS, now=later)
    assert await _claim_state(db, tid, a) == "done"
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'task_place_ended'") == 0
    ended = await roster.remove(db, task_id=tid, member_id=b, tg_user_id=staff, admin_ids=ADMINS, now=later)
    assert ended.how == roster.REMOVED                      # one who has not said Done may still be removed


async def test_a_removed_volunteer_may_not_take_the_place_again_but_one_who_withdrew_may(
        db: Database, now: datetime) -> None:
    """Staff took them off for a reason: a free place, or the waiting list of a full event, is refused to
    them politely and changes nothing; a volunteer who gave the place back themselves may come back."""
    staff, tid, (a, b, c) = await _event(db, now, 2, 3)
    await roster.remove(db, task_id=tid, member_id=a, tg_user_id=staff, admin_ids=ADMINS, now=now)
    assert await db.fetchval("SELECT removed_by FROM claims WHERE task_id = :t AND member_id = :m",
                             {"t": tid, "m": a}) == await db.fetchval("SELECT id FROM members WHERE tg_user_id = :u",
                                                                      {"u": staff})
    await waitlist.decline(db, now, c, tid)  # c, given a's place, gives it back: a place is free
    with pytest.raises(waitlist.RemovedByStaff):
        await tasks.claim(db, now, a, tid)
    assert await _claim_state(db, tid, a) == "withdrawn"
    await tasks.withdraw(db, now, b, tid)  # b withdraws by themselves, and comes back
    assert (await tasks.claim(db, now, b, tid)).taken == 1
    assert await _claim_state(db, tid, b) == "active"
    await tasks.claim(db, now, c, tid)   # the event is full again: a may not wait for a place either
    with pytest.raises(waitlist.RemovedByStaff):
        await waitlist.join(db, now, a, tid)
    assert await db.fetchval("SELECT COUNT(*) FROM waitlist WHERE task_id = :t AND member_id = :m AND state = 'waiting'",
                             {"t": tid, "m": a}) == 0
    with pytest.raises(waitlist.RemovedByStaff):  # the event is full: still the removal, not "all places taken"
        await tasks.claim(db, now, a, tid)
    # A glance read before the event filled (a card press as bot/buttons.py reads it): the same answer.
    with pytest.raises(waitlist.RemovedByStaff):
        await tasks.claim(db, now, a, tid, glance=task_store.ClaimGlance("open", "event", None))
    assert await _claim_state(db, tid, a) == "withdrawn"
