"""Completion services: done, confirm, not done, problem, resolve, close_event, revoke."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from bot.models import AlreadyDone, InvalidState, NotRegistered
from bot.services import completion as c
from bot.services import points as p
from storage.db import Database
from storage.outbox import enqueue, priority_of
from storage.timeutil import to_db
from tests.factories import make_community, make_member, returned_id
from tests.factories_tasks import make_claim, make_task


async def world(db: Database, now: datetime) -> dict[str, int]:
    cid = await make_community(db, now)
    ids = {
        "c": cid,
        "res": await make_member(db, now, cid, tg_user_id=101, resident=True, name="Grandma Li"),
        "vol": await make_member(db, now, cid, tg_user_id=102, volunteer=True, name="Xiao Wang"),
        "vol2": await make_member(db, now, cid, tg_user_id=103, volunteer=True, name="Xiao Zhao"),
        "staff": await make_member(db, now, cid, tg_user_id=104, staff=True, name="Staff Chen"),
        "other": await make_member(db, now, cid, tg_user_id=105, resident=True, name="Neighbour"),
    }
    return ids


async def balance(db: Database, member_id: int) -> int:
    bal = int(await db.fetchval("SELECT balance FROM members WHERE id = ?", (member_id,)))
    assert bal == int(await db.fetchval("SELECT COALESCE(SUM(delta),0) FROM ledger WHERE member_id = ?", (member_id,)))
    return bal


async def test_done_confirm_credits_once(db: Database, now: datetime) -> None:
    w = await world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=3)
    await make_claim(db, now, tid, w["vol"])
    v0 = await db.fetchval("SELECT card_version FROM tasks WHERE id = ?", (tid,))
    out = await c.mark_done(db, task_id=tid, tg_user_id=102, now=now, note="All bought")
    assert out.state == "awaiting_confirmation"
    assert await db.fetchval("SELECT card_version FROM tasks WHERE id = ?", (tid,)) == v0 + 1
    ask = await db.fetchone("SELECT * FROM outbox WHERE kind = 'completion_confirm'")
    assert ask["chat_id"] == 101 and json.loads(ask["payload"])["volunteers"] == ["Xiao Wang"]
    with pytest.raises(AlreadyDone):
        await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    with pytest.raises(c.NotYourTask):
        await c.confirm(db, task_id=tid, tg_user_id=105, now=now)
    with pytest.raises(c.NotYourTask):
        await c.confirm(db, task_id=tid, tg_user_id=102, now=now)   # the volunteer cannot confirm
    out = await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
    assert out.credited == {w["vol"]: 3}
    with pytest.raises(AlreadyDone):
        await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
    assert await balance(db, w["vol"]) == 3
    row = await db.fetchone("SELECT * FROM ledger")
    assert row["idempotency_key"] == f"task:{tid}:volunteer:{w['vol']}" and row["actor_id"] == w["res"]
    assert row["reason"] == "task_completed" and row["task_id"] == tid
    assert await db.fetchval("SELECT state FROM claims WHERE task_id = ?", (tid,)) == "completed"
    assert await db.fetchval("SELECT confirmed_by FROM tasks WHERE id = ?", (tid,)) == w["res"]
    # first-task honour, once, announced in the group (consent default on) without private data
    assert await db.fetchval("SELECT COUNT(*) FROM honours WHERE member_id = ?", (w["vol"],)) == 1
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'honour_group'") == 1


async def test_unregistered_and_unknown(db: Database, now: datetime) -> None:
    w = await world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"])
    with pytest.raises(NotRegistered):
        await c.confirm(db, task_id=tid, tg_user_id=999, now=now)
    with pytest.raises(c.NotYourClaim):
        await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    with pytest.raises(InvalidState):
        await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
    with pytest.raises(c.NotFound):
        await c.confirm(db, task_id=tid + 100, tg_user_id=101, now=now)


async def test_not_done_then_done_then_yes(db: Database, now: datetime) -> None:
    w = await world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=2)
    await make_claim(db, now, tid, w["vol"])
    await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    out = await c.not_done(db, task_id=tid, tg_user_id=101, now=now, reason="Forgot the <rice>")
    assert out.state == "in_progress"
    msg = await db.fetchone("SELECT * FROM outbox WHERE kind = 'completion_not_done'")
    assert msg["chat_id"] == 102 and "rice" in msg["payload"]
    with pytest.raises(InvalidState):
        await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
    await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'completion_confirm'") == 2
    await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
    assert await balance(db, w["vol"]) == 2


async def test_proxy_request_asks_staff_and_staff_on_behalf(db: Database, now: datetime) -> None:
    w = await world(db, now)
    tid = await make_task(db, now, w["c"], w["staff"], is_proxy=1, proxy_name="Mr Zhou", points=1)
    await make_claim(db, now, tid, w["vol"])
    await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    ask = await db.fetchone("SELECT * FROM outbox WHERE kind = 'completion_confirm'")
    assert ask["chat_id"] == 104
    await c.confirm(db, task_id=tid, tg_user_id=104, now=now)
    assert await balance(db, w["vol"]) == 1
    # staff confirming someone else's request: recorded as on behalf
    tid2 = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=1)
    await make_claim(db, now, tid2, w["vol2"])
    await c.mark_done(db, task_id=tid2, tg_user_id=103, now=now)
    await c.confirm(db, task_id=tid2, tg_user_id=104, now=now)
    details = json.loads(await db.fetchval("SELECT details FROM audit_log WHERE action = 'task_confirmed'"
                                           " AND object_id = ?", (tid2,)))
    assert details["on_behalf"] is True
    assert await db.fetchval("SELECT confirmed_by FROM tasks WHERE id = ?", (tid2,)) == w["staff"]


async def test_problem_case_resolutions(db: Database, now: datetime) -> None:
    w = await world(db, now)
    results = {}
    for resolution, pts in (("credit", None), ("no_credit", None), ("partial", 2)):
        tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=5)
        await make_claim(db, now, tid, w["vol"])
        await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
        case = await c.report_problem(db, task_id=tid, tg_user_id=101, now=now, reason="Rude")
        assert case.case_id and case.staff_told == 1
        assert await db.fetchval("SELECT chat_id FROM outbox WHERE kind = 'completion_case_staff'"
                                 " AND payload LIKE ?", (f'%"case_id": {case.case_id},%',)) == 104
        with pytest.raises(c.CaseOpen):
            await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
        with pytest.raises(c.CaseOpen):
            await c.report_problem(db, task_id=tid, tg_user_id=101, now=now)
        with pytest.raises(c.StaffOnly):
            await c.resolve_case(db, case_id=case.case_id, tg_user_id=101, now=now, resolution="credit")
        before = await balance(db, w["vol"])
        out = await c.resolve_case(db, case_id=case.case_id, tg_user_id=104, now=now, resolution=resolution,
                                   points=pts)
        results[resolution] = await balance(db, w["vol"]) - before
        assert out.state == "completed"
        with pytest.raises(AlreadyDone):
            await c.resolve_case(db, case_id=case.case_id, tg_user_id=104, now=now, resolution="credit")
    assert results == {"credit": 5, "no_credit": 0, "partial": 2}


async def test_nobody_decides_on_their_own_work(db: Database, now: datetime) -> None:
    """Staff who also volunteer: they cannot confirm, send back, resolve or close a task they hold a
    place on; the person helped or another staff member can."""
    w = await world(db, now)
    helper = await make_member(db, now, w["c"], tg_user_id=106, staff=True, volunteer=True, name="Staff Wu")
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=3)
    await make_claim(db, now, tid, helper)
    await c.mark_done(db, task_id=tid, tg_user_id=106, now=now)
    for attempt in (c.confirm, c.not_done):
        with pytest.raises(c.TookPart):
            await attempt(db, task_id=tid, tg_user_id=106, now=now)
    case = await c.report_problem(db, task_id=tid, tg_user_id=101, now=now, reason="Late")
    assert case.case_id
    with pytest.raises(c.TookPart):
        await c.resolve_case(db, case_id=case.case_id, tg_user_id=106, now=now, resolution="credit")
    assert await balance(db, helper) == 0
    await c.resolve_case(db, case_id=case.case_id, tg_user_id=104, now=now, resolution="credit")
    assert await balance(db, helper) == 3
    # an event: the staff member on its list cannot close it; another can, and they are credited then
    ev = await make_task(db, now, w["c"], helper, kind="event", slots=5, points=4)
    await make_claim(db, now, ev, helper)
    await make_claim(db, now, ev, w["vol"])
    with pytest.raises(c.OnTheList):
        await c.close_event(db, task_id=ev, tg_user_id=106, now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ?", (ev,)) == 0
    out = await c.close_event(db, task_id=ev, tg_user_id=104, now=now)
    assert set(out.credited) == {helper, w["vol"]}
    # a community whose only staff member joined the event can still close it (nobody else could)
    lone_c = await make_community(db, now)
    lone = await make_member(db, now, lone_c, tg_user_id=107, staff=True, volunteer=True)
    ev2 = await make_task(db, now, lone_c, lone, kind="event", slots=5, points=2)
    await make_claim(db, now, ev2, lone)
    assert set((await c.close_event(db, task_id=ev2, tg_user_id=107, now=now)).credited) == {lone}


async def test_event_twenty_with_three_no_shows(db: Database, now: datetime) -> None:
    w = await world(db, now)
    tid = await make_task(db, now, w["c"], w["staff"], kind="event", slots=20, points=2)
    vols = [await make_member(db, now, w["c"], volunteer=True) for _ in range(20)]
    for v in vols:
        await make_claim(db, now, tid, v)
    async with db.transaction() as conn:   # the details one of the no-shows and one who came were sent at the claim
        await enqueue(conn, chat_id=9_000_001, kind="task_claimed_volunteer", now=now, payload={"task_id": tid},
                      member_id=vols[0], dedupe_key="seed:details")
        await enqueue(conn, chat_id=9_000_002, kind="task_claimed_volunteer", now=now, payload={"task_id": tid},
                      member_id=vols[5], dedupe_key="seed:details-came")
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "full"
    with pytest.raises(c.StaffOnly):
        await c.close_event(db, task_id=tid, tg_user_id=102, now=now)
    out = await c.close_event(db, task_id=tid, tg_user_id=104, now=now, absent=vols[:3])
    # Each no-show is told, and the details they were sent lose their Done and Withdraw buttons.
    told = await db.fetchall("SELECT member_id, payload FROM outbox WHERE kind = 'event_absent' ORDER BY member_id")
    assert [(r["member_id"], json.loads(r["payload"])) for r in told] == [(v, {"task_id": tid}) for v in vols[:3]]
    # Those who came lose them too: the event is closed, so Done and Withdraw have nothing left to do.
    scrub = await db.fetchall("SELECT member_id, payload FROM outbox WHERE kind = 'task_details_removed'"
                              " ORDER BY member_id")
    assert [(r["member_id"], json.loads(r["payload"])["why"]) for r in scrub] == [(vols[0], "absent"),
                                                                                (vols[5], "closed")]
    assert len(out.credited) == 17 and set(out.credited.values()) == {2}
    assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ?", (tid,)) == 17
    assert await db.fetchval("SELECT COUNT(*) FROM no_shows WHERE task_id = ?", (tid,)) == 3
    assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state = 'no_show'", (tid,)) == 3
    with pytest.raises(AlreadyDone):
        await c.close_event(db, task_id=tid, tg_user_id=104, now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ?", (tid,)) == 17
    # A Done pressed after the close by one who came: the event is closed and they were counted.
    came = await db.fetchval("SELECT tg_user_id FROM members WHERE id = ?", (vols[5],))
    with pytest.raises(c.EventAttended):
        await c.mark_done(db, task_id=tid, tg_user_id=came, now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ?", (tid,)) == 17


async def test_revoke(db: Database, now: datetime) -> None:
    w = await world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=4)
    await make_claim(db, now, tid, w["vol"])
    await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
    lid = int(await db.fetchval("SELECT id FROM ledger"))
    with pytest.raises(c.StaffOnly):
        await c.revoke(db, ledger_id=lid, tg_user_id=102, now=now, reason="mine")
    with pytest.raises(c.InvalidInput):
        await c.revoke(db, ledger_id=lid, tg_user_id=104, now=now, reason=" ")
    r = await c.revoke(db, ledger_id=lid, tg_user_id=104, now=now, reason="Did not happen")
    assert r.amount == 4 and await balance(db, w["vol"]) == 0
    with pytest.raises(c.AlreadyRevoked):
        await c.revoke(db, ledger_id=lid, tg_user_id=104, now=now, reason="again")
    assert await db.fetchval("SELECT COUNT(*) FROM ledger") == 2


async def test_revoke_never_below_zero(db: Database, now: datetime) -> None:
    w = await world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=4)
    await make_claim(db, now, tid, w["vol"])
    await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
    from bot.services import ledger
    async with db.transaction() as conn:
        await ledger.debit(conn, member_id=w["vol"], amount=3, reason="redeem", key="redeem:1", now=now)
    lid = int(await db.fetchval("SELECT id FROM ledger WHERE delta > 0"))
    with pytest.raises(c.RevokeTooMuch):
        await c.revoke(db, ledger_id=lid, tg_user_id=104, now=now, reason="x")
    assert await balance(db, w["vol"]) == 1


async def test_points_summary_history_leaderboard(db: Database, now: datetime) -> None:
    w = await world(db, now)
    async with db.transaction() as conn:
        oid = await returned_id(await conn.execute("INSERT INTO organisations (community_id, name, invite_code,"
                                                   " created_at) VALUES (?, 'Red Cross', 'rc1', '2026-01-01')"
                                                   " RETURNING id", (w["c"],)))
        await conn.execute("UPDATE members SET organisation_id = ? WHERE id = ?", (oid, w["vol2"]))
        await conn.execute("UPDATE members SET leaderboard_opt_out = 1 WHERE id = ?", (w["vol"],))
    for i in range(12):
        tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=1 + (i % 2))
        vol, tg = (w["vol"], 102) if i % 3 else (w["vol2"], 103)
        await make_claim(db, now, tid, vol)
        await c.mark_done(db, task_id=tid, tg_user_id=tg, now=now)
        await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
    s = await p.summary(db, tg_user_id=102, now=now)
    assert s.balance == s.ledger_sum == s.this_month and len(s.last) == 5
    h = await p.history(db, tg_user_id=102, page=0, page_size=3)
    assert h.total == 8 and h.pages == 3 and len(h.entries) == 3
    last = await p.history(db, tg_user_id=102, page=99, page_size=3)
    assert last.page == 2 and len(last.entries) == 2
    board = await p.leaderboard(db, tg_user_id=103, now=now, period="week")
    assert [r.name for r in board] == [None, "Xiao Zhao"]       # opted out: not shown by name
    assert board[0].points == s.balance and board[1].is_me
    orgs = await p.leaderboard(db, tg_user_id=102, now=now, period="all", by="org")
    assert [(r.name, r.points) for r in orgs] == [("Red Cross", 6)]
    await p.set_opt_out(db, tg_user_id=102, opt_out=False, now=now)
    board = await p.leaderboard(db, tg_user_id=103, now=now, period="month")
    assert board[0].name == "Xiao Wang"
    # milestone of 10 tasks not yet reached by anyone; first_task once each
    assert await db.fetchval("SELECT COUNT(*) FROM honours") == 2
    top = await p.grant_month_top(db, community_id=w["c"], month=now.strftime("%Y-%m"), now=now)
    assert top == w["vol"]
    await p.grant_month_top(db, community_id=w["c"], month=now.strftime("%Y-%m"), now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM honours WHERE code LIKE 'top_month:%'") == 1


async def test_problem_with_no_registered_staff_says_so(db: Database, now: datetime) -> None:
    w = await world(db, now)
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET registered_at = NULL WHERE id = ?", (w["staff"],))
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=5)
    await make_claim(db, now, tid, w["vol"])
    await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    case = await c.report_problem(db, task_id=tid, tg_user_id=101, now=now)
    assert case.case_id and case.staff_told == 0


async def test_who_may_close_an_event(db: Database, now: datetime) -> None:
    """One rule, in completion.closer: staff of the event's community (registered) or a super-admin, not
    on its list when another staff member could close it, while the event is still open. The list
    (attendance_to_close) and the closing (close_event) give the same answer."""
    from bot.models import DomainError, NotAllowed, NotFound

    async def refused(error: type[DomainError], task_id: int, tg_user_id: int,
                      admin_ids: tuple[int, ...] = ()) -> DomainError:
        with pytest.raises(error) as listed:
            await c.attendance_to_close(db, task_id=task_id, tg_user_id=tg_user_id, admin_ids=admin_ids)
        with pytest.raises(error):
            await c.close_event(db, task_id=task_id, tg_user_id=tg_user_id, now=now, admin_ids=admin_ids)
        return listed.value

    w = await world(db, now)
    helper = await make_member(db, now, w["c"], tg_user_id=106, staff=True, volunteer=True, name="Staff Wu")
    ev = await make_task(db, now, w["c"], w["staff"], kind="event", slots=5, points=4)
    await make_claim(db, now, ev, w["vol"])
    await make_claim(db, now, ev, helper)
    people = await c.attendance_to_close(db, task_id=ev, tg_user_id=104, admin_ids=())
    assert [a.member_id for a in people] == [w["vol"], helper]
    await refused(NotAllowed, ev, 102)  # a volunteer is not staff
    await refused(c.OnTheList, ev, 106)  # on the list, and another staff member could close it
    request = await make_task(db, now, w["c"], w["res"], requester_id=w["res"])
    await refused(c.NotAnEvent, request, 104)
    await refused(NotFound, ev + 1000, 104)
    cancelled = await make_task(db, now, w["c"], w["staff"], kind="event", slots=5, state="cancelled")
    over = await refused(c.EventOver, cancelled, 104)
    assert over.params == {"id": cancelled}
    # a super-admin who never registered may not close it: closing records who did it
    await refused(NotRegistered, ev, 999, (999,))
    # a registered super-admin who is not staff here may: the list and the closing agree
    await make_member(db, now, w["c"], tg_user_id=998, volunteer=True)
    assert await c.attendance_to_close(db, task_id=ev, tg_user_id=998, admin_ids=(998,))
    assert set((await c.close_event(db, task_id=ev, tg_user_id=998, now=now, admin_ids=(998,))).credited) == {
        w["vol"], helper}
    await refused(AlreadyDone, ev, 104)


async def test_half_the_points(db: Database, now: datetime) -> None:
    """Half the points is half, rounded down, but at least one; offered only when it differs from all."""
    assert [c.half_of(n) for n in (0, 1, 2, 3, 7, 10)] == [1, 1, 1, 1, 3, 5]
    assert [c.offers_half(n) for n in (0, 1, 2, 5)] == [False, False, True, True]
    w = await world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=7)
    await make_claim(db, now, tid, w["vol"])
    await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    case = await c.report_problem(db, task_id=tid, tg_user_id=101, now=now)
    assert case.case_id is not None
    await c.resolve_case_half(db, case_id=case.case_id, tg_user_id=104, now=now)
    assert await balance(db, w["vol"]) == 3


async def test_never_asked_volunteer_is_asked_before_the_group_hears(db: Database, now: datetime) -> None:
    """A first honour of someone never asked about announcements: the question is queued first
    (before the honours in the outbox's order) and the group announcement waits for the answer."""
    w = await world(db, now)
    tid = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], points=3)
    await make_claim(db, now, tid, w["vol"])
    await c.mark_done(db, task_id=tid, tg_user_id=102, now=now)
    await c.confirm(db, task_id=tid, tg_user_id=101, now=now)
    ask = await db.fetchone("SELECT * FROM outbox WHERE kind = 'announce_ask'")
    assert ask is not None and ask["chat_id"] == 102 and ask["member_id"] == w["vol"]
    assert priority_of("announce_ask") > priority_of("honour_member") == priority_of("honour_group")
    group = await db.fetchone("SELECT * FROM outbox WHERE kind = 'honour_group'")
    assert group["not_before"] == to_db(now + p.ASK_GRACE)
    assert await db.fetchval("SELECT announce_asked_at FROM members WHERE id = ?", (w["vol"],)) == to_db(now)
    # Asked once: a later honour is announced at once and nobody is asked again.
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM outbox")
        await conn.execute("DELETE FROM honours")
    async with db.transaction() as conn:
        await p.grant_task_honours(conn, member_id=w["vol"], now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'announce_ask'") == 0
    assert await db.fetchval("SELECT not_before FROM outbox WHERE kind = 'honour_group'") == to_db(now)


async def test_who_confirms_is_one_rule_for_asking_reminding_and_telling(db: Database, now: datetime) -> None:
    """The resident helped, else (a proxy request, an event) the staff member who published it: the
    same answer for the task the completion service reads and the one the sweeps read."""
    from bot.services import notifications
    from storage import notifications as notification_store
    from storage import tasks as task_store

    w = await world(db, now)
    waiting = {"state": "awaiting_confirmation", "done_at": to_db(now)}
    own = await make_task(db, now, w["c"], w["res"], requester_id=w["res"], **waiting)
    proxy = await make_task(db, now, w["c"], w["staff"], requester_id=w["other"], is_proxy=1, proxy_name="Mr Zhou",
                            **waiting)
    event = await make_task(db, now, w["c"], w["staff"], kind="event", **waiting)
    expected = {own: w["res"], proxy: w["staff"], event: w["staff"]}
    read = {tid: await task_store.row(db, tid) for tid in expected}
    assert {tid: c.confirmer_id(t) for tid, t in read.items() if t is not None} == expected
    async with db.transaction() as conn:
        due = {t.id: t for t in await notification_store.awaiting_confirmation(conn)}
    assert {tid: notifications.confirmer_id(due[tid]) for tid in expected} == expected
