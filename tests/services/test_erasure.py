"""/deleteme leaves nothing of the person anywhere: every table, every cell, the raw file.

A person goes through every flow that stores something, is erased, and then every text and blob
cell of every table (and the database file's bytes) is searched for their name, phone, address,
Telegram id and the texts they typed. The registry (bot/services/erasure.py) must name every
column of the live schema, so a migration cannot add one that erasure misses.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import bot.conversations.completion  # with the two below: the renderers the outbox job uses
import bot.conversations.dispatch
import bot.jobs.sweeps  # noqa: F401
from bot.clock import FrozenClock
from bot.jobs.outbox_drain import OutboxSender
from bot.services import completion, digest, erasure, ledger, members, notifications, rewards, tasks
from storage import erasure as erasure_store
from storage.db import Database
from storage.timeutil import to_db
from tests.both import only_sqlite
from tests.factories import make_community, make_member


@dataclass
class Person:
    tg: int
    name: str
    phone: str
    address: str
    typed: list[str] = field(default_factory=list)  # everything else they typed or sent (texts, file ids)
    member_id: int = 0

    def markers(self) -> list[str]:
        return [self.name, self.phone, self.address, str(self.tg), *self.typed]


RESIDENT = Person(7_311_954_026, "Rosalind Quince", "13912345678", "Plum Court 7 Flat 1203",
                  typed=["Zebrafinch came without the eggs", "Marmalade jar broken on the stairs",
                         "Crumpet detail for staff", "AwACvoiceRosalind001", "draft about Snapdragon"])
VOLUNTEER = Person(7_411_222_333, "Victor Wobblesworth", "13887654321", "Hazel Row 9 Room 4",
                   typed=["Left at the door with Gooseberry", "AgACphotoVictor777", "weekends Quokka",
                          "Second note about Persimmon", "AgACphotoVictor888"])


class Chats:
    """A stand-in for the Bot API that keeps each chat's messages, as Telegram would show them."""

    def __init__(self) -> None:
        self.chats: dict[int, dict[int, dict[str, Any]]] = {}
        self.next_id = 0

    def _add(self, chat_id: int, **message: Any) -> Any:
        self.next_id += 1
        self.chats.setdefault(chat_id, {})[self.next_id] = {"buttons": message.pop("reply_markup", None), **message}
        return SimpleNamespace(message_id=self.next_id)

    async def send_message(self, chat_id: int, text: str, reply_markup: Any = None) -> Any:
        return self._add(chat_id, text=text, reply_markup=reply_markup)

    async def send_photo(self, chat_id: int, photo: Any, caption: str | None = None, reply_markup: Any = None) -> Any:
        return self._add(chat_id, text=caption, photo=photo, reply_markup=reply_markup)

    async def send_document(self, chat_id: int, document: Any, filename: str = "", caption: str | None = None,
                            reply_markup: Any = None) -> Any:
        return self._add(chat_id, text=caption, document=filename, reply_markup=reply_markup)

    async def send_voice(self, chat_id: int, voice: str) -> Any:
        return self._add(chat_id, voice=voice)

    async def edit_message_text(self, text: str, chat_id: int, message_id: int, reply_markup: Any = None) -> Any:
        message = self.chats[chat_id][message_id]
        message.update(text=text, buttons=reply_markup)
        return SimpleNamespace(message_id=message_id)

    async def edit_message_caption(self, chat_id: int, message_id: int, caption: str | None = None,
                                   reply_markup: Any = None) -> Any:
        message = self.chats[chat_id][message_id]
        message.update(text=caption, buttons=reply_markup)
        return SimpleNamespace(message_id=message_id)

    async def delete_message(self, chat_id: int, message_id: int) -> bool:
        del self.chats[chat_id][message_id]
        return True

    async def pin_chat_message(self, chat_id: int, message_id: int, disable_notification: bool = False) -> bool:
        return True


async def _drain(db: Database, at: datetime, api: Chats) -> None:
    """The outbox job, as the bot runs it, until nothing due at ``at`` is left."""
    settings = SimpleNamespace(timezone="Asia/Shanghai", default_language="en")
    ctx = SimpleNamespace(db=db, bot=api, settings=settings, now=FrozenClock(at).now,
                          runtime=SimpleNamespace(bot_username="linli_test_bot"))
    await OutboxSender(rate=10_000).drain(ctx)  # type: ignore[arg-type]


