"""Members: registration, profile, erasing personal data."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from bot import codes
from bot.models import N_, DomainError, NotFound
from bot.services import tasks
from bot.services.areas import area_key as area_key
from bot.services.areas import match_area as match_area
from bot.services.areas import place_from_typed as place_from_typed
from bot.services.erasure import erase_everywhere, mask_requests
from storage import members as member_store
from storage.db import Database
from storage.members import MemberName
from storage.outbox import audit
from storage.timeutil import to_db

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


async def save_registration(db: Database, *, tg_user_id: int, community_id: int, data: dict[str, Any], now: datetime) -> int:
    """Create or update the member from a finished registration dialog; returns the member id."""
    role = data.get("role", "volunteer")
    is_res = 1 if role in ("resident", "both") else 0
    is_vol = 1 if role in ("volunteer", "both") else 0
    fields = (
        community_id,
        data.get("lang") or "zh",
        data.get("name"),
        data.get("phone"),
        data.get("area_id"),
        data.get("address"),
        is_res,
        is_vol,
        json.dumps(data.get("skills") or []),
        data.get("availability"),
    )
    async with db.transaction() as conn:
        cur = await conn.execute("SELECT id, registered_at, community_id, deleted_at FROM members WHERE tg_user_id = ?",
                                 (tg_user_id,))
        row = await cur.fetchone()
        if (row is not None and row["registered_at"] is not None and row["deleted_at"] is None
                and row["community_id"] is not None and row["community_id"] != community_id):
            # Staff rights and points belong to the community that gave them.
            raise await in_another_community(conn, int(row["community_id"]), community_id)
        if row is None:
            cur = await conn.execute(
                "INSERT INTO members (community_id, language, display_name, phone, area_id, address, is_resident,"
                " is_volunteer, skills, availability, tg_user_id, consent_at, registered_at, started_bot, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (*fields, tg_user_id, to_db(now), to_db(now), to_db(now), to_db(now)),
            )
            member_id = int(cur.lastrowid or 0)
        else:
            member_id = int(row["id"])
            await mask_requests(conn, member_id)  # the name and address may change now
            await conn.execute(
                "UPDATE members SET community_id = ?, language = ?, display_name = ?, phone = ?, area_id = ?, address = ?,"
                " is_resident = ?, is_volunteer = ?, skills = ?, availability = ?, consent_at = ?,"
                " registered_at = COALESCE(registered_at, ?), started_bot = 1, deleted_at = NULL, updated_at = ? WHERE id = ?",
                (*fields, to_db(now), to_db(now), to_db(now), member_id),
            )
        await audit(conn, now=now, action="member.registered" if row is None or row["registered_at"] is None else "member.edited",
                    community_id=community_id, actor_id=member_id, object_type="member", object_id=member_id,
                    details={"role": role})
    return member_id


class InAnotherCommunity(DomainError):
    message = N_("You are registered in {here} already. One Telegram account belongs to one community: to move"
                 " to {there}, first delete your registration with /deleteme (the points you earned stay with"
                 " {here}), then open the link again.")


async def in_another_community(conn: aiosqlite.Connection, here: int, there: int) -> InAnotherCommunity:
    """The refusal for a member of ``here`` registering in ``there``, naming both."""
    names = {int(r[0]): str(r[1]) for r in await conn.execute_fetchall(
        "SELECT id, name FROM communities WHERE id IN (?, ?)", (here, there))}
    return InAnotherCommunity(here=names.get(here, "?"), there=names.get(there, "?"))


async def set_language(db: Database, *, tg_user_id: int, language: str, now: datetime) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET language = ?, updated_at = ? WHERE tg_user_id = ?", (language, to_db(now), tg_user_id))


async def erase(db: Database, *, tg_user_id: int, now: datetime) -> bool:
    """/deleteme: erase everything personal about them (bot/services/erasure.py says what, table by
    table); the member row and ledger rows stay, anonymised, so points and totals are unchanged.

    First the person lets go of what others wait on: places they hold on tasks are given back
    (the requester is told, the card reopens) and their own open requests are cancelled (the
    volunteers are told, and the details they were sent are cut down). Each step is a finished
    transaction of its own, so a crash half-way loses nothing; /deleteme again completes it.
    """
    row = await db.fetchone("SELECT id FROM members WHERE tg_user_id = ?", (tg_user_id,))
    if row is None:
        return False
    member_id = int(row["id"])
    for claim in await db.fetchall("SELECT task_id FROM claims WHERE member_id = ? AND state = 'active'", (member_id,)):
        try:
            await tasks.withdraw(db, now, member_id, int(claim["task_id"]))
        except DomainError:  # the task is no longer open for changes; the claim stays as it is
            pass
    states = tasks.CANCELLABLE_STATES
    for task in await db.fetchall(f"SELECT id FROM tasks WHERE requester_id = ? AND state IN ({','.join('?' * len(states))})",
                                  (member_id, *states)):
        try:
            await tasks.cancel(db, now, member_id, int(task["id"]))
        except DomainError:
            pass
    async with db.transaction() as conn:
        cur = await conn.execute("SELECT id, community_id FROM members WHERE tg_user_id = ?", (tg_user_id,))
        row = await cur.fetchone()
        if row is None:
            return False
        # Every table, as bot/services/erasure.py declares: where they asked for help, what they
        # typed is kept only as the group saw it (masked), and the cards are redrawn; their words
        # quoted in messages to others and in the audit log are replaced.
        await erase_everywhere(conn, member_id=int(row["id"]), tg_user_id=tg_user_id, now=now)
        await conn.execute("UPDATE tasks SET card_version = card_version + 1, updated_at = ? WHERE requester_id = ?",
                           (to_db(now), row["id"]))
        await conn.execute("UPDATE members SET deleted_at = ?, updated_at = ? WHERE id = ?",
                           (to_db(now), to_db(now), row["id"]))
        await audit(conn, now=now, action="member.erased", community_id=row["community_id"], object_type="member",
                    object_id=row["id"])
    # What was erased may linger in the write-ahead log until a checkpoint (freed pages are zeroed:
    # storage.db turns secure_delete on).
    await db.checkpoint()
    return True


class BadInviteCode(DomainError):
    message = N_("Sorry, this invite code is not valid. Please check it with your organisation.")


class OrgNameTaken(DomainError):
    message = N_("There is already an organisation called {name}.")


async def create_organisation(db: Database, *, community_id: int, name: str, actor_id: int | None, now: datetime) -> tuple[int, str]:
    """A new organisation (volunteer team); returns (id, invite code)."""
    name = clean_name(name, limit=60)
    code = codes.token_hex(4)
    async with db.transaction() as conn:
        cur = await conn.execute("SELECT 1 FROM organisations WHERE community_id = ? AND name = ?", (community_id, name))
        if await cur.fetchone() is not None:
            raise OrgNameTaken(name=name)
        cur = await conn.execute(
            "INSERT INTO organisations (community_id, name, invite_code, created_at) VALUES (?, ?, ?, ?)",
            (community_id, name, code, to_db(now)),
        )
        oid = int(cur.lastrowid or 0)
        await audit(conn, now=now, action="organisation.created", community_id=community_id, actor_id=actor_id,
                    object_type="organisation", object_id=oid, details={"name": name})
    return oid, code


async def organisations(db: Database, community_id: int) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        "SELECT id, name, invite_code FROM organisations WHERE community_id = ? AND active = 1 ORDER BY name", (community_id,)
    )
    return [dict(r) for r in rows]


async def join_organisation(
    db: Database, *, tg_user_id: int, now: datetime, code: str | None = None, organisation_id: int | None = None
) -> str:
    """Put a registered member in an organisation of their community; returns its name."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "SELECT id, community_id, organisation_id FROM members WHERE tg_user_id = ? AND deleted_at IS NULL"
            " AND registered_at IS NOT NULL",
            (tg_user_id,),
        )
        m = await cur.fetchone()
        if m is None:
            from bot.models import NotRegistered

            raise NotRegistered()
        if code is not None:
            cur = await conn.execute(
                "SELECT id, name FROM organisations WHERE invite_code = ? AND community_id = ? AND active = 1",
                (code.strip(), m["community_id"]),
            )
        else:
            cur = await conn.execute(
                "SELECT id, name FROM organisations WHERE id = ? AND community_id = ? AND active = 1",
                (organisation_id, m["community_id"]),
            )
        org = await cur.fetchone()
        if org is None:
            raise BadInviteCode()
        if m["organisation_id"] == org["id"]:
            raise AlreadyInOrganisation(name=str(org["name"]))
        await conn.execute("UPDATE members SET organisation_id = ?, updated_at = ? WHERE id = ?", (org["id"], to_db(now), m["id"]))
        await audit(conn, now=now, action="organisation.joined", community_id=m["community_id"], actor_id=m["id"],
                    object_type="organisation", object_id=org["id"])
    return str(org["name"])


