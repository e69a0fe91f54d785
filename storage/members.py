"""Data access for members: every SQL statement about them goes through here.

Services and handlers ask by name (``registered_id_in``, ``language_of``…) and get plain values or
typed rows (``Member``: the one member row, from ``get``/``get_by_tg`` in a transaction or
``by_id``/``by_tg`` outside one), never a cursor, so a change of database touches this module only.
Organisations are in storage/organisations.py, areas in storage/areas.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import aiosqlite

from storage.db import Database, first, new_id
from storage.outbox import enqueue, enqueue_sync
from storage.timeutil import opt_from_db, to_db


@dataclass(frozen=True, slots=True)
class Member:
    """A member row (``SELECT *`` from members), typed: flags are bools, times datetimes."""

    id: int
    tg_user_id: int | None
    community_id: int | None
    language: str | None
    display_name: str | None
    phone: str | None
    area_id: int | None
    address: str | None
    is_resident: bool
    is_volunteer: bool
    is_staff: bool
    organisation_id: int | None
    skills: tuple[str, ...]
    availability: str | None
    on_duty: bool
    quiet_start: str
    quiet_end: str
    digest_enabled: bool
    digest_hour: int | None
    leaderboard_opt_out: bool
    announce_consent: bool
    announce_asked_at: datetime | None
    registered_at: datetime | None
    started_bot: bool
    reachable: bool
    balance: int
    deleted_at: datetime | None
    is_merchant: bool = False  # linked to an active merchant (only ``by_tg_with_merchant`` fills this in)

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | sqlite3.Row) -> Member:
        # A sqlite3.Row finds a column by comparing its name with each column's in turn: a dict first
        # (one pass) makes the thirty lookups below cheap (measured: 11 µs a member -> 5 µs).
        r: Mapping[str, Any] = dict(zip(row.keys(), row, strict=True)) if isinstance(row, sqlite3.Row) else row
        return cls(
            id=int(r["id"]), tg_user_id=_opt_int(r["tg_user_id"]), community_id=_opt_int(r["community_id"]),
            language=r["language"], display_name=r["display_name"], phone=r["phone"], area_id=_opt_int(r["area_id"]),
            address=r["address"], is_resident=bool(r["is_resident"]), is_volunteer=bool(r["is_volunteer"]),
            is_staff=bool(r["is_staff"]), organisation_id=_opt_int(r["organisation_id"]),
            skills=tuple(json.loads(r["skills"] or "[]")), availability=r["availability"], on_duty=bool(r["on_duty"]),
            quiet_start=str(r["quiet_start"]), quiet_end=str(r["quiet_end"]),
            digest_enabled=bool(r["digest_enabled"]), digest_hour=_opt_int(r["digest_hour"]),
            leaderboard_opt_out=bool(r["leaderboard_opt_out"]), announce_consent=bool(r["announce_consent"]),
            announce_asked_at=opt_from_db(r["announce_asked_at"]), registered_at=opt_from_db(r["registered_at"]), started_bot=bool(r["started_bot"]),
            reachable=bool(r["reachable"]), balance=int(r["balance"]), deleted_at=opt_from_db(r["deleted_at"]),
            is_merchant="is_merchant" in r and bool(r["is_merchant"]))

    @property
    def registered(self) -> bool:
        return self.registered_at is not None and self.deleted_at is None

    @property
    def name(self) -> str:
        return self.display_name or "?"


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _member(row: Any) -> Member | None:
    return None if row is None else Member.from_row(row)


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
    rows = await db.fetchall("SELECT id, display_name FROM members WHERE community_id = :c AND is_staff = 1"
                             " AND deleted_at IS NULL ORDER BY display_name", {"c": community_id})
    return [MemberName(int(r["id"]), r["display_name"], True) for r in rows]


async def named_like(db: Database, community_id: int, pattern: str, limit: int) -> list[MemberName]:
    """Registered members of the community whose name matches the LIKE ``pattern`` in any case, by name.
    lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not."""
    rows = await db.fetchall(
        "SELECT id, display_name, is_staff FROM members WHERE community_id = :c AND registered_at IS NOT NULL"
        " AND deleted_at IS NULL AND lower(display_name) LIKE lower(:pattern) ORDER BY display_name, id LIMIT :limit",
        {"c": community_id, "pattern": pattern, "limit": limit})
    return [MemberName(int(r["id"]), r["display_name"], bool(r["is_staff"])) for r in rows]


# The member loaders: every ``SELECT *`` from members becomes a ``Member`` here.
_BY_ID = "SELECT * FROM members WHERE id = :id AND deleted_at IS NULL"
_BY_TG = "SELECT * FROM members WHERE tg_user_id = :tg AND deleted_at IS NULL"
_BY_TG_ANY = "SELECT * FROM members WHERE tg_user_id = :tg"


async def get(conn: aiosqlite.Connection, member_id: int) -> Member | None:
    """The (not deleted) member inside a transaction, None if there is none."""
    return _member(await first(conn, _BY_ID, {"id": member_id}))


async def get_by_tg(conn: aiosqlite.Connection, tg_user_id: int) -> Member | None:
    """The (not deleted) member of a Telegram user inside a transaction, registered or not."""
    return _member(await first(conn, _BY_TG, {"tg": tg_user_id}))


def by_tg_sync(conn: Any, tg_user_id: int) -> Member | None:
    """``by_tg`` inside ``Database.read`` or ``Database.write``."""
    return _member(conn.execute(_BY_TG, {"tg": tg_user_id}).fetchone())


async def by_tg(db: Database, tg_user_id: int) -> Member | None:
    """The (not deleted) member of a Telegram user, registered or not (by a unique index: ``read_here``)."""
    return await db.read_here(lambda conn: by_tg_sync(conn, tg_user_id))


async def by_id(db: Database, member_id: int) -> Member | None:
    """The member with this id, erased or not (by the primary key: ``read_here``; a "who is coming"
    render reads one per claim on a request)."""
    return _member(await db.read_here(lambda conn: conn.execute("SELECT * FROM members WHERE id = :id",
                                                                {"id": member_id}).fetchone()))


async def by_tg_with_merchant(db: Database, tg_user_id: int) -> Member | None:
    """The member with ``is_merchant`` filled in (linked to an active merchant)."""
    return _member(await db.fetchone(
        "SELECT m.*, EXISTS (SELECT 1 FROM merchants s WHERE s.member_id = m.id AND s.active = 1) AS is_merchant"
        " FROM members m WHERE m.tg_user_id = :tg AND m.deleted_at IS NULL", {"tg": tg_user_id}))


async def with_digest_time(db: Database, tg_user_id: int) -> tuple[Member, str] | None:
    """A registered member and their community's digest time (08:00 if none)."""
    row = await db.fetchone(
        "SELECT m.*, COALESCE(c.digest_time, '08:00') AS community_time FROM members m"
        " LEFT JOIN communities c ON c.id = m.community_id"
        " WHERE m.tg_user_id = :tg AND m.deleted_at IS NULL AND m.registered_at IS NOT NULL", {"tg": tg_user_id})
    return None if row is None else (Member.from_row(row), str(row["community_time"]))


