"""Data access for claims: a member's place on a task (active, withdrawn, done, completed, no_show),
and the no-shows recorded when an event is closed.

Functions ending in ``_sync`` run in a ``Database.write`` function (the claim and withdraw
transactions, on the writer's own thread); the others in a ``Database.transaction`` or on the reader.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from storage.db import Connection, Database, Row, SyncConnection, first, new_id
from storage.tasks import ACTIVE_TASK_STATES_SQL
from storage.timeutil import to_db

HOLDING = ("active", "done")  # the states that hold one of the task's places


@dataclass(frozen=True, slots=True)
class Claim:
    """A row of ``claims``; times as stored (UTC text)."""

    id: int
    task_id: int
    member_id: int
    state: str
    claimed_at: str
    updated_at: str
    done_at: str | None
    done_note: str | None
    done_photo_file_id: str | None
    removed_at: str | None = None   # staff took the place away (0270); None: held, or given back by the volunteer
    removed_by: int | None = None

    @classmethod
    def from_row(cls, row: Row) -> Claim:
        """From ``SELECT *``: the fields are declared in the table's column order."""
        return cls(*row)


@dataclass(frozen=True, slots=True)
class Holder:
    """A member holding a place on a task, and their Telegram chat (None: none to write to)."""

    member_id: int
    tg_user_id: int | None


@dataclass(frozen=True, slots=True)
class Attendee:
    """A place on an event as its attendance list shows it."""

    member_id: int
    display_name: str | None
    state: str


def _states(states: Collection[str]) -> tuple[str, dict[str, str]]:
    """``IN (:s0, :s1...)`` and its parameters, for a fixed set of claim states."""
    params = {f"s{i}": s for i, s in enumerate(states)}
    return "(" + ", ".join(f":{k}" for k in params) + ")", params


# -- reading ----------------------------------------------------------------------------------
_MINE = "SELECT * FROM claims WHERE task_id = :task AND member_id = :member"
_TAKEN = "SELECT COUNT(*) FROM claims WHERE task_id = :task AND state IN ('active', 'done')"


@dataclass(frozen=True, slots=True)
class Standing:
    """What the claim transaction reads once it holds the task, in one statement: the member's row
    (None: no such member, or erased), the state and id of their claim on the task (None: they never
    claimed it), whether staff took that place away, and how many of its places are held."""

    member: Row | None
    mine_id: int | None
    mine_state: str | None
    taken: int
    mine_removed: bool = False


_STANDING = ("SELECT m.*, c.id AS mine_id, c.state AS mine_state, c.removed_at AS mine_removed_at,"
             " (" + _TAKEN + ") AS taken_places"
             " FROM (SELECT 1 AS here) AS one"
             " LEFT JOIN members m ON m.id = :member AND m.deleted_at IS NULL"
             " LEFT JOIN claims c ON c.task_id = :task AND c.member_id = :member")


def standing_sync(conn: SyncConnection, task_id: int, member_id: int) -> Standing:
    """The member and their place on the task, read after its lock (``storage.tasks.for_claim_sync``):
    a statement begun before the lock was granted would not see the claims committed meanwhile."""
    row = conn.execute(_STANDING, {"task": task_id, "member": member_id}).fetchone()
    return Standing(row if row["id"] is not None else None, row["mine_id"], row["mine_state"], int(row["taken_places"]),
                    row["mine_removed_at"] is not None)


async def of(conn: Connection, task_id: int, member_id: int) -> Claim | None:
    """The member's claim on the task (in any state), None if they never claimed it."""
    found = await first(conn, _MINE, {"task": task_id, "member": member_id})
    return None if found is None else Claim.from_row(found)


def of_sync(conn: SyncConnection, task_id: int, member_id: int) -> Claim | None:
    """``of`` in a ``Database.write`` function."""
    found = conn.execute(_MINE, {"task": task_id, "member": member_id}).fetchone()
    return None if found is None else Claim.from_row(found)


async def state_of(db: Database, task_id: int, member_id: int | None) -> str | None:
    """The state of the member's claim on the task (None: no claim), from committed data."""
    v = await db.fetchval("SELECT state FROM claims WHERE task_id = :task AND member_id = :member",
                          {"task": task_id, "member": member_id})
    return None if v is None else str(v)


