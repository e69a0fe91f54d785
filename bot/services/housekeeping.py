"""Forget bookkeeping nobody needs any more, once a day, a little at a time.

Handled rows of the update inbox (bot/inbox.py) are kept ``INBOX_KEEP_DAYS``: long enough to
recognise a redelivered update (Telegram redelivers for a day at most); set-aside ones stay until
someone looks at them (``linli inbox``).

Sent and failed outbox rows and the keys of sent reminders exist so that a retried job or a
redelivered update does not send a message twice. Telegram redelivers for a day at most and a
task's reminders end with the task, so after ``KEEP_DAYS`` they only take space (a busy community
writes tens of thousands a month). Pending and in-flight messages are never touched. Deletes run in
batches so the single writer is never held for long.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from storage import housekeeping as housekeeping_store
from storage.db import Database
from storage.timeutil import to_db

KEEP_DAYS = 90
INBOX_KEEP_DAYS = 7
BATCH = 2000


async def _delete_batches(db: Database, table: str, cutoff: str) -> int:
    total = 0
    while True:
        async with db.transaction() as conn:
            n = await housekeeping_store.delete_old(conn, table, cutoff, BATCH)
        total += n
        if n < BATCH:
            return total


async def prune_inbox(db: Database, now: datetime, keep_days: int = INBOX_KEEP_DAYS) -> int:
    """Delete handled inbox rows older than ``keep_days``, in batches."""
    cutoff = to_db(now - timedelta(days=keep_days))
    total = 0
    while True:
        async with db.transaction() as conn:
            n = await housekeeping_store.delete_handled_inbox(conn, cutoff, BATCH)
        total += n
        if n < BATCH:
            return total


async def prune(db: Database, now: datetime, keep_days: int = KEEP_DAYS) -> dict[str, int]:
    """Once a day: delete sent/failed outbox rows and sent-reminder keys older than ``keep_days``,
    handled inbox rows older than a week."""
    key = f"prune:{now.date().isoformat()}"
    if await housekeeping_store.done(db, key):
        return {}
    cutoff = to_db(now - timedelta(days=keep_days))
    out = {
        "outbox": await _delete_batches(db, "outbox", cutoff),  # sent or failed
        "sent_notifications": await _delete_batches(db, "sent_notifications", cutoff),
        "inbox": await prune_inbox(db, now),
    }
    async with db.transaction() as conn:
        await housekeeping_store.record_done(conn, key, now,
                                             forget_before=f"prune:{(now - timedelta(days=7)).date().isoformat()}")
    return out


async def mark_swept(db: Database, now: datetime) -> None:
    """Remember that a whole pass of the sweeps ended (``linli demo`` waits for it at fixed points)."""
    async with db.transaction() as conn:
        await housekeeping_store.mark_swept(conn, now)
