"""Merchants: invited by staff, linked to their own Telegram account through an invite code."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot import codes
from bot.models import N_, InvalidInput, InvalidState, NotFound
from storage import members as member_store
from storage import merchants as merchant_store
from storage.db import Database
from storage.merchants import Merchant as Merchant
from storage.outbox import audit

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L


def new_code(length: int = 10) -> str:
    """A short readable random code: 10 characters of 31 give about 49 bits."""
    return codes.text(ALPHABET, length)


async def create_merchant(db: Database, *, community_id: int, name: str, now: datetime,
                          actor_id: int | None = None) -> Merchant:
    name = " ".join(name.split())
    if not name or len(name) > 80:
        raise InvalidInput(N_("A merchant's name is 1 to 80 characters, e.g. /merchant new Wang's Tea Shop"))
    code = new_code(12)
    async with db.transaction() as conn:
        mid = await merchant_store.add(conn, community_id=community_id, name=name, invite_code=code, now=now)
        await audit(conn, now=now, action="merchant.create", community_id=community_id, actor_id=actor_id,
                    object_type="merchant", object_id=mid, details={"name": name})
    return Merchant(mid, community_id, name, None, code, True)


async def get(db: Database, merchant_id: int) -> Merchant | None:
    return await merchant_store.get(db, merchant_id)


async def for_member(db: Database, member_id: int) -> Merchant | None:
    return await merchant_store.active_of_member(db, member_id)


async def list_merchants(db: Database, community_id: int) -> list[Merchant]:
    return await merchant_store.active_of(db, community_id)


async def accept_invite(db: Database, *, code: str, tg_user_id: int, language: str, display_name: str,
                        now: datetime) -> Merchant:
    """Link the Telegram account to the merchant (idempotent for the same account)."""
    merchant = await merchant_store.active_by_code(db, code)
    if merchant is None:
        raise NotFound()
    async with db.transaction() as conn:
        member = await member_store.get_by_tg(conn, tg_user_id)
        if member is None:
            member_id = await member_store.add_merchant_account(
                conn, tg_user_id=tg_user_id, community_id=merchant.community_id, language=language,
                display_name=display_name[:64] or "merchant", now=now)
        else:
            member_id = member.id
        if merchant.member_id == member_id:
            return merchant
        if merchant.member_id is not None or await merchant_store.has_member(conn, member_id):
            raise InvalidState()
        await merchant_store.link(conn, merchant.id, member_id)
        await audit(conn, now=now, action="merchant.link", community_id=merchant.community_id, actor_id=member_id,
                    object_type="merchant", object_id=merchant.id)
    return replace(merchant, member_id=member_id)
