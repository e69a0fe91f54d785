"""Completion: done, confirm, not done, problem cases, event closing and revoking points.

Every function here runs one transaction that changes the task and claims, writes an audit row,
queues the messages it causes and moves points only through ``bot.services.ledger`` with an
idempotency key, so a double tap or a redelivered update never credits twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.models import (
    N_,
    AlreadyDone,
    DomainError,
    InvalidInput,
    InvalidState,
    NotAllowed,
    NotFound,
    NotRegistered,
)
from bot.services import ledger
from bot.services.access import is_staff_of
from bot.services.points import grant_task_honours
from bot.services.tasks import EVENT_OPEN_STATES, load_task
from storage import cases as case_store
from storage import claims as claim_store
from storage import ledger as ledger_store
from storage import members as member_store
from storage import tasks as task_store
from storage import waitlist as waitlist_store
from storage.db import Connection, Database
from storage.members import Member
from storage.outbox import audit, enqueue, scrub_details
from storage.tasks import ACTIVE_TASK_STATES, Task
from storage.timeutil import to_db

REASON_MAX = 500


class CaseOpen(DomainError):
    message = N_("Staff are already looking at a problem with this task. They will sort it out.")


class NotYourTask(NotAllowed):
    message = N_("Sorry, this is not your task. Only the person who was helped or staff can answer.")


class NotYourClaim(NotAllowed):
    message = N_("You have not claimed this task, so you cannot mark it done.")


class StaffOnly(NotAllowed):
    message = N_("Sorry, only community staff can do that.")


class TookPart(NotAllowed):
    message = N_("You helped with this task yourself, so someone else must decide it: the person who was helped"
                 " or another staff member.")


class OnTheList(NotAllowed):
    message = N_("You are on the list of this event yourself, so another staff member must close it.")


class RevokeTooMuch(DomainError):
    message = N_("Cannot take back {amount} points: the member has only {balance} points left.")


class EventAttended(AlreadyDone):
    message = N_("This event is closed, and you were counted as having come. Thank you! Nothing more is needed.")


class AlreadyRevoked(AlreadyDone):
    message = N_("These points have already been taken back.")


@dataclass(frozen=True)
class Outcome:
    task_id: int
    state: str
    credited: dict[int, int] = field(default_factory=dict)   # member_id -> points credited now
    changed: bool = True
    case_id: int | None = None
    volunteers: tuple[str, ...] = ()
    staff_told: int = 0    # for a case: how many staff members were told


# -- helpers -----------------------------------------------------------------------------
async def _actor(conn: Connection, tg_user_id: int) -> Member:
    row = await member_store.get_by_tg(conn, tg_user_id)
    if row is None or row.registered_at is None:
        raise NotRegistered()
    return row


def _is_staff_of(actor: Member, task: Task) -> bool:
    return bool(actor.is_staff) and actor.community_id == task.community_id


class Asked(Protocol):
    """What says who confirms a task: a ``Task``, or the sweeps' ``DueTask``."""

    @property
    def requester_id(self) -> int | None: ...
    @property
    def is_proxy(self) -> int: ...
    @property
    def created_by(self) -> int: ...


def confirmer_id(task: Asked) -> int:
    """Who confirms (is asked "did they help you?", reminded, told of an expiry or an automatic
    confirmation): the resident helped, or the staff member who published a proxy request or an event."""
    if task.requester_id is not None and not task.is_proxy:
        return int(task.requester_id)
    return int(task.created_by)


def _may_answer(actor: Member, task: Task) -> bool:
    return int(actor.id) == confirmer_id(task) or _is_staff_of(actor, task)


async def _other_staff(conn: Connection, task: Task, actor_id: int) -> bool:
    """Someone else could decide: another registered staff member of the task's community. (A
    community with one staff member must still be able to close an event they joined.)"""
    return await member_store.has_other_staff(conn, task.community_id, actor_id)


async def _took_part(conn: Connection, task_id: int, member_id: int) -> bool:
    """Holds a place on the task (claimed or done): nobody decides on, or credits, their own work."""
    return await claim_store.holds(conn, task_id, member_id)


