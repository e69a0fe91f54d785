"""Waiting lists for full events (issue 21, feature 1).

A volunteer who finds an event full joins its waiting list. When a place frees (a withdrawal, a
declined or lapsed offer) ``fill_sync``, in the same write transaction, gives it to the one waiting
longest (first come, first served): an active claim at once, and a private message offering it
until the community's ``waitlist_hold_minutes`` pass. They keep it or decline it; declined or not
answered in time, it goes to the next one. Whoever cannot take the place when their turn comes
(below the reliability minimum, no longer a volunteer) is passed over, never someone ahead of them.

Every change runs in one ``Database.write`` transaction, like a claim: never more places held
than the event has.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import N_, DomainError, InvalidInput, InvalidState, NotFound, NotRegistered
from bot.services import reliability
from bot.services.access import require_staff
from bot.services.reliability import BelowMinimum
from storage import claims as claim_store
from storage import members as member_store
from storage import tasks as task_store
from storage import waitlist as store
from storage.db import Database, Row, SyncConnection
from storage.outbox import audit, audit_sync, enqueue_sync
from storage.tasks import ClaimTask
from storage.timeutil import from_db, to_db

HOLDING = ("active", "done")


class PlaceFree(DomainError):
    message = N_("There is a free place: please press “🙋 Claim” on the card.")


class MarkedNotComing(DomainError):
    message = N_("Staff have noted that you are not coming to this event. If you can come after all, please"
                 " contact staff.")


class RemovedByStaff(DomainError):
    message = N_("Staff took you off this event, so you cannot take a place on it again. If you have a"
                 " question, please ask the community office.")


class NotWaiting(InvalidState):
    message = N_("You are not on the waiting list of this event any more.")


@dataclass(frozen=True)
class Joined:
    position: int       # 1: next to be given a place
    already: bool       # they were on the list before this press


def _eligible(task: ClaimTask, member: Row | None) -> bool:
    """Whether the member may take a place on the event at all (the rules of a claim)."""
    return (member is not None and member["registered_at"] is not None and member["community_id"] == task.community_id
            and bool(member["is_volunteer"])
            and (task.organisation_id is None or member["organisation_id"] == task.organisation_id))


def _load(conn: SyncConnection, task_id: int, *, lock: bool = False) -> ClaimTask:
    task = task_store.for_claim_sync(conn, task_id, lock=lock)
    if task is None:
        raise NotFound()
    return task


async def join(db: Database, now: datetime, member_id: int, task_id: int) -> Joined:
    """Join the waiting list of a full event (twice: harmless; a free place: ``PlaceFree``)."""
    return await db.write(lambda conn: _join(conn, now, member_id, task_id))


def _join(conn: SyncConnection, now: datetime, member_id: int, task_id: int) -> Joined:
    task = _load(conn, task_id, lock=True)  # see storage.tasks.lock_sync
    member = member_store.row_sync(conn, member_id)
    if member is None or member["registered_at"] is None:
        raise NotRegistered()
    if not _eligible(task, member):
        raise DomainError(N_("Sorry, you cannot take a place on this event."))
    mine = claim_store.of_sync(conn, task_id, member_id)
    if mine is not None and mine.state in HOLDING:
        raise DomainError(N_("You already have a place on this event."))
    if mine is not None and mine.state == "no_show":
        raise MarkedNotComing()
    if mine is not None and mine.removed_at is not None:
        raise RemovedByStaff()
    if task.kind != "event" or task.state not in ("open", "full"):
        raise InvalidState()
    entry = store.of_sync(conn, task_id, member_id)
    if entry is not None and entry.state == "waiting":
        return Joined(store.position_sync(conn, task_id, entry.id), already=True)
    if task.state == "open":
        raise PlaceFree()
    entry_id = store.join_sync(conn, community_id=task.community_id, task_id=task_id, member_id=member_id, now=now)
    task_store.bump_sync(conn, task_id, now)  # the card shows the waiting count
    audit_sync(conn, now=now, action="waitlist.join", community_id=task.community_id, actor_id=member_id,
               object_type="task", object_id=task_id)
    position = store.position_sync(conn, task_id, entry_id)
    if member["tg_user_id"] is not None:
        enqueue_sync(conn, chat_id=int(member["tg_user_id"]), member_id=member_id, kind="waitlist_joined", now=now,
                     payload={"task_id": task_id, "position": position},
                     dedupe_key=f"wl-joined:{entry_id}")
    return Joined(position, already=False)


async def leave(db: Database, now: datetime, member_id: int, task_id: int) -> None:
    """Leave the waiting list (an offered place is declined)."""
    await db.write(lambda conn: _leave(conn, now, member_id, task_id))


def _leave(conn: SyncConnection, now: datetime, member_id: int, task_id: int) -> None:
    task, entry = _event_and_entry(conn, task_id, member_id, store.OPEN)
    if entry.state == "offered":
        _give_back(conn, now, task, entry.id, member_id, "declined")
        return
    store.set_state_sync(conn, entry.id, "left", now)
    task_store.bump_sync(conn, task_id, now)
    audit_sync(conn, now=now, action="waitlist.leave", actor_id=member_id, object_type="task", object_id=task_id)


def _event_and_entry(conn: SyncConnection, task_id: int, member_id: int,
                     states: Collection[str]) -> tuple[ClaimTask, store.Entry]:
    """The event, locked and read in one statement, and the member's entry on its list; NotWaiting
    unless the entry is in ``states``."""
    task = task_store.for_claim_sync(conn, task_id, lock=True)  # see storage.tasks.lock_sync
    entry = None if task is None else store.of_sync(conn, task_id, member_id)
    if task is None or entry is None or entry.state not in states:
        raise NotWaiting()
    return task, entry


def _entry_in(conn: SyncConnection, task_id: int, member_id: int, states: Collection[str]) -> store.Entry:
    """The member's entry on the event's list, the event locked first; NotWaiting unless it is in ``states``."""
    task_store.lock_sync(conn, task_id)  # see storage.tasks.lock_sync
    entry = store.of_sync(conn, task_id, member_id)
    if entry is None or entry.state not in states:
        raise NotWaiting()
    return entry


async def keep(db: Database, now: datetime, member_id: int, task_id: int) -> None:
    """The volunteer keeps the place they were given; they get the event's details."""
    await db.write(lambda conn: _keep(conn, now, member_id, task_id))


