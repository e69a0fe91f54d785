"""Small helpers the Telegram layer shares: language of the reader, escaping, keyboards, replies."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from typing import Any

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessage,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.clock import short_local
from bot.context import LinliContext
from bot.fit import fit
from bot.i18n import Translator, normalise_language, translator
from bot.inbox import answer_is_late, handled_before
from bot.models import DomainError, InvalidInput
from bot.numbers import MAX_ID, number
from bot.services.erasure import record_shown
from storage import communities as community_store
from storage import members as member_store
from storage.members import Member

log = logging.getLogger(__name__)

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None

# The language of whoever this update is from, once a handler asked for it (``tr_for``): what
# ``reply`` and ``edit_or_send`` say a text they had to shorten left out in.
_READER: ContextVar[Translator | None] = ContextVar("linli_reader", default=None)


def esc(value: object) -> str:
    """HTML-escape anything a person typed before it goes into a message."""
    return html.escape("" if value is None else str(value), quote=False)


async def member_language(ctx: LinliContext, tg_user_id: int | None, tg_language_code: str | None) -> str:
    """The member's chosen language, else Telegram's, else the operator's default."""
    default = ctx.settings.default_language
    if tg_user_id is not None:
        seen = ctx.seen_language
        stored = seen.language if seen is not None and seen.still(tg_user_id) else (
            await member_store.language_of(ctx.db, tg_user_id))
        if stored:
            return stored
    return normalise_language(tg_language_code, default)


async def member_of(ctx: LinliContext, tg_user_id: int) -> Member | None:
    """The (not deleted) member of a Telegram user, as ``access.member_by_tg``; the row read earlier in
    this update (``LinliContext.seen_member``) serves the first caller, later ones read afresh."""
    seen, ctx.seen_member = ctx.seen_member, None
    if seen is not None and seen[0] == tg_user_id:
        return seen[1]
    return await member_store.by_tg(ctx.db, tg_user_id)


async def tr_for(update: Update, ctx: LinliContext) -> Translator:
    """Translator for whoever sent this update (in a group too: replies go to that person)."""
    user = update.effective_user
    t = translator(await member_language(ctx, user.id if user else None, user.language_code if user else None))
    _READER.set(t)
    return t


def fitted(text: str, user: Any = None) -> str:
    """``text`` as one message Telegram takes (``bot.fit``), any marker in the reader's language."""
    t = _READER.get() or translator(normalise_language(getattr(user, "language_code", None)))
    return fit(text, t)


async def community_translator(ctx: LinliContext, community_id: int | None) -> Translator:
    lang = None
    if community_id is not None:
        lang = await community_store.language_of(ctx.db, community_id)
    return translator(lang or ctx.settings.default_language)