@dataclass
class World:
    community: int
    staff_tg: int
    other_tg: int
    task: int
    open_task: int
    voucher_code: str
    chats: Chats


async def _build(db: Database, now: datetime) -> World:
    """Both people through every flow that stores something about them."""
    cid = await make_community(db, now, name="Sunny Lane")
    area = await db.fetchval("SELECT 1")  # no listed areas: typed places stay typed
    assert area == 1
    staff_tg, other_tg = 7_000_000_501, 7_000_000_502
    staff = await make_member(db, now, cid, tg_user_id=staff_tg, name="Stan Staff", staff=True)
    await make_member(db, now, cid, tg_user_id=other_tg, name="Olga Other", volunteer=True)
    RESIDENT.member_id = await members.save_registration(
        db, tg_user_id=RESIDENT.tg, community_id=cid, now=now,
        data={"role": "resident", "name": RESIDENT.name, "phone": RESIDENT.phone, "address": RESIDENT.address,
              "lang": "en"})
    VOLUNTEER.member_id = await members.save_registration(
        db, tg_user_id=VOLUNTEER.tg, community_id=cid, now=now,
        data={"role": "volunteer", "name": VOLUNTEER.name, "phone": VOLUNTEER.phone, "address": VOLUNTEER.address,
              "availability": "weekends Quokka", "skills": ["shopping"], "lang": "en"})
    # Settings and an organisation.
    for p in (RESIDENT, VOLUNTEER):
        assert await notifications.update_member_settings(db, p.member_id, now, digest_hour=20, quiet="23-08")
    _oid, code = await members.create_organisation(db, community_id=cid, name="Bank Team", actor_id=staff, now=now)
    assert await members.join_organisation(db, tg_user_id=VOLUNTEER.tg, now=now, code=code) == "Bank Team"
    # A request with a typed address and her phone in the text, submitted from a draft.
    task = await tasks.create_task(db, now, RESIDENT.member_id, tasks.NewTask(
        "shopping", description=f"Eggs and milk for {RESIDENT.name}, call {RESIDENT.phone}",
        address=RESIDENT.address, voice_file_id="AwACvoiceRosalind001", submit_key=f"{RESIDENT.tg}:1"))
    open_task = await tasks.create_task(db, now, RESIDENT.member_id, tasks.NewTask(
        "shopping", description="Bread please", submit_key=f"{RESIDENT.tg}:2"))
    t = now
    def tick() -> datetime:
        nonlocal t
        t += timedelta(minutes=5)
        return t
    # The volunteer claims, is told who is coming, asks staff to get in touch; done with a note and photo.
    chats = Chats()
    await tasks.claim(db, tick(), VOLUNTEER.member_id, task)
    await _drain(db, t, chats)  # the details (her contact, her voice note) are in his chat
    await tasks.contact_staff(db, tick(), VOLUNTEER.member_id, task)
    await completion.mark_done(db, task_id=task, tg_user_id=VOLUNTEER.tg, now=tick(),
                               note="Left at the door with Gooseberry", photo_file_id="AgACphotoVictor777")
    await completion.add_done_note(db, task_id=task, tg_user_id=VOLUNTEER.tg, now=tick(),
                                   note="Second note about Persimmon", photo_file_id="AgACphotoVictor888")
    # Not done, with a reason (typed afterwards too).
    await completion.not_done(db, task_id=task, tg_user_id=RESIDENT.tg, now=tick(),
                              reason="Zebrafinch came without the eggs")
    await completion.add_reason(db, task_id=task, tg_user_id=RESIDENT.tg, now=tick(), kind="n",
                                reason="Zebrafinch came without the eggs")
    await completion.mark_done(db, task_id=task, tg_user_id=VOLUNTEER.tg, now=tick(),
                               note="Left at the door with Gooseberry")
    # A problem, with a reason; staff credit the volunteer.
    out = await completion.report_problem(db, task_id=task, tg_user_id=RESIDENT.tg, now=tick(),
                                          reason="Marmalade jar broken on the stairs")
    await completion.add_reason(db, task_id=task, tg_user_id=RESIDENT.tg, now=tick(), kind="p",
                                reason="Crumpet detail for staff")
    assert out.case_id is not None
    await completion.resolve_case(db, case_id=out.case_id, tg_user_id=staff_tg, now=tick(), resolution="credit")
    # A second request, confirmed; staff add points with a note naming him.
    second = await tasks.create_task(db, tick(), RESIDENT.member_id, tasks.NewTask("shopping", description="Soap"))
    await tasks.claim(db, tick(), VOLUNTEER.member_id, second)
    await _drain(db, t, chats)
    await completion.mark_done(db, task_id=second, tg_user_id=VOLUNTEER.tg, now=tick())
    await completion.confirm(db, task_id=second, tg_user_id=RESIDENT.tg, now=tick())
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=VOLUNTEER.member_id, amount=2, reason="adjust", key="bonus:1", now=tick(),
                            actor_id=staff, note=f"for {VOLUNTEER.name} on weekends Quokka")
    # The points buy a voucher (the confirm button's key carries the Telegram id).
    reward = await rewards.create_reward(db, community_id=cid, name_zh="茶", name_en="Tea", kind="goods", cost=1,
                                         now=tick())
    voucher = await rewards.redeem(db, member_id=VOLUNTEER.member_id, reward_id=reward, now=tick(),
                                   request_key=f"{VOLUNTEER.tg}:tok1")
    # Tomorrow's digests name the volunteer (the group's top helpers).
    assert await digest.sweep_digests(db, now + timedelta(days=1)) > 0
    assert VOLUNTEER.name in await db.fetchval("SELECT payload FROM outbox WHERE kind = 'digest_group'")
    # A dialog half-way (what she typed so far).
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO dialogs (tg_user_id, flow, step, data, updated_at) VALUES (?, 'request', 'when', ?, ?)",
                           (RESIDENT.tg, json.dumps({"text": "draft about Snapdragon", "address": RESIDENT.address}),
                            to_db(now)))
        await conn.execute("INSERT INTO dialogs (tg_user_id, flow, step, data, updated_at) VALUES (?, 'done', 'note', ?, ?)",
                           (VOLUNTEER.tg, json.dumps({"note": "weekends Quokka"}), to_db(now)))
    return World(cid, staff_tg, other_tg, task, open_task, voucher.code, chats)


