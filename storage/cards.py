"""The reads of the group card job (bot/jobs/cards.py): a task's row with what its card shows.

A card row is the task's row (``t.*``) with ``area_name``, ``community_chat``, ``community_tz``,
``community_language`` (the language its card is drawn in),
``category_zh``, ``category_en``, ``taken`` (places held), ``waiting`` (on the waiting list), ``requester_name``,
``requester_address`` (secrets the card masks) and ``organisation_name``. Where a card is
recorded once posted or drawn is written by storage/tasks.py (``card_posted``, ``card_drawn``…).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from storage.db import Database, Row
from storage.members import Member
from storage.tasks import ClaimGlance

CARD_SELECT = (
    "SELECT t.*, a.name AS area_name, c.group_chat_id AS community_chat, c.timezone AS community_tz,"
    " c.language AS community_language,"
    " (SELECT name_zh FROM categories k WHERE k.community_id = t.community_id AND k.code = t.category) AS category_zh,"
    " (SELECT name_en FROM categories k WHERE k.community_id = t.community_id AND k.code = t.category) AS category_en,"
    " (SELECT COUNT(*) FROM claims WHERE task_id = t.id AND state IN ('active', 'done', 'completed')) AS taken,"
    " (SELECT COUNT(*) FROM waitlist w WHERE w.task_id = t.id AND w.state = 'waiting') AS waiting,"
    " r.display_name AS requester_name, r.address AS requester_address,"
    " (SELECT name FROM organisations o WHERE o.id = t.organisation_id) AS organisation_name"
    " FROM tasks t JOIN communities c ON c.id = t.community_id LEFT JOIN areas a ON a.id = t.area_id"
    " LEFT JOIN members r ON r.id = t.requester_id")

# The cards to post or edit. The first term is word for word the condition of the partial index
# tasks_card_todo (0112): only those are read, not every task (tests/jobs/test_cards.py checks the plan).
TO_DRAW = (CARD_SELECT +
           " WHERE ((t.group_message_id IS NULL AND t.state IN ('open', 'full'))"
           " OR (t.group_message_id > 0 AND t.card_version > t.card_rendered))"
           " AND (t.group_message_id IS NOT NULL OR c.group_chat_id IS NOT NULL) ORDER BY t.id LIMIT 50")

# Does a group have a card to post or edit? (The same condition, for one chat.)
_WAITING = ("SELECT 1 FROM tasks t JOIN communities c ON c.id = t.community_id"
            " WHERE ((t.group_message_id IS NULL AND t.state IN ('open', 'full') AND c.group_chat_id = :chat_id)"
            " OR (t.group_message_id > 0 AND t.card_version > t.card_rendered AND t.group_chat_id = :chat_id))"
            " LIMIT 1")


async def to_draw(db: Database) -> list[Row]:
    """Card rows of the tasks whose card is to be posted or edited (at most 50, oldest task first)."""
    return await db.fetchall(TO_DRAW)


async def card_of(db: Database, task_id: int) -> Row | None:
    """The task's card row, None if there is no such task."""
    return await db.fetchone(CARD_SELECT + " WHERE t.id = :task_id", {"task_id": task_id})


async def at_message(db: Database, chat_id: int, message_id: int) -> Row | None:
    """The card row of the task whose card is this message of a group, None if it is no card."""
    return await db.fetchone(_AT_MESSAGE, {"chat_id": chat_id, "message_id": message_id})


@dataclass(frozen=True)
class Pressed:
    """What a press on a group message needs, read in one round trip: the card row of the task whose
    card the message is (None: no card), the presser's member row (None: none, or erased) and their
    claim on that task as ``tasks.claim_glance`` reads it (None: no card or no member)."""

    card: Row | None
    member: Member | None
    glance: ClaimGlance | None


_AT_MESSAGE = CARD_SELECT + " WHERE t.group_chat_id = :chat_id AND t.group_message_id = :message_id"
# The presser (as ``members.by_tg``) with their claim on the card's task (``:task_id``, NULL: no card)
# in the same statement: on PostgreSQL each statement is a round trip to the server.
_PRESSER = ("SELECT m.*, k.state AS pressed_claim, k.removed_at AS pressed_removed_at FROM members m"
            " LEFT JOIN claims k ON k.task_id = :task_id AND k.member_id = m.id"
            " WHERE m.tg_user_id = :tg AND m.deleted_at IS NULL")


def _pressed(conn: Any, chat_id: int, message_id: int, tg_user_id: int) -> Pressed:
    card = conn.execute(_AT_MESSAGE, {"chat_id": chat_id, "message_id": message_id}).fetchone()
    row = conn.execute(_PRESSER, {"task_id": None if card is None else card["id"], "tg": tg_user_id}).fetchone()
    member = None if row is None else Member.from_row(row)
    glance = None
    if card is not None and member is not None:
        glance = ClaimGlance(card["state"], card["kind"], row["pressed_claim"], row["pressed_removed_at"] is not None)
    return Pressed(card, member, glance)


async def pressed(db: Database, chat_id: int, message_id: int, tg_user_id: int) -> Pressed:
    """``at_message``, ``members.by_tg`` and ``tasks.claim_glance`` for a press, in one go (lookups by
    index, read on the event loop's thread: ``Database.read_here``)."""
    return await db.read_here(lambda conn: _pressed(conn, chat_id, message_id, tg_user_id))


async def waiting(db: Database, chat_id: int) -> bool:
    """Whether the group has a new card or a card edit waiting for the card job."""
    return await db.fetchone(_WAITING, {"chat_id": chat_id}) is not None


async def redraw(db: Database, task_id: int) -> None:
    """Have the card job draw the task's card again (whatever it believes the card shows)."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET card_hash = NULL, card_rendered = CASE WHEN card_rendered < card_version - 1 THEN card_rendered ELSE card_version - 1 END"
                           " WHERE id = :task_id", {"task_id": task_id})


def count_to_draw(conn: sqlite3.Connection) -> int:
    """How many cards are to be posted (in a community with a group) or edited; on a read-only
    connection (bot/devkit waits for this to be 0)."""
    return int(conn.execute(
        "SELECT COUNT(*) FROM tasks t JOIN communities c ON c.id = t.community_id"
        " WHERE (t.group_message_id IS NULL AND t.state IN ('open', 'full') AND c.group_chat_id IS NOT NULL)"
        " OR (t.group_message_id > 0 AND t.card_version > t.card_rendered)").fetchone()[0])
