"""Data access for the update inbox (the rules of storing, claiming and handling are in bot/inbox.py).

The hot path (storing a batch, claiming rows, the handled marks) runs inside ``Database.write``:
these functions take the plain sqlite3 connection it gives and are synchronous.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.db import Database, dialect


@dataclass(frozen=True, slots=True)
class InboxRow:
    """An update claimed to be handled."""

    update_id: int
    lane: str
    payload: str
    attempts: int
    received_at: str
    again: bool = False   # taken back from a process that stopped while it had it


@dataclass(frozen=True, slots=True)
class SetAside:
    """An update set aside after its last attempt (``linli inbox`` lists them)."""

    update_id: int
    lane: str
    attempts: int
    error: str | None
    received_at: str


# A redelivery (same update_id, same content) is ignored. The same id with other content is a new
# update (Telegram numbers at random again after a quiet week): it replaces a handled row. Digests
# of updates stored as Telegram sent them start with "r" (bot/inbox.py); one of the other form
# (python-telegram-bot's to_dict, as before) cannot be compared with it, so the row is kept.
_STORE = (
    "INSERT INTO inbox (update_id, user_id, lane, digest, payload, received_at)"
    " VALUES (:update_id, :user_id, :lane, :digest, :payload, :received_at)"
    " ON CONFLICT (update_id) DO UPDATE SET user_id = excluded.user_id, lane = excluded.lane,"
    " digest = excluded.digest, payload = excluded.payload, status = 'waiting', attempts = 0, error = NULL,"
    " owner = NULL, lease_until = NULL, not_before = NULL, received_at = excluded.received_at, handled_at = NULL"
    " WHERE inbox.digest != excluded.digest AND inbox.status = 'handled'"
    " AND (substr(inbox.digest, 1, 1) = 'r') = (substr(excluded.digest, 1, 1) = 'r')"
)

# Rows free to take: waiting (or claimed under a lease that ran out), and not behind a row of
# the same lane that someone else is handling or that waits for a retry.
_CLAIM = (
    "UPDATE inbox SET status = 'working', owner = :me, lease_until = :lease"
    " WHERE update_id IN (SELECT i.update_id FROM inbox i"
    "  WHERE i.status IN ('waiting', 'working')"
    "   AND (i.status = 'waiting' OR i.lease_until < :now)"
    "   AND (i.not_before IS NULL OR i.not_before <= :now)"
    "   AND NOT EXISTS (SELECT 1 FROM inbox j WHERE j.lane = i.lane AND j.update_id < i.update_id"
    "     AND j.status IN ('waiting', 'working')"
    "     AND ((j.status = 'working' AND j.owner != :me AND j.lease_until >= :now)"
    "       OR (j.status = 'waiting' AND j.not_before > :now)))"
    "  ORDER BY i.update_id LIMIT :n)"
    " AND (status = 'waiting' OR lease_until < :now)"
    " RETURNING update_id, lane, payload, attempts, received_at, not_before IS NOT NULL"
)

# The update itself is not needed any more (its id and digest recognise a redelivery): handled
# rows stay small, and hold nothing personal for their week. The owner stays: which instance
# handled it (an instance name, nothing personal).
_HANDLED = ("UPDATE inbox SET status = 'handled', handled_at = :at, payload = '',"
            " lease_until = NULL WHERE update_id = :update_id AND status = 'working' AND owner = :owner")


def store(conn: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store updates given as dicts of update_id, user_id, lane, digest, payload and received_at."""
    conn.executemany(_STORE, rows)


def take_back(conn: sqlite3.Connection, owner: str, now: str) -> int:
    """Rows ``owner`` had claimed wait again, marked (``not_before``) as possibly handled already."""
    cur = conn.execute("UPDATE inbox SET status = 'waiting', owner = NULL, lease_until = NULL, not_before = :now"
                       " WHERE status = 'working' AND owner = :owner", {"now": now, "owner": owner})
    return cur.rowcount or 0


def renew(conn: sqlite3.Connection, owner: str, lease_until: str) -> int:
    """``owner`` is alive: the rows it is handling (or waits to retry) stay its own until ``lease_until``
    however long a handler runs; returns how many."""
    return conn.execute("UPDATE inbox SET lease_until = :lease WHERE status = 'working' AND owner = :owner",
                        {"lease": lease_until, "owner": owner}).rowcount or 0


