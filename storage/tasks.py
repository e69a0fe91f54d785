"""Data access for tasks: every SQL statement about a task row (its claims are in storage/claims.py,
the cases opened about it in storage/cases.py).

One task loader per kind of transaction (``get`` in an aiosqlite transaction, ``get_sync`` in a
``Database.write`` function, ``row`` outside any) and each returns a typed ``Task``, so the
services hold the rules and no SQL, and a change of database touches this layer only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from storage.db import Connection, Database, Row, SyncConnection, dialect, first, lock_row_sync, new_id
from storage.timeutil import to_db

T = TypeVar("T", bound="Task")

# A task still to be done: open, full or in progress (docs/ARCHITECTURE.md "Task states"). Here, in
# the bottom layer, so the services' state lists and the queries below share it.
ACTIVE_TASK_STATES = ("open", "full", "in_progress")
# The same as SQL, for ``t.state IN {ACTIVE_TASK_STATES_SQL}`` (fixed words, never a person's input).
ACTIVE_TASK_STATES_SQL = "(" + ", ".join(f"'{s}'" for s in ACTIVE_TASK_STATES) + ")"


@dataclass(frozen=True, slots=True)
class Task:
    """A row of ``tasks`` (docs/ARCHITECTURE.md "Task states"); times as stored (UTC text)."""

    id: int
    community_id: int
    requester_id: int | None     # the resident helped (None for a proxy request or an event)
    created_by: int
    is_proxy: int
    proxy_name: str | None
    proxy_phone: str | None
    proxy_address: str | None
    kind: str                    # request, event
    category: str
    title: str | None
    description: str | None
    voice_file_id: str | None
    area_id: int | None
    address: str | None          # exact address: private, never in a group
    when_kind: str               # asap, today, tomorrow, at
    starts_at: str | None
    ends_at: str | None
    slots: int
    points: int
    organisation_id: int | None  # open only to this organisation
    urgent: int
    state: str
    group_chat_id: int | None
    group_message_id: int | None  # None: card not posted yet; 0: posting given up
    card_version: int
    card_rendered: int
    reviewed_by: int | None
    confirmed_by: int | None
    created_at: str
    published_at: str | None
    first_claim_at: str | None
    done_at: str | None
    completed_at: str | None
    cancelled_at: str | None
    updated_at: str
    card_hash: str | None

    @classmethod
    def from_row(cls: type[T], row: Row) -> T:
        """From ``SELECT *`` (or ``t.*`` and then a subclass's columns, in the order of its fields):
        the fields are declared in the table's column order (tests/storage/test_tasks_claims.py)."""
        return cls(*row)


@dataclass(frozen=True, slots=True)
class OpenTask(Task):
    """An open task as the list of open tasks reads it: with the requester's name and address (secrets
    the group must not see)."""

    requester_name: str | None
    requester_address: str | None


@dataclass(frozen=True, slots=True)
class ClaimTask(Task):
    """A task as the claim transaction reads it: with the name of the organisation it is open to,
    its community's minimum reliability score to claim an event (0: none) and the Telegram chat of
    the resident helped (None: none, or erased), read together (one round trip on PostgreSQL)."""

    organisation_name: str | None
    min_reliability: int
    requester_chat: int | None


_COLUMNS: dict[type, tuple[str, ...]] = {}


def _columns(cls: type) -> tuple[str, ...]:
    names = _COLUMNS.get(cls)
    if names is None:
        names = _COLUMNS[cls] = tuple(f.name for f in fields(cls))
    return names


def _task(row: Row | None) -> Task | None:
    return None if row is None else Task.from_row(row)


@dataclass(frozen=True, slots=True)
class TaskName:
    """What it takes to name a task."""

    id: int
    title: str | None
    description: str | None
    voice_file_id: str | None


@dataclass(frozen=True, slots=True)
class TaskWhen(TaskName):
    """What it takes to name a task with its time and place: ``TaskName`` with its time, its address,
    the community's time zone (``tz``) and the area's name."""

    when_kind: str
    starts_at: str | None
    ends_at: str | None
    address: str | None
    tz: str                      # never missing: a task's community always has one
    area_name: str | None


@dataclass(frozen=True, slots=True)
class ClaimedTask(Task):
    """A task as its claim-details message shows it to one volunteer: with the state of that
    volunteer's claim (``mine``, None: no claim), the requester's name and phone (``requester_found``
    0 when there is no such member row), the community's time zone and the area's name."""

    mine: str | None
    requester_found: int
    requester_name: str | None
    requester_phone: str | None
    tz: str
    area_name: str | None

    def when(self) -> TaskWhen:
        """The task's time and place, as ``when_row`` reads it."""
        return TaskWhen(self.id, self.title, self.description, self.voice_file_id, self.when_kind,
                        self.starts_at, self.ends_at, self.address, self.tz, self.area_name)


@dataclass(frozen=True, slots=True)
class ClaimGlance:
    """A task's state and kind, and the state of one member's claim on it (None: no claim) and
    whether staff took that place away (storage/claims.py ``removed_at``)."""

    state: str
    kind: str
    mine: str | None
    removed: bool = False


# -- loading ----------------------------------------------------------------------------------
_GET = "SELECT * FROM tasks WHERE id = :id"


async def get(conn: Connection, task_id: int) -> Task | None:
    """The task (inside a transaction, or on the reader), None if there is no such task."""
    return _task(await first(conn, _GET, {"id": task_id}))


def get_sync(conn: SyncConnection, task_id: int, *, lock: bool = False) -> Task | None:
    """``get`` in a ``Database.write`` function; ``lock``: in the same statement, hold its row as
    ``lock_sync`` does (see ``for_claim_sync``)."""
    sql = _GET + (" FOR UPDATE" if lock and dialect(conn) != "sqlite" else "")
    return _task(conn.execute(sql, {"id": task_id}).fetchone())


def lock_sync(conn: SyncConnection, task_id: int) -> bool:
    """Hold the task's row until the transaction ends, before deciding anything about its places
    (claim, withdraw, the waiting list): on PostgreSQL, where several instances write at once; on
    SQLite nothing (its one writer already runs these transactions one at a time). Whether it
    locked (what was read before may have changed meanwhile)."""
    return lock_row_sync(conn, "tasks", task_id)


_FOR_CLAIM_FROM = ("SELECT t.*, o.name AS organisation_name, c.min_reliability, rq.tg_user_id AS requester_chat"
                   " FROM tasks t JOIN communities c ON c.id = t.community_id"
                   " LEFT JOIN organisations o ON o.id = t.organisation_id"
                   " LEFT JOIN members rq ON rq.id = t.requester_id AND rq.deleted_at IS NULL")
_FOR_CLAIM = _FOR_CLAIM_FROM + " WHERE t.id = :id"
_FOR_ENTRY = _FOR_CLAIM_FROM + " WHERE t.id = (SELECT w.task_id FROM waitlist w WHERE w.id = :entry)"


def for_claim_sync(conn: SyncConnection, task_id: int, *, lock: bool = False) -> ClaimTask | None:
    """The task as the claim transaction reads it; ``lock``: in the same statement, hold its row
    as ``lock_sync`` does (PostgreSQL's ``FOR UPDATE``; the row read is the one locked, current
    even after waiting for the lock; on SQLite the writer already runs one transaction at a time)."""
    sql = _FOR_CLAIM + (" FOR UPDATE OF t" if lock and dialect(conn) != "sqlite" else "")
    found = conn.execute(sql, {"id": task_id}).fetchone()
    return None if found is None else ClaimTask.from_row(found)


def for_entry_sync(conn: SyncConnection, entry_id: int) -> ClaimTask | None:
    """``for_claim_sync(lock=True)`` for the event of a waiting-list entry, found by the entry's id
    in the same statement (read the entry after it: as it is once no one else decides about the event)."""
    sql = _FOR_ENTRY + (" FOR UPDATE OF t" if dialect(conn) != "sqlite" else "")
    found = conn.execute(sql, {"entry": entry_id}).fetchone()
    return None if found is None else ClaimTask.from_row(found)


async def row(db: Database, task_id: object) -> Task | None:
    """The task, None if there is no such task."""
    return _task(await db.fetchone(_GET, {"id": task_id}))


async def claim_glance(db: Database, task_id: int, member_id: int) -> ClaimGlance | None:
    """The task's state and kind and this member's claim on it, from committed data (no writer)."""
    found = await db.read_here(lambda conn: conn.execute(
        "SELECT t.state, t.kind, c.state AS mine, c.removed_at AS mine_removed_at FROM tasks t"
        " LEFT JOIN claims c ON c.task_id = t.id AND c.member_id = :member WHERE t.id = :id",
        {"id": task_id, "member": member_id}).fetchone())
    return None if found is None else ClaimGlance(found["state"], found["kind"], found["mine"],
                                                  found["mine_removed_at"] is not None)


async def claimed_view(db: Database, task_id: object, member_id: int | None) -> ClaimedTask | None:
    """Everything the claim-details message needs, in one read: the task, the member's claim on it,
    the requester's contact, the time zone and the area. None if there is no such task."""
    found = await db.read_here(lambda conn: conn.execute(
        "SELECT t.*, (SELECT state FROM claims k WHERE k.task_id = t.id AND k.member_id = :member) AS mine,"
        " CASE WHEN r.id IS NULL THEN 0 ELSE 1 END AS requester_found, r.display_name AS requester_name,"
        " r.phone AS requester_phone, c.timezone AS tz, a.name AS area_name"
        " FROM tasks t JOIN communities c ON c.id = t.community_id LEFT JOIN members r ON r.id = t.requester_id"
        " LEFT JOIN areas a ON a.id = t.area_id WHERE t.id = :id", {"id": task_id, "member": member_id}).fetchone())
    return None if found is None else ClaimedTask.from_row(found)


async def count_open(db: Database, community_id: int) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM tasks WHERE community_id = :c AND state = 'open'",
                                 {"c": community_id}) or 0)