async def _cells(db: Database) -> list[tuple[str, str, object]]:
    """Every cell of every table (SQLite's own tables included), on either database."""
    out: list[tuple[str, str, object]] = []
    async with db.transaction() as conn:
        for table in sorted(await erasure_store.tables(conn)):
            cols = await erasure_store.columns(conn, table)
            for row in await conn.execute_fetchall(f"SELECT * FROM {table}"):
                out += [(table, col, value) for col, value in zip(cols, row, strict=True)]
    return out


async def _leftovers(db: Database, person: Person) -> list[tuple[str, str, str]]:
    """Cells holding any of the person's data (task titles and descriptions apart: checked as masked)."""
    found = []
    for table, col, value in await _cells(db):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, int) and value == person.tg:
            found.append((table, col, str(value)))
        if not isinstance(value, str):
            continue
        markers = [person.name, person.phone, person.address, str(person.tg)]
        if (table, col) not in (("tasks", "title"), ("tasks", "description")):
            markers += person.typed
        found += [(table, col, m) for m in markers if m.lower() in value.lower()]
    return found


def _stored_int(n: int) -> bytes:
    """How SQLite stores an integer in a record: big-endian, in the fewest of 1, 2, 3, 4, 6, 8 bytes."""
    size = next(k for k in (1, 2, 3, 4, 6, 8) if -(1 << (8 * k - 1)) <= n < 1 << (8 * k - 1))
    return n.to_bytes(size, "big", signed=True)


def _raw_leftovers(db: Database, person: Person) -> list[str] | None:
    """What of the person the SQLite file's bytes still hold (free pages too); None on PostgreSQL,
    where the server's files are not ours to read (its VACUUM reclaims dead rows)."""
    if getattr(db, "dialect", "sqlite") != "sqlite":
        return None
    path = db.path
    data = b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if Path(p).exists())
    found = [m for m in person.markers() if m.encode() in data]
    return found + (["Telegram id as an integer"] if _stored_int(person.tg) in data else [])


