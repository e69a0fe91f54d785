"""Tasks and claims written straight into the database, for completion/points tests
(independent of the dispatch flows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.db import Database
from storage.timeutil import to_db
from tests.factories import insert


async def make_task(db: Database, now: datetime, community_id: int, created_by: int, *,
                    requester_id: int | None = None, kind: str = "request", slots: int = 1, points: int = 2,
                    state: str = "open", category: str = "shopping", **fields: Any) -> int:
    values: dict[str, Any] = {
        "community_id": community_id, "requester_id": requester_id, "created_by": created_by, "kind": kind,
        "category": category, "title": fields.pop("title", "Buy vegetables"), "slots": slots, "points": points,
        "state": state, "created_at": to_db(now), "published_at": to_db(now), "updated_at": to_db(now),
    }
    return await insert(db, "tasks", {**values, **fields})


async def make_claim(db: Database, now: datetime, task_id: int, member_id: int, *, state: str = "active",
                     update_task: bool = True) -> None:
    """Claim a place the way dispatch would: the task becomes in_progress (request) or full (event)
    when every slot is taken."""
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO claims (task_id, member_id, state, claimed_at, updated_at)"
                           " VALUES (?, ?, ?, ?, ?) ON CONFLICT (task_id, member_id) DO UPDATE SET state = excluded.state",
                           (task_id, member_id, state, to_db(now), to_db(now)))
        if update_task:
            await conn.execute(
                "UPDATE tasks SET state = CASE WHEN (SELECT COUNT(*) FROM claims WHERE task_id = tasks.id"
                " AND state IN ('active', 'done')) >= slots THEN (CASE kind WHEN 'event' THEN 'full'"
                " ELSE 'in_progress' END) ELSE state END, card_version = card_version + 1 WHERE id = ?",
                (task_id,))