async def _tell(conn: Connection, member_id: int, kind: str, payload: dict[str, Any], key: str,
                now: datetime) -> None:
    chat = await member_store.chat_of(conn, member_id)
    if chat is not None:
        await enqueue(conn, chat_id=chat, kind=kind, now=now, payload=payload, member_id=member_id,
                      dedupe_key=key)


async def _credit_claims(conn: Connection, task: Task, member_ids: Iterable[int], amount: int,
                         reason: str, actor_id: int, now: datetime) -> dict[int, int]:
    credited: dict[int, int] = {}
    for mid in member_ids:
        await claim_store.set_state(conn, task.id, mid, "completed", now)
        if amount > 0:
            done = await ledger.credit(conn, member_id=mid, amount=amount, reason=reason,
                                       key=f"task:{task.id}:volunteer:{mid}", now=now, task_id=task.id,
                                       actor_id=actor_id)
            if done:
                credited[mid] = amount
        await grant_task_honours(conn, member_id=mid, now=now)
        await _tell(conn, mid, "completion_thanks",
                    {"task_id": task.id, "points": amount if mid in credited else 0},
                    f"completed:{task.id}:{mid}", now)
    return credited


# -- done --------------------------------------------------------------------------------
async def mark_done(db: Database, *, task_id: int, tg_user_id: int, now: datetime, note: str | None = None,
                    photo_file_id: str | None = None) -> Outcome:
    """The volunteer says the job is done. For a request, once no claim is still active the person
    helped (or the staff member for a proxy request) is asked to confirm."""
    note = (note or "").strip()[:REASON_MAX] or None
    async with db.transaction() as conn:
        actor = await _actor(conn, tg_user_id)
        task = await load_task(conn, task_id)
        claim = await claim_store.of(conn, task_id, int(actor.id))
        if claim is None or claim.state == "withdrawn":
            raise NotYourClaim()
        if claim.state == "completed" and task.kind == "event":
            raise EventAttended()  # a Done left on their details after the close (its edit not yet out)
        if claim.state in ("done", "completed"):
            raise AlreadyDone()
        if claim.state != "active":
            raise InvalidState()
        allowed = EVENT_OPEN_STATES if task.kind == "event" else ACTIVE_TASK_STATES
        if task.state not in allowed:
            raise InvalidState()
        await claim_store.mark_done(conn, claim.id, now, note, photo_file_id)
        state = task.state
        if task.kind == "request":
            if await claim_store.count_in_tx(conn, task_id, "active") == 0:
                state = "awaiting_confirmation"
                names = [str(n or "?") for n in await claim_store.done_names(conn, task_id)]
                round_no = task.card_version + 1
                await _tell(conn, confirmer_id(task), "completion_confirm",
                            {"task_id": task_id, "volunteers": names, "note": note},
                            f"confirm:{task_id}:{round_no}", now)
            await task_store.bump(conn, task_id, now, state=state, done_at=to_db(now))
        else:
            await task_store.bump(conn, task_id, now)
        await audit(conn, now=now, action="task_done", community_id=task.community_id,
                    actor_id=int(actor.id), object_type="task", object_id=task_id,
                    details={"note": note, "photo": photo_file_id})
        return Outcome(task_id=task_id, state=state)


async def add_done_note(db: Database, *, task_id: int, tg_user_id: int, now: datetime, note: str | None = None,
                        photo_file_id: str | None = None) -> None:
    """After Done, the volunteer may add a note or a photo; the person who confirms receives it."""
    note = (note or "").strip()[:REASON_MAX] or None
    if note is None and photo_file_id is None:
        raise InvalidInput()
    async with db.transaction() as conn:
        actor = await _actor(conn, tg_user_id)
        task = await load_task(conn, task_id)
        claim = await claim_store.of(conn, task_id, int(actor.id))
        if claim is None or claim.state not in ("done", "completed"):
            raise NotYourClaim()
        await claim_store.add_done_note(conn, claim.id, now, note, photo_file_id)
        if task.kind == "request":
            await _tell(conn, confirmer_id(task), "completion_done_note",
                        {"task_id": task_id, "volunteer": actor.display_name or "?", "note": note,
                         "photo": photo_file_id, "volunteer_id": int(actor.id), "media": photo_file_id is not None},
                        f"donenote:{task_id}:{actor.id}:{to_db(now)}", now)
        await audit(conn, now=now, action="task_done_note", community_id=task.community_id,
                    actor_id=int(actor.id), object_type="task", object_id=task_id,
                    details={"note": note, "photo": photo_file_id})  # what erasure looks for elsewhere


