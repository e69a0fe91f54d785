"""What erasing a person (/deleteme) does to every column of every table.

``REGISTRY`` declares, for each table, which rows are the person's (an SQL condition on
``:mid``, their member id, and ``:tg``, their Telegram id) and, for each column, how it is
erased or why it holds nothing personal:

- ``NULL`` / ``set_to(v)``: emptied (or reset to ``v``) in the person's rows;
- ``MASK``: kept as the group saw it (their requests' titles and descriptions, masked with their
  name and address by ``mask_requests``);
- ``SCRUB``: text that may quote anyone (a message queued for someone else with their name, an
  audit entry with the reason they typed): in every row, each of the person's own words
  (``typed`` cells of their rows, see below) and their Telegram id are replaced by ``***``;
- ``keep``: nothing personal once the rules above ran (ids, times, states, amounts, codes).

A table may also delete the person's rows outright (``delete_mine``), except those its ``kept``
condition names: rows its ``first`` statement made (run before anything else) and that must still
do something before they can go. The outbox is the one such table: every message in the person's
chat that carries someone else's private data becomes a ``forget`` row (chat id and message ids,
nothing else) that cuts it down, and the outbox job deletes each such row once sent or failed for
good (storage.outbox.QUEUE_FORGET). A column marked
``typed=True`` holds the person's own words: its values (before erasure) are what ``SCRUB``
looks for elsewhere. tests/services/test_erasure.py lists every column of every table from the live
schema and fails on one this registry does not name, so a migration cannot add a column that
erasure silently misses. Tables a later migration will add (``inbox``) or drop may be missing.

The ledger stays append-only: its rows keep their amounts and point at the member row, which
stays (anonymised) so balances and totals per community and organisation are unchanged; only a
ledger note may be emptied (migration 0095).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.services.masking import mask
from storage import erasure as erasure_store
from storage import outbox as outbox_store
from storage.db import Connection, Database
from storage.outbox import FORGET, QUEUE_FORGET
from storage.timeutil import to_db

MASKED = "***"


@dataclass(frozen=True)
class Col:
    how: Literal["null", "set", "mask", "scrub"]
    value: object = None
    typed: bool = False      # the person's own words: also looked for (and scrubbed) elsewhere
    mine: str | None = None  # which rows are the person's for this column (default: the table's)


NULL = Col("null")
TYPED = Col("null", typed=True)
MASK = Col("mask")
SCRUB = Col("scrub")


def set_to(value: object) -> Col:
    return Col("set", value)


def null_where(mine: str, *, typed: bool = True) -> Col:
    return Col("null", typed=typed, mine=mine)


@dataclass(frozen=True)
class Table:
    mine: str | None = None               # SQL condition: the person's rows
    cols: dict[str, Col] = field(default_factory=dict)
    keep: str = ""                        # columns that hold nothing personal (space-separated)
    delete_mine: bool = False             # the person's rows are deleted
    any_columns: bool = False             # every column is covered (rows deleted; schema not ours)
    optional: bool = False                # the table may not exist (yet, or any more)
    who: tuple[str, ...] = ()             # for any_columns: the first of these columns present names the person
    first: str = ""                       # SQL run before anything else (on :mid, :tg, :now)
    kept: str = ""                        # SQL condition: the person's rows delete_mine keeps for now (see outbox)

    def keep_set(self) -> set[str]:
        return set(self.keep.split())


# Free-text keys of the person's own audit entries: what they typed or sent (a done note and photo,
# a not-done or problem reason, an edited value); the record of what to look for in messages to others. In a task_confirmed entry "reason" is a code, not their words.
AUDIT_TYPED_KEYS = ("note", "photo", "reason", "old", "new")
AUDIT_CODE_ACTIONS = ("task_confirmed",)

REGISTRY: dict[str, Table] = {
    "communities": Table(
        mine="created_by = :tg", cols={"created_by": NULL},  # the Telegram id of whoever ran /setup
        keep="id name group_chat_id join_code timezone language digest_time review_required settings"
             " welcome_message_id active created_at digest_next_at min_reliability series_days_ahead"
             " waitlist_hold_minutes"),
    "areas": Table(keep="id community_id name active"),
    "organisations": Table(keep="id community_id name invite_code active created_at"),
    "categories": Table(keep="id community_id code name_zh name_en default_points sort active"),
    "members": Table(
        mine="id = :mid",
        cols={"tg_user_id": NULL, "display_name": TYPED, "phone": TYPED, "address": TYPED, "area_id": NULL,
              "availability": TYPED, "skills": set_to("[]"), "is_staff": set_to(0), "on_duty": set_to(0),
              "urgent_last_at": NULL, "urgent_day": NULL, "urgent_today": set_to(0),
              "quiet_start": set_to("22:00"), "quiet_end": set_to("07:00"), "digest_hour": NULL},
        # The row stays, anonymised: the ledger points at it, so balances, totals per community
        # and organisation (organisation_id) and counts stay as they were.
        keep="id community_id language is_resident is_volunteer organisation_id digest_enabled"
             " leaderboard_opt_out announce_consent announce_asked_at consent_at registered_at started_bot reachable balance"
             " deleted_at created_at updated_at digest_next_at"),
    "merchants": Table(mine="member_id = :mid", cols={"member_id": NULL},
                       keep="id community_id name invite_code active created_at"),
    "tasks": Table(
        mine="requester_id = :mid",
        cols={"address": TYPED, "voice_file_id": TYPED, "title": MASK, "description": MASK},
        # proxy_*: a resident without Telegram, entered by staff: not the erased person's data.
        keep="id community_id requester_id created_by is_proxy proxy_name proxy_phone proxy_address kind category"
             " area_id when_kind starts_at ends_at slots points organisation_id urgent state group_chat_id"
             " group_message_id card_version card_rendered card_hash reviewed_by confirmed_by created_at"
             " published_at first_claim_at done_at completed_at cancelled_at updated_at"),
    "claims": Table(mine="member_id = :mid", cols={"done_note": TYPED, "done_photo_file_id": TYPED},
                    keep="id task_id member_id state claimed_at updated_at done_at removed_at removed_by"),
    "ledger": Table(
        mine="member_id = :mid OR actor_id = :mid", cols={"note": TYPED},
        keep="id community_id member_id delta reason task_id voucher_id organisation_id idempotency_key actor_id"
             " created_at"),
    # photo_file_id: the picture of the reward staff sent for the community (0150), nobody's personal data;
    # add_key: a random token of the dialog that added it.
    "rewards": Table(keep="id community_id name_zh name_en description_zh description_en kind cost stock"
                          " monthly_limit valid_days merchant_id refund_on_expiry active created_at photo_file_id"
                          " add_key"),
    "vouchers": Table(mine="member_id = :mid", cols={"request_key": NULL},  # "<telegram id>:<token>"
                      keep="id community_id reward_id member_id code cost state slot_start slot_end issued_at"
                           " expires_at used_at used_by closed_at"),
    # Messages to the person, sent or not, go (a pending one is never sent); messages to others
    # that quote them keep their place with the quote replaced. Except: first, every message in
    # their chat that carries someone else's private data (a claim's details with the resident's
    # contact and voice note) becomes a "forget" row (chat id and message ids only: edit it down to
    # one line, delete the voice); those rows stay until the outbox job has sent them, and it deletes
    # each one then (or once it failed for good), so their Telegram id goes with the last of them.
    # Their own requests' details in volunteers' chats are cut down the same way (rows to others), and
    # so is every message a handler showed someone else naming them (kind "shown", storage.outbox.SHOWN).
    "outbox": Table(mine="member_id = :mid OR chat_id = :tg", delete_mine=True,
                    first=QUEUE_FORGET, kept=f"kind = '{FORGET}'",
                    cols={"payload": SCRUB, "last_error": SCRUB},
                    keep="id dedupe_key chat_id member_id kind priority not_before state attempts message_id sending_by"
                         " voice_message_id created_at sent_at"),
    "audit_log": Table(mine="actor_id = :mid", cols={"details": SCRUB},
                       keep="id community_id actor_id action object_type object_id created_at"),
    "dialogs": Table(mine="tg_user_id = :tg", delete_mine=True, cols={"data": SCRUB},
                     keep="tg_user_id flow step updated_at version"),
    # The update id and a hash of what it carried (no text, no Telegram id).
    "processed_updates": Table(keep="update_key processed_at", optional=True),
    "kv": Table(keep="key value"),
    # Which process holds a job only one may do (0210): a random token, a host name and a pid.
    "leases": Table(keep="name holder host pid taken_at expires_at"),
    # Messages counted per chat and window while several instances run (0260), pruned within
    # minutes: a private chat's id is the person's Telegram id, so their rows go at once.
    "send_budget": Table(mine="chat_id = :tg", delete_mine=True, keep="chat_id window_start n"),
    # "<telegram id>:<draft>": the person's drafts' keys go (the draft itself is gone with the dialog).
    "task_submissions": Table(mine="task_id IN (SELECT id FROM tasks WHERE created_by = :mid)", delete_mine=True,
                              keep="submit_key task_id created_at"),
    # A recurring event (0190): what staff published for the group, like an event's card (an event has no
    # requester, so nothing of it is a resident's); created_by is kept as tasks.created_by is.
    "event_series": Table(keep="id community_id created_by category title description voice_file_id slots points"
                               " organisation_id weekdays start_time minutes first_day last_day stop_day next_day"
                               " next_post_at submit_key created_at updated_at"),
    "series_occurrences": Table(keep="series_id day task_id posted_at"),
    "cases": Table(
        cols={"reason": Col("null", typed=True, mine="opened_by = :mid"),
              "note": Col("null", typed=True, mine="resolved_by = :mid")},
        keep="id community_id task_id opened_by state resolution points resolved_by created_at resolved_at"),
    "no_shows": Table(keep="id community_id task_id member_id recorded_by created_at"),
    "late_withdrawals": Table(keep="id community_id task_id member_id starts_at created_at"),  # 0200
    # Waiting lists (0220): who waits for a place on an event, ids and times only (like claims).
    "waitlist": Table(keep="id community_id task_id member_id state joined_at offered_at offer_until updated_at"),
    "honours": Table(keep="id community_id member_id code created_at"),
    # Check-in (0180): an event's random token and short code, and who checked in when (ids and
    # times, like no_shows: attendance stays counted once the person is anonymised).
    "checkin_codes": Table(keep="task_id token short_code opened_by opened_at"),
    "checkins": Table(keep="task_id member_id via checked_in_at"),
    "sent_notifications": Table(keep="id key created_at"),  # keys name members by id
    "voucher_verify_attempts": Table(keep="id actor_id ok created_at"),
    "earning_totals": Table(keep="community_id scope subject_id period pts"),
    "schema_migrations": Table(keep="version name applied_at"),
    # The durable inbox (raw updates: Telegram ids and texts): the person's updates are deleted.
    # The durable inbox (0100): the person's updates (their words, their id in user_id and lane),
    # handled or not, go; a press being handled while they erase is simply not found when marked.
    "inbox": Table(any_columns=True, delete_mine=True, who=("user_id",)),
}

# Cases opened about a task may quote a volunteer by name: scrubbed like the outbox.
_SCRUB_ALSO = {("cases", "reason"), ("cases", "note")}


def mine_condition(name: str, table: Table, columns: Iterable[str]) -> str | None:
    """The SQL condition naming the person's rows of ``name`` (None: no row is theirs)."""
    if not table.any_columns:
        return table.mine
    present = set(columns)
    for col in table.who:
        if col in present:
            return f"{col} = :tg"
    raise RuntimeError(f"erasure cannot tell whose rows of {name} are whose: none of {table.who} is a column")