async def taken(conn: Connection, task_id: int) -> int:
    """How many of the task's places are held (claims active or done)."""
    found = await first(conn, _TAKEN, {"task": task_id})
    return int(found[0]) if found else 0


def taken_sync(conn: SyncConnection, task_id: int) -> int:
    found = conn.execute(_TAKEN, {"task": task_id}).fetchone()
    return int(found[0]) if found else 0


async def holds(conn: Connection, task_id: int, member_id: int, states: Collection[str] = HOLDING) -> bool:
    """Whether the member has a claim on the task in one of ``states``."""
    among, params = _states(states)
    return await first(conn, f"SELECT 1 FROM claims WHERE task_id = :task AND member_id = :member AND state IN {among}",
                       {"task": task_id, "member": member_id, **params}) is not None


async def held_by(db: Database, member_id: int, *, limit: int = 10) -> list[int]:
    """The tasks still to happen on which the member holds an active claim (newest first), from
    committed data."""
    rows = await db.fetchall("SELECT t.id FROM claims c JOIN tasks t ON t.id = c.task_id"
                             " WHERE c.member_id = :member AND c.state = 'active'"
                             f" AND t.state IN {ACTIVE_TASK_STATES_SQL} ORDER BY t.id DESC LIMIT :limit",
                             {"member": member_id, "limit": limit})
    return [int(r[0]) for r in rows]


async def count_in(db: Database, task_id: int, state: str) -> int:
    """How many claims on the task are in ``state``, from committed data."""
    return int(await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :task AND state = :state",
                                 {"task": task_id, "state": state}) or 0)


async def count_in_tx(conn: Connection, task_id: int, state: str) -> int:
    """``count_in`` inside a transaction."""
    found = await first(conn, "SELECT COUNT(*) FROM claims WHERE task_id = :task AND state = :state",
                        {"task": task_id, "state": state})
    return int(found[0]) if found else 0


async def member_ids(conn: Connection, task_id: int, states: Collection[str]) -> list[int]:
    """The members whose claims on the task are in ``states``, in the order they claimed."""
    among, params = _states(states)
    rows = await conn.execute_fetchall(f"SELECT member_id FROM claims WHERE task_id = :task AND state IN {among}"
                                       " ORDER BY id", {"task": task_id, **params})
    return [int(r[0]) for r in rows]


async def active_holders(conn: Connection, task_id: int) -> list[Holder]:
    """The members with an active claim on the task, and their chats."""
    rows = await conn.execute_fetchall("SELECT m.id, m.tg_user_id FROM claims c JOIN members m ON m.id = c.member_id"
                                       " WHERE c.task_id = :task AND c.state = 'active' ORDER BY c.member_id",
                                       {"task": task_id})
    return [Holder(int(r[0]), None if r[1] is None else int(r[1])) for r in rows]


async def done_names(conn: Connection, task_id: int) -> list[str | None]:
    """The names of the volunteers who marked the task done, in the order they claimed."""
    rows = await conn.execute_fetchall("SELECT m.display_name FROM claims c JOIN members m ON m.id = c.member_id"
                                       " WHERE c.task_id = :task AND c.state = 'done' ORDER BY c.id", {"task": task_id})
    return [r[0] for r in rows]


async def attendees(db: Database, task_id: int) -> list[Attendee]:
    """Everyone holding a place on the event (claimed, or marked done), in the order they claimed."""
    rows = await db.fetchall("SELECT c.member_id, m.display_name, c.state FROM claims c JOIN members m"
                             " ON m.id = c.member_id WHERE c.task_id = :task AND c.state IN ('active', 'done')"
                             " ORDER BY c.id", {"task": task_id})
    return [Attendee(int(r[0]), r[1], str(r[2])) for r in rows]


# -- changing ---------------------------------------------------------------------------------
def reactivate_sync(conn: SyncConnection, claim_id: int, now: datetime) -> None:
    """A withdrawn claim is taken up again."""
    conn.execute("UPDATE claims SET state = 'active', claimed_at = :now, updated_at = :now WHERE id = :id",
                 {"now": to_db(now), "id": claim_id})