async def language_of(db: Database, tg_user_id: int) -> str | None:
    """The language a Telegram user chose in the bot, if any (by a unique index: ``read_here``; read
    for most private updates)."""
    row = await db.read_here(lambda conn: conn.execute("SELECT language FROM members WHERE tg_user_id = :tg",
                                                       {"tg": tg_user_id}).fetchone())
    stored = None if row is None else row[0]
    return str(stored) if stored else None


async def unregistered(db: Database, tg_user_id: int) -> bool:
    """True if this Telegram user has a member row but never finished registering."""
    return bool(await db.fetchval("SELECT registered_at IS NULL FROM members WHERE tg_user_id = :tg",
                                  {"tg": tg_user_id}))


async def registered_id_in(db: Database, tg_user_id: int, community_id: int) -> int | None:
    """The id of this Telegram user's registered membership of this community."""
    row = await db.fetchone(
        "SELECT id FROM members WHERE tg_user_id = :tg AND community_id = :c AND registered_at IS NOT NULL"
        " AND deleted_at IS NULL", {"tg": tg_user_id, "c": community_id})
    return None if row is None else int(row["id"])


async def registered_name_in(db: Database, member_id: int, community_id: int) -> str | None:
    """The display name ("?" if none) of a registered member of this community, None if there is none."""
    row = await db.fetchone("SELECT id, display_name FROM members WHERE id = :id AND community_id = :c"
                            " AND registered_at IS NOT NULL AND deleted_at IS NULL", {"id": member_id, "c": community_id})
    return None if row is None else str(row["display_name"] or "?")


