"""Help requests and dispatch: publish, review, claim, withdraw, cancel (the dispatch half of the
task state machine, see docs/ARCHITECTURE.md "Task states").

Every transition runs in one write transaction: it re-reads the task inside the transaction,
checks who may act and from which state, writes the change, an audit row and any outbox messages.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.models import (
    N_,
    AlreadyClaimed,
    DomainError,
    InvalidInput,
    InvalidState,
    NotAllowed,
    NotFound,
    NotRegistered,
    TaskFull,
)
from bot.numbers import button_number, number
from bot.services import alerts, masking, reliability, waitlist
from bot.services.areas import match_area
from storage import areas as area_store
from storage import categories as category_store
from storage import claims as claim_store
from storage import communities as community_store
from storage import members as member_store
from storage import notifications as notification_store
from storage import tasks as task_store
from storage import waitlist as waitlist_store
from storage.db import Connection, Database, Row, SyncConnection
from storage.members import Member
from storage.outbox import (
    Message,
    audit,
    audit_sync,
    coming_ended_sync,
    enqueue,
    enqueue_all_sync,
    enqueue_sync,
    scrub_details,
    scrub_details_sync,
)
from storage.tasks import ACTIVE_TASK_STATES, ClaimTask, OpenTask, Task
from storage.timeutil import to_db
from storage.waitlist import Waiting

OPEN_STATES = ("open", "full")
EVENT_OPEN_STATES = (*ACTIVE_TASK_STATES, "awaiting_confirmation")  # until it is closed or cancelled
CLAIMABLE_STATES = ("open",)
CANCELLABLE_STATES = ("draft", "pending_review", *ACTIVE_TASK_STATES)
ACTIVE_CLAIM_STATES = ("active", "done")

class NotVolunteer(NotAllowed):
    message = N_("Only volunteers can claim tasks. To help too, send /start and choose “🤝 Both”.")


class OtherCommunity(DomainError):
    message = N_("This task belongs to another community.")


def label(title: str | None, description: str | None, limit: int = 24, secrets: Sequence[object] = ()) -> str | None:
    """How a task is named to the people in it: its title, else the start of the description
    (phones and the ``secrets`` masked in either), else None (callers then say "task #id")."""
    if title:
        return masking.mask(title, secrets)
    text = " ".join(masking.mask(description, secrets).split())
    if not text:
        return None
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def mask_phones(text: str | None) -> str:
    """Phone numbers masked, however they were written (see ``bot.services.masking``)."""
    return masking.mask(text)


def public_text(text: str | None, secrets: Sequence[object]) -> str:
    """A title or description as others may see it: phone numbers masked, and the requester's name
    and address (registered, for this task, or a proxy's) replaced wherever they were typed in."""
    return masking.mask(text, secrets)


# What a group must not see of a task: its own columns, and the requester's name and address
# (queries that join the requester name them requester_name and requester_address).
SECRET_COLUMNS = ("address", "proxy_name", "proxy_address", "proxy_phone", "requester_name", "requester_address")


def _has(task: Any, name: str) -> bool:
    return name in set(task.keys()) if hasattr(task, "keys") else hasattr(task, name)


def _col(task: Any, name: str) -> Any:
    return task[name] if hasattr(task, "keys") else getattr(task, name)


def secrets_of(task: Task | Row | dict[str, Any]) -> list[object]:
    """The secrets a task carries (those of ``SECRET_COLUMNS`` it has): a ``Task`` (an ``OpenTask``
    names the requester), or a row (or dict) of a query that selects what it needs."""
    return [_col(task, k) for k in SECRET_COLUMNS if _has(task, k)]


async def task_secrets(db: Database, task: Task | Row | dict[str, Any]) -> list[object]:
    """``secrets_of`` a task, looking up the requester if the task does not name them."""
    secrets = secrets_of(task)
    requester_id = _col(task, "requester_id")
    if not _has(task, "requester_name") and requester_id is not None:
        row = await member_store.by_id(db, int(requester_id))
        if row is not None:
            secrets += [row.display_name, row.address]
    return secrets


async def public_description(db: Database, task: Task) -> str:
    """``public_text`` of a task's description (or title), looking up the requester."""
    return public_text(task.description or task.title or "", await task_secrets(db, task))


async def public_title(db: Database, task: Task) -> str:
    """``public_text`` of a task's title ("" if it has none), looking up the requester."""
    return public_text(task.title, await task_secrets(db, task)) if task.title else ""


@dataclass(frozen=True)
class Details:
    """What a card's Details button tells a member: the public text, and whether there is a voice."""

    text: str
    voice: bool


async def details_for(db: Database, task_id: int, member: Any) -> Details:
    """The public details of a task for a member of its community (OtherCommunity otherwise)."""
    task = await task_store.row(db, task_id)
    if task is None:
        raise NotFound()
    if task.community_id != member.community_id:
        raise OtherCommunity()
    return Details(await public_description(db, task), bool(task.voice_file_id))


def parse_task_id(data: str | None, prefix: str) -> int:
    """Parse callback data ``<prefix>:<id>`` (untrusted input)."""
    if not data or len(data) > 64 or not data.startswith(prefix + ":"):
        raise InvalidInput()
    return button_number(data[len(prefix) + 1:])


@dataclass(frozen=True)
class NewTask:
    category: str
    description: str | None = None
    voice_file_id: str | None = None
    title: str | None = None
    when_kind: str = "asap"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    address: str | None = None
    area_id: int | None = None
    slots: int = 1
    points: int | None = None  # None: the category's default_points
    kind: str = "request"
    is_proxy: bool = False
    proxy_name: str | None = None
    proxy_phone: str | None = None
    proxy_address: str | None = None
    organisation_id: int | None = None
    submit_key: str | None = None  # idempotency: the same draft submitted twice creates one task


# What a task may be, here and only here (the /request and /publish dialogs and /edittask ask these).
SLOTS_MIN, SLOTS_MAX = 1, 200    # places: a task's or an event's places can be 1 to 200
POINTS_MIN, POINTS_MAX = 0, 100  # points per volunteer set by staff: 0 to 100
MAX_AHEAD = timedelta(days=90)  # a task's times lie within the next 90 days
ASK_AFTER_CLAIM = timedelta(seconds=5)  # the honours question follows a first claim's details by this much


def check_slots(n: int | None) -> int:
    """Places can be ``SLOTS_MIN`` to ``SLOTS_MAX`` (None: what was typed is no number)."""
    if n is None or not SLOTS_MIN <= n <= SLOTS_MAX:
        raise InvalidInput(N_("Please type a number from 1 to {n}."), n=SLOTS_MAX)
    return n


def check_points(n: int | None) -> int:
    """Points per volunteer can be ``POINTS_MIN`` to ``POINTS_MAX`` (None: what was typed is no number)."""
    if n is None or not POINTS_MIN <= n <= POINTS_MAX:
        raise InvalidInput(N_("Please type a number from 0 to {n}."), n=POINTS_MAX)
    return n


def time_allowed(when: datetime, now: datetime) -> bool:
    """A task's time is in the future and at most ``MAX_AHEAD`` away."""
    return now < when <= now + MAX_AHEAD


def check_time(when: datetime, now: datetime, *, start: datetime | None = None, start_text: str = "") -> None:
    """``when`` may be a task's start (or, given ``start``, its end: after the start, shown as ``start_text``)."""
    if when <= now:
        raise InvalidInput(N_("That time has already passed. Please type a time in the future."))
    if when > now + MAX_AHEAD:
        raise InvalidInput(N_("That is too far ahead. Please choose a time within the next 90 days."))
    if start is not None and when <= start:
        raise InvalidInput(N_("The end must be after the start ({start})."), start=start_text)


def _check_new(new: NewTask, now: datetime, staff: bool) -> None:
    if new.kind not in ("request", "event") or new.when_kind not in ("asap", "today", "tomorrow", "at"):
        raise InvalidInput()
    check_slots(new.slots)
    if new.points is not None:
        check_points(new.points)
    if new.starts_at is not None:
        check_time(new.starts_at, now)
    if new.ends_at is not None:
        check_time(new.ends_at, now, start=new.starts_at or now)
    if not staff and (new.is_proxy or new.kind == "event" or new.slots > 5 or new.points is not None):
        raise NotAllowed()
    if not (new.description or new.voice_file_id or new.title):
        raise InvalidInput()


@dataclass(frozen=True)
class ClaimResult:
    task_id: int
    claim_id: int
    taken: int
    slots: int
    state: str


async def load_member(conn: Connection, member_id: int) -> Member:
    """The (not deleted) member's row inside a transaction; NotRegistered if there is none."""
    row = await member_store.get(conn, member_id)
    if row is None:
        raise NotRegistered()
    return row


async def load_task(conn: Connection, task_id: int) -> Task:
    """The task inside a transaction; NotFound if there is none (the one task loader of the services)."""
    task = await task_store.get(conn, task_id)
    if task is None:
        raise NotFound()
    return task


async def _review_required(conn: Connection, community_id: int) -> bool:
    setting = await community_store.review_setting(conn, community_id)
    if setting is None:
        return False
    if setting.required:
        return True
    if not setting.settings:
        return False
    try:
        settings: Any = json.loads(setting.settings)
    except ValueError:
        return False
    return bool(isinstance(settings, dict) and settings.get("review_required"))


async def state_of(db: Database, task_id: int) -> str | None:
    """A task's state (``pending_review`` while staff have yet to review it, ``open``...)."""
    return await task_store.state_of(db, task_id)


async def _default_points(conn: Connection, community_id: int, category: str) -> int:
    points = await category_store.default_points(conn, community_id, category)
    return 1 if points is None else points


async def _place(conn: Connection, new: NewTask, creator: Member, community_id: int,
                 requester_id: int | None) -> tuple[str | None, int | None]:
    """(address, area id) of a new task: as given, else where the requester lives."""
    address = new.address if new.address is not None else (creator.address if requester_id else None)
    area_id = new.area_id
    typed = new.address if new.address is not None else new.proxy_address
    if area_id is None and typed:
        # "3号楼 2单元" typed as the place: the card can name the listed area 3号楼.
        area_id = match_area(await area_store.active_in(conn, community_id), typed)
    if area_id is None and new.address is None and requester_id:
        area_id = creator.area_id  # at their registered home
    return address, area_id


async def _insert_task(conn: Connection, now: datetime, new: NewTask, *, community_id: int,
                       creator_id: int, requester_id: int | None, area_id: int | None, address: str | None,
                       points: int, state: str, published: bool) -> int:
    task_id = await task_store.insert(conn, now, task_store.NewRow(
        community_id=community_id, requester_id=requester_id, created_by=creator_id, is_proxy=new.is_proxy,
        proxy_name=new.proxy_name, proxy_phone=new.proxy_phone, proxy_address=new.proxy_address, kind=new.kind,
        category=new.category, title=new.title, description=new.description, voice_file_id=new.voice_file_id,
        area_id=area_id, address=address, when_kind=new.when_kind, starts_at=new.starts_at, ends_at=new.ends_at,
        slots=new.slots, points=points, organisation_id=new.organisation_id, state=state), published=published)
    if new.submit_key:
        await task_store.record_submission(conn, now, new.submit_key, task_id)
    return task_id


async def _ask_review(conn: Connection, now: datetime, task_id: int, community_id: int) -> None:
    """Every staff member of the community is asked to review the new task."""
    for s in await member_store.staff_chats_of(conn, community_id):
        await enqueue(conn, chat_id=s.tg_user_id, member_id=s.member_id, kind="task_review",
                      now=now, payload={"task_id": task_id}, dedupe_key=f"review:{task_id}:{s.member_id}")


async def create_task(db: Database, now: datetime, creator_id: int, new: NewTask, *, staff: bool = False) -> int:
    """Create and (unless the community wants review) publish a task. Returns the task id."""
    _check_new(new, now, staff)
    async with db.transaction() as conn:
        creator = await load_member(conn, creator_id)
        if creator.community_id is None or creator.registered_at is None:
            raise NotRegistered()
        community_id = int(creator.community_id)
        if new.submit_key:
            prior = await task_store.submitted(conn, new.submit_key)
            if prior is not None:
                return prior
        points = new.points if new.points is not None else await _default_points(conn, community_id, new.category)
        review = not staff and await _review_required(conn, community_id)
        state = "pending_review" if review else "open"
        requester_id = None if (new.is_proxy or new.kind == "event") else creator_id
        address, area_id = await _place(conn, new, creator, community_id, requester_id)
        task_id = await _insert_task(conn, now, new, community_id=community_id, creator_id=creator_id,
                                     requester_id=requester_id, area_id=area_id, address=address, points=points,
                                     state=state, published=not review)
        await audit(conn, now=now, action="task.create", community_id=community_id, actor_id=creator_id,
                    object_type="task", object_id=task_id, details={"state": state})
        if not review and new.when_kind == "asap" and new.kind == "request":
            await alerts.ping_on_duty(conn, now, task_id, community_id, creator_id, area_id, new.category)
        if review:
            await _ask_review(conn, now, task_id, community_id)
        elif not staff and requester_id is not None:
            await _tell_staff_if_no_group(conn, now, task_id, community_id)
        return task_id


NO_GROUP_STAFF = N_("A resident asked for help (task #{id}), but Linli is not in the volunteer group of {name} at the"
                    " moment, so no volunteer can see it. Please add me back to the group (the task is posted then),"
                    " or find someone and call the resident.")


async def _tell_staff_if_no_group(conn: Connection, now: datetime, task_id: int, community_id: int) -> None:
    """The bot was removed from the community's group: staff hear of a resident's new request privately."""
    community = await community_store.get(conn, community_id)
    if community is None or community.group_chat_id is not None:
        return
    for staff in await member_store.staff_chats_of(conn, community_id):
        await enqueue(conn, chat_id=staff.tg_user_id, member_id=staff.member_id, kind="text", now=now,
                      payload={"message": NO_GROUP_STAFF,
                               "params": {"id": task_id, "name": html.escape(community.name, quote=False)}},
                      dedupe_key=f"no_group:{task_id}:{staff.member_id}")


async def reaches_volunteers(db: Database, task_id: int) -> bool:
    """Whether volunteers can see the task now: its community's group has the bot in it."""
    return await task_store.community_has_group(db, task_id)


async def toggle_on_duty(db: Database, now: datetime, tg_user_id: int) -> bool:
    """Switch a volunteer's "on duty" flag; returns the new value."""
    async with db.transaction() as conn:
        row = await member_store.get_by_tg(conn, tg_user_id)
        if row is None or row.registered_at is None:
            raise NotRegistered()
        if not row.is_volunteer:
            raise NotAllowed()
        value = not bool(row.on_duty)
        await member_store.set_on_duty(conn, int(row.id), value, now)
        await audit(conn, now=now, action="member.on_duty" if value else "member.off_duty", actor_id=int(row.id),
                    object_type="member", object_id=int(row.id))
        return value


async def review(db: Database, now: datetime, staff_id: int, task_id: int, *, approve: bool) -> str:
    async with db.transaction() as conn:
        actor = await load_member(conn, staff_id)
        task = await load_task(conn, task_id)
        if not actor.is_staff or actor.community_id != task.community_id:
            raise NotAllowed()
        if task.state != "pending_review":
            raise InvalidState()
        state = await task_store.reviewed(conn, task_id, now, staff_id=staff_id, approve=approve)
        await audit(conn, now=now, action="task.approve" if approve else "task.reject",
                    community_id=task.community_id, actor_id=staff_id, object_type="task", object_id=task_id)
        if task.requester_id is not None:
            req = await load_member(conn, task.requester_id)
            if req.tg_user_id is not None:
                await enqueue(conn, chat_id=int(req.tg_user_id), member_id=int(req.id),
                              kind="task_reviewed", now=now, payload={"task_id": task_id, "approved": approve},
                              dedupe_key=f"reviewed:{task_id}")
        return state


async def claim(db: Database, now: datetime, member_id: int, task_id: int, *,
                glance: task_store.ClaimGlance | None = None) -> ClaimResult:
    """Take one place. Race-safe: the whole check-and-insert runs under one write transaction.

    A tap on a task that is already full is refused from a plain read first, without waiting for
    the writer: in a claim storm hundreds of such taps would otherwise queue behind each other.
    ``glance``: that read, when it was made with the press (the card's row, bot/buttons.py).
    """
    quick = glance if glance is not None else await task_store.claim_glance(db, task_id, member_id)
    if quick is not None and quick.mine not in ACTIVE_CLAIM_STATES:
        refuse_taken_off(quick.mine, quick.removed)
        if _no_place(quick.state, quick.kind):
            raise full(quick.kind)
    return await db.write(lambda conn: _claim(conn, now, member_id, task_id))


EVENT_FULL = N_("Sorry, all places are taken. To be next in line, tap “🕒 Join the waiting list” on the card.")


def full(kind: str) -> TaskFull:
    """No place left: an event's card offers its waiting list instead (bot/jobs/cards.py), so say so."""
    return TaskFull(EVENT_FULL) if kind == "event" else TaskFull()


def refuse_taken_off(mine: str | None, removed: bool) -> None:
    """Staff took the member off the task, or noted they are not coming: that is said first, full or not
    (it is the answer whatever places come free), and is not theirs to undo."""
    if removed:
        raise waitlist.RemovedByStaff()
    if mine == "no_show":
        raise waitlist.MarkedNotComing()


def _no_place(state: str, kind: str) -> bool:
    """No place is free: an event is full, a request has its volunteers (it is under way)."""
    return state == "full" or (state == "in_progress" and kind == "request")


def _claim(conn: SyncConnection, now: datetime, member_id: int, task_id: int) -> ClaimResult:
    """The claim transaction, run in one piece on the writer's thread (``Database.write``): the
    storage functions it calls are plain synchronous ones on the same connection. On PostgreSQL each
    statement is a round trip to the server: the task is locked and read in one, and the member, their
    claim and the places taken are read together once the lock is held."""
    task = task_store.for_claim_sync(conn, task_id, lock=True)  # PostgreSQL: claims of one task decide one after another
    if task is None:
        raise NotFound()
    standing = claim_store.standing_sync(conn, task_id, member_id)
    mine = standing.mine_state
    if mine not in ACTIVE_CLAIM_STATES:
        refuse_taken_off(mine, standing.mine_removed)  # staff's word (bot/services/roster.py) comes first
        if _no_place(task.state, task.kind):
            raise full(task.kind)  # filled while this tap waited for the writer: refuse before anything else
    member = _may_claim(task, standing.member, mine, member_id)
    reliability.check_claim_sync(conn, minimum=task.min_reliability, member_id=member_id, kind=task.kind, now=now)
    taken = standing.taken
    if taken >= task.slots:
        raise full(task.kind)
    if standing.mine_id is not None:
        claim_store.reactivate_sync(conn, standing.mine_id, now)  # a withdrawn claim comes back
        claim_id = standing.mine_id
    else:
        claim_id = claim_store.insert_sync(conn, task_id, member_id, now)
    taken += 1
    state = task.state
    if taken >= task.slots:
        state = "full" if task.kind == "event" else "in_progress"
    task_store.claimed_sync(conn, task_id, now, state)
    audit_sync(conn, now=now, action="task.claim", community_id=task.community_id, actor_id=member_id,
               object_type="task", object_id=task_id, details={"claim_id": claim_id})
    _tell_claimed(conn, now, task, member, claim_id)
    return ClaimResult(task_id, claim_id, taken, task.slots, state)


def _may_claim(task: ClaimTask, member: Row | None, mine: str | None, member_id: int) -> Row:
    """Who may take a place on a task (``mine``: the state of their claim on it, if any): returns the
    member, or raises why not (the count of places is checked after)."""
    if member is None or member["registered_at"] is None:
        raise NotRegistered()
    if member["community_id"] != task.community_id:
        raise OtherCommunity()
    if task.requester_id == member_id or (task.created_by == member_id and task.kind == "request"):
        raise DomainError(N_("This is your own request, so you cannot claim it."))
    if not member["is_volunteer"]:
        raise NotVolunteer()
    if task.organisation_id is not None and member["organisation_id"] != task.organisation_id:
        raise DomainError(N_("This task is open only to members of {org}."), org=task.organisation_name or "?")
    if mine in ACTIVE_CLAIM_STATES:
        raise AlreadyClaimed()
    if task.state == "full":
        raise full(task.kind)
    if task.state not in CLAIMABLE_STATES:
        raise InvalidState()
    return member


def _tell_claimed(conn: SyncConnection, now: datetime, task: ClaimTask, member: Row, claim_id: int) -> None:
    """The volunteer gets the details; the person helped hears who is coming (one INSERT for both)."""
    task_id, member_id = task.id, int(member["id"])
    messages: list[Message] = []
    if member["tg_user_id"] is not None:
        messages.append(Message(chat_id=int(member["tg_user_id"]), member_id=member_id, kind="task_claimed_volunteer",
                                now=now, payload={"task_id": task_id}, dedupe_key=f"claimed:{claim_id}:{to_db(now)}"))
    if task.requester_id is not None and task.requester_chat is not None:
        messages.append(Message(chat_id=int(task.requester_chat), member_id=task.requester_id,
                                kind="task_who_is_coming", now=now,
                                payload={"task_id": task_id, "volunteer": member["display_name"] or "",
                                         "volunteer_id": member_id},
                                dedupe_key=f"coming:{claim_id}:{to_db(now)}"))
    enqueue_all_sync(conn, messages)
    if member["tg_user_id"] is not None and member["announce_asked_at"] is None:
        # Their first claim: asked now, long before a first honour would be announced, and
        # after the details they need first.
        member_store.ask_announce_sync(conn, member_id=member_id, tg_user_id=int(member["tg_user_id"]), now=now,
                                       not_before=now + ASK_AFTER_CLAIM)


async def withdraw(db: Database, now: datetime, member_id: int, task_id: int) -> bool:
    """Give the place back; True if it was late (see ``reliability.note_withdrawal_sync``)."""
    return await db.write(lambda conn: _withdraw(conn, now, member_id, task_id))


def _withdraw(conn: SyncConnection, now: datetime, member_id: int, task_id: int) -> bool:
    """The withdraw transaction, in one piece on the writer's thread (see ``claim``)."""
    task = task_store.get_sync(conn, task_id, lock=True)  # locked and read in one (see storage.tasks.lock_sync)
    if task is None:
        raise NotFound()
    existing = claim_store.of_sync(conn, task_id, member_id)
    if existing is None or existing.state != "active":
        raise InvalidState()
    if task.state not in ACTIVE_TASK_STATES:
        raise InvalidState()
    claim_store.withdraw_sync(conn, existing.id, now)
    late = reliability.note_withdrawal_sync(conn, community_id=task.community_id, task_id=task_id,
                                            member_id=member_id, starts_at=task.starts_at, now=now)
    task_store.bump_sync(conn, task_id, now, state="open")
    waitlist.withdrew_sync(conn, now, task_id, member_id)  # the first one waiting, if any, gets the place
    audit_sync(conn, now=now, action="task.withdraw", community_id=task.community_id,
               actor_id=member_id, object_type="task", object_id=task_id)
    scrub_details_sync(conn, task_id, member_id, "withdrawn", now)
    if task.requester_id is not None:
        chat = member_store.chat_of_sync(conn, task.requester_id)
        if chat is not None:
            enqueue_sync(conn, chat_id=chat, member_id=task.requester_id,
                         kind="task_volunteer_withdrew", now=now,
                         payload={"task_id": task_id, "volunteer_id": member_id},
                         dedupe_key=f"withdrew:{existing.id}:{to_db(now)}")
        coming_ended_sync(conn, task_id, task.requester_id, member_id, now)  # "X is coming" no longer stands
    return late


def _may_cancel(actor: Member, task: Task) -> bool:
    """The requester (or whoever created the task), or staff of its community."""
    staff = bool(actor.is_staff) and actor.community_id == task.community_id
    return staff or int(actor.id) in (task.requester_id, task.created_by)


async def volunteers_coming(db: Database, actor_id: int, task_id: int) -> int:
    """How many volunteers a cancel by this member would call off (0 when they may not cancel it,
    or it cannot be cancelled any more: ``cancel`` then says why)."""
    actor = await member_store.by_id(db, actor_id)
    task = await task_store.row(db, task_id)
    if actor is None or task is None or not _may_cancel(actor, task) or task.state not in CANCELLABLE_STATES:
        return 0
    return await claim_store.count_in(db, task_id, "active")


async def cancel(db: Database, now: datetime, actor_id: int, task_id: int) -> list[int]:
    """Cancel a task (requester: their own; staff: any of the community). Returns the members told."""
    async with db.transaction() as conn:
        actor = await load_member(conn, actor_id)
        found = await task_store.get(conn, task_id)
        if (found is None and not actor.is_staff) or (found is not None and not _may_cancel(actor, found)):
            raise NotAllowed()  # first: the same for a task that exists and one that does not
        task = await load_task(conn, task_id)
        if task.state not in CANCELLABLE_STATES:
            if task.state == "awaiting_confirmation":
                raise InvalidState(N_("The volunteer has already marked it done; please answer the question"
                                     " “Did they help you?” instead."))
            raise InvalidState(N_("Task #{id} is already finished or cancelled."), id=task_id)
        claimers = await claim_store.active_holders(conn, task_id)
        await task_store.cancelled(conn, task_id, now)
        await audit(conn, now=now, action="task.cancel", community_id=task.community_id, actor_id=actor_id,
                    object_type="task", object_id=task_id, details={"claims": len(claimers)})
        told: list[int] = []
        for c in claimers:
            if c.tg_user_id is not None:
                await enqueue(conn, chat_id=c.tg_user_id, member_id=c.member_id, kind="task_cancelled",
                              now=now, payload={"task_id": task_id}, dedupe_key=f"cancelled:{task_id}:{c.member_id}")
                told.append(c.member_id)
            await scrub_details(conn, task_id, c.member_id, "cancelled", now)
        return told + await _waiting_told(conn, now, task_id)


async def _waiting_told(conn: Connection, now: datetime, task_id: int) -> list[int]:
    """A cancelled event's waiting list ends; those still waiting are told (one offered a place holds
    a claim and was told with the volunteers). Returns the members told."""
    told: list[int] = []
    for w in await waitlist_store.end_open(conn, task_id, "cancelled", now):
        if w.state == "waiting" and w.tg_user_id is not None:
            await enqueue(conn, chat_id=w.tg_user_id, member_id=w.member_id, kind="waitlist_cancelled", now=now,
                          payload={"task_id": task_id}, dedupe_key=f"wl-cancelled:{task_id}:{w.member_id}")
            told.append(w.member_id)
    return told


EDITABLE = {"title": 60, "description": 500, "slots": 0, "points": 0}
EDITABLE_STATES = ("pending_review", *ACTIVE_TASK_STATES)


def edited_value(field: str, value: str) -> int | str:
    """The new value of a field staff edit (a task's, or a series' events'), checked by the same rules as
    at publishing."""
    if field not in EDITABLE:
        raise InvalidInput()
    value = value.strip()
    if field in ("slots", "points"):
        low, high = (SLOTS_MIN, SLOTS_MAX) if field == "slots" else (POINTS_MIN, POINTS_MAX)
        return number(value, N_("Please give a whole number from {low} to {high}."), low=low, high=high)
    if not value or len(value) > EDITABLE[field]:
        raise InvalidInput(N_("Please write 1 to {n} characters."), n=EDITABLE[field])
    return value


async def state_after_edit(conn: Connection, task: Task, field: str, new: int | str) -> str:
    """The task's state once its places are ``new`` (no fewer than those taken); unchanged otherwise."""
    if field != "slots":
        return task.state
    taken = await claim_store.taken(conn, task.id)
    if int(new) < taken:
        raise DomainError(N_("{taken} volunteers have claimed it already; places cannot go below that."),
                          taken=taken)
    if task.state in ACTIVE_TASK_STATES:
        full = "full" if task.kind == "event" else "in_progress"
        return full if taken >= int(new) else "open"
    return task.state


async def edit_task(db: Database, now: datetime, staff_id: int, task_id: int, field: str, value: str) -> None:
    """Staff change a task's title, description, places or points; volunteers who claimed it are told."""
    async with db.transaction() as conn:
        actor = await load_member(conn, staff_id)
        found = await task_store.get(conn, task_id)
        if not actor.is_staff or (found is not None and actor.community_id != found.community_id):
            raise NotAllowed()  # first: the same for a task that exists and one that does not
        task = await load_task(conn, task_id)
        new = edited_value(field, value)
        if task.state not in EDITABLE_STATES:
            raise InvalidState(N_("Task #{id} is finished, cancelled or being confirmed; it cannot be changed now."),
                              id=task_id)
        await apply_edit(conn, now, staff_id, task, field, new)
    if field == "slots":
        await waitlist.fill(db, now, task_id)  # more places: those waiting get them, first come first


async def apply_edit(conn: Connection, now: datetime, staff_id: int, task: Task, field: str, new: int | str, *,
                     key: str | None = None, via: dict[str, object] | None = None) -> None:
    """In the caller's transaction (who may edit, and from which state, checked): the task's ``field``
    becomes ``new`` (checked by ``edited_value``), its card is redrawn, its volunteers are told (once
    per ``key``: a repeated edit tells nobody twice). ``via``: more for the audit (e.g. the series)."""
    state = await state_after_edit(conn, task, field, new)
    await task_store.bump(conn, task.id, now, **{field: new, "state": state})
    await audit(conn, now=now, action="task.edit", community_id=task.community_id, actor_id=staff_id,
                object_type="task", object_id=task.id,
                details={"field": field, "old": getattr(task, field), "new": new, **(via or {})})
    for c in await claim_store.active_holders(conn, task.id):
        if c.tg_user_id is None:
            continue
        await enqueue(conn, chat_id=c.tg_user_id, member_id=c.member_id, kind="text", now=now,
                      payload={"message": N_("Staff changed task #{id}. Please press 🗂 My tasks to see the details."),
                               "params": {"id": task.id}},
                      dedupe_key=f"edited:{task.id}:{c.member_id}:{key or to_db(now)}")


async def contact_staff(db: Database, now: datetime, member_id: int, task_id: int) -> int:
    """The requester or a volunteer on the task asks staff to get in touch; returns staff told.

    At most one alert per person and task every ten minutes, so a repeated tap is not a flood.
    """
    async with db.transaction() as conn:
        member = await load_member(conn, member_id)
        task = await load_task(conn, task_id)
        if member.community_id != task.community_id:
            raise NotAllowed()
        # A no-show too: they may say staff got it wrong.
        claimed = await claim_store.holds(conn, task_id, member_id, ("active", "done", "completed", "no_show"))
        if not (claimed or member_id in (task.requester_id, task.created_by) or member.is_staff):
            raise NotAllowed()
        staff = [s for s in await member_store.staff_chats_of(conn, task.community_id) if s.member_id != member_id]
        slot = to_db(now)[:15]  # ten-minute window
        for s in staff:
            await enqueue(conn, chat_id=s.tg_user_id, member_id=s.member_id, kind="text", now=now,
                          payload={"message": N_("☎ {name} asks staff to get in touch about task #{id}."),
                                   "params": {"name": html.escape(member.display_name or "?"), "id": task_id}},
                          dedupe_key=f"contact:{task_id}:{member_id}:{s.member_id}:{slot}")
        await audit(conn, now=now, action="task.contact_staff", community_id=task.community_id,
                    actor_id=member_id, object_type="task", object_id=task_id)
        return len(staff)


async def set_review(db: Database, now: datetime, staff_id: int, required: bool) -> None:
    """Staff choose whether residents' requests wait for review before they are published."""
    async with db.transaction() as conn:
        actor = await load_member(conn, staff_id)
        if not actor.is_staff or actor.community_id is None:
            raise NotAllowed()
        await community_store.set_review_required(conn, int(actor.community_id), required)
        await audit(conn, now=now, action="community.review_on" if required else "community.review_off",
                    community_id=int(actor.community_id), actor_id=staff_id)


async def count_open(db: Database, community_id: int) -> int:
    return await task_store.count_open(db, community_id)


async def list_open(db: Database, community_id: int, *, offset: int = 0, limit: int = 5) -> list[OpenTask]:
    return await task_store.open_page(db, community_id, offset=offset, limit=limit)


async def list_mine(db: Database, member_id: int, *, limit: int = 20) -> list[Task]:
    return await task_store.of_member(db, member_id, limit=limit)


async def held_mine(db: Database, member_id: int) -> list[int]:
    """The tasks still to happen that the member holds a place on (their /mytasks offers each one's
    details again)."""
    return await claim_store.held_by(db, member_id)


DETAILS_AGAIN_SECONDS = 30  # taps on "Details" within this long send the details once


async def details_again(db: Database, now: datetime, member_id: int, task_id: int) -> None:
    """Send the volunteer the details of a task they hold again (the resident's contact, Done and
    Withdraw): the first ones never reached them (they had blocked the bot) or are lost up the chat.
    Only to the member holding an active claim on a task still to happen; a double tap sends once."""
    async with db.transaction() as conn:
        member = await member_store.get(conn, member_id)
        task = await task_store.get(conn, task_id)
        if member is None or member.tg_user_id is None or task is None:
            raise NotFound()
        if not await claim_store.holds(conn, task_id, member_id, ("active",)) or task.state not in ACTIVE_TASK_STATES:
            raise DomainError(N_("You do not hold a place on this task any more."))
        window = int(now.timestamp()) // DETAILS_AGAIN_SECONDS
        await enqueue(conn, chat_id=member.tg_user_id, member_id=member_id, kind="task_claimed_volunteer", now=now,
                      payload={"task_id": task_id}, dedupe_key=f"details_again:{task_id}:{member_id}:{window}")


async def card_reply_hint(db: Database, task_id: int, now: datetime) -> bool:
    """Whether a message typed in answer to the task's card gets the hint that a claim is a tap: the
    first one only (one message in the group per card, however many replies, whoever sends them)."""
    async with db.transaction() as conn:
        return await notification_store.mark_once(conn, f"card_reply:{task_id}", now)


async def waiting_mine(db: Database, member_id: int, now: datetime, *, limit: int = 10) -> list[Waiting]:
    """The member's places on waiting lists (waiting, or a place offered to keep or decline) of events
    not started by ``now``, for /mytasks."""
    return await waitlist_store.of_member(db, member_id, limit=limit, now=now)


async def card_pressed(db: Database, task_id: int, chat_id: int, message_id: int) -> str | None:
    """A press on a card message in a group tells us that message exists. A card posted just before a
    crash, and not recorded, is a second card once the restarted bot posts the task again:
    "adopted" when the task had no recorded card (this one becomes it; the card job redraws it),
    "stray" when the task has another card (the caller removes this copy), None otherwise."""
    place = await task_store.card_place(db, task_id)
    if place is None or place.community_chat != chat_id or place.message_id == message_id:
        return None
    if place.message_id is None:
        await task_store.adopt_card(db, task_id, chat_id, message_id)
        return "adopted"
    return "stray" if place.message_id else None  # 0: posting the card was given up
