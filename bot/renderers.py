"""Renderers for outbox rows: a row names a ``kind``; its renderer turns the payload into a
message in the recipient's language at send time.

Register one per kind::

    @renderer("task_claimed_volunteer")
    async def _(ctx: RenderContext, payload: dict) -> Rendered | None: ...

Return ``None`` to drop the row (for example the task was cancelled meanwhile). ``on_sent`` is
called inside the transaction that marks the row sent (to store a posted card's message id).
Kinds marked ``deferrable`` wait for the end of the recipient's quiet hours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, ReplyKeyboardMarkup

from bot.i18n import Translator
from storage.db import Connection, Database
from storage.timeutil import DEFAULT_TIMEZONE, from_db

# Telegram lets a bot delete a message of its own for 48 hours; a little less, to be sure.
DELETABLE_FOR = timedelta(hours=47)


@dataclass
class Rendered:
    text: str = ""
    reply_markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
    photo: bytes | str | None = None       # bytes upload or a file_id; text becomes the caption
    voice: str | None = None               # a file_id to pass on (a resident's voice note)
    document: tuple[str, bytes] | None = None  # (filename, content)
    edit_message_id: int | None = None     # edit this message instead of sending a new one
    delete_message_ids: tuple[int, ...] = ()  # with an edit: delete these messages of the chat too
    edit_caption: bool = False             # the edit is of a file's caption (a photo, a document), not a text
    delete_only: bool = False              # nothing to send or edit: only delete ``delete_message_ids``
    pin: bool = False
    on_sent: Callable[[Connection, int], Awaitable[None]] | None = None


@dataclass
class RenderContext:
    db: Database
    t: Translator
    lang: str
    chat_id: int
    member_id: int | None
    bot_username: str
    extra: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None  # the bot's clock when the message is sent (None: the machine's)
    default_tz: str = DEFAULT_TIMEZONE  # BOT_TIMEZONE: the zone of a member with no community

    def moment(self) -> datetime:
        """Now, by the bot's clock (``linli demo`` and the tests run it ahead of the machine's)."""
        return self.now if self.now is not None else datetime.now(UTC)


Renderer = Callable[[RenderContext, dict[str, Any]], Awaitable[Rendered | None]]


@dataclass(frozen=True)
class Kind:
    render: Renderer
    deferrable: bool


RENDERERS: dict[str, Kind] = {}

# Called (in their own transaction) when a member cannot be reached: (conn, member_id, kind, payload, now).
UnreachableHook = Callable[[Connection, int, str, dict[str, Any], Any], Awaitable[None]]
UNREACHABLE_HOOKS: list[UnreachableHook] = []


def renderer(kind: str, *, deferrable: bool = False) -> Callable[[Renderer], Renderer]:
    def deco(fn: Renderer) -> Renderer:
        RENDERERS[kind] = Kind(fn, deferrable)
        return fn

    return deco


def on_unreachable(fn: UnreachableHook) -> UnreachableHook:
    UNREACHABLE_HOOKS.append(fn)
    return fn


@renderer("text")
async def _plain_text(ctx: RenderContext, payload: dict[str, Any]) -> Rendered | None:
    """A message id plus parameters, translated for the recipient (parameters already escaped)."""
    return Rendered(text=ctx.t(payload["message"], **payload.get("params", {})))


@renderer("forget")
async def _forget(ctx: RenderContext, payload: dict[str, Any]) -> Rendered | None:
    """/deleteme: a message in the leaver's chat that carried someone else's private data (or in a
    volunteer's chat, the details of a resident who left), edited down to one line, its voice note
    deleted. Needs nothing but the chat and the message ids (storage.outbox.QUEUE_FORGET); the
    outbox job deletes the row once it is sent. A file a handler showed (a staff export, ``media``)
    is deleted while Telegram lets a bot delete it (two days); after that its caption is edited."""
    message_id = payload.get("message_id")
    if not isinstance(message_id, int):
        return None
    voice = payload.get("voice_message_id")
    why = payload.get("why")
    if why == "requester_left":
        text = ctx.t("The resident's personal details in this message were removed at their request.")
    elif why == "about_left":  # a list or answer a handler showed (storage.outbox.SHOWN)
        text = ctx.t("Personal details in this message were removed at the request of the person they belong to.")
    else:
        text = ctx.t("The personal details in this message were removed when you left.")
    if payload.get("media"):
        sent = payload.get("sent_at")
        if isinstance(sent, str) and ctx.moment() - from_db(sent) < DELETABLE_FOR:
            return Rendered(delete_message_ids=(message_id,), delete_only=True)
        return Rendered(text=text, edit_message_id=message_id, edit_caption=True)
    return Rendered(text=text, edit_message_id=message_id, delete_message_ids=(voice,) if isinstance(voice, int) else ())
