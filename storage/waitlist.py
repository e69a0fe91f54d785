"""Data access for the waiting lists of full events (0220; the rules are bot/services/waitlist.py).

Functions ending in ``_sync`` run in a ``Database.write`` function (the claim, withdraw and
waiting-list transactions, on the writer's own thread); the others on the reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.db import Connection, Database, Row, SyncConnection, new_id
from storage.timeutil import to_db

OPEN = ("waiting", "offered")  # the states in which a member is still on the list


@dataclass(frozen=True, slots=True)
class Entry:
    """A row of ``waitlist``; times as stored (UTC text)."""

    id: int
    community_id: int
    task_id: int
    member_id: int
    state: str
    joined_at: str
    offered_at: str | None
    offer_until: str | None
    updated_at: str

    @classmethod
    def from_row(cls, row: Row) -> Entry:
        return cls(*row)


def _entry(row: Row | None) -> Entry | None:
    return None if row is None else Entry.from_row(row)


def of_sync(conn: SyncConnection, task_id: int, member_id: int) -> Entry | None:
    """The member's entry on the task's list (in any state), None if they never joined it."""
    return _entry(conn.execute("SELECT * FROM waitlist WHERE task_id = :task AND member_id = :member",
                               {"task": task_id, "member": member_id}).fetchone())


def by_id_sync(conn: SyncConnection, entry_id: int) -> Entry | None:
    return _entry(conn.execute("SELECT * FROM waitlist WHERE id = :id", {"id": entry_id}).fetchone())


def first_waiting_sync(conn: SyncConnection, task_id: int) -> Entry | None:
    """The one waiting longest on the task (index waitlist_queue)."""
    return _entry(conn.execute("SELECT * FROM waitlist WHERE task_id = :task AND state = 'waiting'"
                               " ORDER BY id LIMIT 1", {"task": task_id}).fetchone())


def position_sync(conn: SyncConnection, task_id: int, entry_id: int) -> int:
    """Where the entry stands among those waiting on the task (1: next)."""
    row = conn.execute("SELECT COUNT(*) FROM waitlist WHERE task_id = :task AND state = 'waiting' AND id <= :id",
                       {"task": task_id, "id": entry_id}).fetchone()
    return int(row[0]) if row else 0


async def state_of(db: Database, task_id: int, member_id: int | None) -> str | None:
    """The state of the member's entry on the task's list (None: none), from committed data."""
    v = await db.fetchval("SELECT state FROM waitlist WHERE task_id = :task AND member_id = :member",
                          {"task": task_id, "member": member_id})
    return None if v is None else str(v)


async def waiting_count(db: Database, task_id: int) -> int:
    """How many wait on the task, from committed data."""
    return int(await db.fetchval("SELECT COUNT(*) FROM waitlist WHERE task_id = :task AND state = 'waiting'",
                                 {"task": task_id}) or 0)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A member's open entry on an event's waiting list, as /mytasks shows it (``id``: the event's)."""

    id: int
    title: str | None
    description: str | None
    voice_file_id: str | None
    state: str                 # waiting, offered
    position: int              # among those waiting (1: next); 0 for an offer
    waiting: int               # how many wait on the event
    offer_until: str | None    # an offer's end (UTC text)
    tz: str                    # the community's time zone


async def of_member(db: Database, member_id: int, *, limit: int = 10, now: datetime | None = None) -> list[Waiting]:
    """The member's entries still waiting or offered on events still open or full (and, given ``now``,
    not started by then), newest first (index waitlist_member; the counts read waitlist_queue)."""
    started = " AND (t.starts_at IS NULL OR t.starts_at > :now)" if now is not None else ""
    rows = await db.fetchall(
        "SELECT w.task_id, t.title, t.description, t.voice_file_id, w.state,"
        " CASE WHEN w.state = 'waiting' THEN (SELECT COUNT(*) FROM waitlist o WHERE o.task_id = w.task_id"
        " AND o.state = 'waiting' AND o.id <= w.id) ELSE 0 END,"
        " (SELECT COUNT(*) FROM waitlist o WHERE o.task_id = w.task_id AND o.state = 'waiting'),"
        " w.offer_until, c.timezone"
        " FROM waitlist w CROSS JOIN tasks t JOIN communities c ON c.id = t.community_id"
        " WHERE t.id = w.task_id AND w.member_id = :member AND w.state IN ('waiting', 'offered') AND t.state IN ('open', 'full')"
        f"{started} ORDER BY w.id DESC LIMIT :limit",
        {"member": member_id, "limit": limit, **({"now": to_db(now)} if now is not None else {})})
    return [Waiting(int(r[0]), r[1], r[2], r[3], str(r[4]), int(r[5]), int(r[6]), r[7], str(r[8])) for r in rows]


