"""The points ledger: append-only rows, one unique idempotency key each.

``credit`` and ``debit`` run inside the caller's transaction. A second call with the same key
changes nothing and returns False, so a redelivered update, a double tap or a retried job can
never move points twice. ``members.balance`` is kept by a trigger on insert and its
``CHECK (balance >= 0)`` refuses an overdraft, which ``debit`` turns into InsufficientPoints.
The SQL is in storage/ledger.py.
"""

from __future__ import annotations

from datetime import datetime

from bot.models import InsufficientPoints, InvalidInput
from storage import ledger as store
from storage.db import Connection


async def _append(conn: Connection, *, member_id: int, delta: int, reason: str, key: str, now: datetime,
                  task_id: int | None = None, voucher_id: int | None = None, actor_id: int | None = None,
                  note: str | None = None) -> bool:
    try:
        written = await store.append(conn, member_id=member_id, delta=delta, reason=reason, key=key, now=now,
                                     task_id=task_id, voucher_id=voucher_id, actor_id=actor_id, note=note)
    except store.Overdraft:
        raise InsufficientPoints() from None
    if written is None:
        raise InvalidInput()
    return written


async def credit(conn: Connection, *, member_id: int, amount: int, reason: str, key: str, now: datetime,
                 task_id: int | None = None, voucher_id: int | None = None, actor_id: int | None = None,
                 note: str | None = None) -> bool:
    """Add ``amount`` (> 0) points once per ``key``. Returns False if the key was used before."""
    if amount <= 0:
        raise InvalidInput()
    return await _append(conn, member_id=member_id, delta=amount, reason=reason, key=key, now=now,
                         task_id=task_id, voucher_id=voucher_id, actor_id=actor_id, note=note)


async def debit(conn: Connection, *, member_id: int, amount: int, reason: str, key: str, now: datetime,
                task_id: int | None = None, voucher_id: int | None = None, actor_id: int | None = None,
                note: str | None = None) -> bool:
    """Take ``amount`` (> 0) points once per ``key``; InsufficientPoints if the balance is short."""
    if amount <= 0:
        raise InvalidInput()
    return await _append(conn, member_id=member_id, delta=-amount, reason=reason, key=key, now=now,
                         task_id=task_id, voucher_id=voucher_id, actor_id=actor_id, note=note)


async def balance(conn: Connection, member_id: int) -> int:
    return await store.balance(conn, member_id)


async def ledger_sum(conn: Connection, member_id: int) -> int:
    return await store.total(conn, member_id)
