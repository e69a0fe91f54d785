"""Who is acting: load the member behind a Telegram user and check what they may do."""

from __future__ import annotations

from collections.abc import Collection

from bot.models import Member, NotAllowed, NotFound, NotRegistered
from storage import members as member_store
from storage.db import Database


async def member_by_tg(db: Database, tg_user_id: int) -> Member | None:
    """The (not deleted) member for a Telegram user, registered or not."""
    return await member_store.by_tg(db, tg_user_id)


async def member_by_id(db: Database, member_id: int) -> Member | None:
    return await member_store.by_id(db, member_id)


async def require_registered(db: Database, tg_user_id: int) -> Member:
    member = await member_by_tg(db, tg_user_id)
    if member is None or not member.registered or member.community_id is None:
        raise NotRegistered()
    return member


def is_staff_of(member: Member | None, community_id: int | None, tg_user_id: int, admin_ids: Collection[int]) -> bool:
    """Super-admins are staff everywhere; staff only in their own community."""
    if tg_user_id in admin_ids:
        return True
    return member is not None and member.registered and member.is_staff and member.community_id == community_id


async def require_staff_for(db: Database, tg_user_id: int, admin_ids: Collection[int],
                            community_id: int | None) -> Member | None:
    """Staff work on something numbered (a task, an event): ``community_id`` is its community, None
    when there is no such number. Who is not staff of it (of their own community, when there is no
    such number) is refused first, with the same words whether the number exists or not; staff then
    hear NotFound for a number that does not exist."""
    member = await require_staff(db, tg_user_id, admin_ids, community_id)
    if community_id is None:
        raise NotFound()
    return member


async def require_staff(db: Database, tg_user_id: int, admin_ids: Collection[int], community_id: int | None = None) -> Member | None:
    """Staff of ``community_id`` (default: their own) or a super-admin; NotAllowed otherwise.

    Returns the member row (None for a super-admin who never registered).
    """
    member = await member_by_tg(db, tg_user_id)
    target = community_id if community_id is not None else (member.community_id if member else None)
    if not is_staff_of(member, target, tg_user_id, admin_ids):
        raise NotAllowed()
    return member
