"""Data access for tasks and their claims (and the cases opened about them).

One task loader (``get``) serves every service; the handlers' and renderers'
reads are named functions here, so no SQL sits above the service layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from storage.db import Database, Row, first


@dataclass(frozen=True)
class KindState:
    kind: str
    state: str


async def count_open(db: Database, community_id: int) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM tasks WHERE community_id = ? AND state = 'open'",
                                 (community_id,)) or 0)


async def open_page(db: Database, community_id: int, *, offset: int, limit: int) -> list[Row]:
    """Open tasks of the community, newest first, with the requester's name and address (secrets
    the group must not see: ``requester_name``, ``requester_address``)."""
    return await db.fetchall(
        "SELECT t.*, r.display_name AS requester_name, r.address AS requester_address FROM tasks t"
        " LEFT JOIN members r ON r.id = t.requester_id WHERE t.community_id = ? AND t.state = 'open'"
        " ORDER BY t.id DESC LIMIT ? OFFSET ?",
        (community_id, limit, offset))


async def of_member(db: Database, member_id: int, *, limit: int) -> list[Row]:
    """Tasks the member asked for, created, or holds (or held) a place on; newest first."""
    return await db.fetchall(
        "SELECT t.* FROM tasks t WHERE t.requester_id = ? OR t.created_by = ? OR EXISTS (SELECT 1 FROM claims c"
        " WHERE c.task_id = t.id AND c.member_id = ? AND c.state IN ('active', 'done', 'completed'))"
        " ORDER BY t.id DESC LIMIT ?", (member_id, member_id, member_id, limit))


async def last_category(db: Database, member_id: int) -> str | None:
    """The category of the latest request the member asked for themselves (None if they never asked)."""
    value = await db.fetchval(
        "SELECT category FROM tasks WHERE requester_id = :member AND kind = 'request' AND is_proxy = 0"
        " ORDER BY id DESC LIMIT 1", {"member": member_id})
    return None if value is None else str(value)


async def get(conn: aiosqlite.Connection, task_id: int) -> aiosqlite.Row | None:
    """The task's row (inside a transaction), None if there is no such task."""
    return await first(conn, "SELECT * FROM tasks WHERE id = ?", (task_id,))


async def row(db: Database, task_id: object) -> Any:
    """The task's row, None if there is no such task."""
    return await db.fetchone("SELECT * FROM tasks WHERE id = ?", (task_id,))


async def name_row(db: Database, task_id: object) -> Any:
    """What it takes to name a task (id, title, description, voice_file_id)."""
    return await db.fetchone("SELECT id, title, description, voice_file_id FROM tasks WHERE id = ?", (task_id,))


async def when_row(db: Database, task_id: object) -> Any:
    """What it takes to name a task with its time and place: ``name_row`` with starts_at, the
    community's time zone (tz) and the area's name (area_name)."""
    return await db.fetchone(
        "SELECT t.id, t.title, t.description, t.voice_file_id, t.when_kind, t.starts_at, t.ends_at, t.address,"
        " c.timezone AS tz,"
        " a.name AS area_name FROM tasks t JOIN communities c ON c.id = t.community_id"
        " LEFT JOIN areas a ON a.id = t.area_id WHERE t.id = ?", (task_id,))


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


# -- the task's card in the volunteer group ---------------------------------------------------
async def card_posted(db: Database, task_id: int, chat_id: int, message_id: int, version: int, shown: str) -> None:
    """The card was posted: remember where, which version and what it shows (unless one is recorded)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET group_chat_id = ?, group_message_id = ?, card_rendered = ?,"
                           " card_hash = ? WHERE id = ? AND group_message_id IS NULL",
                           (chat_id, message_id, version, shown, task_id))


async def card_given_up(db: Database, task_id: int, chat_id: int, version: int) -> None:
    """The card cannot be posted in that chat: message id 0 means given up (not tried again every run)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET group_chat_id = ?, group_message_id = 0,"
                           " card_rendered = ? WHERE id = ? AND group_message_id IS NULL",
                           (chat_id, version, task_id))


async def card_drawn(db: Database, task_id: int, version: int, shown: str | None, *, keep_hash: bool = False) -> None:
    """The card shows ``version`` (and now the content hashed ``shown``, unless ``keep_hash``)."""
    async with db.transaction() as conn:
        if keep_hash:
            await conn.execute("UPDATE tasks SET card_rendered = MAX(card_rendered, ?) WHERE id = ?",
                               (version, task_id))
        else:
            await conn.execute("UPDATE tasks SET card_rendered = MAX(card_rendered, ?), card_hash = ?"
                               " WHERE id = ?", (version, shown, task_id))


@dataclass(frozen=True)
class CardPlace:
    """Where a task's card is recorded (``message_id`` None: not posted yet; 0: posting given up),
    and the group chat of its community."""

    message_id: int | None
    community_chat: int | None


async def card_place(db: Database, task_id: int) -> CardPlace | None:
    row = await db.fetchone("SELECT t.group_message_id, c.group_chat_id FROM tasks t"
                            " JOIN communities c ON c.id = t.community_id WHERE t.id = ?", (task_id,))
    return None if row is None else CardPlace(row["group_message_id"], row["group_chat_id"])


async def adopt_card(db: Database, task_id: int, chat_id: int, message_id: int) -> None:
    """Record a card found in the group as the task's card, if none is recorded (the card job redraws it)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET group_chat_id = ?, group_message_id = ?, card_rendered = -1,"
                           " card_hash = NULL WHERE id = ? AND group_message_id IS NULL",
                           (chat_id, message_id, task_id))


async def in_group(db: Database, task_id: int, group_chat_id: int) -> bool:
    """Whether the task belongs to the community whose group this is."""
    return bool(await db.fetchval(
        "SELECT 1 FROM tasks t JOIN communities c ON c.id = t.community_id WHERE t.id = ? AND c.group_chat_id = ?",
        (task_id, group_chat_id)))


async def move_group(conn: aiosqlite.Connection, old_chat_id: int, new_chat_id: int) -> None:
    """Tasks whose card is in a group that has a new chat id (it became a supergroup) follow it."""
    await conn.execute("UPDATE tasks SET group_chat_id = :new WHERE group_chat_id = :old",
                       {"new": new_chat_id, "old": old_chat_id})
