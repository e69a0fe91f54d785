"""Writing to the outbox inside a service's transaction (the drain job lives in bot.jobs.outbox)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiosqlite

from storage.timeutil import to_db


async def enqueue(
    conn: aiosqlite.Connection,
    *,
    chat_id: int,
    kind: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
    member_id: int | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
    priority: int = 0,
) -> bool:
    """Queue one message. Returns False when a row with the same ``dedupe_key`` exists already."""
    cur = await conn.execute(
        "INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, priority, not_before, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
        (
            dedupe_key,
            chat_id,
            member_id,
            kind,
            json.dumps(payload or {}, ensure_ascii=False),
            priority,
            to_db(not_before or now),
            to_db(now),
        ),
    )
    return (cur.rowcount or 0) > 0


async def audit(
    conn: aiosqlite.Connection,
    *,
    now: datetime,
    action: str,
    community_id: int | None = None,
    actor_id: int | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record who did what to which object (one row, in the caller's transaction)."""
    await conn.execute(
        "INSERT INTO audit_log (community_id, actor_id, action, object_type, object_id, details, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            community_id,
            actor_id,
            action,
            object_type,
            object_id,
            json.dumps(details or {}, ensure_ascii=False),
            to_db(now),
        ),
    )
