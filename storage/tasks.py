"""Data access for tasks and their claims (and the cases opened about them).

One task loader (``get``) serves every service; the handlers' and renderers'
reads are named functions here, so no SQL sits above the service layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from storage.db import Database, first


@dataclass(frozen=True)
class KindState:
    kind: str
    state: str


async def get(conn: aiosqlite.Connection, task_id: int) -> aiosqlite.Row | None:
    """The task's row (inside a transaction), None if there is no such task."""
    return await first(conn, "SELECT * FROM tasks WHERE id = ?", (task_id,))


async def row(db: Database, task_id: object) -> Any:
    """The task's row, None if there is no such task."""
    return await db.fetchone("SELECT * FROM tasks WHERE id = ?", (task_id,))


async def name_row(db: Database, task_id: object) -> Any:
    """What it takes to name a task (id, title, description, voice_file_id)."""
    return await db.fetchone("SELECT id, title, description, voice_file_id FROM tasks WHERE id = ?", (task_id,))


async def community_of(db: Database, task_id: int) -> int | None:
    v = await db.fetchval("SELECT community_id FROM tasks WHERE id = ?", (task_id,))
    return None if v is None else int(v)


async def state_of(db: Database, task_id: object) -> str | None:
    v = await db.fetchval("SELECT state FROM tasks WHERE id = ?", (task_id,))
    return None if v is None else str(v)


async def kind_state(db: Database, task_id: int) -> KindState | None:
    r = await db.fetchone("SELECT kind, state FROM tasks WHERE id = ?", (task_id,))
    return None if r is None else KindState(str(r["kind"]), str(r["state"]))


async def points_of(db: Database, task_id: object) -> int:
    """The task's points (0 if there is no such task)."""
    return int(await db.fetchval("SELECT points FROM tasks WHERE id = ?", (task_id,)) or 0)


async def case_task_points(db: Database, case_id: int) -> int:
    """The points of the task a case is about (0 if there is no such case)."""
    return int(await db.fetchval("SELECT t.points FROM cases c JOIN tasks t ON t.id = c.task_id WHERE c.id = ?",
                                 (case_id,)) or 0)


async def claim_state(db: Database, task_id: int, member_id: int | None) -> str | None:
    v = await db.fetchval("SELECT state FROM claims WHERE task_id = ? AND member_id = ?", (task_id, member_id))
    return None if v is None else str(v)