class LastStaff(DomainError):
    message = N_("You are the last staff member of this community. Make someone else staff first.")


class AlreadyInOrganisation(DomainError):
    message = N_("You are already a member of {name}. Nothing changed.")


async def set_staff(db: Database, *, community_id: int, member_id: int, staff: bool, actor_id: int | None,
                    now: datetime) -> bool:
    """Make a member staff or not. False when they already were (or were not): nothing changes."""
    async with db.transaction() as conn:
        async with conn.execute("SELECT is_staff FROM members WHERE id = ? AND community_id = ?"
                                " AND registered_at IS NOT NULL AND deleted_at IS NULL", (member_id, community_id)) as cur:
            current = await cur.fetchone()
        if current is None:
            raise NotFound()
        if bool(current[0]) == staff:
            return False
        if not staff:
            async with conn.execute("SELECT COUNT(*) FROM members WHERE community_id = ? AND is_staff = 1"
                                    " AND registered_at IS NOT NULL AND deleted_at IS NULL AND id <> ?",
                                    (community_id, member_id)) as cur:
                others = (await cur.fetchone() or (0,))[0]
            if not others:
                raise LastStaff()
        cur2 = await conn.execute(
            "UPDATE members SET is_staff = ?, updated_at = ? WHERE id = ? AND community_id = ? AND registered_at IS NOT NULL"
            " AND deleted_at IS NULL",
            (1 if staff else 0, to_db(now), member_id, community_id),
        )
        if not cur2.rowcount:
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


