"""Members: registration, profile, erasing personal data."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import codes
from bot.models import N_, DomainError, NotFound, NotRegistered
from bot.services import tasks
from bot.services.areas import area_key as area_key
from bot.services.areas import match_area as match_area
from bot.services.areas import place_from_typed as place_from_typed
from bot.services.erasure import erase_everywhere, mask_requests
from storage import areas as area_store
from storage import communities as community_store
from storage import erasure as erasure_store
from storage import members as member_store
from storage import organisations as org_store
from storage.db import Connection, Database
from storage.members import Member, MemberName, Profile
from storage.outbox import audit

_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


class BadName(DomainError):
    message = N_("Please type a name of 1 to 40 letters (emoji alone are not a name).")


def clean_name(raw: str | None, limit: int = 40) -> str:
    """Strip control characters and direction marks; DomainError when empty, too long or no letters."""
    if raw is None:
        raise BadName()
    text = _INVISIBLE.sub("", raw)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
    if not text or len(text) > limit or not any(ch.isalnum() for ch in text):
        raise BadName()
    return text


def _profile(community_id: int, data: dict[str, Any]) -> Profile:
    role = data.get("role", "volunteer")
    return Profile(community_id=community_id, language=data.get("lang") or "zh", display_name=data.get("name"),
                   phone=data.get("phone"), area_id=data.get("area_id"), address=data.get("address"),
                   is_resident=role in ("resident", "both"), is_volunteer=role in ("volunteer", "both"),
                   skills=json.dumps(data.get("skills") or []), availability=data.get("availability"))


async def save_registration(db: Database, *, tg_user_id: int, community_id: int, data: dict[str, Any], now: datetime) -> int:
    """Create or update the member from a finished registration dialog; returns the member id."""
    profile = _profile(community_id, data)
    async with db.transaction() as conn:
        row = await member_store.registration_of(conn, tg_user_id)
        if (row is not None and row.registered and not row.deleted
                and row.community_id is not None and row.community_id != community_id):
            # Staff rights and points belong to the community that gave them.
            raise await in_another_community(conn, row.community_id, community_id)
        if row is None:
            member_id = await member_store.add_registered(conn, tg_user_id=tg_user_id, profile=profile, now=now)
        else:
            member_id = row.id
            await mask_requests(conn, member_id)  # the name and address may change now
            await member_store.register_again(conn, member_id, profile, now)
        await audit(conn, now=now, action="member.registered" if row is None or not row.registered else "member.edited",
                    community_id=community_id, actor_id=member_id, object_type="member", object_id=member_id,
                    details={"role": data.get("role", "volunteer")})
    return member_id


class InAnotherCommunity(DomainError):
    message = N_("You are registered in {here} already. One Telegram account belongs to one community: to move"
                 " to {there}, first delete your registration with /deleteme (the points you earned stay with"
                 " {here}), then open the link again.")


async def in_another_community(conn: Connection, here: int, there: int) -> InAnotherCommunity:
    """The refusal for a member of ``here`` registering in ``there``, naming both."""
    names = await community_store.names_of(conn, (here, there))
    return InAnotherCommunity(here=names.get(here, "?"), there=names.get(there, "?"))


async def set_language(db: Database, *, tg_user_id: int, language: str, now: datetime) -> None:
    async with db.transaction() as conn:
        await member_store.set_language(conn, tg_user_id, language, now)


async def erase(db: Database, *, tg_user_id: int, now: datetime) -> bool:
    """/deleteme: erase everything personal about them (bot/services/erasure.py says what, table by
    table); the member row and ledger rows stay, anonymised, so points and totals are unchanged.

    First the person lets go of what others wait on: places they hold on tasks are given back
    (the requester is told, the card reopens) and their own open requests are cancelled (the
    volunteers are told, and the details they were sent are cut down). Each step is a finished
    transaction of its own, so a crash half-way loses nothing; /deleteme again completes it.
    """
    member_id = await member_store.id_of_tg(db, tg_user_id)
    if member_id is None:
        return False
    await _let_go(db, member_id, now)
    async with db.transaction() as conn:
        row = await member_store.registration_of(conn, tg_user_id)
        if row is None:
            return False
        # Every table, as bot/services/erasure.py declares: where they asked for help, what they
        # typed is kept only as the group saw it (masked), and the cards are redrawn; their words
        # quoted in messages to others and in the audit log are replaced.
        await erase_everywhere(conn, member_id=row.id, tg_user_id=tg_user_id, now=now)
        await erasure_store.redraw_requests(conn, row.id, now)
        await member_store.mark_erased(conn, row.id, now)
        await audit(conn, now=now, action="member.erased", community_id=row.community_id, object_type="member",
                    object_id=row.id)
    # What was erased may linger in the write-ahead log until a checkpoint (freed pages are zeroed:
    # storage.db turns secure_delete on).
    await db.checkpoint()
    return True


async def _let_go(db: Database, member_id: int, now: datetime) -> None:
    """Before erasure: the places they hold are given back, their open requests cancelled (each
    step its own transaction; one no longer open for changes stays as it is)."""
    for task_id in await erasure_store.held_task_ids(db, member_id):
        try:
            await tasks.withdraw(db, now, member_id, task_id)
        except DomainError:  # the task is no longer open for changes; the claim stays as it is
            pass
    for task_id in await erasure_store.requests_in(db, member_id, tasks.CANCELLABLE_STATES):
        try:
            await tasks.cancel(db, now, member_id, task_id)
        except DomainError:
            pass


class BadInviteCode(DomainError):
    message = N_("Sorry, this invite code is not valid. Please check it with your organisation.")


class OrgNameTaken(DomainError):
    message = N_("There is already an organisation called {name}.")


async def create_organisation(db: Database, *, community_id: int, name: str, actor_id: int | None, now: datetime) -> tuple[int, str]:
    """A new organisation (volunteer team); returns (id, invite code)."""
    name = clean_name(name, limit=60)
    code = codes.token_hex(4)
    async with db.transaction() as conn:
        if await org_store.name_taken(conn, community_id, name):
            raise OrgNameTaken(name=name)
        oid = await org_store.add(conn, community_id=community_id, name=name, invite_code=code, now=now)
        await audit(conn, now=now, action="organisation.created", community_id=community_id, actor_id=actor_id,
                    object_type="organisation", object_id=oid, details={"name": name})
    return oid, code


async def organisations(db: Database, community_id: int) -> list[dict[str, Any]]:
    return await org_store.active_of(db, community_id)


async def join_organisation(
    db: Database, *, tg_user_id: int, now: datetime, code: str | None = None, organisation_id: int | None = None
) -> str:
    """Put a registered member in an organisation of their community; returns its name."""
    async with db.transaction() as conn:
        m = await member_store.get_by_tg(conn, tg_user_id)
        if m is None or m.registered_at is None:
            raise NotRegistered()
        if code is not None:
            org = await org_store.active_by_code(conn, m.community_id, code.strip())
        else:
            org = await org_store.active_by_id(conn, m.community_id, organisation_id)
        if org is None:
            raise BadInviteCode()
        if m.organisation_id == org.id:
            raise AlreadyInOrganisation(name=org.name)
        await member_store.set_organisation(conn, m.id, org.id, now)
        await audit(conn, now=now, action="organisation.joined", community_id=m.community_id, actor_id=m.id,
                    object_type="organisation", object_id=org.id)
    return org.name


class LastStaff(DomainError):
    message = N_("You are the last staff member of this community. Make someone else staff first.")


class AlreadyInOrganisation(DomainError):
    message = N_("You are already a member of {name}. Nothing changed.")


async def set_staff(db: Database, *, community_id: int, member_id: int, staff: bool, actor_id: int | None,
                    now: datetime) -> bool:
    """Make a member staff or not. False when they already were (or were not): nothing changes."""
    async with db.transaction() as conn:
        current = await member_store.get(conn, member_id)
        if current is None or current.community_id != community_id or current.registered_at is None:
            raise NotFound()
        if current.is_staff == staff:
            return False
        if not staff and not await member_store.has_other_staff(conn, community_id, member_id):
            raise LastStaff()
        if not await member_store.set_staff_flag(conn, member_id=member_id, community_id=community_id, staff=staff,
                                                 now=now):
            raise NotFound()
        await audit(conn, now=now, action="staff.added" if staff else "staff.removed", community_id=community_id,
                    actor_id=actor_id, object_type="member", object_id=member_id)
    return True


@dataclass(frozen=True)
class StaffCandidate:
    """A registered member of the community who may be made (or stop being) staff."""

    member_id: int
    name: str


class NotRegisteredHere(DomainError):
    message = N_("This person has not registered in this community yet. Ask them to press Register first.")


async def staff_candidate(db: Database, *, community_id: int, tg_user_id: int | None = None,
                          first_name: str = "", member_id: int | None = None) -> StaffCandidate | None:
    """Whom ``/staff add|remove`` is about: the Telegram user replied to (``tg_user_id``, named by
    ``first_name``; NotRegisteredHere if not a registered member here) or member number ``member_id``
    (None if not a registered member here). Only registered, not erased members of the community."""
    if tg_user_id is not None:
        found = await member_store.registered_id_in(db, tg_user_id, community_id)
        if found is None:
            raise NotRegisteredHere()
        return StaffCandidate(found, first_name)
    if member_id is not None:
        name = await member_store.registered_name_in(db, member_id, community_id)
        if name is not None:
            return StaffCandidate(member_id, name)
    return None


@dataclass(frozen=True, slots=True)
class SeenLanguage:
    """The language a Telegram user chose in the bot (None: none), as read at ``writes``
    (``member_store.language_writes()`` just before the read)."""

    tg_user_id: int
    writes: int
    language: str | None

    def still(self, tg_user_id: int) -> bool:
        """Whether this may stand in for reading that user's language again now."""
        return tg_user_id == self.tg_user_id and self.writes == member_store.language_writes()