async def open_page(db: Database, community_id: int, *, offset: int, limit: int) -> list[OpenTask]:
    """Open tasks of the community, newest first, with the requester's name and address."""
    rows = await db.fetchall(
        "SELECT t.*, r.display_name AS requester_name, r.address AS requester_address FROM tasks t"
        " LEFT JOIN members r ON r.id = t.requester_id WHERE t.community_id = :c AND t.state = 'open'"
        " ORDER BY t.id DESC LIMIT :limit OFFSET :offset",
        {"c": community_id, "limit": limit, "offset": offset})
    return [OpenTask.from_row(r) for r in rows]


async def of_member(db: Database, member_id: int, *, limit: int) -> list[Task]:
    """Tasks the member asked for, created, or holds (or held) a place on; newest first."""
    rows = await db.fetchall(
        "SELECT t.* FROM tasks t WHERE t.requester_id = :m OR t.created_by = :m OR EXISTS (SELECT 1 FROM claims c"
        " WHERE c.task_id = t.id AND c.member_id = :m AND c.state IN ('active', 'done', 'completed'))"
        " ORDER BY t.id DESC LIMIT :limit", {"m": member_id, "limit": limit})
    return [Task.from_row(r) for r in rows]


async def last_category(db: Database, member_id: int) -> str | None:
    """The category of the latest request the member asked for themselves (None if they never asked)."""
    value = await db.fetchval(
        "SELECT category FROM tasks WHERE requester_id = :member AND kind = 'request' AND is_proxy = 0"
        " ORDER BY id DESC LIMIT 1", {"member": member_id})
    return None if value is None else str(value)


