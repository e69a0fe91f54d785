"""Data access for members (and the organisations they belong to): every SQL statement about them
that the bot's handlers need goes through here.

Services and handlers ask by name (``registered_id_in``, ``language_of``…) and get plain values or
typed rows, never a cursor, so a change of database touches this module only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import Database, first
from storage.outbox import enqueue, enqueue_sync
from storage.timeutil import to_db


@dataclass(frozen=True)
class Contact:
    """What a volunteer who claimed a task may see of the resident."""

    display_name: str | None
    phone: str | None


@dataclass(frozen=True)
class PublicName:
    """What a group may hear of a member (if they agreed and are still here)."""

    display_name: str | None
    announce_consent: bool
    deleted: bool


@dataclass(frozen=True)
class MemberName:
    """A member as staff see them in a list: number, name, and whether they are staff."""

    id: int
    display_name: str | None
    is_staff: bool


async def staff_of(db: Database, community_id: int) -> list[MemberName]:
    """The community's staff (not erased), by name."""
    rows = await db.fetchall("SELECT id, display_name FROM members WHERE community_id = ? AND is_staff = 1"
                             " AND deleted_at IS NULL ORDER BY display_name", (community_id,))
    return [MemberName(int(r["id"]), r["display_name"], True) for r in rows]


async def named_like(db: Database, community_id: int, pattern: str, limit: int) -> list[MemberName]:
    """Registered members of the community whose name matches the LIKE ``pattern``, by name."""
    rows = await db.fetchall(
        "SELECT id, display_name, is_staff FROM members WHERE community_id = ?"
        " AND registered_at IS NOT NULL AND deleted_at IS NULL AND display_name LIKE ? ORDER BY display_name, id LIMIT ?",
        (community_id, pattern, limit))
    return [MemberName(int(r["id"]), r["display_name"], bool(r["is_staff"])) for r in rows]


async def get(conn: aiosqlite.Connection, member_id: int) -> aiosqlite.Row | None:
    """The (not deleted) member's row inside a transaction, None if there is none."""
    return await first(conn, "SELECT * FROM members WHERE id = ? AND deleted_at IS NULL", (member_id,))


async def get_by_tg(conn: aiosqlite.Connection, tg_user_id: int) -> aiosqlite.Row | None:
    """The (not deleted) member row of a Telegram user inside a transaction, registered or not."""
    return await first(conn, "SELECT * FROM members WHERE tg_user_id = ? AND deleted_at IS NULL", (tg_user_id,))


async def by_tg(db: Database, tg_user_id: int) -> Any:
    """The (not deleted) member row of a Telegram user, registered or not."""
    return await db.fetchone("SELECT * FROM members WHERE tg_user_id = ? AND deleted_at IS NULL", (tg_user_id,))


async def by_id(db: Database, member_id: int) -> Any:
    return await db.fetchone("SELECT * FROM members WHERE id = ?", (member_id,))


async def by_tg_with_merchant(db: Database, tg_user_id: int) -> Any:
    """The member row plus ``is_merchant`` (linked to an active merchant)."""
    return await db.fetchone(
        "SELECT m.*, EXISTS (SELECT 1 FROM merchants s WHERE s.member_id = m.id AND s.active = 1) AS is_merchant"
        " FROM members m WHERE m.tg_user_id = ? AND m.deleted_at IS NULL", (tg_user_id,))


async def settings_row(db: Database, tg_user_id: int) -> dict[str, object] | None:
    """A registered member's row with their community's digest time (``community_time``)."""
    row = await db.fetchone(
        "SELECT m.*, COALESCE(c.digest_time, '08:00') AS community_time FROM members m"
        " LEFT JOIN communities c ON c.id = m.community_id"
        " WHERE m.tg_user_id = ? AND m.deleted_at IS NULL AND m.registered_at IS NOT NULL", (tg_user_id,))
    return None if row is None else dict(row)


async def language_of(db: Database, tg_user_id: int) -> str | None:
    """The language a Telegram user chose in the bot, if any."""
    stored = await db.fetchval("SELECT language FROM members WHERE tg_user_id = ?", (tg_user_id,))
    return str(stored) if stored else None


async def unregistered(db: Database, tg_user_id: int) -> bool:
    """True if this Telegram user has a member row but never finished registering."""
    return bool(await db.fetchval("SELECT registered_at IS NULL FROM members WHERE tg_user_id = ?", (tg_user_id,)))


async def registered_id_in(db: Database, tg_user_id: int, community_id: int) -> int | None:
    """The id of this Telegram user's registered membership of this community."""
    row = await db.fetchone(
        "SELECT id FROM members WHERE tg_user_id = ? AND community_id = ? AND registered_at IS NOT NULL"
        " AND deleted_at IS NULL", (tg_user_id, community_id))
    return None if row is None else int(row["id"])


async def registered_name_in(db: Database, member_id: int, community_id: int) -> str | None:
    """The display name ("?" if none) of a registered member of this community, None if there is none."""
    row = await db.fetchone("SELECT id, display_name FROM members WHERE id = ? AND community_id = ?"
                            " AND registered_at IS NOT NULL AND deleted_at IS NULL", (member_id, community_id))
    return None if row is None else str(row["display_name"] or "?")