async def announce_consent(db: Database, member_id: int | None) -> bool:
    return bool(await db.fetchval("SELECT announce_consent FROM members WHERE id = :id", {"id": member_id}))


async def announce_asked(db: Database, member_id: int | None) -> bool:
    """Whether the member was asked if their honours may be announced in the group."""
    return await db.fetchval("SELECT announce_asked_at FROM members WHERE id = :id", {"id": member_id}) is not None


# The question "may the group hear of your honours?" (kind ``announce_ask``), asked once per member:
# the member is marked asked and the message queued in the caller's transaction.
_ASKED = "UPDATE members SET announce_asked_at = :now WHERE id = :id AND announce_asked_at IS NULL"


def ask_announce_sync(conn: sqlite3.Connection, *, member_id: int, tg_user_id: int, now: datetime,
                      not_before: datetime | None = None) -> bool:
    """Ask once (in a ``Database.write`` transaction); False if the member was asked before.
    ``not_before``: not sooner (messages of one outbox batch go out together, in no set order)."""
    if not conn.execute(_ASKED, {"now": to_db(now), "id": member_id}).rowcount:
        return False
    return enqueue_sync(conn, chat_id=tg_user_id, member_id=member_id, kind="announce_ask", now=now,
                        dedupe_key=f"announce_ask:{member_id}", not_before=not_before)


async def ask_announce(conn: aiosqlite.Connection, *, member_id: int, tg_user_id: int, now: datetime) -> bool:
    """``ask_announce_sync`` in an aiosqlite transaction."""
    cur = await conn.execute(_ASKED, {"now": to_db(now), "id": member_id})
    if not cur.rowcount:
        return False
    return await enqueue(conn, chat_id=tg_user_id, member_id=member_id, kind="announce_ask", now=now,
                         dedupe_key=f"announce_ask:{member_id}")


async def public_name(db: Database, member_id: object) -> PublicName | None:
    row = await db.fetchone("SELECT display_name, announce_consent, deleted_at FROM members WHERE id = :id",
                            {"id": member_id})
    if row is None:
        return None
    return PublicName(row["display_name"], bool(row["announce_consent"]), row["deleted_at"] is not None)


async def contact(db: Database, member_id: int) -> Contact | None:
    row = await db.fetchone("SELECT display_name, phone FROM members WHERE id = :id", {"id": member_id})
    return None if row is None else Contact(row["display_name"], row["phone"])


class _Counter:
    """How many statements that set a member's language (or create a member) this process has run."""

    value = 0


def language_writes() -> int:
    """A number that changes whenever this process writes a member's language: a language read
    earlier in an update may stand in for ``language_of`` while this number is unchanged."""
    return _Counter.value


def _language_written() -> None:
    _Counter.value += 1


@dataclass(frozen=True)
class Reached:
    """What ``mark_reachable`` read: the language the person chose in the bot (as ``language_of``)
    and their member row as ``by_tg`` would read it after the mark (None: no member, or erased)."""

    language: str | None
    member: Member | None


async def mark_reachable(db: Database, tg_user_id: int) -> Reached:
    """The person wrote to the bot in private: it may write to them (again). Returns their language
    and member row (the same read serves both, and what the update does next)."""
    row = await db.read_here(lambda conn: conn.execute(_BY_TG_ANY, {"tg": tg_user_id}).fetchone())
    if row is None:
        return Reached(None, None)
    if not (row["started_bot"] and row["reachable"]):
        async with db.transaction() as conn:
            await conn.execute("UPDATE members SET started_bot = 1, reachable = 1 WHERE id = :id", {"id": row["id"]})
    member = None
    if row["deleted_at"] is None:
        member = replace(Member.from_row(row), started_bot=True, reachable=True)
    return Reached(str(row["language"]) if row["language"] else None, member)


# -- registration, profile and staff (bot/services/members.py, communities.py, merchants.py) -----
@dataclass(frozen=True, slots=True)
class Registration:
    """Where a Telegram user's member row stands (erased or not)."""

    id: int
    community_id: int | None
    registered: bool  # registration was finished once (an erased member keeps this)
    deleted: bool


@dataclass(frozen=True, slots=True)
class Profile:
    """What a finished registration dialog writes on the member."""

    community_id: int
    language: str
    display_name: str | None
    phone: str | None
    area_id: int | None
    address: str | None
    is_resident: bool
    is_volunteer: bool
    skills: str  # JSON list
    availability: str | None

    def params(self) -> dict[str, Any]:
        return {"community_id": self.community_id, "language": self.language, "display_name": self.display_name,
                "phone": self.phone, "area_id": self.area_id, "address": self.address,
                "is_resident": int(self.is_resident), "is_volunteer": int(self.is_volunteer), "skills": self.skills,
                "availability": self.availability}