async def _totals(db: Database) -> dict[str, object]:
    return {
        "earning_totals": [tuple(r) for r in await db.fetchall(
            "SELECT community_id, scope, subject_id, period, pts FROM earning_totals ORDER BY 1, 2, 3, 4")],
        "ledger": [tuple(r) for r in await db.fetchall("SELECT id, member_id, delta, reason FROM ledger ORDER BY id")],
        "balances": [tuple(r) for r in await db.fetchall("SELECT id, balance, organisation_id FROM members ORDER BY id")],
        "counts": [await db.fetchval(f"SELECT COUNT(*) FROM {t}")
                   for t in ("tasks", "claims", "cases", "vouchers", "honours", "members")],
    }


async def _kept_rows(db: Database, person: Person) -> list[tuple[str, str, str]]:
    """The cells erasure keeps on purpose until the outbox job has sent them (REGISTRY ``kept``)."""
    out = []
    for name, table in erasure.REGISTRY.items():
        if table.kept:
            rows = await db.fetchall(f"SELECT * FROM {name} WHERE ({table.mine}) AND ({table.kept})",
                                     {"mid": person.member_id, "tg": person.tg})
            out += [(name, col, str(person.tg)) for r in rows for col in r.keys() if r[col] == person.tg]
    return sorted(out)


@pytest.mark.parametrize("who", ["resident", "volunteer"])
async def test_erase_leaves_nothing_of_the_person(db: Database, now: datetime, who: str) -> None:
    world = await _build(db, now)
    person, other = (RESIDENT, VOLUNTEER) if who == "resident" else (VOLUNTEER, RESIDENT)
    # The claims' details went out as they were claimed (the resident's contact and voice note are
    # in the volunteer's chat); what came later, and tomorrow's digests, still wait.
    chats = world.chats
    details = [(int(r["message_id"]), r["voice_message_id"]) for r in await db.fetchall(
        "SELECT message_id, voice_message_id FROM outbox WHERE kind = 'task_claimed_volunteer' AND state = 'sent'")]
    assert len(details) == 2 and any(voice for _m, voice in details)
    assert [RESIDENT.phone in chats.chats[VOLUNTEER.tg][m]["text"] for m, _v in details] == [True, True]
    assert len(await _leftovers(db, person)) > 20  # the flows above stored plenty (else the scan proves nothing)
    raw = _raw_leftovers(db, person)
    assert raw is None or "Telegram id as an integer" in raw
    before = await _totals(db)
    pending_before = await db.fetchval("SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND chat_id = ?",
                                       (person.tg,))
    assert pending_before > 0

    assert await members.erase(db, tg_user_id=person.tg, now=now + timedelta(days=2))

    # Only the rows that will cut down what the volunteer's chat shows of the resident hold his
    # Telegram id (and nothing else of anyone): declared in the registry, gone once sent.
    leftovers = await _leftovers(db, person)
    kept = await _kept_rows(db, person)
    assert sorted(leftovers) == kept
    # (His note with a photo, sent to her: in her chat, his words and picture are cut down when she leaves.)
    assert len(kept) == (2 if who == "volunteer" else 1)
    for (payload,) in await db.fetchall("SELECT payload FROM outbox WHERE kind = 'forget'"):
        assert set(json.loads(payload)) == {"outbox_id", "message_id", "voice_message_id", "media", "sent_at", "why"}
    await _drain(db, now + timedelta(days=2), chats)
    assert await _leftovers(db, person) == []
    assert _raw_leftovers(db, person) in (None, [])
    # His chat keeps one line where each claim's details were, whoever of them left; her voice note is gone.
    line = {"volunteer": "The personal details in this message were removed when you left.",
            "resident": "The resident's personal details in this message were removed at their request."}[who]
    chat = chats.chats[VOLUNTEER.tg]
    for message_id, voice in details:
        assert chat[message_id]["text"] == line and chat[message_id]["buttons"] is None
        assert voice is None or voice not in chat
    assert not [m for m in chat.values() if RESIDENT.phone in str(m) or RESIDENT.address in str(m)
                or "AwACvoiceRosalind001" in str(m)]
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'forget'") == 0
    # Totals and the ledger as they were (the member row stays, anonymised; counts of the
    # person's open request cancelled at erasure aside, nothing is removed).
    after = await _totals(db)
    assert after["earning_totals"] == before["earning_totals"]
    assert after["ledger"] == before["ledger"]
    assert after["balances"] == before["balances"]
    assert after["counts"] == before["counts"]
    # Nothing is queued for them any more.
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE chat_id = ? OR member_id = ?",
                             (person.tg, person.member_id)) == 0
    # Her request keeps what the group saw: the text, masked (her own text while she stays).
    description = await db.fetchval("SELECT description FROM tasks WHERE id = ?", (world.task,))
    if who == "resident":
        assert description == "Eggs and milk for ***, call " + tasks.mask_phones(RESIDENT.phone)
    else:
        assert description == f"Eggs and milk for {RESIDENT.name}, call {RESIDENT.phone}"
    # The other person's data is theirs, untouched.
    assert await db.fetchval("SELECT display_name FROM members WHERE id = ?", (other.member_id,)) == other.name
    assert await _leftovers(db, other) != []


