"""Communities: set one up for a group chat, with its default categories."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from bot import codes
from bot.models import N_, DomainError
from storage.db import Database
from storage.outbox import audit, enqueue
from storage.timeutil import to_db

DEFAULT_CATEGORIES: list[tuple[str, str, str]] = [
    ("shopping", "买菜/跑腿", "Shopping / errands"),
    ("escort", "陪同就医", "Escort to a clinic"),
    ("repair", "家居维修", "Home repair"),
    ("company", "陪伴/探访", "Companionship / visit"),
    ("tech", "手机/电脑帮助", "Tech help"),
    ("other", "其他", "Other"),
]


REMOVED_MESSAGE = N_(
    "Linli was removed from the volunteer group of {name}. Tasks are not posted there any more."
    " To start again, add me back to the same group (everything is kept), or to a new group and send /setup there."
)
BACK_MESSAGE = N_("Linli is back in the volunteer group of {name}. New tasks are posted there again.")


class GroupAlreadySetUp(DomainError):
    message = N_("This group is already the volunteer group of {name}.")


class BadCommunityName(DomainError):
    message = N_("Please give the community a name of 1 to 60 characters, e.g. /setup Sunshine Garden.")


@dataclass
class SetupResult:
    community_id: int
    name: str
    join_code: str
    created: bool


def new_code() -> str:
    return codes.token_urlsafe(6).replace("-", "x").replace("_", "y")


async def setup_community(
    db: Database, *, name: str, group_chat_id: int, tg_user_id: int, language: str, now: datetime
) -> SetupResult:
    """Bind ``group_chat_id`` to a new community; the person who set it up becomes staff."""
    name = " ".join(name.split())
    if not name or len(name) > 60:
        raise BadCommunityName()
    async with db.transaction() as conn:
        cur = await conn.execute("SELECT id, name FROM communities WHERE group_chat_id = ?", (group_chat_id,))
        row = await cur.fetchone()
        if row is not None:
            raise GroupAlreadySetUp(name=row["name"])
        code = new_code()
        cur = await conn.execute(
            "INSERT INTO communities (name, group_chat_id, join_code, language, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, group_chat_id, code, language if language in ("zh", "en") else "zh", tg_user_id, to_db(now)),
        )
        cid = int(cur.lastrowid or 0)
        for sort, (c, zh, en) in enumerate(DEFAULT_CATEGORIES):
            await conn.execute(
                "INSERT INTO categories (community_id, code, name_zh, name_en, sort) VALUES (?, ?, ?, ?, ?)",
                (cid, c, zh, en, sort),
            )
        # The person who set it up becomes staff (registration completes their profile).
        cur = await conn.execute("SELECT id, community_id FROM members WHERE tg_user_id = ?", (tg_user_id,))
        m = await cur.fetchone()
        if m is None:
            await conn.execute(
                "INSERT INTO members (tg_user_id, community_id, language, is_staff, created_at, updated_at)"
                " VALUES (?, ?, ?, 1, ?, ?)",
                (tg_user_id, cid, language if language in ("zh", "en") else None, to_db(now), to_db(now)),
            )
        elif m["community_id"] in (None, cid):
            await conn.execute(
                "UPDATE members SET community_id = ?, is_staff = 1, updated_at = ? WHERE id = ?", (cid, to_db(now), m["id"])
            )
        await audit(conn, now=now, action="community.setup", community_id=cid, object_type="community", object_id=cid,
                    details={"group_chat_id": group_chat_id, "by": tg_user_id})
    return SetupResult(cid, name, code, True)


async def set_welcome_message(db: Database, community_id: int, message_id: int) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE communities SET welcome_message_id = ? WHERE id = ?", (message_id, community_id))


async def by_join_code(db: Database, code: str) -> dict[str, object] | None:
    row = await db.fetchone("SELECT id, name FROM communities WHERE join_code = ? AND active = 1", (code,))
    return None if row is None else dict(row)


async def active_communities(db: Database) -> list[dict[str, object]]:
    rows = await db.fetchall("SELECT id, name FROM communities WHERE active = 1 ORDER BY id")
    return [dict(r) for r in rows]


async def areas(db: Database, community_id: int) -> list[dict[str, object]]:
    rows = await db.fetchall("SELECT id, name FROM areas WHERE community_id = ? AND active = 1 ORDER BY name", (community_id,))
    return [dict(r) for r in rows]


async def categories(db: Database, community_id: int) -> list[dict[str, object]]:
    rows = await db.fetchall(
        "SELECT code, name_zh, name_en FROM categories WHERE community_id = ? AND active = 1 ORDER BY sort", (community_id,)
    )
    return [dict(r) for r in rows]


async def bot_removed(db: Database, *, group_chat_id: int, now: datetime) -> int | None:
    """The bot left the group: the community goes inactive; returns its id."""
    async with db.transaction() as conn:
        cur = await conn.execute("SELECT id FROM communities WHERE group_chat_id = ?", (group_chat_id,))
        row = await cur.fetchone()
        if row is None:
            return None
        cid = int(row["id"])
        # The group is remembered, so adding the bot back to it brings the community back (bot_readded).
        await conn.execute("UPDATE communities SET active = 0, group_chat_id = NULL,"
                           " settings = json_set(COALESCE(settings, '{}'), '$.removed_group_chat_id', ?) WHERE id = ?",
                           (group_chat_id, cid))
        cur = await conn.execute("SELECT name FROM communities WHERE id = ?", (cid,))
        crow = await cur.fetchone()
        cur = await conn.execute(
            "SELECT id, tg_user_id FROM members WHERE community_id = ? AND is_staff = 1 AND tg_user_id IS NOT NULL", (cid,)
        )
        for staff in await cur.fetchall():
            await enqueue(
                conn, chat_id=int(staff["tg_user_id"]), member_id=int(staff["id"]), kind="text", now=now,
                payload={"message": REMOVED_MESSAGE, "params": {"name": html.escape(str(crow["name"] if crow else ""), quote=False)}},
                dedupe_key=f"bot_removed:{cid}:{group_chat_id}:{staff['id']}",
            )
        await audit(conn, now=now, action="community.bot_removed", community_id=cid, object_type="community", object_id=cid,
                    details={"group_chat_id": group_chat_id})
    return cid


async def bot_readded(db: Database, *, group_chat_id: int, now: datetime) -> tuple[int, str] | None:
    """The bot was added back to a group it had been removed from: that community is active again,
    with everything it had. Returns (id, name), or None if the group was never a community's."""
    async with db.transaction() as conn:
        cur = await conn.execute("SELECT 1 FROM communities WHERE group_chat_id = ?", (group_chat_id,))
        if await cur.fetchone() is not None:
            return None
        cur = await conn.execute(
            "SELECT id, name FROM communities WHERE active = 0 AND group_chat_id IS NULL"
            " AND json_extract(settings, '$.removed_group_chat_id') = ? ORDER BY id DESC LIMIT 1", (group_chat_id,))
        row = await cur.fetchone()
        if row is None:
            return None
        cid, name = int(row["id"]), str(row["name"])
        await conn.execute("UPDATE communities SET active = 1, group_chat_id = ?,"
                           " settings = json_remove(settings, '$.removed_group_chat_id') WHERE id = ?", (group_chat_id, cid))
        # Cards whose edits failed while the bot was out are brought up to date (unchanged ones are skipped).
        await conn.execute("UPDATE tasks SET card_version = card_version + 1 WHERE community_id = ?"
                           " AND group_chat_id = ? AND group_message_id > 0", (cid, group_chat_id))
        cur = await conn.execute(
            "SELECT id, tg_user_id FROM members WHERE community_id = ? AND is_staff = 1 AND tg_user_id IS NOT NULL"
            " AND deleted_at IS NULL", (cid,))
        for staff in await cur.fetchall():
            await enqueue(conn, chat_id=int(staff["tg_user_id"]), member_id=int(staff["id"]), kind="text", now=now,
                          payload={"message": BACK_MESSAGE, "params": {"name": html.escape(name, quote=False)}},
                          dedupe_key=f"bot_back:{cid}:{group_chat_id}:{to_db(now)}:{staff['id']}")
        await audit(conn, now=now, action="community.bot_readded", community_id=cid, object_type="community",
                    object_id=cid, details={"group_chat_id": group_chat_id})
    return cid, name


async def timezone(db: Database, community_id: int) -> str | None:
    """The community's time zone name (e.g. Asia/Shanghai)."""
    value = await db.fetchval("SELECT timezone FROM communities WHERE id = ?", (community_id,))
    return str(value) if value else None


async def area_name(db: Database, area_id: int) -> str | None:
    value = await db.fetchval("SELECT name FROM areas WHERE id = ?", (area_id,))
    return str(value) if value else None
