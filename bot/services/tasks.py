"""Help requests and dispatch: publish, review, claim, withdraw, cancel (the dispatch half of the
task state machine, see docs/ARCHITECTURE.md "Task states").

Every transition runs in one write transaction: it re-reads the task inside the transaction,
checks who may act and from which state, writes the change, an audit row and any outbox messages.
"""

from __future__ import annotations

import html
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

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
from bot.services import alerts, masking, reliability
from bot.services.areas import match_area
from storage import members as member_store
from storage import tasks as task_store
from storage.db import Database, Row, first
from storage.members import Member
from storage.outbox import SCRUB_DETAILS, audit, audit_sync, enqueue, enqueue_sync, scrub_details_params
from storage.timeutil import to_db

OPEN_STATES = ("open", "full")
CLAIMABLE_STATES = ("open",)
CANCELLABLE_STATES = ("draft", "pending_review", "open", "full", "in_progress")
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


def secrets_of(task: Any) -> list[object]:
    """The secrets a task row carries (those of ``SECRET_COLUMNS`` it has)."""
    keys = set(task.keys())
    return [task[k] for k in SECRET_COLUMNS if k in keys]


async def task_secrets(db: Database, task: Any) -> list[object]:
    """``secrets_of`` a task row, looking up the requester if the row does not name them."""
    secrets = secrets_of(task)
    if "requester_name" not in set(task.keys()) and task["requester_id"] is not None:
        row = await db.fetchone("SELECT display_name, address FROM members WHERE id = ?", (task["requester_id"],))
        if row is not None:
            secrets += [row["display_name"], row["address"]]
    return secrets


async def public_description(db: Database, task: Any) -> str:
    """``public_text`` of a task row's description (or title), looking up the requester."""
    return public_text(task["description"] or task["title"] or "", await task_secrets(db, task))


async def public_title(db: Database, task: Any) -> str:
    """``public_text`` of a task row's title ("" if it has none), looking up the requester."""
    return public_text(task["title"], await task_secrets(db, task)) if task["title"] else ""


@dataclass(frozen=True)
class Details:
    """What a card's Details button tells a member: the public text, and whether there is a voice."""

    text: str
    voice: bool


async def details_for(db: Database, task_id: int, member: Any) -> Details:
    """The public details of a task for a member of its community (OtherCommunity otherwise)."""
    row = await task_store.row(db, task_id)
    if row is None:
        raise NotFound()
    if row["community_id"] != member.community_id:
        raise OtherCommunity()
    return Details(await public_description(db, row), bool(row["voice_file_id"]))


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
SLOTS_MAX = 200                 # places: a task's or an event's places can be 1 to 200
POINTS_MAX = 100                # points per volunteer set by staff: 0 to 100
MAX_AHEAD = timedelta(days=90)  # a task's times lie within the next 90 days
ASK_AFTER_CLAIM = timedelta(seconds=5)  # the honours question follows a first claim's details by this much


def check_slots(n: int) -> None:
    """Places can be 1 to ``SLOTS_MAX``."""
    if not 1 <= n <= SLOTS_MAX:
        raise InvalidInput(N_("Please type a number from 1 to {n}."), n=SLOTS_MAX)


def check_points(n: int) -> None:
    """Points per volunteer can be 0 to ``POINTS_MAX``."""
    if not 0 <= n <= POINTS_MAX:
        raise InvalidInput(N_("Please type a number from 0 to {n}."), n=POINTS_MAX)


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


_first = first


async def _member(conn: aiosqlite.Connection, member_id: int) -> Member:
    row = await member_store.get(conn, member_id)
    if row is None:
        raise NotRegistered()
    return row


async def load_task(conn: aiosqlite.Connection, task_id: int) -> aiosqlite.Row:
    """The task's row inside a transaction; NotFound if there is none (the one task loader of the services)."""
    row = await task_store.get(conn, task_id)
    if row is None:
        raise NotFound()
    return row


_task = load_task