async def name_row(db: Database, task_id: object) -> TaskName | None:
    """What it takes to name a task, None if there is no such task."""
    found = await db.fetchone("SELECT id, title, description, voice_file_id FROM tasks WHERE id = :id",
                              {"id": task_id})
    return None if found is None else TaskName(*found)


async def when_row(db: Database, task_id: object) -> TaskWhen | None:
    """What it takes to name a task with its time and place, None if there is no such task."""
    found = await db.read_here(lambda conn: conn.execute(
        "SELECT t.id, t.title, t.description, t.voice_file_id, t.when_kind, t.starts_at, t.ends_at, t.address,"
        " c.timezone AS tz,"
        " a.name AS area_name FROM tasks t JOIN communities c ON c.id = t.community_id"
        " LEFT JOIN areas a ON a.id = t.area_id WHERE t.id = :id", {"id": task_id}).fetchone())
    return None if found is None else TaskWhen(*found)


async def community_of(db: Database, task_id: int) -> int | None:
    v = await db.fetchval("SELECT community_id FROM tasks WHERE id = :id", {"id": task_id})
    return None if v is None else int(v)


async def community_has_group(db: Database, task_id: int) -> bool:
    """Whether the task's community has a volunteer group the bot is in (False while it was removed)."""
    found = await db.fetchval("SELECT c.group_chat_id FROM tasks t JOIN communities c ON c.id = t.community_id"
                              " WHERE t.id = :id", {"id": task_id})
    return found is not None