async def note_private_chat(db: Database, tg_user_id: int) -> None:
    """Someone wrote to the bot in private: the bot may write to them (again) from now on."""
    await member_store.mark_reachable(db, tg_user_id)


async def staff_members(db: Database, *, community_id: int) -> list[MemberName]:
    return await member_store.staff_of(db, community_id)


async def find_members(db: Database, *, community_id: int, text: str, limit: int = 10) -> list[MemberName]:
    """Registered members whose name contains ``text`` (for staff, in private)."""
    pattern = "%" + text.replace("\\", "").replace("%", "").replace("_", "").strip()[:40] + "%"
    return await member_store.named_like(db, community_id, pattern, limit)


async def add_area(db: Database, *, community_id: int, name: str, now: datetime) -> None:
    name = clean_name(name, limit=40)
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO areas (community_id, name) VALUES (?, ?) ON CONFLICT (community_id, name) DO UPDATE SET active = 1",
            (community_id, name),
        )
        await audit(conn, now=now, action="area.added", community_id=community_id, object_type="area", details={"name": name})


async def rename_area(db: Database, *, community_id: int, old: str, new: str, now: datetime) -> None:
    """Rename an area; members and tasks in it follow (they refer to it by id)."""
    old, new = " ".join(old.split()), clean_name(new, limit=40)
    async with db.transaction() as conn:
        async with conn.execute("SELECT id FROM areas WHERE community_id = ? AND name = ? AND active = 1",
                                (community_id, old)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound()
        async with conn.execute("SELECT 1 FROM areas WHERE community_id = ? AND name = ? AND id <> ?",
                                (community_id, new, row["id"])) as cur:
            if await cur.fetchone() is not None:
                raise DomainError(N_("There is already an area called {name}."), name=new)
        await conn.execute("UPDATE areas SET name = ? WHERE id = ?", (new, row["id"]))
        await audit(conn, now=now, action="area.renamed", community_id=community_id, object_type="area",
                    object_id=int(row["id"]), details={"from": old, "to": new})


async def remove_area(db: Database, *, community_id: int, name: str, now: datetime) -> None:
    """Hide an area from new registrations and requests; people and tasks already in it keep it."""
    name = " ".join(name.split())
    async with db.transaction() as conn:
        cur = await conn.execute("UPDATE areas SET active = 0 WHERE community_id = ? AND name = ? AND active = 1",
                                 (community_id, name))
        if not cur.rowcount:
            raise NotFound()
        await audit(conn, now=now, action="area.removed", community_id=community_id, object_type="area",
                    details={"name": name})


async def set_announce_consent(db: Database, member_id: int, consent: bool, now: datetime) -> None:
    """Whether the member's honours may be announced in the group (they are always told in private)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET announce_consent = ?, updated_at = ? WHERE id = ?",
                           (int(consent), to_db(now), member_id))