async def test_erase_twice_and_messages_to_others_keep_their_place(db: Database, now: datetime) -> None:
    await _build(db, now)
    coming = await db.fetchone("SELECT id, payload FROM outbox WHERE kind = 'task_who_is_coming'")
    assert coming is not None and VOLUNTEER.name in coming["payload"]
    assert await members.erase(db, tg_user_id=VOLUNTEER.tg, now=now)
    # The resident's message is still there (sent or not), with the name replaced.
    payload = json.loads(await db.fetchval("SELECT payload FROM outbox WHERE id = ?", (coming["id"],)))
    assert payload["volunteer"] == erasure.MASKED and payload["task_id"] > 0
    assert not await members.erase(db, tg_user_id=VOLUNTEER.tg, now=now)


async def _schema(db: Database) -> dict[str, list[str]]:
    """The tables (not the database's own: sqlite_*, alembic_version) and their columns, on either database."""
    async with db.transaction() as conn:
        return {t: await erasure_store.columns(conn, t) for t in await erasure_store.tables(conn)
                if not t.startswith("sqlite_") and t != "alembic_version"}


def _schema_columns(path: str) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%'")]
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


async def test_every_column_is_declared(db: Database) -> None:
    """A migration that adds a table or column must say in erasure.REGISTRY how it is erased or why
    it holds nothing personal."""
    schema = await _schema(db)
    missing, stale = [], []
    for table, cols in schema.items():
        rule = erasure.REGISTRY.get(table)
        if rule is None:
            missing.append(f"table {table}")
            continue
        if rule.any_columns:
            assert erasure.mine_condition(table, rule, cols) is not None
            continue
        # Rows kept for now are some of the person's rows that would otherwise be deleted: named by
        # a condition on the table's own columns (the test above checks they hold nothing else).
        assert not rule.kept or (rule.delete_mine and rule.mine), f"{table}: kept rows that are not deleted anyway"
        declared = set(rule.cols) | rule.keep_set()
        assert not set(rule.cols) & rule.keep_set(), f"{table}: a column both erased and kept"
        missing += [f"{table}.{c}" for c in cols if c not in declared]
        stale += [f"{table}.{c}" for c in declared if c not in cols]
    own = {"schema_migrations"} if getattr(db, "dialect", "sqlite") != "sqlite" else set()  # Alembic's there
    stale += [t for t, r in erasure.REGISTRY.items() if t not in schema and not r.optional and t not in own]
    assert missing == [], f"not declared in bot/services/erasure.py REGISTRY: {missing}"
    assert stale == [], f"declared in REGISTRY but not in the schema: {stale}"


