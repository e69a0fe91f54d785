"""Data access for the points ledger: append-only rows, one unique idempotency key each.

``members.balance`` is kept by a trigger on insert; its ``CHECK (balance >= 0)`` refuses an
overdraft, reported here as ``Overdraft``. The rules (amounts, who may move points) are in
bot/services/ledger.py.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import aiosqlite

from storage.timeutil import to_db


class Overdraft(Exception):
    """The row would take the member's balance below zero (nothing was written)."""


async def append(conn: aiosqlite.Connection, *, member_id: int, delta: int, reason: str, key: str, now: datetime,
                 task_id: int | None = None, voucher_id: int | None = None, actor_id: int | None = None,
                 note: str | None = None) -> bool | None:
    """Write one row in the caller's transaction, in the member's community and organisation.
    True if written, False if ``key`` was used before, None if there is no such member."""
    async with conn.execute(
        "SELECT community_id, organisation_id FROM members WHERE id = ?", (member_id,)
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    try:
        cur2 = await conn.execute(
            "INSERT INTO ledger (community_id, member_id, delta, reason, note, task_id, voucher_id,"
            " organisation_id, idempotency_key, actor_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
            (row[0], member_id, delta, reason, note, task_id, voucher_id, row[1], key, actor_id, to_db(now)),
        )
    except sqlite3.IntegrityError as exc:
        if "CHECK" in str(exc).upper() or "balance" in str(exc):
            raise Overdraft() from None
        raise
    return (cur2.rowcount or 0) > 0


async def balance(conn: aiosqlite.Connection, member_id: int) -> int:
    async with conn.execute("SELECT balance FROM members WHERE id = ?", (member_id,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def total(conn: aiosqlite.Connection, member_id: int) -> int:
    """The sum of the member's rows (equal to the balance the trigger keeps)."""
    async with conn.execute("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE member_id = ?", (member_id,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0