async def state_of(db: Database, task_id: object) -> str | None:
    v = await db.fetchval("SELECT state FROM tasks WHERE id = :id", {"id": task_id})
    return None if v is None else str(v)


async def points_of(db: Database, task_id: object) -> int:
    """The task's points (0 if there is no such task)."""
    return int(await db.fetchval("SELECT points FROM tasks WHERE id = :id", {"id": task_id}) or 0)


# -- creating ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewRow:
    """The columns a new task is written with (the rest take their defaults)."""

    community_id: int
    requester_id: int | None
    created_by: int
    is_proxy: bool
    proxy_name: str | None
    proxy_phone: str | None
    proxy_address: str | None
    kind: str
    category: str
    title: str | None
    description: str | None
    voice_file_id: str | None
    area_id: int | None
    address: str | None
    when_kind: str
    starts_at: datetime | None
    ends_at: datetime | None
    slots: int
    points: int
    organisation_id: int | None
    state: str


async def insert(conn: Connection, now: datetime, new: NewRow, *, published: bool) -> int:
    """Write a new task (card version 1; urgent when wanted as soon as possible); returns its id."""
    params: dict[str, Any] = {name: getattr(new, name) for name in _columns(NewRow)}
    params.update(is_proxy=int(new.is_proxy), urgent=int(new.when_kind == "asap"),
                  starts_at=to_db(new.starts_at) if new.starts_at else None,
                  ends_at=to_db(new.ends_at) if new.ends_at else None,
                  now=to_db(now), published_at=to_db(now) if published else None)
    cur = await conn.execute(
        "INSERT INTO tasks (community_id, requester_id, created_by, is_proxy, proxy_name, proxy_phone,"
        " proxy_address, kind, category, title, description, voice_file_id, area_id, address, when_kind,"
        " starts_at, ends_at, slots, points, organisation_id, urgent, state, card_version, created_at,"
        " published_at, updated_at) VALUES (:community_id, :requester_id, :created_by, :is_proxy, :proxy_name,"
        " :proxy_phone, :proxy_address, :kind, :category, :title, :description, :voice_file_id, :area_id,"
        " :address, :when_kind, :starts_at, :ends_at, :slots, :points, :organisation_id, :urgent, :state, 1,"
        " :now, :published_at, :now) RETURNING id", params)
    return new_id(await cur.fetchone())


async def submitted(conn: Connection, submit_key: str) -> int | None:
    """The task a draft with this key became, if it was submitted before."""
    found = await first(conn, "SELECT task_id FROM task_submissions WHERE submit_key = :key", {"key": submit_key})
    return None if found is None else int(found[0])


async def record_submission(conn: Connection, now: datetime, submit_key: str, task_id: int) -> None:
    await conn.execute("INSERT INTO task_submissions (submit_key, task_id, created_at) VALUES (:key, :task, :now)",
                       {"key": submit_key, "task": task_id, "now": to_db(now)})


# -- changing ---------------------------------------------------------------------------------
# Every change a card shows bumps card_version (the card job redraws the card) and updated_at.
_BUMPABLE = frozenset({"state", "done_at", "confirmed_by", "completed_at", "title", "description", "slots",
                       "points"})


def _bump_sql(cols: dict[str, object]) -> str:
    unknown = set(cols) - _BUMPABLE
    if unknown:
        raise ValueError(f"not a column a transition changes: {sorted(unknown)}")
    sets = "".join(f", {k} = :{k}" for k in cols)
    return f"UPDATE tasks SET card_version = card_version + 1, updated_at = :now{sets} WHERE id = :id"


async def bump(conn: Connection, task_id: int, now: datetime, **cols: object) -> None:
    """Change these columns of the task (from ``_BUMPABLE``), bumping its card version."""
    await conn.execute(_bump_sql(cols), {**cols, "now": to_db(now), "id": task_id})


def bump_sync(conn: SyncConnection, task_id: int, now: datetime, **cols: object) -> None:
    """``bump`` in a ``Database.write`` function."""
    conn.execute(_bump_sql(cols), {**cols, "now": to_db(now), "id": task_id})


