"""The statements erasing a person runs (bot/services/erasure.py decides which, from its registry).

The registry names tables, columns and the SQL condition on ``:mid`` (member id) and ``:tg``
(Telegram id) that picks the person's rows; the statements built from them live here. Table and
column names come from the registry and the live schema, never from anyone's input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import Database, dialect, first
from storage.timeutil import to_db


# -- the schema -----------------------------------------------------------------------------
async def tables(conn: aiosqlite.Connection) -> set[str]:
    if dialect(conn) == "sqlite":
        rows = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = await conn.execute_fetchall("SELECT table_name FROM information_schema.tables"
                                           " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
    return {str(r[0]) for r in rows}


async def columns(conn: aiosqlite.Connection, table: str) -> list[str]:
    """The table's columns in their order."""
    if dialect(conn) == "sqlite":
        return [str(r[1]) for r in await conn.execute_fetchall(f"PRAGMA table_info({table})")]
    rows = await conn.execute_fetchall("SELECT column_name FROM information_schema.columns WHERE table_schema"
                                       " = current_schema() AND table_name = :t ORDER BY ordinal_position", {"t": table})
    return [str(r[0]) for r in rows]


# -- the registry's statements --------------------------------------------------------------
async def run(conn: aiosqlite.Connection, statement: str, params: dict[str, Any]) -> None:
    """A statement the registry declares to run first (e.g. storage.outbox.QUEUE_FORGET)."""
    await conn.execute(statement, params)


async def values(conn: aiosqlite.Connection, table: str, column: str, where: str, params: dict[str, Any]) -> list[str]:
    """The non-empty values of ``column`` in the rows of ``table`` that ``where`` picks."""
    rows = await conn.execute_fetchall(f"SELECT {column} FROM {table} WHERE ({where}) AND {column} IS NOT NULL",
                                       params)
    return [str(r[0]) for r in rows]


async def audit_details(conn: aiosqlite.Connection, member_id: int) -> list[tuple[str, str | None]]:
    """(action, details JSON) of every audit entry the member made."""
    rows = await conn.execute_fetchall("SELECT action, details FROM audit_log WHERE actor_id = :mid",
                                       {"mid": member_id})
    return [(str(r[0]), r[1]) for r in rows]


# A row is named by SQLite's rowid, or by PostgreSQL's ctid (where the row is now: it moves when the
# row is updated, so the cells of one column are read, then set, before the next column is read).
def _row_name(conn: object) -> str:
    return "rowid" if dialect(conn) == "sqlite" else "ctid"


async def cells_holding(conn: aiosqlite.Connection, table: str, column: str,
                        needles: Sequence[str]) -> list[tuple[Any, Any]]:
    """(row, value) of every cell of ``column`` that contains one of ``needles``."""
    find = "instr" if dialect(conn) == "sqlite" else "strpos"
    test = " OR ".join(f"{find}({column}, ?) > 0" for _ in needles)
    rows = await conn.execute_fetchall(f"SELECT {_row_name(conn)}, {column} FROM {table} WHERE {column} IS NOT NULL"
                                       f" AND ({test})", list(needles))
    return [(r[0], r[1]) for r in rows]


async def set_cell(conn: aiosqlite.Connection, table: str, column: str, row: Any, value: Any) -> None:
    await conn.execute(f"UPDATE {table} SET {column} = :value WHERE {_row_name(conn)} = :row",
                       {"value": value, "row": row})


async def set_column(conn: aiosqlite.Connection, table: str, column: str, where: str, params: dict[str, Any],
                     value: object) -> int:
    """Set ``column`` to ``value`` in the rows ``where`` picks (those that differ); returns how many changed."""
    cur = await conn.execute(f"UPDATE {table} SET {column} = :value WHERE ({where}) AND {column} IS DISTINCT FROM :value",
                             {**params, "value": value})
    return cur.rowcount or 0


async def delete(conn: aiosqlite.Connection, table: str, where: str, params: dict[str, Any]) -> int:
    cur = await conn.execute(f"DELETE FROM {table} WHERE {where}", params)
    return cur.rowcount or 0


# -- the person's requests ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RequestText:
    """A request's own words, and the private details its masking hides."""

    id: int
    title: str | None
    description: str | None
    address: str | None
    proxy_name: str | None
    proxy_address: str | None
    proxy_phone: str | None


async def requests_of(conn: aiosqlite.Connection, member_id: int) -> list[RequestText]:
    """Every request the member made, whatever its state."""
    rows = await conn.execute_fetchall(
        "SELECT id, title, description, address, proxy_name, proxy_address, proxy_phone FROM tasks"
        " WHERE requester_id = :mid", {"mid": member_id})
    return [RequestText(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


async def set_request_text(conn: aiosqlite.Connection, task_id: int, title: str | None,
                           description: str | None) -> None:
    await conn.execute("UPDATE tasks SET title = :title, description = :description WHERE id = :id",
                       {"title": title, "description": description, "id": task_id})


async def redraw_requests(conn: aiosqlite.Connection, member_id: int, now: datetime) -> None:
    """Every card of the member's requests is drawn again (their details are gone)."""
    await conn.execute("UPDATE tasks SET card_version = card_version + 1, updated_at = :now WHERE requester_id = :mid",
                       {"now": to_db(now), "mid": member_id})


async def name_and_address(conn: aiosqlite.Connection, member_id: int) -> tuple[str | None, str | None] | None:
    """The member's name and address as they are now (erased or not); None if there is no such member."""
    row = await first(conn, "SELECT display_name, address FROM members WHERE id = :mid", {"mid": member_id})
    return None if row is None else (row[0], row[1])


# -- what the person lets go of before erasure ----------------------------------------------
async def held_task_ids(db: Database, member_id: int) -> list[int]:
    """The tasks on which the member holds an active place."""
    rows = await db.fetchall("SELECT task_id FROM claims WHERE member_id = :mid AND state = 'active'",
                             {"mid": member_id})
    return [int(r[0]) for r in rows]


async def requests_in(db: Database, member_id: int, states: Iterable[str]) -> list[int]:
    """The member's own requests in one of these states."""
    params: dict[str, Any] = {f"s{i}": s for i, s in enumerate(states)}
    rows = await db.fetchall(f"SELECT id FROM tasks WHERE requester_id = :mid AND state IN"
                             f" ({', '.join(':' + k for k in params)})", {**params, "mid": member_id})
    return [int(r[0]) for r in rows]
