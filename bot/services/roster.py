"""Staff and an event's volunteers (issue 21): who holds a place and who waits, and, before the event
is closed, taking a volunteer off it.

Two ways a place ends at staff's hand, each in one ``Database.write`` transaction like a claim:

- **removed** (``remove``): the claim is withdrawn with no mark against the volunteer (not a no-show,
  not a late withdrawal), for any reason staff have;
- **not coming** (``mark_no_show``), only before the event starts: the volunteer said they will not
  come, or could not be reached. It is recorded as a no-show, which lowers their reliability
  (``reliability.score``); after the start, no-shows are recorded when the event is closed
  (``completion.close_event``).

Either way the volunteer is told privately, the group card's counts change, and the place goes at
once to the first one waiting (``waitlist.fill_sync``), who is offered it. A second press, or a
redelivered update, finds the place no longer held and changes nothing (``NoPlace``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from bot.models import N_, DomainError, InvalidState, NotFound
from bot.services import waitlist
from bot.services.access import require_staff_for
from storage import claims as claim_store
from storage import members as member_store
from storage import tasks as task_store
from storage import waitlist as waitlist_store
from storage.claims import Attendee
from storage.db import Database, SyncConnection
from storage.outbox import audit_sync, enqueue_sync, scrub_details_sync
from storage.tasks import Task
from storage.timeutil import from_db, to_db
from storage.waitlist import Listed

REMOVED, NO_SHOW = "removed", "no_show"
MANAGED_STATES = ("open", "full")  # an event whose places staff may still change


class NotAnEvent(DomainError):
    message = N_("Task #{id} is not an event: only events have a list of volunteers.")


class EventClosed(InvalidState):
    message = N_("Event #{id} is already closed or cancelled, so its list can no longer be changed.")


class NoPlace(InvalidState):
    message = N_("{name} no longer has a place on this event. Nothing was changed.")


class DoneAlready(InvalidState):
    message = N_("{name} has already said the event's work is done, so their place stays. Record who came when "
                 "you close it: /closeevent {id}")


class Started(InvalidState):
    message = N_("Event #{id} has started. Record who did not come when you close it: /closeevent {id}")


@dataclass(frozen=True)
class Roster:
    """An event as staff see its people: who holds a place (in the order they claimed) and who waits."""

    task: Task
    places: list[Attendee]
    waiting: list[Listed]
    before_start: bool    # "Not coming" may still be recorded
    offered: frozenset[int] = frozenset()  # given a place from the waiting list, not yet kept


@dataclass(frozen=True)
class Ended:
    """A place ended by staff: whose, how, and who was given it from the waiting list."""

    task_id: int
    member_id: int
    name: str
    how: str              # REMOVED or NO_SHOW
    given: list[int]      # the members given the place (the first one waiting), if any


def before_start(task: Task, now: datetime) -> bool:
    """No-shows may be recorded early until the event's start (an event without one: until it is closed)."""
    return task.starts_at is None or now < from_db(task.starts_at)


async def _staff_event(db: Database, task_id: int, tg_user_id: int, admin_ids: Collection[int]) -> tuple[Task, int | None]:
    """The event, if the presser is staff of its community (or a super-admin); their member id."""
    staff = await require_staff_for(db, tg_user_id, admin_ids, await task_store.community_of(db, task_id))
    task = await task_store.row(db, task_id)
    if task is None:
        raise NotFound()
    if task.kind != "event":
        raise NotAnEvent(id=task_id)
    return task, None if staff is None else staff.id


async def roster(db: Database, *, task_id: int, tg_user_id: int, admin_ids: Collection[int],
                 now: datetime) -> Roster:
    """The event's volunteers and waiting list, for staff of its community only."""
    task, _staff = await _staff_event(db, task_id, tg_user_id, admin_ids)
    places = await claim_store.attendees(db, task_id)
    entries = await waitlist_store.open_entries(db, task_id)
    return Roster(task, places, [w for w in entries if w.state == "waiting"],
                  task.state in MANAGED_STATES and before_start(task, now),
                  frozenset(w.member_id for w in entries if w.state == "offered"))


async def remove(db: Database, *, task_id: int, member_id: int, tg_user_id: int, admin_ids: Collection[int],
                 now: datetime) -> Ended:
    """Staff take a volunteer off the event, with no mark against them; the place goes to the first one waiting."""
    _task, staff_id = await _staff_event(db, task_id, tg_user_id, admin_ids)
    return await db.write(lambda conn: _end(conn, now, task_id, member_id, staff_id, REMOVED))


async def mark_no_show(db: Database, *, task_id: int, member_id: int, tg_user_id: int, admin_ids: Collection[int],
                       now: datetime) -> Ended:
    """Before the start, staff record that a volunteer is not coming: a no-show; the place goes to the next one."""
    _task, staff_id = await _staff_event(db, task_id, tg_user_id, admin_ids)
    return await db.write(lambda conn: _end(conn, now, task_id, member_id, staff_id, NO_SHOW))


def _end(conn: SyncConnection, now: datetime, task_id: int, member_id: int, staff_id: int | None, how: str) -> Ended:
    """The transaction: end the place if it is still held, tell the volunteer, give the place on."""
    task = task_store.get_sync(conn, task_id, lock=True)  # locked and read in one (see storage.tasks.lock_sync)
    if task is None:
        raise NotFound()
    if task.state not in MANAGED_STATES:
        raise EventClosed(id=task_id)
    member = member_store.row_sync(conn, member_id)
    name = str(member["display_name"] or "?") if member is not None else "?"
    mine = claim_store.of_sync(conn, task_id, member_id)
    if how == NO_SHOW and not before_start(task, now):
        raise Started(id=task_id)
    if mine is not None and mine.done_at is not None:   # their Done stands: the close decides, not a removal
        raise DoneAlready(name=name, id=task_id)
    if mine is None or not claim_store.end_sync(conn, mine.id, "withdrawn" if how == REMOVED else "no_show", now,
                                                      removed_by=staff_id):
        raise NoPlace(name=name)
    if how == NO_SHOW:
        claim_store.record_no_show_sync(conn, now, community_id=task.community_id, task_id=task_id,
                                        member_id=member_id, recorded_by=staff_id)
    task_store.bump_sync(conn, task_id, now, state="open")  # the card's count; fill_sync makes it full again
    given = waitlist.withdrew_sync(conn, now, task_id, member_id, state=how)
    audit_sync(conn, now=now, action=f"task.{how}", community_id=task.community_id, actor_id=staff_id,
               object_type="task", object_id=task_id, details={"member": member_id, "given": given})
    scrub_details_sync(conn, task_id, member_id, how, now)
    chat = member_store.chat_of_sync(conn, member_id)
    if chat is not None:
        enqueue_sync(conn, chat_id=chat, member_id=member_id, kind="task_place_ended", now=now,
                     payload={"task_id": task_id, "how": how}, dedupe_key=f"ended:{mine.id}:{to_db(now)}")
    return Ended(task_id, member_id, name, how, given)