def handled_by(conn: sqlite3.Connection) -> dict[str, int]:
    """How many handled updates each instance handled (kept a week; tests and the operator)."""
    rows = conn.execute("SELECT COALESCE(owner, ''), COUNT(*) FROM inbox WHERE status = 'handled'"
                        " GROUP BY owner").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


# On PostgreSQL (READ COMMITTED, several instances) a claim does not see another instance's claim
# that is not committed yet, and could take the next row of a lane that instance is handling: claims
# take this transaction-scoped lock first, so they follow each other (a claim is a few ms; the
# handling itself stays parallel). SQLite's one writer does the same already.
_CLAIM_LOCK = "SELECT pg_advisory_xact_lock(:key)"
CLAIM_LOCK_KEY = 0x6C696E6C69  # "linli"


def claim(conn: sqlite3.Connection, *, owner: str, now: str, lease_until: str, limit: int) -> list[InboxRow]:
    """Claim up to ``limit`` rows free to take for ``owner`` (in no particular order)."""
    if dialect(conn) != "sqlite":
        conn.execute(_CLAIM_LOCK, {"key": CLAIM_LOCK_KEY})
    params = {"me": owner, "now": now, "lease": lease_until, "n": limit}
    return [InboxRow(int(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), bool(r[5]))
            for r in conn.execute(_CLAIM, params).fetchall()]


def mark_handled(conn: sqlite3.Connection, marks: Sequence[tuple[str, int, str]]) -> None:
    """Mark rows handled, given as (handled at, update id, owner)."""
    conn.executemany(_HANDLED, [{"at": at, "update_id": uid, "owner": owner} for at, uid, owner in marks])


def record_failure(conn: sqlite3.Connection, *, update_id: int, owner: str, error: str, attempts: int,
                   lease_until: str) -> None:
    """An attempt failed: keep the error and the count, and the row's lease while it waits to retry."""
    conn.execute("UPDATE inbox SET error = :error, attempts = :attempts, lease_until = :lease"
                 " WHERE update_id = :update_id AND owner = :owner",
                 {"error": error, "attempts": attempts, "lease": lease_until, "update_id": update_id,
                  "owner": owner})


def set_aside(conn: sqlite3.Connection, *, update_id: int, error: str, attempts: int) -> None:
    conn.execute("UPDATE inbox SET status = 'set_aside', error = :error, attempts = :attempts, owner = NULL,"
                 " lease_until = NULL WHERE update_id = :update_id",
                 {"error": error, "attempts": attempts, "update_id": update_id})


def count_unhandled(conn: sqlite3.Connection) -> int:
    """Updates received and not yet handled to the end (waiting, or being handled); on a read-only
    connection (the demo kit waits for this to be 0: what a handler queues is in the outbox by then)."""
    return int(conn.execute("SELECT COUNT(*) FROM inbox WHERE status IN ('waiting', 'working')").fetchone()[0])


# -- for linli inbox -------------------------------------------------------------------------

async def counts(db: Database) -> dict[str, int]:
    """waiting (not yet handled; includes those being handled), failed (waiting after an error),
    set_aside, handled."""
    row = await db.fetchone(
        "SELECT COUNT(*) FILTER (WHERE status IN ('waiting', 'working')),"
        " COUNT(*) FILTER (WHERE status IN ('waiting', 'working') AND error IS NOT NULL),"
        " COUNT(*) FILTER (WHERE status = 'set_aside'), COUNT(*) FILTER (WHERE status = 'handled') FROM inbox")
    assert row is not None
    return {"waiting": int(row[0]), "failed": int(row[1]), "set_aside": int(row[2]), "handled": int(row[3])}


async def set_aside_rows(db: Database, limit: int = 20) -> list[SetAside]:
    rows = await db.fetchall("SELECT update_id, lane, attempts, error, received_at FROM inbox"
                             " WHERE status = 'set_aside' ORDER BY update_id LIMIT :n", {"n": limit})
    return [SetAside(int(r[0]), str(r[1]), int(r[2]), r[3], str(r[4])) for r in rows]


async def retry_set_aside(db: Database, update_id: int | None = None) -> int:
    """Put set-aside updates back to be handled (all of them, or the one with ``update_id``)."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "UPDATE inbox SET status = 'waiting', attempts = 0, owner = NULL, lease_until = NULL, not_before = NULL"
            " WHERE status = 'set_aside' AND (CAST(:update_id AS BIGINT) IS NULL OR update_id = :update_id)",
            {"update_id": update_id})
        return cur.rowcount or 0
