"""Data access for check-in at the venue (migration 0180): an event's check-in code (a token for
the QR code's deep link and a short code to type) and who checked in. The rules are in
bot/services/checkin.py."""

from __future__ import annotations

from datetime import datetime

from storage.db import Database, Row
from storage.timeutil import to_db

_EVENT = ("SELECT t.id, t.community_id, t.kind, t.state, t.title, t.description, t.voice_file_id, t.starts_at,"
          " t.ends_at, c.timezone AS tz FROM tasks t JOIN communities c ON c.id = t.community_id")


async def event(db: Database, task_id: int) -> Row | None:
    """What check-in needs of a task (kind, state, times, name, the community's time zone)."""
    return await db.fetchone(_EVENT + " WHERE t.id = :task_id", {"task_id": task_id})


async def code_of(db: Database, task_id: int) -> Row | None:
    """The event's check-in code row (token, short_code), None if check-in was never opened."""
    return await db.fetchone("SELECT task_id, token, short_code FROM checkin_codes WHERE task_id = :task_id",
                             {"task_id": task_id})


async def add_code(db: Database, *, task_id: int, token: str, short_code: str, opened_by: int | None,
                   now: datetime) -> Row | None:
    """Give the event this code unless it has one; the event's code row afterwards (None when the
    token or short code was taken by another event: draw again)."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO checkin_codes (task_id, token, short_code, opened_by, opened_at)"
            " VALUES (:task_id, :token, :short_code, :opened_by, :now) ON CONFLICT DO NOTHING",
            {"task_id": task_id, "token": token, "short_code": short_code, "opened_by": opened_by,
             "now": to_db(now)})
    return await code_of(db, task_id)


async def event_of_token(db: Database, token: str) -> int | None:
    v = await db.fetchval("SELECT task_id FROM checkin_codes WHERE token = :token", {"token": token})
    return None if v is None else int(v)


async def event_of_short_code(db: Database, short_code: str) -> int | None:
    v = await db.fetchval("SELECT task_id FROM checkin_codes WHERE short_code = :code", {"code": short_code})
    return None if v is None else int(v)


async def holds_place(db: Database, task_id: int, member_id: int) -> bool:
    """Whether the member holds a place at the event (an active or done claim)."""
    return await db.fetchone("SELECT 1 FROM claims WHERE task_id = :task_id AND member_id = :member_id"
                             " AND state IN ('active', 'done')", {"task_id": task_id, "member_id": member_id}) is not None


async def record(db: Database, *, task_id: int, member_id: int, via: str, now: datetime) -> bool | None:
    """Check the member in if they hold a place (an active or done claim): True when checked in now,
    False when they already were, None when they hold no place."""
    params = {"task_id": task_id, "member_id": member_id, "via": via, "now": to_db(now)}
    async with db.transaction() as conn:
        async with conn.execute("SELECT 1 FROM claims WHERE task_id = :task_id AND member_id = :member_id"
                                " AND state IN ('active', 'done')", params) as cur:
            if await cur.fetchone() is None:
                return None
        cur = await conn.execute("INSERT INTO checkins (task_id, member_id, via, checked_in_at)"
                                 " VALUES (:task_id, :member_id, :via, :now) ON CONFLICT DO NOTHING", params)
        return cur.rowcount == 1


async def counts(db: Database, task_id: int) -> tuple[int, int]:
    """(how many of those holding a place have checked in, how many hold a place)."""
    row = await db.fetchone(
        "SELECT COUNT(k.member_id) AS came, COUNT(*) AS held FROM claims c LEFT JOIN checkins k"
        " ON k.task_id = c.task_id AND k.member_id = c.member_id"
        " WHERE c.task_id = :task_id AND c.state IN ('active', 'done')", {"task_id": task_id})
    return (int(row["came"]), int(row["held"])) if row is not None else (0, 0)


async def checked_in(db: Database, task_id: int) -> set[int]:
    """The member ids of everyone checked in at the event."""
    rows = await db.fetchall("SELECT member_id FROM checkins WHERE task_id = :task_id", {"task_id": task_id})
    return {int(r["member_id"]) for r in rows}