class Secrets:
    """The person's own words and Telegram id, and how to replace them in other text."""

    def __init__(self, words: Iterable[str], tg: int | None) -> None:
        forms: set[str] = set()
        for word in words:
            word = word.strip()
            if not word:
                continue
            for form in (word, html.escape(word, quote=False), html.escape(word)):
                forms.add(form)
        # Short words are replaced only where they are a whole value; longer ones anywhere.
        self.whole = forms
        self.inner = sorted((f for f in forms if len(f) >= 3), key=len, reverse=True)
        self.tg = tg
        self._tg_re = re.compile(rf"(?<!\d){tg}(?!\d)") if tg is not None else None

    def needles(self) -> list[str]:
        """Substrings that must be in a cell for it to need scrubbing (as stored, JSON included)."""
        out = set(self.whole)
        out |= {json.dumps(w, ensure_ascii=False)[1:-1] for w in self.whole}
        if self.tg is not None:
            out.add(str(self.tg))
        return sorted(out)

    def text(self, value: str) -> str:
        if value in self.whole:
            return MASKED
        for word in self.inner:
            value = value.replace(word, MASKED)
        if self._tg_re is not None:
            value = self._tg_re.sub(MASKED, value)
        return value

    def json(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: self.json(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, str):
            return value if key == "message" else self.text(value)  # "message": a catalog message id
        if isinstance(value, int) and not isinstance(value, bool) and value == self.tg:
            return None
        return value

    def cell(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        stripped = value.lstrip()
        if stripped[:1] in ("{", "["):
            try:
                parsed = json.loads(value)
            except ValueError:
                return self.text(value)
            return json.dumps(self.json(parsed), ensure_ascii=False)
        return self.text(value)


async def _typed_words(conn: Connection, present: set[str], params: dict[str, Any]) -> list[str]:
    words: list[str] = []
    for name, table in REGISTRY.items():
        if name not in present:
            continue
        for col, rule in table.cols.items():
            where = rule.mine or table.mine
            if not rule.typed or where is None:
                continue
            words += await erasure_store.values(conn, name, col, where, params)
    # What they typed that only their audit entries (and the messages it caused) hold: a not-done reason.
    for action, details in await erasure_store.audit_details(conn, params["mid"]):
        if action in AUDIT_CODE_ACTIONS:
            continue
        try:
            data = json.loads(details or "{}")
        except ValueError:
            continue
        if isinstance(data, dict):
            words += [v for k, v in data.items() if k in AUDIT_TYPED_KEYS and isinstance(v, str)]
    return words


async def mask_requests(conn: Connection, member_id: int) -> None:
    """Store the titles and descriptions of a member's requests as the group sees them, masked with
    the name and address they have now: done before those change or are erased, since masking on
    the card needs them (a card redrawn later would otherwise show them)."""
    me = await erasure_store.name_and_address(conn, member_id)
    if me is None:
        return
    for task in await erasure_store.requests_of(conn, member_id):
        secrets = [*me, task.address, task.proxy_name, task.proxy_address, task.proxy_phone]
        title = mask(task.title, secrets) if task.title else task.title
        description = mask(task.description, secrets) if task.description else task.description
        if (title, description) != (task.title, task.description):
            await erasure_store.set_request_text(conn, task.id, title, description)


async def erase_everywhere(conn: Connection, *, member_id: int, tg_user_id: int | None,
                           now: datetime) -> dict[str, int]:
    """Apply ``REGISTRY`` for one person, inside the caller's transaction; returns rows changed per table."""
    # MASK columns first: masking needs the name and address emptied below.
    await mask_requests(conn, member_id)
    params: dict[str, Any] = {"mid": member_id, "tg": tg_user_id}
    present = await erasure_store.tables(conn)
    for name, table in REGISTRY.items():
        if table.first and name in present:
            await erasure_store.run(conn, table.first, {**params, "now": to_db(now)})
    secrets = Secrets(await _typed_words(conn, present, params), tg_user_id)
    needles = secrets.needles()
    changed: dict[str, int] = {}
    for name, table in REGISTRY.items():
        if name not in present:
            continue
        changed[name] = (await _scrub_quotes(conn, name, table, secrets, needles)
                         + await _empty_own_rows(conn, name, table, params))
    return changed


async def _scrub_quotes(conn: Connection, name: str, table: Table, secrets: Secrets,
                        needles: list[str]) -> int:
    """1. Text that may quote them, in every row of the table: their words replaced."""
    n = 0
    for col, rule in table.cols.items():
        if (rule.how != "scrub" and (name, col) not in _SCRUB_ALSO) or not needles:
            continue
        for rowid, value in await erasure_store.cells_holding(conn, name, col, needles):
            new = secrets.cell(value)
            if new != value:
                await erasure_store.set_cell(conn, name, col, rowid, new)
                n += 1
    return n


async def _empty_own_rows(conn: Connection, name: str, table: Table, params: dict[str, Any]) -> int:
    """2. Their own rows: emptied, reset or deleted."""
    n = 0
    for col, rule in table.cols.items():
        where = rule.mine or table.mine
        if rule.how not in ("null", "set") or where is None:
            continue
        n += await erasure_store.set_column(conn, name, col, where, params, rule.value)
    if table.delete_mine:
        where = mine_condition(name, table, await erasure_store.columns(conn, name))
        if where is not None:
            if table.kept:
                where = f"({where}) AND NOT ({table.kept})"
            n += await erasure_store.delete(conn, name, where, params)
    return n


async def record_shown(db: Database, *, chat_id: int, message_id: int, about: Iterable[int], now: datetime,
                       media: bool = False) -> None:
    """A message a handler sent or edited in ``chat_id`` shows the private data (name, phone, address,
    words) of the members ``about``: recorded like a message the outbox delivered, so that erasing
    any of them cuts it down (storage.outbox.SHOWN); ``media``: a file, deleted rather than edited.
    Nothing is recorded for nobody."""
    people = sorted({int(m) for m in about})
    if not people:
        return
    async with db.transaction() as conn:
        await outbox_store.record_shown(conn, chat_id=chat_id, message_id=message_id, about=people, now=now,
                                        media=media)