def _keep(conn: SyncConnection, now: datetime, member_id: int, task_id: int) -> None:
    entry = _entry_in(conn, task_id, member_id, ("offered",))
    store.set_state_sync(conn, entry.id, "kept", now)
    audit_sync(conn, now=now, action="waitlist.keep", actor_id=member_id, object_type="task", object_id=task_id)
    chat = member_store.chat_of_sync(conn, member_id)
    if chat is not None:
        enqueue_sync(conn, chat_id=chat, member_id=member_id, kind="task_claimed_volunteer", now=now,
                     payload={"task_id": task_id}, dedupe_key=f"wl-kept:{entry.id}")


async def decline(db: Database, now: datetime, member_id: int, task_id: int) -> None:
    """The volunteer does not want the place after all: it goes to the next one waiting."""
    await db.write(lambda conn: _decline(conn, now, member_id, task_id))


def _decline(conn: SyncConnection, now: datetime, member_id: int, task_id: int) -> None:
    task, entry = _event_and_entry(conn, task_id, member_id, ("offered",))
    _give_back(conn, now, task, entry.id, member_id, "declined")


def _give_back(conn: SyncConnection, now: datetime, task: ClaimTask, entry_id: int, member_id: int,
               state: str) -> None:
    """An offered place is declined or lapsed: the claim goes, the next one waiting gets it."""
    store.set_state_sync(conn, entry_id, state, now)
    mine = claim_store.of_sync(conn, task.id, member_id)
    if mine is not None and mine.state == "active":
        claim_store.withdraw_sync(conn, mine.id, now)  # not a late withdrawal: they never said yes
        if task.state in ("open", "full"):
            task_store.bump_sync(conn, task.id, now, state="open")
    audit_sync(conn, now=now, action=f"waitlist.{state}", community_id=task.community_id, actor_id=member_id,
               object_type="task", object_id=task.id)
    fill_sync(conn, now, task.id)


def _take(conn: SyncConnection, now: datetime, task: ClaimTask, member_id: int) -> bool:
    """Whether the member, first in line, can take the place now (else they are passed over)."""
    member = member_store.row_sync(conn, member_id)
    if not _eligible(task, member):
        return False
    try:
        reliability.check_claim_sync(conn, minimum=task.min_reliability, member_id=member_id, kind=task.kind,
                                     now=now)
    except BelowMinimum:
        return False
    return True


def withdrew_sync(conn: SyncConnection, now: datetime, task_id: int, member_id: int,
                  state: str = "declined") -> list[int]:
    """In the withdraw transaction (or staff's, ``bot/services/roster.py``): a place given from the
    list and given back before it was kept ends as ``state`` (declined; staff: removed, no_show); then
    the freed place goes to the first one waiting (``fill_sync``)."""
    entry = store.of_sync(conn, task_id, member_id)
    if entry is not None and entry.state == "offered":
        store.set_state_sync(conn, entry.id, state, now)
    return fill_sync(conn, now, task_id)


async def fill(db: Database, now: datetime, task_id: int) -> list[int]:
    """``fill_sync`` in a transaction of its own (after staff gave an event more places)."""
    return await db.write(lambda conn: fill_sync(conn, now, task_id))


