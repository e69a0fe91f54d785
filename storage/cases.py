"""Data access for problem cases: opened when the person helped answers "Problem", resolved by staff
(at most one open case per task)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.db import Connection, Database, Row, first, new_id
from storage.timeutil import to_db


@dataclass(frozen=True, slots=True)
class Case:
    """A row of ``cases``; times as stored (UTC text)."""

    id: int
    community_id: int
    task_id: int
    opened_by: int
    reason: str | None
    state: str                # open, resolved
    resolution: str | None    # credit, no_credit, partial
    points: int | None        # points per volunteer granted by the resolution
    resolved_by: int | None
    note: str | None
    created_at: str
    resolved_at: str | None

    @classmethod
    def from_row(cls, row: Row) -> Case:
        """From ``SELECT *``: the fields are declared in the table's column order."""
        return cls(*row)


async def get(conn: Connection, case_id: int) -> Case | None:
    found = await first(conn, "SELECT * FROM cases WHERE id = :id", {"id": case_id})
    return None if found is None else Case.from_row(found)


async def open_id(conn: Connection, task_id: int) -> int | None:
    """The id of the task's open case, None if it has none."""
    found = await first(conn, "SELECT id FROM cases WHERE task_id = :task AND state = 'open'", {"task": task_id})
    return None if found is None else int(found[0])


async def task_points(db: Database, case_id: int) -> int:
    """The points of the task a case is about (0 if there is no such case)."""
    return int(await db.fetchval("SELECT t.points FROM cases c JOIN tasks t ON t.id = c.task_id WHERE c.id = :id",
                                 {"id": case_id}) or 0)


async def open_case(conn: Connection, now: datetime, *, community_id: int, task_id: int, opened_by: int,
                    reason: str | None) -> int:
    """Open a case about the task; returns its id."""
    cur = await conn.execute("INSERT INTO cases (community_id, task_id, opened_by, reason, created_at)"
                             " VALUES (:community, :task, :by, :reason, :now) RETURNING id",
                             {"community": community_id, "task": task_id, "by": opened_by, "reason": reason,
                              "now": to_db(now)})
    return new_id(await cur.fetchone())


async def add_reason(conn: Connection, case_id: int, reason: str) -> None:
    """Another reason typed for the case, after those given before ("first / second")."""
    await conn.execute("UPDATE cases SET reason = COALESCE(reason || ' / ', '') || :reason WHERE id = :id",
                       {"reason": reason, "id": case_id})


async def resolve(conn: Connection, case_id: int, now: datetime, *, resolution: str, points: int, resolved_by: int,
                  note: str | None = None) -> None:
    await conn.execute("UPDATE cases SET state = 'resolved', resolution = :resolution, points = :points,"
                       " resolved_by = :by, note = :note, resolved_at = :now WHERE id = :id",
                       {"resolution": resolution, "points": points, "by": resolved_by, "note": note,
                        "now": to_db(now), "id": case_id})
