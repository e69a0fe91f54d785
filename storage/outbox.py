"""The outbox: writing to it inside a service's transaction, and the drain's reads and writes (the
drain job's rules live in bot/jobs/outbox_drain.py)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Required, TypedDict, Unpack

import aiosqlite

from storage.db import Database, pg_twin
from storage.tasks import TaskName
from storage.timeutil import to_db

# Who goes first when messages wait (higher first): the outbox job sends by priority, then due time,
# then id. Defined per kind here, and only here; ``enqueue`` looks it up, callers never pass one.
FIRST = 20   # the answer to what a person just did: a claim's details (the address they need now), their removal
NOTICE = 10  # reminders, staff notices, confirmations, cancellations: every kind not listed below
BULK = 0     # digests, honours and summaries: many at once, none of them urgent
LEVELS = (FIRST, NOTICE, BULK)  # every priority written is one of these (the job reads level by level)

PRIORITY: dict[str, int] = {
    "task_claimed_volunteer": FIRST,
    "task_details_removed": FIRST,
    "forget": FIRST,
    "digest_group": BULK,
    "digest_volunteer": BULK,
    "digest_staff": BULK,
    "honour_member": BULK,
    "honour_group": BULK,
}


def priority_of(kind: str) -> int:
    """The outbox priority of a message kind (``NOTICE`` unless ``PRIORITY`` names it)."""
    return PRIORITY.get(kind, NOTICE)


class Message(TypedDict, total=False):
    """One message to queue, as ``enqueue`` and ``enqueue_sync`` take it (keyword arguments)."""

    chat_id: Required[int]
    kind: Required[str]
    now: Required[datetime]
    payload: dict[str, Any] | None
    member_id: int | None
    dedupe_key: str | None   # a second row with the same key is not written
    not_before: datetime | None   # None: now


async def enqueue(conn: aiosqlite.Connection, **message: Unpack[Message]) -> bool:
    """Queue one message. Returns False when a row with the same ``dedupe_key`` exists already."""
    cur = await conn.execute(_ENQUEUE, _enqueue_row(message))
    return (cur.rowcount or 0) > 0


def enqueue_sync(conn: sqlite3.Connection, **message: Unpack[Message]) -> bool:
    """``enqueue`` for a transaction run by ``Database.write`` (plain sqlite3, on the writer's thread)."""
    cur = conn.execute(_ENQUEUE, _enqueue_row(message))
    return (cur.rowcount or 0) > 0


_INTO = "INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, priority, not_before, created_at)"
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
_ENQUEUE = f"{_INTO} VALUES {_ROW} ON CONFLICT (dedupe_key) DO NOTHING"


def enqueue_all_sync(conn: sqlite3.Connection, messages: Sequence[Message]) -> int:
    """``enqueue_sync`` for several messages in one INSERT (one round trip on PostgreSQL); as there,
    a message whose ``dedupe_key`` is queued already is left out. How many were queued."""
    if not messages:
        return 0
    rows = [_enqueue_row(m) for m in messages]
    cur = conn.execute(f"{_INTO} VALUES {', '.join([_ROW] * len(rows))} ON CONFLICT (dedupe_key) DO NOTHING",
                       [value for row in rows for value in row])
    return cur.rowcount or 0


def _enqueue_row(m: Message) -> tuple[Any, ...]:
    now, kind = m["now"], m["kind"]
    return (m.get("dedupe_key"), m["chat_id"], m.get("member_id"), kind,
            json.dumps(m.get("payload") or {}, ensure_ascii=False), priority_of(kind),
            to_db(m.get("not_before") or now), to_db(now))


class AuditEntry(TypedDict, total=False):
    """Who did what to which object, as ``audit`` and ``audit_sync`` take it (keyword arguments)."""

    now: Required[datetime]
    action: Required[str]
    community_id: int | None
    actor_id: int | None
    object_type: str | None
    object_id: int | None
    details: dict[str, Any] | None


async def audit(conn: aiosqlite.Connection, **entry: Unpack[AuditEntry]) -> None:
    """Record who did what to which object (one row, in the caller's transaction)."""
    await conn.execute(_AUDIT, _audit_row(entry))


def audit_sync(conn: sqlite3.Connection, **entry: Unpack[AuditEntry]) -> None:
    """``audit`` for a transaction run by ``Database.write`` (plain sqlite3, on the writer's thread)."""
    conn.execute(_AUDIT, _audit_row(entry))


def _audit_row(e: AuditEntry) -> tuple[Any, ...]:
    return (e.get("community_id"), e.get("actor_id"), e["action"], e.get("object_type"), e.get("object_id"),
            json.dumps(e.get("details") or {}, ensure_ascii=False), to_db(e["now"]))


_AUDIT = ("INSERT INTO audit_log (community_id, actor_id, action, object_type, object_id, details, created_at)"
          " VALUES (?, ?, ?, ?, ?, ?, ?)")


# The details messages (with the resident's name, phone and address) a member was sent for a task,
# queued to be edited down to a plain line: used when they withdraw or the task is cancelled. One
# statement, so it runs in either kind of transaction; each message is scrubbed at most once.
SCRUB_DETAILS = (
    "INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, priority, not_before, created_at)"
    " SELECT 'scrub:' || o.id, o.chat_id, o.member_id, 'task_details_removed',"
    f" json_object('task_id', ?1, 'outbox_id', o.id, 'why', ?2), {priority_of('task_details_removed')}, ?3, ?3"
    " FROM outbox o WHERE o.member_id = ?4 AND o.kind = 'task_claimed_volunteer'"
    " AND json_extract(o.payload, '$.task_id') = ?1"
    " ON CONFLICT (dedupe_key) DO NOTHING")
# PostgreSQL keeps JSON as TEXT too (the same values on both); its functions have other names.
SCRUB_DETAILS = pg_twin(SCRUB_DETAILS, SCRUB_DETAILS
                        .replace("json_object('task_id', ?1, 'outbox_id', o.id, 'why', ?2)",
                                 "json_build_object('task_id', CAST(?1 AS BIGINT), 'outbox_id', o.id,"
                                 " 'why', CAST(?2 AS TEXT))::text")
                        .replace("json_extract(o.payload, '$.task_id') = ?1",
                                 "(o.payload::jsonb ->> 'task_id')::bigint = ?1"))


def scrub_details_params(task_id: int, member_id: int, why: str, now: datetime) -> tuple[Any, ...]:
    """Parameters for ``SCRUB_DETAILS``; ``why`` is "withdrawn" or "cancelled"."""
    return (task_id, why, to_db(now), member_id)


async def scrub_details(conn: aiosqlite.Connection, task_id: int, member_id: int, why: str, now: datetime) -> None:
    """Queue ``SCRUB_DETAILS`` for the member's details messages about the task, in a transaction."""
    await conn.execute(SCRUB_DETAILS, scrub_details_params(task_id, member_id, why, now))


def scrub_details_sync(conn: sqlite3.Connection, task_id: int, member_id: int, why: str, now: datetime) -> None:
    """``scrub_details`` in a ``Database.write`` function."""
    conn.execute(SCRUB_DETAILS, scrub_details_params(task_id, member_id, why, now))


# The "who is coming" messages a resident was sent about one volunteer on a task, queued to be edited
# to say that volunteer is no longer coming (they withdrew): each message at most once, one statement.
COMING_ENDED = (
    "INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, priority, not_before, created_at)"
    " SELECT 'not-coming:' || o.id, o.chat_id, o.member_id, 'task_coming_ended',"
    f" json_object('task_id', ?1, 'outbox_id', o.id, 'volunteer_id', ?2), {priority_of('task_coming_ended')}, ?3, ?3"
    " FROM outbox o WHERE o.member_id = ?4 AND o.kind = 'task_who_is_coming'"
    " AND json_extract(o.payload, '$.task_id') = ?1 AND json_extract(o.payload, '$.volunteer_id') = ?2"
    " ON CONFLICT (dedupe_key) DO NOTHING")
COMING_ENDED = pg_twin(COMING_ENDED, COMING_ENDED
                       .replace("json_object('task_id', ?1, 'outbox_id', o.id, 'volunteer_id', ?2)",
                                "json_build_object('task_id', CAST(?1 AS BIGINT), 'outbox_id', o.id,"
                                " 'volunteer_id', CAST(?2 AS BIGINT))::text")
                       .replace("json_extract(o.payload, '$.task_id') = ?1",
                                "(o.payload::jsonb ->> 'task_id')::bigint = ?1")
                       .replace("json_extract(o.payload, '$.volunteer_id') = ?2",
                                "(o.payload::jsonb ->> 'volunteer_id')::bigint = ?2"))


def coming_ended_sync(conn: sqlite3.Connection, task_id: int, requester_id: int, volunteer_id: int,
                      now: datetime) -> None:
    """Queue ``COMING_ENDED`` for the requester's messages naming the volunteer, in a ``Database.write``."""
    conn.execute(COMING_ENDED, (task_id, volunteer_id, to_db(now), requester_id))


# Erasure (bot/services/erasure.py) lets go of a person's chat last: every message the bot sent them
# that carries someone else's private data (a claim's details: the resident's name, phone and
# address, and the resident's voice note after it; a request sent to staff for review, its text
# unmasked) becomes one ``forget`` row that needs nothing but the chat id and the message ids (the
# text is edited down to one line, the voice note deleted). Those are the only rows to the person
# erasure keeps, and the drain deletes each one as soon as it is sent or has failed for good, so
# then no cell holds their Telegram id. The same is done in the other direction: the details of the
# person's own requests in volunteers' chats (and their requests in staff's chats) are cut down too
# ("why": "requester_left"). Details already cut down (a withdraw or cancel whose edit went out), or
# about to be by an edit that stays queued, are left alone.
#
# A message a handler sent itself (an answer to a command or a button, not through the outbox) that
# shows other people's private data (staff's list of an event's volunteers, with their names) is
# recorded as an outbox row of kind ``SHOWN``, written already sent (``record_shown``): its chat,
# its message id and, in the payload, whose data it shows ("about": member ids). Erasing one of
# them cuts it down like the rest ("why": "about_left"); housekeeping prunes these rows with the
# other sent ones (bot/services/housekeeping.py).
FORGET = "forget"
SHOWN = "shown"
# A volunteer's note (and photo) after Done, to the resident: their own words, cut down the same way
# when the volunteer leaves (the payload names them: "volunteer_id"; a photo is a file, "media").
DONE_NOTE = "completion_done_note"
FORGETTABLE = ("task_claimed_volunteer", "task_review", SHOWN, DONE_NOTE)
_ABOUT_ME = "EXISTS (SELECT 1 FROM json_each(o.payload, '$.about') a WHERE a.value = :mid)"
_THEIR_NOTE = "json_extract(o.payload, '$.volunteer_id') = :mid"
QUEUE_FORGET = (
    "INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, priority, not_before, created_at)"
    f" SELECT 'forget:' || o.id, o.chat_id, o.member_id, '{FORGET}',"
    " json_object('outbox_id', o.id, 'message_id', o.message_id, 'voice_message_id', o.voice_message_id,"
    " 'media', json_extract(o.payload, '$.media'), 'sent_at', o.sent_at, 'why',"
    " CASE WHEN o.member_id = :mid OR o.chat_id = :tg THEN 'left'"
    f" WHEN o.kind IN ('{SHOWN}', '{DONE_NOTE}') THEN 'about_left' ELSE 'requester_left' END),"
    f" {priority_of(FORGET)}, :now, :now"
    " FROM outbox o WHERE o.state = 'sent' AND o.message_id IS NOT NULL"
    f" AND o.kind IN ({', '.join(repr(k) for k in FORGETTABLE)})"
    " AND (o.member_id = :mid OR o.chat_id = :tg"
    " OR json_extract(o.payload, '$.task_id') IN (SELECT id FROM tasks WHERE requester_id = :mid)"
    f" OR (o.kind = '{SHOWN}' AND {_ABOUT_ME}) OR (o.kind = '{DONE_NOTE}' AND {_THEIR_NOTE}))"
    " AND NOT EXISTS (SELECT 1 FROM outbox s WHERE s.kind = 'task_details_removed'"
    " AND json_extract(s.payload, '$.outbox_id') = o.id"
    " AND ((s.state = 'sent' AND COALESCE(s.last_error, '') <> 'dropped by renderer')"
    " OR (s.state IN ('pending', 'sending') AND s.chat_id IS DISTINCT FROM :tg AND s.member_id IS DISTINCT FROM :mid)))"
    " ON CONFLICT (dedupe_key) DO NOTHING")
QUEUE_FORGET = pg_twin(QUEUE_FORGET, QUEUE_FORGET
                       .replace(" json_object('outbox_id',", " json_build_object('outbox_id',")
                       .replace(" END),", " END)::text,")
                       .replace("json_extract(o.payload, '$.task_id')", "(o.payload::jsonb ->> 'task_id')::bigint")
                       .replace("json_extract(s.payload, '$.outbox_id')", "(s.payload::jsonb ->> 'outbox_id')::bigint")
                       .replace("json_extract(o.payload, '$.media')", "(o.payload::jsonb -> 'media')")
                       .replace(_THEIR_NOTE, "(o.payload::jsonb ->> 'volunteer_id')::bigint = :mid")
                       .replace(_ABOUT_ME, "(o.payload::jsonb -> 'about') @> jsonb_build_array(CAST(:mid AS BIGINT))"))


def _shown_key(chat_id: int, message_id: int, about: Sequence[int]) -> str:
    """One row per message and set of people shown (an edit showing the same people adds none); no
    Telegram id in the key."""
    digest = hashlib.sha256(f"{chat_id}:{message_id}:{','.join(map(str, about))}".encode()).hexdigest()
    return f"{SHOWN}:{digest[:32]}"


async def record_shown(conn: aiosqlite.Connection, *, chat_id: int, message_id: int, about: Sequence[int],
                       now: datetime, media: bool = False) -> bool:
    """Record a message a handler sent (or edited) in ``chat_id`` that shows the private data of the
    members ``about``, so that erasing one of them cuts it down (``QUEUE_FORGET``). One row, written
    already sent (the drain never picks it up), naming the reader (the member whose private chat it
    is, if any: the line that replaces it is in their language); False if the same message showing
    the same people is recorded already. ``media``: a file (a document, a photo), deleted rather than
    edited (its caption is, once Telegram no longer lets the bot delete it)."""
    people = sorted(set(about))
    payload: dict[str, Any] = {"about": people, **({"media": True} if media else {})}
    cur = await conn.execute(
        "INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, priority, not_before, state,"
        " message_id, created_at, sent_at) VALUES (?, ?, (SELECT MIN(id) FROM members WHERE tg_user_id = ?),"
        " ?, ?, ?, ?, 'sent', ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
        (_shown_key(chat_id, message_id, people), chat_id, chat_id, SHOWN, json.dumps(payload),
         priority_of(SHOWN), to_db(now), message_id, to_db(now), to_db(now)))
    return (cur.rowcount or 0) > 0


@dataclass(frozen=True)
class SentIds:
    """The ids of the messages a sent outbox row became (its voice, if any, separately)."""

    message_id: int | None
    voice_message_id: int | None


@dataclass(frozen=True)
class SentAbout:
    """What a sent outbox row became in the chat, and the task it was about (None: no such task)."""

    sent: SentIds
    task: TaskName | None


async def sent_about(db: Database, outbox_id: object, task_id: object) -> SentAbout | None:
    """What a sent outbox row became in the chat and the name row of the task it was about, in one
    read; None if the row was not (yet) sent."""
    row = await db.read_here(lambda conn: conn.execute(
        "SELECT o.message_id, o.voice_message_id, t.id, t.title, t.description, t.voice_file_id FROM outbox o"
        " LEFT JOIN tasks t ON t.id = :task WHERE o.id = :id AND o.state = 'sent'",
        {"id": outbox_id, "task": task_id}).fetchone())
    if row is None:
        return None
    task = None if row["id"] is None else TaskName(row["id"], row["title"], row["description"], row["voice_file_id"])
    return SentAbout(SentIds(row["message_id"], row["voice_message_id"]), task)


# -- the drain (bot/jobs/outbox_drain.py) ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A message waiting in the outbox. ``merged``: the ids of the rows of a coalesced kind that go
    out with this one (set by the drain, not a column)."""

    id: int
    dedupe_key: str | None
    chat_id: int
    member_id: int | None
    kind: str
    payload: str
    priority: int
    not_before: str
    state: str
    attempts: int
    last_error: str | None
    message_id: int | None
    voice_message_id: int | None
    created_at: str
    sent_at: str | None
    merged: tuple[int, ...] = ()


_COLUMNS = ("id, dedupe_key, chat_id, member_id, kind, payload, priority, not_before, state, attempts, last_error,"
            " message_id, voice_message_id, created_at, sent_at")

# The next messages to send: by priority (PRIORITY above), then due time, then id. Each priority
# level is one range of the partial index outbox_pending_next (0110), read in index order up to the
# batch size, highest level first; UNION ALL stops at the limit. So neither a long backlog nor many
# messages waiting for later (quiet hours) is ever sorted or walked (tests/jobs/test_outbox.py checks
# the plan). The index is named: without statistics SQLite prefers outbox_due and a sort.
NEXT_BATCH = " UNION ALL ".join(
    f"SELECT * FROM (SELECT {_COLUMNS} FROM outbox INDEXED BY outbox_pending_next WHERE state = 'pending'"
    f" AND priority = {level} AND not_before <= :now ORDER BY not_before, id LIMIT :n) AS p{level}"
    for level in LEVELS) + " LIMIT :n"


async def next_batch(db: Database, now: datetime, limit: int) -> list[OutboxRow]:
    """Up to ``limit`` rows due at ``now``, in the order they are to be sent."""
    return [OutboxRow(*r) for r in await db.fetchall(NEXT_BATCH, {"now": to_db(now), "n": limit})]


async def due_of_kind(db: Database, *, kind: str, chat_id: int, after: OutboxRow, now: datetime,
                      limit: int) -> list[tuple[int, str]]:
    """(id, payload) of the other rows of ``kind`` for ``chat_id`` due at ``now``, oldest first."""
    rows = await db.fetchall(
        "SELECT id, payload FROM outbox WHERE state = 'pending' AND kind = :kind AND chat_id = :chat_id"
        " AND id <> :id AND not_before <= :now ORDER BY id LIMIT :n",
        {"kind": kind, "chat_id": chat_id, "id": after.id, "now": to_db(now), "n": limit})
    return [(int(r[0]), str(r[1])) for r in rows]


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the drain needs to know of a member it writes to (read once per batch)."""

    started_bot: bool
    language: str | None
    quiet_start: str  # quiet hours, "HH:MM" local times in ``tz``
    quiet_end: str
    tz: str


async def recipients(db: Database, member_ids: Collection[int], default_tz: str,
                     group_chat_ids: Collection[int] = ()) -> tuple[dict[int, Recipient], dict[int, str]]:
    """The recipients among ``member_ids`` (quiet hours in their community's time zone, or
    ``default_tz``) and the languages of the communities whose groups are ``group_chat_ids``, in
    one read; a member who is gone, or a group no community has, is missing from the result."""
    if not member_ids and not group_chat_ids:
        return {}, {}
    ids = {f"m{i}": v for i, v in enumerate(member_ids)}
    groups = {f"g{i}": v for i, v in enumerate(group_chat_ids)}
    parts = []  # no empty IN () (PostgreSQL refuses it)
    if ids:
        parts.append("SELECT 0, m.id, m.started_bot, m.language, m.quiet_start, m.quiet_end,"
                     " COALESCE(c.timezone, :default_tz) FROM members m LEFT JOIN communities c ON c.id = m.community_id"
                     f" WHERE m.id IN ({', '.join(':' + k for k in ids)})")
    if groups:
        parts.append("SELECT 1, group_chat_id, NULL, language, NULL, NULL, NULL FROM communities"
                     f" WHERE group_chat_id IN ({', '.join(':' + k for k in groups)})")
    rows = await db.fetchall(" UNION ALL ".join(parts), {"default_tz": default_tz, **ids, **groups})
    people = {int(r[1]): Recipient(bool(r[2]), str(r[3]) if r[3] else None, r[4], r[5], r[6])
              for r in rows if r[0] == 0}
    return people, {int(r[1]): str(r[3]) for r in rows if r[0] == 1 and r[3]}


# Rows left ``sending`` by a sender that is no longer sending: ``:me`` itself (a restart under the
# same instance name; only when ``:mine``), a process before 0230 (no name), or an instance that does
# not hold the ``:lease`` (the outbox lease) unexpired at ``:now``. Never a live holder's rows.
_RESET = ("UPDATE outbox SET state = 'pending' WHERE state = 'sending'"
          " AND (sending_by IS NULL OR (sending_by = :me AND :mine = 1) OR (sending_by <> :me AND NOT EXISTS"
          " (SELECT 1 FROM leases l WHERE l.name = :lease AND l.holder = outbox.sending_by AND l.expires_at > :now)))")


async def reset_in_flight(db: Database, *, me: str, lease: str, now: datetime, mine: bool = True) -> int:
    """Rows a stopped sender left ``sending`` go back to ``pending`` (sent at most once more);
    returns how many. ``me``: this instance's name; ``mine``: its own rows too (at start-up, not
    when it takes the outbox lease over while it runs); ``now``: real UTC time (leases' times)."""
    params = {"me": me, "mine": 1 if mine else 0, "lease": lease, "now": to_db(now)}
    return await db.write(lambda conn: conn.execute(_RESET, params).rowcount or 0)


def mark_sending(conn: sqlite3.Connection, row_ids: int | Sequence[int], by: str | None = None) -> list[int]:
    """The rows are on their way (one attempt taken each), sent by the instance named ``by``; for
    ``Database.write``. Only rows still ``pending``: returns those marked (a row another sender took
    meanwhile, after this one lost the outbox lease, is not this one's to send any more)."""
    ids = [row_ids] if isinstance(row_ids, int) else row_ids
    return [i for i in ids if conn.execute(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, sending_by = :by"
        " WHERE id = :id AND state = 'pending'", {"id": i, "by": by}).rowcount]


def sending_by(conn: sqlite3.Connection) -> dict[str, int]:
    """How many rows each instance has on their way (``linli doctor``; a read-only connection will do)."""
    rows = conn.execute("SELECT COALESCE(sending_by, ''), COUNT(*) FROM outbox WHERE state = 'sending'"
                        " GROUP BY sending_by").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


async def delete(conn: aiosqlite.Connection, row_id: int) -> None:
    await conn.execute("DELETE FROM outbox WHERE id = :id", {"id": row_id})


async def file_forgotten(conn: aiosqlite.Connection, row_id: object) -> None:
    """A file the row sent was deleted (or its caption cut down) at someone's erasure: nothing is left
    to cut down, so a later erasure does not try again (a second delete would be refused)."""
    if isinstance(row_id, int):
        await conn.execute("UPDATE outbox SET message_id = NULL WHERE id = :id", {"id": row_id})


async def settle(conn: aiosqlite.Connection, row_id: int, *, state: str, error: str | None, message_id: int | None,
                 voice_message_id: int | None, now: datetime) -> bool:
    """The row's outcome (``sent_at`` is set when ``state`` is sent); False if the row is gone."""
    cur = await conn.execute(
        "UPDATE outbox SET state = :state, last_error = :error, message_id = :message_id,"
        " voice_message_id = :voice_message_id, sent_at = :sent_at WHERE id = :id",
        {"state": state, "error": error, "message_id": message_id, "voice_message_id": voice_message_id,
         "sent_at": to_db(now) if state == "sent" else None, "id": row_id})
    return bool(cur.rowcount)


def settle_sent(conn: sqlite3.Connection, rows: Sequence[tuple[int, int | None, int | None]], now: datetime) -> list[int]:
    """Rows sent as (id, message id, voice message id), settled in the caller's ``Database.write``;
    returns the ids of the rows that were gone (erased while on their way)."""
    sent_at, gone = to_db(now), []
    for row_id, message_id, voice_message_id in rows:
        cur = conn.execute(
            "UPDATE outbox SET state = 'sent', last_error = NULL, message_id = :message_id,"
            " voice_message_id = :voice_message_id, sent_at = :sent_at WHERE id = :id",
            {"message_id": message_id, "voice_message_id": voice_message_id, "sent_at": sent_at, "id": row_id})
        if not cur.rowcount:
            gone.append(row_id)
    return gone


async def settle_merged(conn: aiosqlite.Connection, ids: Sequence[int], *, into: int, state: str,
                        now: datetime) -> None:
    """Rows merged into row ``into`` share its outcome (those still pending)."""
    marks = ", ".join(f":m{i}" for i in range(len(ids)))
    await conn.execute(
        f"UPDATE outbox SET state = :state, last_error = :error, sent_at = :sent_at WHERE id IN ({marks})"
        " AND state = 'pending'",
        {"state": state, "error": f"merged into {into}", "sent_at": to_db(now) if state == "sent" else None,
         **{f"m{i}": v for i, v in enumerate(ids)}})


async def retry_at(conn: aiosqlite.Connection, row_id: int, *, when: datetime, error: str,
                   give_back: bool = False) -> None:
    """Back to pending at ``when``; ``give_back`` returns the attempt taken when it was marked sending."""
    await conn.execute("UPDATE outbox SET state = 'pending', not_before = :when, last_error = :error,"
                       " attempts = attempts - :back WHERE id = :id",
                       {"when": to_db(when), "error": error, "back": 1 if give_back else 0, "id": row_id})


async def fail(conn: aiosqlite.Connection, row_id: int, error: str) -> None:
    await conn.execute("UPDATE outbox SET state = 'failed', last_error = :error WHERE id = :id",
                       {"error": error, "id": row_id})


async def hold(conn: aiosqlite.Connection, ids: Sequence[int], until: datetime, why: str) -> None:
    """Put pending rows off until ``until`` (no attempt is counted)."""
    marks = ", ".join(f":h{i}" for i in range(len(ids)))
    await conn.execute(f"UPDATE outbox SET not_before = :until, last_error = :why WHERE id IN ({marks})"
                       " AND state = 'pending'",
                       {"until": to_db(until), "why": why, **{f"h{i}": v for i, v in enumerate(ids)}})


async def resend_to(conn: aiosqlite.Connection, row_id: int, chat_id: int) -> None:
    """Send the row again at once, to ``chat_id`` (its group moved), giving back the attempt taken."""
    await conn.execute("UPDATE outbox SET state = 'pending', chat_id = :chat_id, attempts = attempts - 1"
                       " WHERE id = :id", {"chat_id": chat_id, "id": row_id})


async def follow_chat(conn: aiosqlite.Connection, old_chat_id: int, new_chat_id: int) -> None:
    """Rows still to send to a chat that moved (a group became a supergroup) go to its new id."""
    await conn.execute("UPDATE outbox SET chat_id = :new WHERE chat_id = :old AND state IN ('pending', 'sending')",
                       {"new": new_chat_id, "old": old_chat_id})


# -- on a read-only connection (storage/readonly.py: the demo kit watching the bot) --------------

def count_due(conn: sqlite3.Connection, now: datetime) -> int:
    """How many messages are due at ``now`` and not sent yet (waiting or on their way)."""
    return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending') AND not_before <= :now",
                            {"now": to_db(now)}).fetchone()[0])


def sent_messages(conn: sqlite3.Connection) -> dict[tuple[int, int], int]:
    """The outbox row each sent message came from: (chat id, message id) -> row id (not the records of
    messages handlers sent themselves)."""
    rows = conn.execute("SELECT chat_id, message_id, id FROM outbox WHERE message_id IS NOT NULL"
                        f" AND kind <> '{SHOWN}'").fetchall()
    return {(int(c), int(m)): int(i) for c, m, i in rows}