async def note_private_chat(db: Database, tg_user_id: int) -> tuple[SeenLanguage, Member | None]:
    """Someone wrote to the bot in private: the bot may write to them (again) from now on. Returns
    their language and their member row (None: none, or erased), read on the way."""
    writes = member_store.language_writes()
    reached = await member_store.mark_reachable(db, tg_user_id)
    return SeenLanguage(tg_user_id, writes, reached.language), reached.member


async def staff_members(db: Database, *, community_id: int) -> list[MemberName]:
    return await member_store.staff_of(db, community_id)


async def find_members(db: Database, *, community_id: int, text: str, limit: int = 10) -> list[MemberName]:
    """Registered members whose name contains ``text`` (for staff, in private)."""
    pattern = "%" + text.replace("\\", "").replace("%", "").replace("_", "").strip()[:40] + "%"
    return await member_store.named_like(db, community_id, pattern, limit)


async def add_area(db: Database, *, community_id: int, name: str, now: datetime) -> None:
    name = clean_name(name, limit=40)
    async with db.transaction() as conn:
        await area_store.add(conn, community_id, name)
        await audit(conn, now=now, action="area.added", community_id=community_id, object_type="area", details={"name": name})


async def rename_area(db: Database, *, community_id: int, old: str, new: str, now: datetime) -> None:
    """Rename an area; members and tasks in it follow (they refer to it by id)."""
    old, new = " ".join(old.split()), clean_name(new, limit=40)
    async with db.transaction() as conn:
        area_id = await area_store.active_id(conn, community_id, old)
        if area_id is None:
            raise NotFound()
        if await area_store.name_taken(conn, community_id, new, but=area_id):
            raise DomainError(N_("There is already an area called {name}."), name=new)
        await area_store.rename(conn, area_id, new)
        await audit(conn, now=now, action="area.renamed", community_id=community_id, object_type="area",
                    object_id=area_id, details={"from": old, "to": new})


async def remove_area(db: Database, *, community_id: int, name: str, now: datetime) -> None:
    """Hide an area from new registrations and requests; people and tasks already in it keep it."""
    name = " ".join(name.split())
    async with db.transaction() as conn:
        if not await area_store.remove(conn, community_id, name):
            raise NotFound()
        await audit(conn, now=now, action="area.removed", community_id=community_id, object_type="area",
                    details={"name": name})


async def set_announce_consent(db: Database, member_id: int, consent: bool, now: datetime) -> None:
    """Whether the member's honours may be announced in the group (they are always told in private)."""
    async with db.transaction() as conn:
        await member_store.set_announce_consent(conn, member_id, consent, now)