def test_the_registry_test_catches_a_new_column(tmp_path: Path) -> None:
    """The check above, run on a schema with one more column, names it."""
    import asyncio

    from storage.db import open_database

    async def build() -> str:
        database = await open_database(str(tmp_path / "x.db"))
        try:
            async with database.transaction() as conn:
                await conn.execute("ALTER TABLE claims ADD COLUMN pickup_note TEXT")
        finally:
            await database.close()
        return str(tmp_path / "x.db")

    path = asyncio.run(build())
    schema = _schema_columns(path)
    rule = erasure.REGISTRY["claims"]
    assert [c for c in schema["claims"] if c not in set(rule.cols) | rule.keep_set()] == ["pickup_note"]


async def test_ledger_stays_append_only_but_a_note_may_be_emptied(db: Database, now: datetime) -> None:
    from bot.services import ledger

    cid = await make_community(db, now)
    mid = await make_member(db, now, cid, volunteer=True)
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=mid, amount=3, reason="adjust", key="k:1", now=now, note="typed by staff")
    for sql in ("UPDATE ledger SET delta = 5", "UPDATE ledger SET note = 'other'", "UPDATE ledger SET member_id = NULL",
                "UPDATE ledger SET created_at = 'x'", "DELETE FROM ledger"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            async with db.transaction() as conn:
                await conn.execute(sql)
    async with db.transaction() as conn:
        await conn.execute("UPDATE ledger SET note = NULL")
    assert tuple(await db.fetchone("SELECT delta, note FROM ledger")) == (3, None)
    # The trigger names every ledger column, so a column added later is not left open to change.
    only_sqlite(db, "the trigger's text (PostgreSQL's is checked by tests/postgres/test_guarantees.py)")
    trigger = await db.fetchval("SELECT sql FROM sqlite_master WHERE name = 'ledger_no_update'")
    cols = (await _schema(db))["ledger"]
    assert [c for c in cols if f"NEW.{c} " not in trigger and f"NEW.{c})" not in trigger] == []


async def test_the_inbox_loses_the_persons_updates(db: Database, now: datetime) -> None:
    """The durable inbox keeps raw updates until handled (their words, their Telegram id): the
    person's rows go, handled or not, and everyone else's stay."""
    cid = await make_community(db, now)
    await make_member(db, now, cid, tg_user_id=7_500_000_001, name="Ina Box", volunteer=True)
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO inbox (update_id, user_id, lane, digest, payload, status, received_at)"
            " VALUES (?, ?, ?, 'd', ?, ?, '2026-05-04T00:00:00')",
            [(1, 7_500_000_001, "msg:7500000001", '{"text": "Ina Box here"}', "waiting"),
             (2, 7_500_000_001, "cb:7500000001", "", "handled"),
             (3, 42, "msg:42", '{"text": "hello"}', "waiting")])
    rule = erasure.REGISTRY["inbox"]
    assert erasure.mine_condition("inbox", rule, (await _schema(db))["inbox"]) == "user_id = :tg"
    assert await members.erase(db, tg_user_id=7_500_000_001, now=now)
    assert [tuple(r) for r in await db.fetchall("SELECT update_id, user_id FROM inbox")] == [(3, 42)]
    # An inbox that names nobody cannot be erased: said at once, not silently skipped.
    with pytest.raises(RuntimeError, match="inbox"):
        erasure.mine_condition("inbox", rule, ["update_id", "payload"])


async def test_the_staff_member_who_set_up_the_community_can_leave(db: Database, now: datetime) -> None:
    """/setup records the Telegram id of whoever ran it (on the community and in the audit log)."""
    from bot.services import communities

    tg = 7_600_000_123
    res = await communities.setup_community(db, name="Sunny Lane", group_chat_id=-555, tg_user_id=tg, language="en",
                                            now=now)
    staff = Person(tg, "Stella Setup", "13700000000", "Office 1")
    await members.save_registration(db, tg_user_id=tg, community_id=res.community_id, now=now,
                                    data={"role": "volunteer", "name": staff.name, "phone": staff.phone,
                                          "address": staff.address, "lang": "en"})
    assert {t for t, _c, _m in await _leftovers(db, staff)} >= {"communities", "audit_log", "members"}
    assert await members.erase(db, tg_user_id=tg, now=now)
    assert await _leftovers(db, staff) == []
    assert await db.fetchval("SELECT group_chat_id FROM communities WHERE id = ?", (res.community_id,)) == -555