async def registration_of(conn: aiosqlite.Connection, tg_user_id: int) -> Registration | None:
    """The Telegram user's member row, erased or not, None if they never had one."""
    row = await first(conn, "SELECT id, community_id, registered_at, deleted_at FROM members WHERE tg_user_id = :tg",
                      {"tg": tg_user_id})
    if row is None:
        return None
    return Registration(int(row["id"]), _opt_int(row["community_id"]), row["registered_at"] is not None,
                        row["deleted_at"] is not None)


async def id_of_tg(db: Database, tg_user_id: int) -> int | None:
    """The id of the Telegram user's member row, erased or not."""
    found = await db.fetchval("SELECT id FROM members WHERE tg_user_id = :tg", {"tg": tg_user_id})
    return None if found is None else int(found)


async def add_registered(conn: aiosqlite.Connection, *, tg_user_id: int, profile: Profile, now: datetime) -> int:
    """A new member from a finished registration; returns the id."""
    _language_written()
    cur = await conn.execute(
        "INSERT INTO members (community_id, language, display_name, phone, area_id, address, is_resident,"
        " is_volunteer, skills, availability, tg_user_id, consent_at, registered_at, started_bot, created_at, updated_at)"
        " VALUES (:community_id, :language, :display_name, :phone, :area_id, :address, :is_resident, :is_volunteer,"
        " :skills, :availability, :tg, :now, :now, 1, :now, :now) RETURNING id",
        {**profile.params(), "tg": tg_user_id, "now": to_db(now)})
    return new_id(await cur.fetchone())


async def register_again(conn: aiosqlite.Connection, member_id: int, profile: Profile, now: datetime) -> None:
    """A member's profile from a finished registration dialog (again, or after being erased)."""
    _language_written()
    await conn.execute(
        "UPDATE members SET community_id = :community_id, language = :language, display_name = :display_name,"
        " phone = :phone, area_id = :area_id, address = :address, is_resident = :is_resident,"
        " is_volunteer = :is_volunteer, skills = :skills, availability = :availability, consent_at = :now,"
        " registered_at = COALESCE(registered_at, :now), started_bot = 1, deleted_at = NULL, updated_at = :now"
        " WHERE id = :id", {**profile.params(), "now": to_db(now), "id": member_id})


async def add_staff_stub(conn: aiosqlite.Connection, *, tg_user_id: int, community_id: int, language: str | None,
                         now: datetime) -> None:
    """A not yet registered member who is staff (whoever set the community up)."""
    _language_written()
    await conn.execute(
        "INSERT INTO members (tg_user_id, community_id, language, is_staff, created_at, updated_at)"
        " VALUES (:tg, :c, :language, 1, :now, :now)",
        {"tg": tg_user_id, "c": community_id, "language": language, "now": to_db(now)})


async def add_merchant_account(conn: aiosqlite.Connection, *, tg_user_id: int, community_id: int, language: str,
                               display_name: str, now: datetime) -> int:
    """A member row (registered) for a merchant's Telegram account; returns the id."""
    _language_written()
    cur = await conn.execute(
        "INSERT INTO members (tg_user_id, community_id, language, display_name, registered_at, started_bot,"
        " created_at, updated_at) VALUES (:tg, :c, :language, :name, :now, 1, :now, :now) RETURNING id",
        {"tg": tg_user_id, "c": community_id, "language": language, "name": display_name, "now": to_db(now)})
    return new_id(await cur.fetchone())


async def make_staff_of(conn: aiosqlite.Connection, member_id: int, community_id: int, now: datetime) -> None:
    """The member belongs to the community and is staff there."""
    await conn.execute("UPDATE members SET community_id = :c, is_staff = 1, updated_at = :now WHERE id = :id",
                       {"c": community_id, "now": to_db(now), "id": member_id})


async def set_staff_flag(conn: aiosqlite.Connection, *, member_id: int, community_id: int, staff: bool,
                         now: datetime) -> bool:
    """Make a registered member of the community staff or not; False if there is no such member."""
    cur = await conn.execute(
        "UPDATE members SET is_staff = :staff, updated_at = :now WHERE id = :id AND community_id = :c"
        " AND registered_at IS NOT NULL AND deleted_at IS NULL",
        {"staff": int(staff), "now": to_db(now), "id": member_id, "c": community_id})
    return bool(cur.rowcount)