# -- confirm / not done / problem --------------------------------------------------------
async def _answering(conn: Connection, task_id: int, tg_user_id: int, *, deciding: bool) -> tuple[Member, Task]:
    """Who answers "did they help you?" and the task it is about, if they may answer and the task
    waits for the answer. ``deciding`` (Yes or Not done): not someone who holds a place on it."""
    actor = await _actor(conn, tg_user_id)
    task = await load_task(conn, task_id)
    if not _may_answer(actor, task):
        raise NotYourTask()
    if task.state == "completed":
        raise AlreadyDone()
    if task.kind != "request" or task.state != "awaiting_confirmation":
        raise InvalidState()
    if deciding and await _took_part(conn, task_id, int(actor.id)):
        raise TookPart()
    return actor, task


async def confirm(db: Database, *, task_id: int, tg_user_id: int, now: datetime) -> Outcome:
    """"Yes, thank you": completes the task and credits each volunteer who did it, once."""
    async with db.transaction() as conn:
        actor, task = await _answering(conn, task_id, tg_user_id, deciding=True)
        case_id = await case_store.open_id(conn, task_id)
        staff = _is_staff_of(actor, task)
        if case_id is not None and not staff:
            raise CaseOpen()
        if case_id is not None:
            await case_store.resolve(conn, case_id, now, resolution="credit", points=task.points,
                                     resolved_by=int(actor.id))
        return await _complete(conn, task, actor, task.points, "task_completed", now,
                               on_behalf=staff and int(actor.id) != confirmer_id(task))


async def _complete(conn: Connection, task: Task, actor: Member, amount: int, reason: str,
                    now: datetime, *, on_behalf: bool = False, extra: dict[str, Any] | None = None) -> Outcome:
    task_id = task.id
    done = await claim_store.member_ids(conn, task_id, ("done",))
    credited = await _credit_claims(conn, task, done, amount, reason, int(actor.id), now)
    await task_store.bump(conn, task_id, now, state="completed", confirmed_by=actor.id, completed_at=to_db(now))
    await audit(conn, now=now, action="task_confirmed", community_id=task.community_id,
                actor_id=int(actor.id), object_type="task", object_id=task_id,
                details={"credited": credited, "on_behalf": on_behalf, "reason": reason, **(extra or {})})
    return Outcome(task_id=task_id, state="completed", credited=credited)


async def not_done(db: Database, *, task_id: int, tg_user_id: int, now: datetime, reason: str | None = None) -> Outcome:
    """"Not done": the task goes back to the volunteer(s) with the reason."""
    reason = (reason or "").strip()[:REASON_MAX] or None
    async with db.transaction() as conn:
        actor, task = await _answering(conn, task_id, tg_user_id, deciding=True)
        if not _is_staff_of(actor, task) and await case_store.open_id(conn, task_id) is not None:
            raise CaseOpen()
        done = await claim_store.member_ids(conn, task_id, ("done",))
        await claim_store.done_back_to_active(conn, task_id, now)
        round_no = task.card_version + 1
        for mid in done:
            await _tell(conn, mid, "completion_not_done", {"task_id": task_id, "reason": reason},
                        f"notdone:{task_id}:{mid}:{round_no}", now)
        await task_store.bump(conn, task_id, now, state="in_progress", done_at=None)
        await audit(conn, now=now, action="task_not_done", community_id=task.community_id,
                    actor_id=int(actor.id), object_type="task", object_id=task_id, details={"reason": reason})
        return Outcome(task_id=task_id, state="in_progress")