def insert_sync(conn: SyncConnection, task_id: int, member_id: int, now: datetime) -> int:
    """A new active claim; returns its id."""
    cur = conn.execute("INSERT INTO claims (task_id, member_id, state, claimed_at, updated_at)"
                       " VALUES (:task, :member, 'active', :now, :now) RETURNING id",
                       {"task": task_id, "member": member_id, "now": to_db(now)})
    return new_id(cur.fetchone())


def withdraw_sync(conn: SyncConnection, claim_id: int, now: datetime) -> None:
    conn.execute("UPDATE claims SET state = 'withdrawn', updated_at = :now WHERE id = :id",
                 {"now": to_db(now), "id": claim_id})


async def mark_done(conn: Connection, claim_id: int, now: datetime, note: str | None, photo_file_id: str | None) -> None:
    await conn.execute("UPDATE claims SET state = 'done', done_at = :now, done_note = :note,"
                       " done_photo_file_id = :photo, updated_at = :now WHERE id = :id",
                       {"now": to_db(now), "note": note, "photo": photo_file_id, "id": claim_id})


async def add_done_note(conn: Connection, claim_id: int, now: datetime, note: str | None, photo_file_id: str | None) -> None:
    """A note or photo added after Done (what was given replaces what was there)."""
    await conn.execute("UPDATE claims SET done_note = COALESCE(:note, done_note),"
                       " done_photo_file_id = COALESCE(:photo, done_photo_file_id), updated_at = :now WHERE id = :id",
                       {"note": note, "photo": photo_file_id, "now": to_db(now), "id": claim_id})


async def done_back_to_active(conn: Connection, task_id: int, now: datetime) -> None:
    """"Not done": every claim marked done on the task is active again."""
    await conn.execute("UPDATE claims SET state = 'active', done_at = NULL, updated_at = :now"
                       " WHERE task_id = :task AND state = 'done'", {"now": to_db(now), "task": task_id})


async def set_state(conn: Connection, task_id: int, member_id: int, state: str, now: datetime) -> None:
    """The member's claim on the task is now ``state`` (completed, no_show)."""
    await conn.execute("UPDATE claims SET state = :state, updated_at = :now WHERE task_id = :task AND member_id = :member",
                       {"state": state, "now": to_db(now), "task": task_id, "member": member_id})


async def record_no_show(conn: Connection, now: datetime, *, community_id: int, task_id: int, member_id: int,
                         recorded_by: int) -> None:
    """A member did not come to an event they claimed (recorded once)."""
    await conn.execute("INSERT INTO no_shows (community_id, task_id, member_id, recorded_by, created_at)"
                       " VALUES (:community, :task, :member, :by, :now) ON CONFLICT DO NOTHING",
                       {"community": community_id, "task": task_id, "member": member_id, "by": recorded_by,
                        "now": to_db(now)})


def end_sync(conn: SyncConnection, claim_id: int, state: str, now: datetime, *, removed_by: int | None = None) -> bool:
    """Staff end a place still held (``withdrawn``: taken off the event, recorded as removed by them, so
    it is not taken again; ``no_show``: not coming). False if it was no longer held (a second press, or
    changed meanwhile): nothing is changed."""
    marks = ", removed_at = :now, removed_by = :by" if state == "withdrawn" else ""
    cur = conn.execute(f"UPDATE claims SET state = :state, updated_at = :now{marks} WHERE id = :id"
                       " AND state IN ('active', 'done')",
                       {"state": state, "now": to_db(now), "id": claim_id, **({"by": removed_by} if marks else {})})
    return bool(cur.rowcount)


def record_no_show_sync(conn: SyncConnection, now: datetime, *, community_id: int, task_id: int, member_id: int,
                        recorded_by: int | None) -> None:
    """``record_no_show`` in a ``Database.write`` function (staff mark someone not coming before the start)."""
    conn.execute("INSERT INTO no_shows (community_id, task_id, member_id, recorded_by, created_at)"
                 " VALUES (:community, :task, :member, :by, :now) ON CONFLICT DO NOTHING",
                 {"community": community_id, "task": task_id, "member": member_id, "by": recorded_by,
                  "now": to_db(now)})
