"""Leases: a named job only one process may do at a time (long polling, the timed jobs), and each
running instance's own lease (``instance:<name>``, its heartbeat), held by a token or a name.

``take`` is one compare-and-set: the lease becomes (or stays) the caller's if it is free, already
the caller's, or expired; otherwise it is left alone. Either way the holder afterwards comes back,
so the caller knows whether it holds the lease and, if not, who does. Plain portable SQL
(``ON CONFLICT ... DO UPDATE ... WHERE``): the same statement works on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.db import Database
from storage.timeutil import from_db, to_db


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    host: str
    pid: int
    taken_at: datetime
    expires_at: datetime


_TAKE = (
    "INSERT INTO leases (name, holder, host, pid, taken_at, expires_at)"
    " VALUES (:name, :holder, :host, :pid, :now, :expires)"
    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid,"
    " taken_at = CASE WHEN leases.holder = excluded.holder THEN leases.taken_at ELSE excluded.taken_at END,"
    " expires_at = excluded.expires_at"
    " WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.taken_at OR leases.holder = :dead"
)
_HOLDER = "SELECT name, holder, host, pid, taken_at, expires_at FROM leases WHERE name = :name"
_RELEASE = "DELETE FROM leases WHERE name = :name AND holder = :holder"


def _row(row: sqlite3.Row | tuple[object, ...]) -> Lease:
    return Lease(str(row[0]), str(row[1]), str(row[2]), int(str(row[3])), from_db(str(row[4])), from_db(str(row[5])))


def take_sync(conn: sqlite3.Connection, name: str, holder: str, host: str, pid: int, now: datetime,
              ttl: timedelta, dead: str | None = None) -> Lease:
    """Take or renew ``name`` for ``holder`` until ``now + ttl`` unless another holds it unexpired
    (or ``dead``, a holder known to be gone, still holds it); the holder afterwards (in a
    ``Database.write`` transaction)."""
    conn.execute(_TAKE, {"name": name, "holder": holder, "host": host, "pid": pid, "now": to_db(now),
                         "expires": to_db(now + ttl), "dead": dead})
    return _row(conn.execute(_HOLDER, {"name": name}).fetchone())


async def take(db: Database, name: str, holder: str, host: str, pid: int, now: datetime, ttl: timedelta,
               dead: str | None = None) -> Lease:
    return await db.write(lambda conn: take_sync(conn, name, holder, host, pid, now, ttl, dead))


async def release(db: Database, name: str, holder: str) -> bool:
    """Give ``name`` up if ``holder`` still holds it (a clean stop: the next process need not wait)."""
    return await db.write(lambda conn: release_sync(conn, name, holder))


def release_sync(conn: sqlite3.Connection, name: str, holder: str) -> bool:
    """``release`` in the caller's ``Database.write`` transaction."""
    return conn.execute(_RELEASE, {"name": name, "holder": holder}).rowcount > 0


async def holder_of(db: Database, name: str) -> Lease | None:
    row = await db.fetchone(_HOLDER, {"name": name})
    return None if row is None else _row(row)


def holder_sync(conn: sqlite3.Connection, name: str) -> Lease | None:
    """Who holds ``name`` (on any connection, a read-only one too)."""
    row = conn.execute(_HOLDER, {"name": name}).fetchone()
    return None if row is None else _row(row)


_ALL = "SELECT name, holder, host, pid, taken_at, expires_at FROM leases ORDER BY name"
_DROP = "DELETE FROM leases WHERE name = :name AND holder = :holder AND expires_at = :expires"


async def every(db: Database) -> list[Lease]:
    """Every lease, by name (``linli doctor``, and the instances' look for stopped ones)."""
    return [_row(r) for r in await db.fetchall(_ALL)]


def every_sync(conn: sqlite3.Connection) -> list[Lease]:
    """``every`` on any connection (a read-only one too)."""
    return [_row(r) for r in conn.execute(_ALL).fetchall()]


def drop_sync(conn: sqlite3.Connection, lease: Lease) -> bool:
    """Delete ``lease`` if it is still as it was read (nobody renewed or took it since); True if gone."""
    return conn.execute(_DROP, {"name": lease.name, "holder": lease.holder,
                                "expires": to_db(lease.expires_at)}).rowcount > 0