async def report_problem(db: Database, *, task_id: int, tg_user_id: int, now: datetime,
                         reason: str | None = None) -> Outcome:
    """"Problem": opens a case for staff. The task waits until staff resolve it."""
    reason = (reason or "").strip()[:REASON_MAX] or None
    async with db.transaction() as conn:
        actor, task = await _answering(conn, task_id, tg_user_id, deciding=False)
        if await case_store.open_id(conn, task_id) is not None:
            raise CaseOpen()
        case_id = await case_store.open_case(conn, now, community_id=task.community_id, task_id=task_id,
                                             opened_by=int(actor.id), reason=reason)
        staff = await member_store.registered_staff_ids(conn, task.community_id)
        for sid in staff:
            await _tell(conn, sid, "completion_case_staff", {"case_id": case_id, "task_id": task_id, "reason": reason},
                        f"case:{case_id}:staff:{sid}", now)
        await task_store.bump(conn, task_id, now)
        await audit(conn, now=now, action="case_opened", community_id=task.community_id,
                    actor_id=int(actor.id), object_type="case", object_id=case_id,
                    details={"task_id": task_id, "reason": reason})
        return Outcome(task_id=task_id, state=task.state, case_id=case_id, staff_told=len(staff))


async def add_reason(db: Database, *, task_id: int, tg_user_id: int, now: datetime, kind: str, reason: str) -> int:
    """The reason typed after "Not done" (to the volunteers sent back) or "Problem" (to staff,
    stored on the open case). Returns how many people are told."""
    reason = reason.strip()[:REASON_MAX]
    if kind not in ("n", "p") or not reason:
        raise InvalidInput()
    async with db.transaction() as conn:
        actor = await _actor(conn, tg_user_id)
        task = await load_task(conn, task_id)
        if not _may_answer(actor, task):
            raise NotYourTask()
        if kind == "n":
            targets = await claim_store.member_ids(conn, task_id, ("active",))
            kind_out = "completion_reason_volunteer"
        else:
            case_id = await case_store.open_id(conn, task_id)
            if case_id is None:
                raise InvalidState()
            await case_store.add_reason(conn, case_id, reason)
            targets = await member_store.registered_staff_ids(conn, task.community_id)
            kind_out = "completion_reason_staff"
        for mid in targets:
            await _tell(conn, mid, kind_out, {"task_id": task_id, "reason": reason},
                        f"reason:{task_id}:{kind}:{mid}:{to_db(now)}", now)
        await audit(conn, now=now, action="task_reason", community_id=task.community_id,
                    actor_id=int(actor.id), object_type="task", object_id=task_id,
                    details={"kind": kind, "reason": reason})
        return len(targets)


HALF_MIN = 2  # below this, half of the points would be the same as all of them