def claimed_sync(conn: SyncConnection, task_id: int, now: datetime, state: str) -> None:
    """A place was taken: the new state, and the time of the first claim (kept once set)."""
    conn.execute("UPDATE tasks SET state = :state, first_claim_at = COALESCE(first_claim_at, :now),"
                 " card_version = card_version + 1, updated_at = :now WHERE id = :id",
                 {"state": state, "now": to_db(now), "id": task_id})


async def cancelled(conn: Connection, task_id: int, now: datetime) -> None:
    await conn.execute("UPDATE tasks SET state = 'cancelled', cancelled_at = :now, card_version = card_version + 1,"
                       " updated_at = :now WHERE id = :id", {"now": to_db(now), "id": task_id})


async def reviewed(conn: Connection, task_id: int, now: datetime, *, staff_id: int, approve: bool) -> str:
    """Staff approved (published now) or rejected (cancelled now) the task; returns its new state."""
    state = "open" if approve else "cancelled"
    stamp = "published_at" if approve else "cancelled_at"
    await conn.execute(f"UPDATE tasks SET state = :state, reviewed_by = :staff, {stamp} = :now,"
                       " card_version = card_version + 1, updated_at = :now WHERE id = :id",
                       {"state": state, "staff": staff_id, "now": to_db(now), "id": task_id})
    return state


# -- the task's card in the volunteer group ---------------------------------------------------
async def card_posted(db: Database, task_id: int, chat_id: int, message_id: int, version: int, shown: str) -> None:
    """The card was posted: remember where, which version and what it shows (unless one is recorded)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET group_chat_id = ?, group_message_id = ?, card_rendered = ?,"
                           " card_hash = ? WHERE id = ? AND group_message_id IS NULL",
                           (chat_id, message_id, version, shown, task_id))


async def card_given_up(db: Database, task_id: int, chat_id: int, version: int) -> None:
    """The card cannot be posted in that chat: message id 0 means given up (not tried again every run)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET group_chat_id = ?, group_message_id = 0,"
                           " card_rendered = ? WHERE id = ? AND group_message_id IS NULL",
                           (chat_id, version, task_id))


async def card_drawn(db: Database, task_id: int, version: int, shown: str | None, *, keep_hash: bool = False) -> None:
    """The card shows ``version`` (and now the content hashed ``shown``, unless ``keep_hash``)."""
    async with db.transaction() as conn:
        if keep_hash:
            await conn.execute("UPDATE tasks SET card_rendered = CASE WHEN card_rendered > :v THEN card_rendered"
                               " ELSE :v END WHERE id = :id", {"v": version, "id": task_id})
        else:
            await conn.execute("UPDATE tasks SET card_rendered = CASE WHEN card_rendered > :v THEN card_rendered"
                               " ELSE :v END, card_hash = :hash WHERE id = :id",
                               {"v": version, "hash": shown, "id": task_id})


@dataclass(frozen=True)
class CardPlace:
    """Where a task's card is recorded (``message_id`` None: not posted yet; 0: posting given up),
    and the group chat of its community."""

    message_id: int | None
    community_chat: int | None


async def card_place(db: Database, task_id: int) -> CardPlace | None:
    row = await db.fetchone("SELECT t.group_message_id, c.group_chat_id FROM tasks t"
                            " JOIN communities c ON c.id = t.community_id WHERE t.id = ?", (task_id,))
    return None if row is None else CardPlace(row["group_message_id"], row["group_chat_id"])


async def adopt_card(db: Database, task_id: int, chat_id: int, message_id: int) -> None:
    """Record a card found in the group as the task's card, if none is recorded (the card job redraws it)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET group_chat_id = ?, group_message_id = ?, card_rendered = -1,"
                           " card_hash = NULL WHERE id = ? AND group_message_id IS NULL",
                           (chat_id, message_id, task_id))


async def in_group(db: Database, task_id: int, group_chat_id: int) -> bool:
    """Whether the task belongs to the community whose group this is."""
    return bool(await db.fetchval(
        "SELECT 1 FROM tasks t JOIN communities c ON c.id = t.community_id WHERE t.id = ? AND c.group_chat_id = ?",
        (task_id, group_chat_id)))


async def move_group(conn: Connection, old_chat_id: int, new_chat_id: int) -> None:
    """Tasks whose card is in a group that has a new chat id (it became a supergroup) follow it."""
    await conn.execute("UPDATE tasks SET group_chat_id = :new WHERE group_chat_id = :old",
                       {"new": new_chat_id, "old": old_chat_id})