async def test_a_staff_member_who_leaves_keeps_no_request_sent_for_review(db: Database, now: datetime) -> None:
    """A request waiting for review reaches staff as the resident wrote it (unmasked): a staff
    member who erases themselves keeps one line of it in their chat, and no row names them."""
    cid = await make_community(db, now, review_required=1)
    staff_tg = 7_700_000_001
    staff = await make_member(db, now, cid, tg_user_id=staff_tg, name="Stella Staff", staff=True, started_bot=1,
                              language="en")
    res = await make_member(db, now, cid, tg_user_id=7_700_000_002, resident=True, started_bot=1)
    await tasks.create_task(db, now, res, tasks.NewTask("shopping", description="Milk to Flat 1203, ring 13912345678"))
    chats = Chats()
    await _drain(db, now, chats)
    [(review_id, review)] = chats.chats[staff_tg].items()
    assert "13912345678" in review["text"] and review["buttons"] is not None
    assert await members.erase(db, tg_user_id=staff_tg, now=now)
    await _drain(db, now, chats)
    assert chats.chats[staff_tg] == {review_id: {
        "text": "The personal details in this message were removed when you left.", "buttons": None}}
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE chat_id = ? OR member_id = ?", (staff_tg, staff)) == 0


ABOUT_LEFT = "Personal details in this message were removed at the request of the person they belong to."


async def test_a_message_a_handler_showed_is_cut_down_when_someone_it_names_leaves(db: Database, now: datetime) -> None:
    """Staff's list of an event's volunteers is a handler's own reply, not the outbox's: recorded
    (erasure.record_shown, as bot.ui.shown does), it is cut down like the outbox's messages when
    someone it names erases themselves; a message that does not name them stays as it was; when the
    staff member leaves, what is left of it in their chat goes too, and no row is left in their chat."""
    cid = await make_community(db, now)
    staff_tg, a_tg, b_tg = 7_800_000_001, 7_800_000_002, 7_800_000_003
    staff = await make_member(db, now, cid, tg_user_id=staff_tg, name="Stella Staff", staff=True, started_bot=1,
                              language="en")
    a = await make_member(db, now, cid, tg_user_id=a_tg, name="Amos Appleyard", volunteer=True, started_bot=1)
    b = await make_member(db, now, cid, tg_user_id=b_tg, name="Bettina Bramble", volunteer=True, started_bot=1)
    chats = Chats()
    both = (await chats.send_message(staff_tg, "1. Amos Appleyard\n2. Bettina Bramble", reply_markup="buttons")).message_id
    only_b = (await chats.send_message(staff_tg, "Bettina Bramble is now community staff.")).message_id
    for _ in range(2):  # an edit showing the same people again: recorded once
        await erasure.record_shown(db, chat_id=staff_tg, message_id=both, about=[b, a, b], now=now)
    await erasure.record_shown(db, chat_id=staff_tg, message_id=only_b, about=[b], now=now)
    await erasure.record_shown(db, chat_id=staff_tg, message_id=only_b, about=[], now=now)  # nobody: nothing
    rows = await db.fetchall("SELECT member_id, state, message_id, payload FROM outbox WHERE kind = 'shown'"
                             " ORDER BY id")
    assert [(r[0], r[1], r[2], json.loads(r[3])) for r in rows] == [
        (staff, "sent", both, {"about": sorted([a, b])}), (staff, "sent", only_b, {"about": [b]})]

    assert await members.erase(db, tg_user_id=a_tg, now=now)
    await _drain(db, now, chats)
    assert chats.chats[staff_tg] == {
        both: {"text": ABOUT_LEFT, "buttons": None},
        only_b: {"text": "Bettina Bramble is now community staff.", "buttons": None}}
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'forget'") == 0

    assert await members.erase(db, tg_user_id=staff_tg, now=now)
    await _drain(db, now, chats)
    assert chats.chats[staff_tg][only_b] == {
        "text": "The personal details in this message were removed when you left.", "buttons": None}
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE chat_id = ? OR member_id = ?", (staff_tg, staff)) == 0