def half_of(full: int) -> int:
    """"Half the points" of a task worth ``full`` points: at least one."""
    return max(1, full // 2)


def offers_half(full: int) -> bool:
    """Is "Half the points" a choice different from "Give points" for a task worth ``full``?"""
    return full >= HALF_MIN


async def resolve_case_half(db: Database, *, case_id: int, tg_user_id: int, now: datetime) -> Outcome:
    """Staff decide a problem case with half the task's points for each volunteer."""
    half = half_of(await case_store.task_points(db, case_id))
    return await resolve_case(db, case_id=case_id, tg_user_id=tg_user_id, now=now, resolution="partial", points=half)


def _case_amount(resolution: str, points: int | None, full: int) -> int:
    """Points each volunteer gets when a case is resolved: all, none, or ``points`` (1 to all)."""
    if resolution == "credit":
        return full
    if resolution == "no_credit":
        return 0
    if points is None or not 0 < points < max(full, 1) + 1:
        raise InvalidInput()
    return min(points, full)


async def resolve_case(db: Database, *, case_id: int, tg_user_id: int, now: datetime, resolution: str,
                       points: int | None = None, note: str | None = None) -> Outcome:
    """Staff decide a problem case: ``credit`` (full points), ``no_credit`` or ``partial`` (``points`` each)."""
    if resolution not in ("credit", "no_credit", "partial"):
        raise InvalidInput()
    async with db.transaction() as conn:
        actor = await _actor(conn, tg_user_id)
        case = await case_store.get(conn, case_id)
        if case is None:
            raise NotFound()
        task = await load_task(conn, case.task_id)
        if not _is_staff_of(actor, task):
            raise StaffOnly()
        if case.state != "open":
            raise AlreadyDone()
        if await _took_part(conn, task.id, int(actor.id)):
            raise TookPart()
        amount = _case_amount(resolution, points, task.points)
        if task.state != "awaiting_confirmation":
            raise InvalidState()
        await case_store.resolve(conn, case_id, now, resolution=resolution, points=amount,
                                 resolved_by=int(actor.id), note=(note or "")[:REASON_MAX] or None)
        outcome = await _complete(conn, task, actor, amount, "case_resolved", now, on_behalf=True,
                                  extra={"case_id": case_id, "resolution": resolution})
        if case.opened_by != int(actor.id):
            await _tell(conn, case.opened_by, "completion_case_resolved",
                        {"task_id": task.id, "resolution": resolution}, f"case:{case_id}:resolved", now)
        return Outcome(task_id=outcome.task_id, state=outcome.state, credited=outcome.credited, case_id=case_id)


# -- events ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attendee:
    member_id: int
    name: str
    state: str


async def event_attendees(db: Database, *, task_id: int) -> list[Attendee]:
    """Everyone who claimed the event and has not withdrawn (the attendance list)."""
    return [Attendee(a.member_id, str(a.display_name or "?"), a.state)
            for a in await claim_store.attendees(db, task_id)]


class NotAnEvent(DomainError):
    message = N_("Task #{id} is not an event: the person who was helped confirms it.")


class EventOver(InvalidState):
    message = N_("Task #{id} is already finished or cancelled.")


async def closer(conn: Connection, *, task_id: int, tg_user_id: int, admin_ids: Collection[int]) -> tuple[Member, Task]:
    """Who may close an event, the one rule (``attendance_to_close`` asks it first, ``close_event`` again
    in its write): staff of its community (or a super-admin) who are registered and, if another staff
    member could do it, not on its list; the event must still be open. Returns the closer and the
    event; raises the reason otherwise."""
    me = await member_store.get_by_tg(conn, tg_user_id)
    task = await task_store.get(conn, task_id)
    community = task.community_id if task is not None else (me.community_id if me is not None else None)
    if not is_staff_of(me, community, tg_user_id, admin_ids):
        raise StaffOnly()
    if me is None or not me.registered:
        raise NotRegistered()  # closing records who did it: the same rule as the Close button
    if task is None:
        raise NotFound()
    if task.kind != "event":
        raise NotAnEvent(id=task_id)
    if task.state == "completed":
        raise AlreadyDone()
    if task.state not in EVENT_OPEN_STATES:
        raise EventOver(id=task_id)
    if await _took_part(conn, task_id, int(me.id)) and await _other_staff(conn, task, int(me.id)):
        raise OnTheList()
    return me, task


async def attendance_to_close(db: Database, *, task_id: int, tg_user_id: int, admin_ids: Collection[int]
                              ) -> list[Attendee]:
    """The attendance list ``close_event`` works from, if this person may close the event (``closer``);
    raises the reason otherwise."""
    await closer(db.reader, task_id=task_id, tg_user_id=tg_user_id, admin_ids=admin_ids)
    return await event_attendees(db, task_id=task_id)


async def close_event(db: Database, *, task_id: int, tg_user_id: int, now: datetime,
                      absent: Iterable[int] = (), admin_ids: Collection[int] = ()) -> Outcome:
    """Staff close an event: everyone claimed is present unless listed in ``absent`` (no-shows).
    Those present are credited the event's points once; no-shows are recorded."""
    absent_set = set(absent)
    async with db.transaction() as conn:
        actor, task = await closer(conn, task_id=task_id, tg_user_id=tg_user_id, admin_ids=admin_ids)
        ids = await claim_store.member_ids(conn, task_id, claim_store.HOLDING)
        present = [m for m in ids if m not in absent_set]
        missing = [m for m in ids if m in absent_set]
        for mid in missing:
            await claim_store.set_state(conn, task_id, mid, "no_show", now)
            await claim_store.record_no_show(conn, now, community_id=task.community_id, task_id=task_id, member_id=mid,
                                             recorded_by=int(actor.id))
            await _tell_absent(conn, now, task_id, mid)
        credited = await _credit_claims(conn, task, present, task.points, "event_attended",
                                        int(actor.id), now)
        for mid in present:  # their details lose the Done and Withdraw buttons: nothing is left to press
            await scrub_details(conn, task_id, mid, "closed", now)
        await task_store.bump(conn, task_id, now, state="completed", confirmed_by=actor.id, completed_at=to_db(now))
        await _waiting_list_closed(conn, now, task_id)
        await audit(conn, now=now, action="event_closed", community_id=task.community_id,
                    actor_id=int(actor.id), object_type="task", object_id=task_id,
                    details={"present": present, "no_show": missing, "credited": credited})
        return Outcome(task_id=task_id, state="completed", credited=credited)


async def _tell_absent(conn: Connection, now: datetime, task_id: int, member_id: int) -> None:
    """A no-show hears it, with a way to say it is wrong; their details lose the Done and Withdraw buttons."""
    await scrub_details(conn, task_id, member_id, "absent", now)
    chat = await member_store.chat_of(conn, member_id)
    if chat is not None:
        await enqueue(conn, chat_id=chat, member_id=member_id, kind="event_absent", now=now,
                      payload={"task_id": task_id}, dedupe_key=f"absent:{task_id}:{member_id}")


async def _waiting_list_closed(conn: Connection, now: datetime, task_id: int) -> None:
    """The event took place: its waiting list ends, and those still waiting are thanked."""
    for w in await waitlist_store.close_open(conn, task_id, now):
        if w.tg_user_id is not None:
            await enqueue(conn, chat_id=w.tg_user_id, member_id=w.member_id, kind="waitlist_closed", now=now,
                          payload={"task_id": task_id}, dedupe_key=f"wl-closed:{task_id}:{w.member_id}")


# -- revoke ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Revoked:
    ledger_id: int
    member_id: int
    amount: int


async def revoke(db: Database, *, ledger_id: int, tg_user_id: int, now: datetime, reason: str) -> Revoked:
    """Staff take back a credit with a reason: a new negative row ``revoke:<ledger_id>``, never below zero."""
    reason = (reason or "").strip()[:REASON_MAX]
    if not reason:
        raise InvalidInput(N_("Please give a reason for taking the points back."))
    async with db.transaction() as conn:
        actor = await _actor(conn, tg_user_id)
        row = await ledger_store.entry(conn, ledger_id)
        if not actor.is_staff or (row is not None and row["community_id"] != actor.community_id):
            raise StaffOnly()  # first: the same for an entry that exists and one that does not
        if row is None:
            raise NotFound()
        if int(row["delta"]) <= 0 or str(row["reason"]) not in ("task_completed", "event_attended", "case_resolved",
                                                               "task_auto_confirmed"):
            raise InvalidState()
        key = f"revoke:{ledger_id}"
        if await ledger_store.key_used(conn, key):
            raise AlreadyRevoked()
        amount = int(row["delta"])
        bal = await ledger.balance(conn, int(row["member_id"]))
        if bal < amount:
            raise RevokeTooMuch(amount=amount, balance=bal)
        await ledger.debit(conn, member_id=int(row["member_id"]), amount=amount, reason="revoke", key=key, now=now,
                           task_id=row["task_id"], actor_id=int(actor.id), note=reason)
        await _tell(conn, int(row["member_id"]), "points_revoked",
                    {"amount": amount, "reason": reason, "task_id": row["task_id"]}, key, now)
        await audit(conn, now=now, action="points_revoked", community_id=int(row["community_id"]),
                    actor_id=int(actor.id), object_type="ledger", object_id=ledger_id,
                    details={"amount": amount, "reason": reason})
        return Revoked(ledger_id=ledger_id, member_id=int(row["member_id"]), amount=amount)
