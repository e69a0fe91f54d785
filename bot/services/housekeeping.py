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

from storage.db import Database
from storage.timeutil import to_db

KEEP_DAYS = 90
INBOX_KEEP_DAYS = 7
BATCH = 2000


async def _delete_batches(db: Database, table: str, where: str, cutoff: str) -> int:
    total = 0
    while True:
        async with db.transaction() as conn:
            cur = await conn.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} AND created_at < ? LIMIT ?)",
                (cutoff, BATCH))
            n = cur.rowcount or 0
        total += n
        if n < BATCH:
            return total


async def prune_inbox(db: Database, now: datetime, keep_days: int = INBOX_KEEP_DAYS) -> int:
    """Delete handled inbox rows older than ``keep_days``, in batches."""
    cutoff = to_db(now - timedelta(days=keep_days))
    total = 0
    while True:
        async with db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM inbox WHERE update_id IN (SELECT update_id FROM inbox"
                " WHERE status = 'handled' AND handled_at < ? LIMIT ?)", (cutoff, BATCH))
            n = cur.rowcount or 0
        total += n
        if n < BATCH:
            return total


async def prune(db: Database, now: datetime, keep_days: int = KEEP_DAYS) -> dict[str, int]:
    """Once a day: delete sent/failed outbox rows and sent-reminder keys older than ``keep_days``,
    handled inbox rows older than a week."""
    key = f"prune:{now.date().isoformat()}"
    if await db.fetchval("SELECT 1 FROM kv WHERE key = ?", (key,)):
        return {}
    cutoff = to_db(now - timedelta(days=keep_days))
    out = {
        "outbox": await _delete_batches(db, "outbox", "state IN ('sent', 'failed')", cutoff),
        "sent_notifications": await _delete_batches(db, "sent_notifications", "1 = 1", cutoff),
        "inbox": await prune_inbox(db, now),
    }
    async with db.transaction() as conn:
        await conn.execute("INSERT OR IGNORE INTO kv (key, value) VALUES (?, ?)", (key, to_db(now)))
        await conn.execute("DELETE FROM kv WHERE key LIKE 'prune:%' AND key < ?",
                           (f"prune:{(now - timedelta(days=7)).date().isoformat()}",))
    return out