async def test_a_file_a_handler_showed_is_deleted_or_its_caption_edited(db: Database, now: datetime) -> None:
    """A staff export naming someone (a document: no text to edit) goes when they erase themselves:
    deleted while Telegram lets the bot delete it (two days), its caption edited after that."""
    cid = await make_community(db, now)
    staff_tg, a_tg, b_tg = 7_800_000_011, 7_800_000_012, 7_800_000_013
    await make_member(db, now, cid, tg_user_id=staff_tg, name="Stella Staff", staff=True, started_bot=1, language="en")
    a = await make_member(db, now, cid, tg_user_id=a_tg, name="Amos Appleyard", volunteer=True, started_bot=1)
    b = await make_member(db, now, cid, tg_user_id=b_tg, name="Bettina Bramble", volunteer=True, started_bot=1)
    chats = Chats()
    old = (await chats.send_document(staff_tg, b"...", filename="members.csv")).message_id
    new = (await chats.send_document(staff_tg, b"...", filename="members.csv")).message_id
    await erasure.record_shown(db, chat_id=staff_tg, message_id=old, about=[a, b], now=now - timedelta(days=3),
                               media=True)
    await erasure.record_shown(db, chat_id=staff_tg, message_id=new, about=[a, b], now=now - timedelta(hours=2),
                               media=True)
    assert await members.erase(db, tg_user_id=a_tg, now=now)
    await _drain(db, now, chats)
    assert chats.chats[staff_tg] == {old: {"text": ABOUT_LEFT, "document": "members.csv", "buttons": None}}
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'forget'") == 0
    # Another person in the same files leaves: nothing is left to cut down (no second delete, refused).
    chats.delete_message = None  # type: ignore[assignment,method-assign]  # a call would fail the drain
    assert await members.erase(db, tg_user_id=b_tg, now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'forget'") == 0
    await _drain(db, now, chats)
    assert chats.chats[staff_tg] == {old: {"text": ABOUT_LEFT, "document": "members.csv", "buttons": None}}


async def test_a_volunteers_note_and_photo_to_the_resident_go_when_the_volunteer_leaves(
        db: Database, now: datetime) -> None:
    """After Done a volunteer may send the resident a note and a photo (their own words and picture,
    through the outbox): when the volunteer erases themselves, the photo is deleted from her chat (within
    Telegram's two days) and a note in words is edited down to one line; her other messages stay."""
    cid = await make_community(db, now)
    res_tg, vol_tg = 7_800_000_021, 7_800_000_022
    res = await make_member(db, now, cid, tg_user_id=res_tg, name="Rosa Resident", resident=True, started_bot=1,
                            language="en")
    await make_member(db, now, cid, tg_user_id=vol_tg, name="Vic Volunteer", volunteer=True, started_bot=1)
    task = await tasks.create_task(db, now, res, tasks.NewTask("shopping", description="Milk"))
    await tasks.claim(db, now, await db.fetchval("SELECT id FROM members WHERE tg_user_id = ?", (vol_tg,)), task)
    await completion.mark_done(db, task_id=task, tg_user_id=vol_tg, now=now)
    await completion.add_done_note(db, task_id=task, tg_user_id=vol_tg, now=now, note="Left it with Gooseberry")
    await completion.add_done_note(db, task_id=task, tg_user_id=vol_tg, now=now + timedelta(seconds=1),
                                   photo_file_id="AgACphotoVic001")
    chats = Chats()
    await _drain(db, now + timedelta(minutes=1), chats)
    mine = chats.chats[res_tg]
    note = next(m for m, v in mine.items() if "Gooseberry" in str(v.get("text")))
    photo = next(m for m, v in mine.items() if v.get("photo") == "AgACphotoVic001")
    others = {m: dict(v) for m, v in mine.items() if m not in (note, photo)}
    assert others  # who is coming, the question to confirm

    assert await members.erase(db, tg_user_id=vol_tg, now=now + timedelta(hours=1))
    await _drain(db, now + timedelta(hours=1), chats)
    assert photo not in mine
    assert mine[note] == {"text": ABOUT_LEFT, "buttons": None}
    assert not [v for v in mine.values() if "Gooseberry" in str(v) or "AgACphotoVic001" in str(v)]
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'forget'") == 0