async def has_other_staff(conn: aiosqlite.Connection, community_id: int, member_id: int) -> bool:
    """Whether the community has a registered staff member (not erased) other than this one."""
    return await first(conn, "SELECT 1 FROM members WHERE community_id = :c AND is_staff = 1 AND id <> :m"
                       " AND registered_at IS NOT NULL AND deleted_at IS NULL",
                       {"c": community_id, "m": member_id}) is not None


@dataclass(frozen=True, slots=True)
class StaffChat:
    """A staff member and their Telegram chat."""

    member_id: int
    tg_user_id: int


async def staff_chats_of(conn: aiosqlite.Connection, community_id: int) -> list[StaffChat]:
    """The community's staff (not erased, registered or not) who have a chat."""
    rows = await conn.execute_fetchall(
        "SELECT id, tg_user_id FROM members WHERE community_id = :c AND is_staff = 1 AND tg_user_id IS NOT NULL"
        " AND deleted_at IS NULL", {"c": community_id})
    return [StaffChat(int(r[0]), int(r[1])) for r in rows]


async def set_language(conn: aiosqlite.Connection, tg_user_id: int, language: str, now: datetime) -> None:
    _language_written()
    await conn.execute("UPDATE members SET language = :language, updated_at = :now WHERE tg_user_id = :tg",
                       {"language": language, "now": to_db(now), "tg": tg_user_id})


async def set_organisation(conn: aiosqlite.Connection, member_id: int, organisation_id: int, now: datetime) -> None:
    await conn.execute("UPDATE members SET organisation_id = :o, updated_at = :now WHERE id = :id",
                       {"o": organisation_id, "now": to_db(now), "id": member_id})


async def set_announce_consent(conn: aiosqlite.Connection, member_id: int, consent: bool, now: datetime) -> None:
    await conn.execute("UPDATE members SET announce_consent = :v, updated_at = :now WHERE id = :id",
                       {"v": int(consent), "now": to_db(now), "id": member_id})


async def mark_erased(conn: aiosqlite.Connection, member_id: int, now: datetime) -> None:
    """The member row stays (the ledger points at it), marked erased."""
    await conn.execute("UPDATE members SET deleted_at = :now, updated_at = :now WHERE id = :id",
                       {"now": to_db(now), "id": member_id})


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
# -- the people a task's transitions tell (bot/services/tasks.py, completion.py) --------------
_ROW_SYNC = "SELECT * FROM members WHERE id = :id AND deleted_at IS NULL"
_CHAT = "SELECT tg_user_id FROM members WHERE id = :id AND deleted_at IS NULL"


def row_sync(conn: sqlite3.Connection, member_id: int) -> sqlite3.Row | None:
    """The (not deleted) member's plain row in a ``Database.write`` function: the claim path reads
    a few columns of it and does not pay for building a ``Member``."""
    found: sqlite3.Row | None = conn.execute(_ROW_SYNC, {"id": member_id}).fetchone()
    return found


async def chat_of(conn: aiosqlite.Connection, member_id: int) -> int | None:
    """The Telegram chat of a (not deleted) member, None if there is none to write to."""
    found = await first(conn, _CHAT, {"id": member_id})
    return None if found is None or found[0] is None else int(found[0])


def chat_of_sync(conn: sqlite3.Connection, member_id: int) -> int | None:
    """``chat_of`` in a ``Database.write`` function."""
    found = conn.execute(_CHAT, {"id": member_id}).fetchone()
    return None if found is None or found[0] is None else int(found[0])


async def registered_staff_ids(conn: aiosqlite.Connection, community_id: int) -> list[int]:
    """The ids of the community's registered staff (not erased)."""
    rows = await conn.execute_fetchall(
        "SELECT id FROM members WHERE community_id = :c AND is_staff = 1 AND deleted_at IS NULL"
        " AND registered_at IS NOT NULL", {"c": community_id})
    return [int(r[0]) for r in rows]


async def set_on_duty(conn: aiosqlite.Connection, member_id: int, on_duty: bool, now: datetime) -> None:
    await conn.execute("UPDATE members SET on_duty = :v, updated_at = :now WHERE id = :id",
                       {"v": int(on_duty), "now": to_db(now), "id": member_id})