def inline(rows: Sequence[Sequence[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Inline keyboard from rows of (label, callback_data)."""
    for row in rows:
        for _label, data in row:
            if len(data.encode()) > 64:
                raise ValueError(f"callback_data over 64 bytes: {data!r}")
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows])


async def reply(update: Update, text: str, markup: Markup = None) -> Message | None:
    """Answer in the chat the update came from (a private chat normally)."""
    chat = update.effective_chat
    if chat is None:
        return None
    try:
        return await chat.send_message(fitted(text, update.effective_user), reply_markup=markup)
    except Forbidden:
        log.info("cannot reply in chat %s: the bot was blocked or removed", chat.id)
    except BadRequest as exc:
        log.warning("reply refused in chat %s: %s", chat.id, exc)
    return None


_ANSWERED: dict[str, None] = {}


async def answer(query: CallbackQuery, text: str | None = None, alert: bool = False, url: str | None = None) -> None:
    """Answer a callback query exactly once: a later call for the same query does nothing."""
    if query.id in _ANSWERED:
        return
    _ANSWERED[query.id] = None
    if len(_ANSWERED) > 10_000:
        for key in list(_ANSWERED)[:5_000]:
            del _ANSWERED[key]
    if not answer_is_late(time.time()):
        try:
            await query.answer(text=text[:200] if text else None, show_alert=alert, url=url)
            return
        except TelegramError as exc:
            log.info("callback answer not delivered: %s", exc)
            # Too old: pressed while the bot was down. Unless a process that died had answered it
            # already (the update is being handled again): then there is nothing to tell twice.
            if "too old" not in str(exc).lower() or handled_before():
                return
    # Handled after Telegram stopped waiting for the answer (e.g. after a restart): the press had
    # its effect, and the person reads the outcome as a message instead of the alert.
    if text and query.from_user is not None:
        try:
            await query.get_bot().send_message(query.from_user.id, text, parse_mode=None)
        except TelegramError as exc:
            log.info("late answer not delivered by message either: %s", exc)


def error_text(t: Translator, error: DomainError) -> str:
    """A domain error in the reader's language (parameters escaped)."""
    params = {k: esc(v) if isinstance(v, str) else v for k, v in error.params.items()}
    template = esc(t(error.message))  # plain text: "<entry number>" must not read as a tag
    return t.agree(template.format(**params)) if params else template


async def edit_or_send(query: CallbackQuery, text: str,
                       markup: InlineKeyboardMarkup | None = None) -> MaybeInaccessibleMessage | None:
    """Replace the text of the message with the pressed button; send anew if it cannot be edited.
    Returns the message that shows the text now (None if none does, or it is not known)."""
    text = fitted(text, query.from_user)
    try:
        edited = await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" in str(exc).lower():
            return query.message
        if query.message is not None:
            return await query.message.chat.send_message(text, reply_markup=markup)
        return None
    return edited if isinstance(edited, Message) else query.message


async def shown(ctx: LinliContext, message: MaybeInaccessibleMessage | None, about: Iterable[int], *,
                media: bool = False) -> None:
    """``message`` (a reply or an edit just made) shows other people's private data: record it, so that
    erasing any of ``about`` (member ids) cuts it down. Call it for every such message a handler sends
    itself (the outbox records its own). ``media``: a file (a document, a photo): deleted, not edited."""
    if message is None:
        return
    await record_shown(ctx.db, chat_id=message.chat.id, message_id=message.message_id, about=about, now=ctx.now(),
                       media=media)


def task_name(t: Translator, task: Any, secrets: Sequence[object] = ()) -> str:
    """How a task is named to the people in it (escaped): its title, the start of its description
    (phones and the ``secrets`` masked), else "voice request #7" or "task #7"."""
    from bot.services.tasks import label

    # A typed task (storage.tasks: Task, TaskName...) or a plain row of a query selecting these columns.
    title, description, voice, tid = (
        (task.title, task.description, task.voice_file_id, task.id) if hasattr(task, "__dataclass_fields__")
        else (task["title"], task["description"], task["voice_file_id"], task["id"]))
    name = label(title, description, secrets=secrets)
    if name:
        return esc(name)
    if voice:
        return esc(t("🎤 voice request #{id}", id=tid))
    return esc(t("Task #{id}", id=tid))


def local_time(stored: str | None, tz: str) -> str:
    """A stored UTC time as the community's local ``MM-DD HH:MM`` ("" for none)."""
    if not stored:
        return ""
    from storage.timeutil import from_db

    try:
        return short_local(from_db(stored), tz)
    except (ValueError, KeyError):
        return stored[:16].replace("T", " ")


def when_text(t: Translator, task: Any) -> str:
    """When a task is, as its card says it: as soon as possible, today, tomorrow, or its local start
    time (``task`` carries when_kind, starts_at and the community's tz, as ``tasks.when_row``)."""
    named = {"asap": t("As soon as possible"), "today": t("Today"), "tomorrow": t("Tomorrow")}
    return named.get(task.when_kind) or local_time(task.starts_at, task.tz) or named["asap"]


def event_time(task: Any) -> str:
    """An event's local start and end ("05-04 09:30–12:00"; the end's date when it is another day)."""
    start, end = local_time(task.starts_at, task.tz), local_time(task.ends_at, task.tz)
    if not end:
        return start
    return f"{start}–{end[6:] if end[:5] == start[:5] else end}"


def typed_int(text: str, problem: str | None = None, *, low: int = 1, high: int = MAX_ID) -> int:
    """A whole number typed or sent in a button ("12", "#12", full-width "１２") in ``low..high``, else
    InvalidInput with ``problem`` as the answer (``bot.numbers`` says exactly what is accepted)."""
    return number(text, problem, low=low, high=high, hash_ok=True)


def only_number(args: Sequence[str] | None, usage: str) -> int:
    """The one number a command takes (``/entries 12``); InvalidInput with ``usage`` for anything else."""
    if args is None or len(args) != 1:
        raise InvalidInput(usage)
    return typed_int(args[0], usage)
