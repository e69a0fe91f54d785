"""Writing to the outbox inside a service's transaction (the drain job lives in bot.jobs.outbox)."""

from __future__ import annotations

import json
import sqlite3
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
    cur = await conn.execute(_ENQUEUE, _enqueue_row(chat_id, kind, now, payload, member_id, dedupe_key,
                                                    not_before, priority))
    return (cur.rowcount or 0) > 0


def enqueue_sync(
    conn: sqlite3.Connection,
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
    """``enqueue`` for a transaction run by ``Database.write`` (plain sqlite3, on the writer's thread)."""
    cur = conn.execute(_ENQUEUE, _enqueue_row(chat_id, kind, now, payload, member_id, dedupe_key,
                                              not_before, priority))
    return (cur.rowcount or 0) > 0


_ENQUEUE = ("INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, priority, not_before, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING")


def _enqueue_row(chat_id: int, kind: str, now: datetime, payload: dict[str, Any] | None, member_id: int | None,
                 dedupe_key: str | None, not_before: datetime | None, priority: int) -> tuple[Any, ...]:
    return (dedupe_key, chat_id, member_id, kind, json.dumps(payload or {}, ensure_ascii=False), priority,
            to_db(not_before or now), to_db(now))


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
    await conn.execute(_AUDIT, (community_id, actor_id, action, object_type, object_id,
                                json.dumps(details or {}, ensure_ascii=False), to_db(now)))


def audit_sync(
    conn: sqlite3.Connection,
    *,
    now: datetime,
    action: str,
    community_id: int | None = None,
    actor_id: int | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """``audit`` for a transaction run by ``Database.write`` (plain sqlite3, on the writer's thread)."""
    conn.execute(_AUDIT, (community_id, actor_id, action, object_type, object_id,
                          json.dumps(details or {}, ensure_ascii=False), to_db(now)))


_AUDIT = ("INSERT INTO audit_log (community_id, actor_id, action, object_type, object_id, details, created_at)"
          " VALUES (?, ?, ?, ?, ?, ?, ?)")