async def expired_offers(db: Database, now: datetime, limit: int = 100) -> list[int]:
    """The ids of offers whose time has passed (index waitlist_offers), oldest first."""
    rows = await db.fetchall("SELECT id FROM waitlist WHERE state = 'offered' AND offer_until <= :now"
                             " ORDER BY offer_until LIMIT :limit", {"now": to_db(now), "limit": limit})
    return [int(r[0]) for r in rows]


def hold_minutes_sync(conn: SyncConnection, community_id: int) -> int:
    """How long the community gives a volunteer to keep or decline a place from the list."""
    row = conn.execute("SELECT waitlist_hold_minutes FROM communities WHERE id = :id", {"id": community_id}).fetchone()
    return int(row[0]) if row else 120


async def hold_minutes(db: Database, community_id: int) -> int:
    value = await db.fetchval("SELECT waitlist_hold_minutes FROM communities WHERE id = :id", {"id": community_id})
    return int(value) if value is not None else 120


# -- changing ---------------------------------------------------------------------------------
async def set_hold_minutes(conn: Connection, community_id: int, minutes: int) -> None:
    await conn.execute("UPDATE communities SET waitlist_hold_minutes = :m WHERE id = :id",
                       {"m": minutes, "id": community_id})


def join_sync(conn: SyncConnection, *, community_id: int, task_id: int, member_id: int, now: datetime) -> int:
    """A new entry at the end of the list (an old one, left or declined, is replaced); returns its id."""
    conn.execute("DELETE FROM waitlist WHERE task_id = :task AND member_id = :member",
                 {"task": task_id, "member": member_id})
    cur = conn.execute("INSERT INTO waitlist (community_id, task_id, member_id, state, joined_at, updated_at)"
                       " VALUES (:community, :task, :member, 'waiting', :now, :now) RETURNING id",
                       {"community": community_id, "task": task_id, "member": member_id, "now": to_db(now)})
    return new_id(cur.fetchone())


def set_state_sync(conn: SyncConnection, entry_id: int, state: str, now: datetime) -> None:
    conn.execute("UPDATE waitlist SET state = :state, updated_at = :now WHERE id = :id",
                 {"state": state, "now": to_db(now), "id": entry_id})


def offer_sync(conn: SyncConnection, entry_id: int, now: datetime, until: datetime) -> None:
    """The entry was given a place, to keep or decline until ``until``."""
    conn.execute("UPDATE waitlist SET state = 'offered', offered_at = :now, offer_until = :until, updated_at = :now"
                 " WHERE id = :id", {"now": to_db(now), "until": to_db(until), "id": entry_id})


@dataclass(frozen=True, slots=True)
class Listed:
    """Someone on an event's waiting list, as staff see the list (and their chat, to tell them)."""

    member_id: int
    display_name: str | None
    tg_user_id: int | None
    state: str


_OPEN_ENTRIES = ("SELECT w.member_id, m.display_name, m.tg_user_id, w.state FROM waitlist w"
                 " JOIN members m ON m.id = w.member_id WHERE w.task_id = :task AND w.state IN ('waiting', 'offered')"
                 " ORDER BY w.id")


async def open_entries(db: Database, task_id: int) -> list[Listed]:
    """Who is on the task's list (waiting, or offered a place), first come first, from committed data."""
    return [Listed(int(r[0]), r[1], None if r[2] is None else int(r[2]), str(r[3]))
            for r in await db.fetchall(_OPEN_ENTRIES, {"task": task_id})]


async def end_open(conn: Connection, task_id: int, state: str, now: datetime) -> list[Listed]:
    """In a transaction (the event is cancelled): every entry still open ends as ``state``; returns them."""
    rows = await conn.execute_fetchall(_OPEN_ENTRIES, {"task": task_id})
    await conn.execute("UPDATE waitlist SET state = :state, updated_at = :now WHERE task_id = :task"
                       " AND state IN ('waiting', 'offered')", {"state": state, "now": to_db(now), "task": task_id})
    return [Listed(int(r[0]), r[1], None if r[2] is None else int(r[2]), str(r[3])) for r in rows]


async def close_open(conn: Connection, task_id: int, now: datetime) -> list[Listed]:
    """In a transaction (the event is closed): an offered place was counted at the close, so its entry
    is ``kept``; those still waiting end as ``closed``. Returns the ones who were waiting."""
    rows = await conn.execute_fetchall(_OPEN_ENTRIES, {"task": task_id})
    await conn.execute("UPDATE waitlist SET state = CASE WHEN state = 'offered' THEN 'kept' ELSE 'closed' END,"
                       " updated_at = :now WHERE task_id = :task AND state IN ('waiting', 'offered')",
                       {"now": to_db(now), "task": task_id})
    return [Listed(int(r[0]), r[1], None if r[2] is None else int(r[2]), str(r[3])) for r in rows if r[3] == "waiting"]
