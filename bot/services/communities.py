"""Communities: set one up for a group chat, with its default categories."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from bot import codes
from bot.models import N_, DomainError
from storage import areas as area_store
from storage import communities as community_store
from storage import members as member_store
from storage.db import Database
from storage.outbox import audit, enqueue
from storage.timeutil import DEFAULT_TIMEZONE, to_db

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
CARD_REFUSED_MESSAGE = N_(
    "Linli could not post task #{task} in the volunteer group of {name}: Telegram refused it, so volunteers"
    " cannot see it there. Please check that Linli is still in the group and may send messages."
    " New tasks are tried again."
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
    db: Database, *, name: str, group_chat_id: int, tg_user_id: int, language: str, now: datetime,
    timezone: str = DEFAULT_TIMEZONE,
) -> SetupResult:
    """Bind ``group_chat_id`` to a new community in ``timezone`` (BOT_TIMEZONE); the person who set it
    up becomes staff."""
    name = " ".join(name.split())
    if not name or len(name) > 60:
        raise BadCommunityName()
    async with db.transaction() as conn:
        existing = await community_store.of_group(conn, group_chat_id)
        if existing is not None:
            raise GroupAlreadySetUp(name=existing.name)
        code = new_code()
        cid = await community_store.add(conn, name=name, group_chat_id=group_chat_id, join_code=code,
                                        language=language if language in ("zh", "en") else "zh",
                                        created_by=tg_user_id, now=now, timezone=timezone)
        await community_store.add_categories(conn, cid, DEFAULT_CATEGORIES)
        # The person who set it up becomes staff (registration completes their profile).
        m = await member_store.registration_of(conn, tg_user_id)
        if m is None:
            await member_store.add_staff_stub(conn, tg_user_id=tg_user_id, community_id=cid,
                                              language=language if language in ("zh", "en") else None, now=now)
        elif m.community_id in (None, cid):
            await member_store.make_staff_of(conn, m.id, cid, now)
        await audit(conn, now=now, action="community.setup", community_id=cid, object_type="community", object_id=cid,
                    details={"group_chat_id": group_chat_id, "by": tg_user_id})
    return SetupResult(cid, name, code, True)


async def set_welcome_message(db: Database, community_id: int, message_id: int) -> None:
    async with db.transaction() as conn:
        await community_store.set_welcome_message(conn, community_id, message_id)


async def by_join_code(db: Database, code: str) -> dict[str, object] | None:
    return await community_store.active_by_join_code(db, code)


async def active_communities(db: Database) -> list[dict[str, object]]:
    return await community_store.active(db)


async def areas(db: Database, community_id: int) -> list[dict[str, object]]:
    return await community_store.active_areas_of(db, community_id)


async def categories(db: Database, community_id: int) -> list[dict[str, object]]:
    return await community_store.active_categories_of(db, community_id)


async def bot_removed(db: Database, *, group_chat_id: int, now: datetime) -> int | None:
    """The bot left the group: the community goes inactive; returns its id."""
    async with db.transaction() as conn:
        community = await community_store.of_group(conn, group_chat_id)
        if community is None:
            return None
        cid = community.id
        # The group is remembered, so adding the bot back to it brings the community back (bot_readded).
        await community_store.leave_group(conn, cid, group_chat_id)
        for staff in await member_store.staff_chats_of(conn, cid):
            await enqueue(
                conn, chat_id=staff.tg_user_id, member_id=staff.member_id, kind="text", now=now,
                payload={"message": REMOVED_MESSAGE, "params": {"name": html.escape(community.name, quote=False)}},
                dedupe_key=f"bot_removed:{cid}:{group_chat_id}:{staff.member_id}",
            )
        await audit(conn, now=now, action="community.bot_removed", community_id=cid, object_type="community", object_id=cid,
                    details={"group_chat_id": group_chat_id})
    return cid


async def bot_readded(db: Database, *, group_chat_id: int, now: datetime) -> tuple[int, str] | None:
    """The bot was added back to a group it had been removed from: that community is active again,
    with everything it had. Returns (id, name), or None if the group was never a community's."""
    async with db.transaction() as conn:
        if await community_store.of_group(conn, group_chat_id) is not None:
            return None
        community = await community_store.removed_from(conn, group_chat_id)
        if community is None:
            return None
        cid, name = community.id, community.name
        await community_store.rejoin_group(conn, cid, group_chat_id)
        # Cards whose edits failed while the bot was out are brought up to date (unchanged ones are skipped).
        await community_store.redraw_group_cards(conn, cid, group_chat_id)
        for staff in await member_store.staff_chats_of(conn, cid):
            await enqueue(conn, chat_id=staff.tg_user_id, member_id=staff.member_id, kind="text", now=now,
                          payload={"message": BACK_MESSAGE, "params": {"name": html.escape(name, quote=False)}},
                          dedupe_key=f"bot_back:{cid}:{group_chat_id}:{to_db(now)}:{staff.member_id}")
        await audit(conn, now=now, action="community.bot_readded", community_id=cid, object_type="community",
                    object_id=cid, details={"group_chat_id": group_chat_id})
    return cid, name


async def card_refused(db: Database, *, community_id: int, task_id: int, group_chat_id: int, now: datetime) -> None:
    """A task's card was refused for good by its group (bot/jobs/cards.py gave it up): the community's
    staff are told, once a day for that group however many cards were refused."""
    async with db.transaction() as conn:
        community = await community_store.get(conn, community_id)
        if community is None:
            return
        name = html.escape(community.name, quote=False)
        for staff in await member_store.staff_chats_of(conn, community_id):
            await enqueue(conn, chat_id=staff.tg_user_id, member_id=staff.member_id, kind="text", now=now,
                          payload={"message": CARD_REFUSED_MESSAGE, "params": {"task": task_id, "name": name}},
                          dedupe_key=f"card_refused:{community_id}:{group_chat_id}:{now.date()}:{staff.member_id}")


async def timezone(db: Database, community_id: int) -> str | None:
    """The community's time zone name (e.g. Asia/Shanghai)."""
    return await community_store.timezone_of(db, community_id)


async def area_name(db: Database, area_id: int) -> str | None:
    return await area_store.name_of(db, area_id)