async def announce_consent(db: Database, member_id: int | None) -> bool:
    return bool(await db.fetchval("SELECT announce_consent FROM members WHERE id = ?", (member_id,)))


async def announce_asked(db: Database, member_id: int | None) -> bool:
    """Whether the member was asked if their honours may be announced in the group."""
    return await db.fetchval("SELECT announce_asked_at FROM members WHERE id = ?", (member_id,)) is not None


# The question "may the group hear of your honours?" (kind ``announce_ask``), asked once per member:
# the member is marked asked and the message queued in the caller's transaction.
_ASKED = "UPDATE members SET announce_asked_at = ? WHERE id = ? AND announce_asked_at IS NULL"


def ask_announce_sync(conn: sqlite3.Connection, *, member_id: int, tg_user_id: int, now: datetime,
                      not_before: datetime | None = None) -> bool:
    """Ask once (in a ``Database.write`` transaction); False if the member was asked before.
    ``not_before``: not sooner (messages of one outbox batch go out together, in no set order)."""
    if not conn.execute(_ASKED, (to_db(now), member_id)).rowcount:
        return False
    return enqueue_sync(conn, chat_id=tg_user_id, member_id=member_id, kind="announce_ask", now=now,
                        dedupe_key=f"announce_ask:{member_id}", not_before=not_before)


async def ask_announce(conn: aiosqlite.Connection, *, member_id: int, tg_user_id: int, now: datetime) -> bool:
    """``ask_announce_sync`` in an aiosqlite transaction."""
    cur = await conn.execute(_ASKED, (to_db(now), member_id))
    if not cur.rowcount:
        return False
    return await enqueue(conn, chat_id=tg_user_id, member_id=member_id, kind="announce_ask", now=now,
                         dedupe_key=f"announce_ask:{member_id}")


async def public_name(db: Database, member_id: object) -> PublicName | None:
    row = await db.fetchone("SELECT display_name, announce_consent, deleted_at FROM members WHERE id = ?",
                            (member_id,))
    if row is None:
        return None
    return PublicName(row["display_name"], bool(row["announce_consent"]), row["deleted_at"] is not None)


async def contact(db: Database, member_id: int) -> Contact | None:
    row = await db.fetchone("SELECT display_name, phone FROM members WHERE id = ?", (member_id,))
    return None if row is None else Contact(row["display_name"], row["phone"])


async def mark_reachable(db: Database, tg_user_id: int) -> None:
    """The person wrote to the bot in private: it may write to them (again)."""
    row = await db.fetchone("SELECT id, started_bot, reachable FROM members WHERE tg_user_id = ?", (tg_user_id,))
    if row is not None and not (row["started_bot"] and row["reachable"]):
        async with db.transaction() as conn:
            await conn.execute("UPDATE members SET started_bot = 1, reachable = 1 WHERE id = ?", (row["id"],))


async def area_name(db: Database, area_id: int) -> str:
    return str(await db.fetchval("SELECT name FROM areas WHERE id = ?", (area_id,)) or "")


async def organisation_community(db: Database, invite_code: str) -> int | None:
    """The community of the active organisation with this invite code."""
    row = await db.fetchone("SELECT community_id FROM organisations WHERE invite_code = ? AND active = 1",
                            (invite_code,))
    return None if row is None else int(row["community_id"])


async def started_bot(db: Database, member_id: int) -> bool:
    """Has the member opened a private chat with the bot (so it may write to them)?"""
    return bool(await db.fetchval("SELECT started_bot FROM members WHERE id = ?", (member_id,)))


async def language_by_id(db: Database, member_id: int) -> str | None:
    v = await db.fetchval("SELECT language FROM members WHERE id = ?", (member_id,))
    return str(v) if v else None


# -- for the outbox drain (bot/jobs/outbox_drain.py) -------------------------------------------
@dataclass(frozen=True, slots=True)
class QuietHours:
    """A member's quiet hours ("HH:MM" local times) and the time zone they are read in."""

    start: str
    end: str
    tz: str


async def quiet_hours(db: Database, member_id: int, default_tz: str) -> QuietHours | None:
    """The member's quiet hours, in their community's time zone (``default_tz`` if it has none)."""
    row = await db.fetchone(
        "SELECT m.quiet_start, m.quiet_end, COALESCE(c.timezone, :default_tz) AS tz FROM members m"
        " LEFT JOIN communities c ON c.id = m.community_id WHERE m.id = :member_id",
        {"default_tz": default_tz, "member_id": member_id})
    return None if row is None else QuietHours(row["quiet_start"], row["quiet_end"], row["tz"])


async def mark_unreachable(conn: aiosqlite.Connection, member_id: int, now: datetime) -> None:
    """Telegram refuses messages to the member (blocked the bot, or never started it)."""
    await conn.execute("UPDATE members SET reachable = 0, updated_at = :now WHERE id = :member_id",
                       {"now": to_db(now), "member_id": member_id})