async def _taken(conn: aiosqlite.Connection, task_id: int) -> int:
    row = await _first(conn, "SELECT COUNT(*) FROM claims WHERE task_id = ? AND state IN ('active', 'done')",
                       (task_id,))
    return int(row[0]) if row else 0


async def _review_required(conn: aiosqlite.Connection, community_id: int) -> bool:
    import json

    async with conn.execute("SELECT settings, review_required FROM communities WHERE id = ?", (community_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return False
    if row[1]:
        return True
    if not row[0]:
        return False
    try:
        settings: Any = json.loads(row[0])
    except ValueError:
        return False
    return bool(isinstance(settings, dict) and settings.get("review_required"))


async def state_of(db: Database, task_id: int) -> str | None:
    """A task's state (``pending_review`` while staff have yet to review it, ``open``...)."""
    value = await db.fetchval("SELECT state FROM tasks WHERE id = ?", (task_id,))
    return None if value is None else str(value)


async def _default_points(conn: aiosqlite.Connection, community_id: int, category: str) -> int:
    async with conn.execute("SELECT default_points FROM categories WHERE community_id = ? AND code = ?",
                            (community_id, category)) as cur:
        cat = await cur.fetchone()
    return int(cat[0]) if cat else 1


async def _place(conn: aiosqlite.Connection, new: NewTask, creator: Member, community_id: int,
                 requester_id: int | None) -> tuple[str | None, int | None]:
    """(address, area id) of a new task: as given, else where the requester lives."""
    address = new.address if new.address is not None else (creator.address if requester_id else None)
    area_id = new.area_id
    typed = new.address if new.address is not None else new.proxy_address
    if area_id is None and typed:
        # "3号楼 2单元" typed as the place: the card can name the listed area 3号楼.
        listed = await conn.execute_fetchall("SELECT id, name FROM areas WHERE community_id = ? AND active = 1",
                                             (community_id,))
        area_id = match_area(listed, typed)
    if area_id is None and new.address is None and requester_id:
        area_id = creator.area_id  # at their registered home
    return address, area_id


async def _insert_task(conn: aiosqlite.Connection, now: datetime, new: NewTask, *, community_id: int,
                       creator_id: int, requester_id: int | None, area_id: int | None, address: str | None,
                       points: int, state: str, published: bool) -> int:
    cur = await conn.execute(
        "INSERT INTO tasks (community_id, requester_id, created_by, is_proxy, proxy_name, proxy_phone,"
        " proxy_address, kind, category, title, description, voice_file_id, area_id, address, when_kind,"
        " starts_at, ends_at, slots, points, organisation_id, urgent, state, card_version, created_at,"
        " published_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?,?,?)",
        (community_id, requester_id, creator_id, int(new.is_proxy), new.proxy_name, new.proxy_phone,
         new.proxy_address, new.kind, new.category, new.title, new.description, new.voice_file_id, area_id,
         address, new.when_kind, to_db(new.starts_at) if new.starts_at else None,
         to_db(new.ends_at) if new.ends_at else None, new.slots, points, new.organisation_id,
         int(new.when_kind == "asap"), state, to_db(now), to_db(now) if published else None, to_db(now)))
    task_id = int(cur.lastrowid or 0)
    if new.submit_key:
        await conn.execute("INSERT INTO task_submissions (submit_key, task_id, created_at) VALUES (?, ?, ?)",
                           (new.submit_key, task_id, to_db(now)))
    return task_id


async def _ask_review(conn: aiosqlite.Connection, now: datetime, task_id: int, community_id: int) -> None:
    """Every staff member of the community is asked to review the new task."""
    async with conn.execute("SELECT id, tg_user_id FROM members WHERE community_id = ? AND is_staff = 1"
                            " AND deleted_at IS NULL AND tg_user_id IS NOT NULL", (community_id,)) as c2:
        staff_rows = list(await c2.fetchall())
    for s in staff_rows:
        await enqueue(conn, chat_id=int(s["tg_user_id"]), member_id=int(s["id"]), kind="task_review",
                      now=now, payload={"task_id": task_id}, dedupe_key=f"review:{task_id}:{s['id']}")


async def create_task(db: Database, now: datetime, creator_id: int, new: NewTask, *, staff: bool = False) -> int:
    """Create and (unless the community wants review) publish a task. Returns the task id."""
    _check_new(new, now, staff)
    async with db.transaction() as conn:
        creator = await _member(conn, creator_id)
        if creator.community_id is None or creator.registered_at is None:
            raise NotRegistered()
        community_id = int(creator.community_id)
        if new.submit_key:
            async with conn.execute("SELECT task_id FROM task_submissions WHERE submit_key = ?",
                                    (new.submit_key,)) as cur:
                prior = await cur.fetchone()
            if prior is not None:
                return int(prior[0])
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
        return task_id


async def toggle_on_duty(db: Database, now: datetime, tg_user_id: int) -> bool:
    """Switch a volunteer's "on duty" flag; returns the new value."""
    async with db.transaction() as conn:
        async with conn.execute(
            "SELECT id, on_duty, is_volunteer, registered_at FROM members WHERE tg_user_id = ? AND deleted_at IS NULL",
            (tg_user_id,),
        ) as cur:
            row = await cur.fetchone()
        if row is None or row["registered_at"] is None:
            raise NotRegistered()
        if not row["is_volunteer"]:
            raise NotAllowed()
        value = not bool(row["on_duty"])
        await conn.execute("UPDATE members SET on_duty = ?, updated_at = ? WHERE id = ?", (int(value), to_db(now), row["id"]))
        await audit(conn, now=now, action="member.on_duty" if value else "member.off_duty", actor_id=int(row["id"]),
                    object_type="member", object_id=int(row["id"]))
        return value


async def review(db: Database, now: datetime, staff_id: int, task_id: int, *, approve: bool) -> str:
    async with db.transaction() as conn:
        actor = await _member(conn, staff_id)
        task = await _task(conn, task_id)
        if not actor.is_staff or actor.community_id != task["community_id"]:
            raise NotAllowed()
        if task["state"] != "pending_review":
            raise InvalidState()
        state = "open" if approve else "cancelled"
        await conn.execute(
            "UPDATE tasks SET state = ?, reviewed_by = ?, published_at = CASE WHEN ? = 'open' THEN ? ELSE published_at"
            " END, cancelled_at = CASE WHEN ? = 'cancelled' THEN ? ELSE cancelled_at END,"
            " card_version = card_version + 1, updated_at = ? WHERE id = ?",
            (state, staff_id, state, to_db(now), state, to_db(now), to_db(now), task_id))
        await audit(conn, now=now, action="task.approve" if approve else "task.reject",
                    community_id=int(task["community_id"]), actor_id=staff_id, object_type="task", object_id=task_id)
        if task["requester_id"] is not None:
            req = await _member(conn, int(task["requester_id"]))
            if req.tg_user_id is not None:
                await enqueue(conn, chat_id=int(req.tg_user_id), member_id=int(req.id),
                              kind="task_reviewed", now=now, payload={"task_id": task_id, "approved": approve},
                              dedupe_key=f"reviewed:{task_id}")
        return state


async def claim(db: Database, now: datetime, member_id: int, task_id: int) -> ClaimResult:
    """Take one place. Race-safe: the whole check-and-insert runs under one write transaction.

    A tap on a task that is already full is refused from a plain read first, without waiting for
    the writer: in a claim storm hundreds of such taps would otherwise queue behind each other.
    """
    quick = await db.fetchone(
        "SELECT t.state, t.kind, (SELECT state FROM claims c WHERE c.task_id = t.id AND c.member_id = ?) AS mine"
        " FROM tasks t WHERE t.id = ?", (member_id, task_id))
    if quick is not None and quick["mine"] not in ACTIVE_CLAIM_STATES:
        if quick["state"] == "full" or (quick["state"] == "in_progress" and quick["kind"] == "request"):
            raise TaskFull()
    return await db.write(lambda conn: _claim(conn, now, member_id, task_id))


def _claim(conn: sqlite3.Connection, now: datetime, member_id: int, task_id: int) -> ClaimResult:
    """The claim transaction, run in one piece on the writer's thread (``Database.write``): the
    helpers it calls are plain synchronous functions on the same connection."""
    def first(sql: str, params: tuple[object, ...]) -> sqlite3.Row | None:
        row: sqlite3.Row | None = conn.execute(sql, params).fetchone()
        return row

    task = first("SELECT t.*, o.name AS organisation_name FROM tasks t"
                 " LEFT JOIN organisations o ON o.id = t.organisation_id WHERE t.id = ?", (task_id,))
    if task is None:
        raise NotFound()
    mine = first("SELECT id, state FROM claims WHERE task_id = ? AND member_id = ?", (task_id, member_id))
    if task["state"] == "full" or (task["state"] == "in_progress" and task["kind"] == "request"):
        # Filled while this tap waited for the writer: refuse before reading anything else.
        if mine is None or mine["state"] not in ACTIVE_CLAIM_STATES:
            raise TaskFull()
    member = _may_claim(task, first("SELECT * FROM members WHERE id = ? AND deleted_at IS NULL", (member_id,)),
                        mine, member_id)
    reliability.check_claim_sync(conn, community_id=int(task["community_id"]), member_id=member_id,
                                 kind=str(task["kind"]), now=now)
    counted = first("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state IN ('active', 'done')", (task_id,))
    taken = int(counted[0]) if counted else 0
    if taken >= int(task["slots"]):
        raise TaskFull()
    claim_id = _take_place(conn, now, task_id, member_id, mine)
    taken += 1
    state = task["state"]
    if taken >= int(task["slots"]):
        state = "full" if task["kind"] == "event" else "in_progress"
    conn.execute("UPDATE tasks SET state = ?, first_claim_at = COALESCE(first_claim_at, ?),"
                 " card_version = card_version + 1, updated_at = ? WHERE id = ?",
                 (state, to_db(now), to_db(now), task_id))
    audit_sync(conn, now=now, action="task.claim", community_id=int(task["community_id"]), actor_id=member_id,
               object_type="task", object_id=task_id, details={"claim_id": claim_id})
    _tell_claimed(conn, now, task, member, claim_id)
    return ClaimResult(task_id, claim_id, taken, int(task["slots"]), str(state))


def _may_claim(task: sqlite3.Row, member: sqlite3.Row | None, mine: sqlite3.Row | None,
               member_id: int) -> sqlite3.Row:
    """Who may take a place on a task: returns the member, or raises why not (the count of places
    is checked after)."""
    if member is None or member["registered_at"] is None:
        raise NotRegistered()
    if member["community_id"] != task["community_id"]:
        raise OtherCommunity()
    if task["requester_id"] == member_id or (task["created_by"] == member_id and task["kind"] == "request"):
        raise DomainError(N_("This is your own request, so you cannot claim it."))
    if not member["is_volunteer"]:
        raise NotVolunteer()
    if task["organisation_id"] is not None and member["organisation_id"] != task["organisation_id"]:
        raise DomainError(N_("This task is open only to members of {org}."), org=task["organisation_name"] or "?")
    if mine is not None and mine["state"] in ACTIVE_CLAIM_STATES:
        raise AlreadyClaimed()
    if task["state"] == "full":
        raise TaskFull()
    if task["state"] not in CLAIMABLE_STATES:
        raise InvalidState()
    return member


def _take_place(conn: sqlite3.Connection, now: datetime, task_id: int, member_id: int,
                mine: sqlite3.Row | None) -> int:
    """Write the active claim (a withdrawn one comes back); returns its id."""
    if mine is not None:
        conn.execute("UPDATE claims SET state = 'active', claimed_at = ?, updated_at = ? WHERE id = ?",
                     (to_db(now), to_db(now), mine["id"]))
        return int(mine["id"])
    cur = conn.execute("INSERT INTO claims (task_id, member_id, state, claimed_at, updated_at)"
                       " VALUES (?, ?, 'active', ?, ?)", (task_id, member_id, to_db(now), to_db(now)))
    return int(cur.lastrowid or 0)


def _tell_claimed(conn: sqlite3.Connection, now: datetime, task: sqlite3.Row, member: sqlite3.Row,
                  claim_id: int) -> None:
    """The volunteer gets the details; the person helped hears who is coming."""
    task_id, member_id = int(task["id"]), int(member["id"])
    if member["tg_user_id"] is not None:
        enqueue_sync(conn, chat_id=int(member["tg_user_id"]), member_id=member_id, kind="task_claimed_volunteer",
                     now=now, payload={"task_id": task_id}, dedupe_key=f"claimed:{claim_id}:{to_db(now)}")
        if member["announce_asked_at"] is None:
            # Their first claim: asked now, long before a first honour would be announced, and
            # after the details they need first.
            member_store.ask_announce_sync(conn, member_id=member_id, tg_user_id=int(member["tg_user_id"]), now=now,
                                           not_before=now + ASK_AFTER_CLAIM)
    if task["requester_id"] is not None:
        req = conn.execute("SELECT id, tg_user_id FROM members WHERE id = ? AND deleted_at IS NULL",
                           (int(task["requester_id"]),)).fetchone()
        if req is not None and req["tg_user_id"] is not None:
            enqueue_sync(conn, chat_id=int(req["tg_user_id"]), member_id=int(req["id"]),
                         kind="task_who_is_coming", now=now,
                         payload={"task_id": task_id, "volunteer": member["display_name"] or ""},
                         dedupe_key=f"coming:{claim_id}:{to_db(now)}")


async def withdraw(db: Database, now: datetime, member_id: int, task_id: int) -> bool:
    """Give the place back; True if it was late (see ``reliability.note_withdrawal_sync``)."""
    return await db.write(lambda conn: _withdraw(conn, now, member_id, task_id))


def _withdraw(conn: sqlite3.Connection, now: datetime, member_id: int, task_id: int) -> bool:
    """The withdraw transaction, in one piece on the writer's thread (see ``claim``)."""
    task = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if task is None:
        raise NotFound()
    existing = conn.execute("SELECT id, state FROM claims WHERE task_id = ? AND member_id = ?",
                            (task_id, member_id)).fetchone()
    if existing is None or existing["state"] != "active":
        raise InvalidState()
    if task["state"] not in ("open", "full", "in_progress"):
        raise InvalidState()
    conn.execute("UPDATE claims SET state = 'withdrawn', updated_at = ? WHERE id = ?", (to_db(now), existing["id"]))
    late = reliability.note_withdrawal_sync(conn, community_id=int(task["community_id"]), task_id=task_id,
                                            member_id=member_id, starts_at=task["starts_at"], now=now)
    conn.execute("UPDATE tasks SET state = 'open', card_version = card_version + 1, updated_at = ? WHERE id = ?",
                 (to_db(now), task_id))
    audit_sync(conn, now=now, action="task.withdraw", community_id=int(task["community_id"]),
               actor_id=member_id, object_type="task", object_id=task_id)
    conn.execute(SCRUB_DETAILS, scrub_details_params(task_id, member_id, "withdrawn", now))
    if task["requester_id"] is not None:
        req = conn.execute("SELECT id, tg_user_id FROM members WHERE id = ? AND deleted_at IS NULL",
                           (int(task["requester_id"]),)).fetchone()
        if req is not None and req["tg_user_id"] is not None:
            enqueue_sync(conn, chat_id=int(req["tg_user_id"]), member_id=int(req["id"]),
                         kind="task_volunteer_withdrew", now=now, payload={"task_id": task_id},
                         dedupe_key=f"withdrew:{existing['id']}:{to_db(now)}")
    return late


def _may_cancel(actor: Member, task: Any) -> bool:
    """The requester (or whoever created the task), or staff of its community."""
    staff = actor.is_staff and actor.community_id == task["community_id"]
    return staff or actor.id in (task["requester_id"], task["created_by"])


async def volunteers_coming(db: Database, actor_id: int, task_id: int) -> int:
    """How many volunteers a cancel by this member would call off (0 when they may not cancel it,
    or it cannot be cancelled any more: ``cancel`` then says why)."""
    actor = await member_store.by_id(db, actor_id)
    task = await db.fetchone("SELECT requester_id, created_by, community_id, state FROM tasks WHERE id = ?", (task_id,))
    if actor is None or task is None or not _may_cancel(actor, task) or task["state"] not in CANCELLABLE_STATES:
        return 0
    return int(await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state = 'active'", (task_id,)))


async def cancel(db: Database, now: datetime, actor_id: int, task_id: int) -> list[int]:
    """Cancel a task (requester: their own; staff: any of the community). Returns the members told."""
    async with db.transaction() as conn:
        actor = await _member(conn, actor_id)
        task = await _task(conn, task_id)
        if not _may_cancel(actor, task):
            raise NotAllowed()
        if task["state"] not in CANCELLABLE_STATES:
            if task["state"] == "awaiting_confirmation":
                raise InvalidState(N_("The volunteer has already marked it done; please answer the question"
                                     " “Did they help you?” instead."))
            raise InvalidState(N_("Task #{id} is already finished or cancelled."), id=task_id)
        async with conn.execute("SELECT c.id, m.id AS mid, m.tg_user_id FROM claims c JOIN members m"
                                " ON m.id = c.member_id WHERE c.task_id = ? AND c.state = 'active'",
                                (task_id,)) as cur:
            claimers = list(await cur.fetchall())
        await conn.execute("UPDATE tasks SET state = 'cancelled', cancelled_at = ?, card_version = card_version + 1,"
                           " updated_at = ? WHERE id = ?", (to_db(now), to_db(now), task_id))
        await audit(conn, now=now, action="task.cancel", community_id=int(task["community_id"]), actor_id=actor_id,
                    object_type="task", object_id=task_id, details={"claims": len(claimers)})
        told: list[int] = []
        for c in claimers:
            if c["tg_user_id"] is not None:
                await enqueue(conn, chat_id=int(c["tg_user_id"]), member_id=int(c["mid"]), kind="task_cancelled",
                              now=now, payload={"task_id": task_id}, dedupe_key=f"cancelled:{task_id}:{c['mid']}")
                told.append(int(c["mid"]))
            await conn.execute(SCRUB_DETAILS, scrub_details_params(task_id, int(c["mid"]), "cancelled", now))
        return told


EDITABLE = {"title": 60, "description": 500, "slots": 0, "points": 0}
EDITABLE_STATES = ("pending_review", "open", "full", "in_progress")


async def edit_task(db: Database, now: datetime, staff_id: int, task_id: int, field: str, value: str) -> None:
    """Staff change a task's title, description, places or points; volunteers who claimed it are told."""
    if field not in EDITABLE:
        raise InvalidInput()
    value = value.strip()
    new: Any
    if field in ("slots", "points"):
        low, high = (1, SLOTS_MAX) if field == "slots" else (0, POINTS_MAX)   # the same rule as at publishing
        new = number(value, N_("Please give a whole number from {low} to {high}."), low=low, high=high)
    else:
        if not value or len(value) > EDITABLE[field]:
            raise InvalidInput(N_("Please write 1 to {n} characters."), n=EDITABLE[field])
        new = value
    async with db.transaction() as conn:
        actor = await _member(conn, staff_id)
        task = await _task(conn, task_id)
        if not actor.is_staff or actor.community_id != task["community_id"]:
            raise NotAllowed()
        if task["state"] not in EDITABLE_STATES:
            raise InvalidState(N_("Task #{id} is finished, cancelled or being confirmed; it cannot be changed now."),
                              id=task_id)
        state = str(task["state"])
        if field == "slots":
            taken = await _taken(conn, task_id)
            if new < taken:
                raise DomainError(N_("{taken} volunteers have claimed it already; places cannot go below that."),
                                  taken=taken)
            if state in ("open", "full", "in_progress"):
                full = "full" if task["kind"] == "event" else "in_progress"
                state = full if taken >= new else "open"
        await conn.execute(f"UPDATE tasks SET {field} = ?, state = ?, card_version = card_version + 1, updated_at = ?"
                           " WHERE id = ?", (new, state, to_db(now), task_id))
        await audit(conn, now=now, action="task.edit", community_id=int(task["community_id"]), actor_id=staff_id,
                    object_type="task", object_id=task_id, details={"field": field, "old": task[field], "new": new})
        async with conn.execute("SELECT m.id, m.tg_user_id FROM claims c JOIN members m ON m.id = c.member_id"
                                " WHERE c.task_id = ? AND c.state = 'active' AND m.tg_user_id IS NOT NULL",
                                (task_id,)) as cur:
            claimers = list(await cur.fetchall())
        for c in claimers:
            await enqueue(conn, chat_id=int(c["tg_user_id"]), member_id=int(c["id"]), kind="text", now=now,
                          payload={"message": N_("Staff changed task #{id}. Please press 🗂 My tasks to see the details."),
                                   "params": {"id": task_id}},
                          dedupe_key=f"edited:{task_id}:{c['id']}:{to_db(now)}")


async def contact_staff(db: Database, now: datetime, member_id: int, task_id: int) -> int:
    """The requester or a volunteer on the task asks staff to get in touch; returns staff told.

    At most one alert per person and task every ten minutes, so a repeated tap is not a flood.
    """
    async with db.transaction() as conn:
        member = await _member(conn, member_id)
        task = await _task(conn, task_id)
        if member.community_id != task["community_id"]:
            raise NotAllowed()
        async with conn.execute("SELECT 1 FROM claims WHERE task_id = ? AND member_id = ? AND state IN"
                                " ('active', 'done', 'completed')", (task_id, member_id)) as cur:
            claimed = await cur.fetchone() is not None
        if not (claimed or member_id in (task["requester_id"], task["created_by"]) or member.is_staff):
            raise NotAllowed()
        async with conn.execute("SELECT id, tg_user_id FROM members WHERE community_id = ? AND is_staff = 1"
                                " AND deleted_at IS NULL AND tg_user_id IS NOT NULL AND id != ?",
                                (task["community_id"], member_id)) as cur:
            staff_rows = list(await cur.fetchall())
        slot = to_db(now)[:15]  # ten-minute window
        for row in staff_rows:
            await enqueue(conn, chat_id=int(row["tg_user_id"]), member_id=int(row["id"]), kind="text", now=now,
                          payload={"message": N_("☎ {name} asks staff to get in touch about task #{id}."),
                                   "params": {"name": html.escape(member.display_name or "?"), "id": task_id}},
                          dedupe_key=f"contact:{task_id}:{member_id}:{row['id']}:{slot}")
        await audit(conn, now=now, action="task.contact_staff", community_id=int(task["community_id"]),
                    actor_id=member_id, object_type="task", object_id=task_id)
        return len(staff_rows)


async def set_review(db: Database, now: datetime, staff_id: int, required: bool) -> None:
    """Staff choose whether residents' requests wait for review before they are published."""
    async with db.transaction() as conn:
        actor = await _member(conn, staff_id)
        if not actor.is_staff or actor.community_id is None:
            raise NotAllowed()
        await conn.execute("UPDATE communities SET review_required = ? WHERE id = ?", (int(required), actor.community_id))
        await audit(conn, now=now, action="community.review_on" if required else "community.review_off",
                    community_id=int(actor.community_id), actor_id=staff_id)


async def count_open(db: Database, community_id: int) -> int:
    return await task_store.count_open(db, community_id)


async def list_open(db: Database, community_id: int, *, offset: int = 0, limit: int = 5) -> list[Row]:
    return await task_store.open_page(db, community_id, offset=offset, limit=limit)


async def list_mine(db: Database, member_id: int, *, limit: int = 20) -> list[Row]:
    return await task_store.of_member(db, member_id, limit=limit)


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