def fill_sync(conn: SyncConnection, now: datetime, task_id: int) -> list[int]:
    """In a transaction that freed a place: give each free place of the event to the one waiting
    longest who can take it. Returns the members given a place, in order."""
    task = task_store.for_claim_sync(conn, task_id, lock=True)
    if task is None or task.kind != "event" or task.state not in ("open", "full"):
        return []
    taken = claim_store.taken_sync(conn, task_id)
    given: list[int] = []
    passed_over = False
    hold = timedelta(minutes=store.hold_minutes_sync(conn, task.community_id))
    while taken < task.slots:
        entry = store.first_waiting_sync(conn, task_id)
        if entry is None:
            break
        mine = claim_store.of_sync(conn, task_id, entry.member_id)
        barred = mine is not None and (mine.state in (*HOLDING, "no_show") or mine.removed_at is not None)
        if barred or not _take(conn, now, task, entry.member_id):
            store.set_state_sync(conn, entry.id, "skipped", now)
            passed_over = True
            continue
        if mine is not None:
            claim_store.reactivate_sync(conn, mine.id, now)
        else:
            claim_store.insert_sync(conn, task_id, entry.member_id, now)
        store.offer_sync(conn, entry.id, now, now + hold)
        taken += 1
        given.append(entry.member_id)
        _tell_offered(conn, now, task_id, entry.id, entry.member_id, now + hold)
    if given:
        task_store.claimed_sync(conn, task_id, now, "full" if taken >= task.slots else "open")
        audit_sync(conn, now=now, action="waitlist.promote", community_id=task.community_id,
                   object_type="task", object_id=task_id, details={"members": given})
    elif passed_over:
        task_store.bump_sync(conn, task_id, now)  # the waiting count on the card changed
    return given


def _tell_offered(conn: SyncConnection, now: datetime, task_id: int, entry_id: int, member_id: int,
                  until: datetime) -> None:
    minutes = max(1, round((until - now).total_seconds() / 60))
    chat = member_store.chat_of_sync(conn, member_id)
    if chat is not None:
        enqueue_sync(conn, chat_id=chat, member_id=member_id, kind="waitlist_offer", now=now,
                     payload={"task_id": task_id, "until": to_db(until), "minutes": minutes}, dedupe_key=f"wl-offer:{entry_id}")


async def sweep(db: Database, now: datetime) -> int:
    """Offers not answered in time lapse: each place goes to the next one waiting. Idle: one
    look-up in the index of open offers, whatever the history."""
    lapsed = 0
    for entry_id in await store.expired_offers(db, now):
        lapsed += await db.write(_lapse_fn(now, entry_id))
    return lapsed


def _lapse_fn(now: datetime, entry_id: int) -> Callable[[SyncConnection], int]:
    return lambda conn: _lapse(conn, now, entry_id)


def _lapse(conn: SyncConnection, now: datetime, entry_id: int) -> int:
    task = task_store.for_entry_sync(conn, entry_id)  # the event locked and read in one
    entry = None if task is None else store.by_id_sync(conn, entry_id)  # as it is now that no one else decides
    if task is None or entry is None or entry.state != "offered" or entry.offer_until is None \
            or from_db(entry.offer_until) > now:
        return 0  # answered meanwhile
    chat = member_store.chat_of_sync(conn, entry.member_id)
    if chat is not None:
        enqueue_sync(conn, chat_id=chat, member_id=entry.member_id, kind="waitlist_lapsed", now=now,
                     payload={"task_id": entry.task_id}, dedupe_key=f"wl-lapsed:{entry.id}")
    _give_back(conn, now, task, entry.id, entry.member_id, "lapsed")
    return 1


# ---------------------------------------------------------------- staff: how long a place is held
HOLD_CHOICES = (30, 60, 120, 360)  # minutes a volunteer has to keep or decline a place given


async def hold_minutes(db: Database, community_id: int) -> int:
    return await store.hold_minutes(db, community_id)


async def set_hold_minutes(db: Database, *, community_id: int, tg_user_id: int, admin_ids: Collection[int],
                           minutes: int, now: datetime) -> int:
    """Staff choose how long a place given from the waiting list is held (one of ``HOLD_CHOICES``)."""
    if minutes not in HOLD_CHOICES:
        raise InvalidInput()
    staff = await require_staff(db, tg_user_id, admin_ids, community_id)
    async with db.transaction() as conn:
        await store.set_hold_minutes(conn, community_id, minutes)
        await audit(conn, now=now, action="community.waitlist_hold_minutes", community_id=community_id,
                    actor_id=None if staff is None else staff.id, object_type="community", object_id=community_id,
                    details={"minutes": minutes})
    return minutes
