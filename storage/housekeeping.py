"""The deletes of daily housekeeping (bot/services/housekeeping.py): old bookkeeping rows, a batch at a time."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from storage.db import Database
from storage.timeutil import to_db

# What may be pruned, by table: the rows no longer needed (besides their age, ``created_at``).
PRUNABLE = {
    "outbox": "state IN ('sent', 'failed')",
    "sent_notifications": "1 = 1",
}


async def delete_old(conn: aiosqlite.Connection, table: str, cutoff: str, limit: int) -> int:
    """Delete up to ``limit`` prunable rows of ``table`` created before ``cutoff``; returns how many went."""
    where = PRUNABLE[table]
    cur = await conn.execute(
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} AND created_at < :cutoff LIMIT :n)",
        {"cutoff": cutoff, "n": limit})
    return cur.rowcount or 0


async def delete_handled_inbox(conn: aiosqlite.Connection, cutoff: str, limit: int) -> int:
    """Delete up to ``limit`` handled inbox rows handled before ``cutoff``; returns how many went."""
    cur = await conn.execute(
        "DELETE FROM inbox WHERE update_id IN (SELECT update_id FROM inbox"
        " WHERE status = 'handled' AND handled_at < :cutoff LIMIT :n)", {"cutoff": cutoff, "n": limit})
    return cur.rowcount or 0


async def done(db: Database, key: str) -> bool:
    """Whether the run named ``key`` is recorded as done."""
    return bool(await db.fetchval("SELECT 1 FROM kv WHERE key = :key", {"key": key}))


async def record_done(conn: aiosqlite.Connection, key: str, now: datetime, *, forget_before: str) -> None:
    """Record the run ``key`` ("<kind>:<date>") as done (once) and forget the records of runs of the same
    kind whose keys sort before ``forget_before``."""
    await conn.execute("INSERT INTO kv (key, value) VALUES (:key, :now) ON CONFLICT (key) DO NOTHING",
                       {"key": key, "now": to_db(now)})
    await conn.execute("DELETE FROM kv WHERE key LIKE :kind AND key < :before",
                       {"kind": key.split(":", 1)[0] + ":%", "before": forget_before})


SWEPT_KEY = "sweeps:last_run"


async def mark_swept(conn: aiosqlite.Connection, now: datetime) -> None:
    """A whole pass of the sweeps ended at ``now`` (the demo kit waits for it: ``storage.readonly.last_sweep``)."""
    await conn.execute("INSERT INTO kv (key, value) VALUES (:key, :value)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       {"key": SWEPT_KEY, "value": to_db(now)})
