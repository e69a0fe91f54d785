"""The points ledger: append-only rows, one unique idempotency key each.

``credit`` and ``debit`` run inside the caller's transaction. A second call with the same key
changes nothing and returns False, so a redelivered update, a double tap or a retried job can
never move points twice. ``members.balance`` is kept by a trigger on insert and its
``CHECK (balance >= 0)`` refuses an overdraft, which ``debit`` turns into InsufficientPoints.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import aiosqlite

from bot.models import InsufficientPoints, InvalidInput
from storage.timeutil import to_db


async def _append(
    conn: aiosqlite.Connection,
    *,
    member_id: int,
    delta: int,
    reason: str,
    key: str,
    now: datetime,
    task_id: int | None = None,
    voucher_id: int | None = None,
    actor_id: int | None = None,
    note: str | None = None,
) -> bool:
    async with conn.execute(
        "SELECT community_id, organisation_id FROM members WHERE id = ?", (member_id,)
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        raise InvalidInput()
    try:
        cur2 = await conn.execute(
            "INSERT INTO ledger (community_id, member_id, delta, reason, note, task_id, voucher_id,"
            " organisation_id, idempotency_key, actor_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
            (row[0], member_id, delta, reason, note, task_id, voucher_id, row[1], key, actor_id, to_db(now)),
        )
    except sqlite3.IntegrityError as exc:
        if "CHECK" in str(exc).upper() or "balance" in str(exc):
            raise InsufficientPoints() from None
        raise
    return (cur2.rowcount or 0) > 0


async def credit(conn: aiosqlite.Connection, *, member_id: int, amount: int, reason: str, key: str, now: datetime,
                 task_id: int | None = None, voucher_id: int | None = None, actor_id: int | None = None,
                 note: str | None = None) -> bool:
    """Add ``amount`` (> 0) points once per ``key``. Returns False if the key was used before."""
    if amount <= 0:
        raise InvalidInput()
    return await _append(conn, member_id=member_id, delta=amount, reason=reason, key=key, now=now,
                         task_id=task_id, voucher_id=voucher_id, actor_id=actor_id, note=note)


async def debit(conn: aiosqlite.Connection, *, member_id: int, amount: int, reason: str, key: str, now: datetime,
                task_id: int | None = None, voucher_id: int | None = None, actor_id: int | None = None,
                note: str | None = None) -> bool:
    """Take ``amount`` (> 0) points once per ``key``; InsufficientPoints if the balance is short."""
    if amount <= 0:
        raise InvalidInput()
    return await _append(conn, member_id=member_id, delta=-amount, reason=reason, key=key, now=now,
                         task_id=task_id, voucher_id=voucher_id, actor_id=actor_id, note=note)


async def balance(conn: aiosqlite.Connection, member_id: int) -> int:
    async with conn.execute("SELECT balance FROM members WHERE id = ?", (member_id,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def ledger_sum(conn: aiosqlite.Connection, member_id: int) -> int:
    async with conn.execute("SELECT COALESCE(SUM(delta), 0) FROM ledger WHERE member_id = ?", (member_id,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0
