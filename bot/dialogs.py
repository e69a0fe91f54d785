"""Conversations in private chats whose every step is stored in the database.

A dialog is (flow, step, data) per Telegram user, written in the ``dialogs`` table on every
step, so a restart of the bot in the middle loses nothing already typed and continues at the
same step. A flow is an async function called with the stored dialog and the normalised input;
it decides the next step (``save``), finishes (``finish``) or re-prompts.

A person's button presses and typed messages are handled in separate lanes, so two of them can
work on one dialog at once. Each save is a compare-and-set on the row's version
(storage/dialogs.py): the lane that read an older version gets ``DialogMoved`` instead of
overwriting the other's step, and the person is asked the current question again (or, if the other
lane ended the dialog, hears nothing more from this one).

Buttons that belong to a dialog carry ``d:<step>:<value>~<mark>`` as callback data, the mark being
the dialog's own (a few letters drawn when it starts). A button from an older step, or from an earlier
dialog of the same person (one that was restarted, replaced by another, cancelled or finished, even at
a step of the same name), is answered with "this button is out of date" and changes nothing: the
current dialog carries on untouched. A dialog started before marks existed has none, and so have its
buttons.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from telegram import InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot.context import LinliApp, LinliContext
from bot.ui import answer, edit_or_send, reply, tr_for
from storage import dialogs as store
from storage.dialogs import DialogRow as Dialog

log = logging.getLogger(__name__)

InputKind = Literal["text", "contact", "voice", "audio", "photo", "sticker", "location", "document", "callback", "other"]
MAX_TEXT = 1000  # longest free text any step accepts
MARK = "~"       # between a dialog button's value and the mark of its dialog (no value has one)

# The mark of the dialog this handler is working on (set when a dialog starts, runs or is asked
# again): what ``button`` puts on the buttons it makes.
_current_mark: ContextVar[str] = ContextVar("dialog_mark", default="")


__all__ = ["Again", "Dialog", "DialogMoved", "Go", "Input", "Next", "Outcome", "Stop", "button", "finish", "flow", "handle_start",
           "load", "save", "set_value", "start", "starter", "typed_code"]


# What a step's accept returns (the flows' step tables use these).
@dataclass(frozen=True)
class Next:
    """The answer is taken: on to the next step (``say``: a word before its question)."""

    say: str = ""


@dataclass(frozen=True)
class Go:
    """On to this step (not the next in order)."""

    step: str


@dataclass(frozen=True)
class Again:
    """Ask the same question again, saying why first."""

    why: str


@dataclass(frozen=True)
class Stop:
    """The step answered (or ended the dialog) itself."""


Outcome = Next | Go | Again | Stop


class DialogMoved(Exception):
    """The dialog was saved, cancelled or finished by another lane since this one read it."""


@dataclass
class Input:
    kind: InputKind
    text: str | None = None          # text, or callback value
    phone: str | None = None         # shared contact
    contact_user_id: int | None = None
    file_id: str | None = None       # voice / photo / document
    duration: int | None = None
    step: str | None = None          # for callbacks: the step the button belonged to

    def pressed(self, *values: str) -> str | None:
        """The value of the button pressed, if one was and it is one of ``values``."""
        return self.text if self.kind == "callback" and self.text in values else None


FlowHandler = Callable[[Update, LinliContext, Dialog, Input], Awaitable[None]]
AskAgain = Callable[[Update, LinliContext, Dialog, str], Awaitable[None]]
FLOWS: dict[str, FlowHandler] = {}
ASK_AGAIN: dict[str, AskAgain] = {}
Starter = Callable[[Update, LinliContext], Awaitable[bool]]
STARTERS: dict[str, Starter] = {}


def flow(name: str, *, ask: AskAgain | None = None) -> Callable[[FlowHandler], FlowHandler]:
    """Register a flow: ``@flow("register") async def register(update, ctx, dialog, inp): ...``;
    ``ask(update, ctx, dialog, prefix)`` asks the current step again after a lost compare-and-set."""

    def deco(fn: FlowHandler) -> FlowHandler:
        FLOWS[name] = fn
        if ask is not None:
            ASK_AGAIN[name] = ask
        return fn

    return deco


CodeAction = Callable[[Update, LinliContext, str], Awaitable[None]]


def typed_code(name: str, *, ask: str, again: str, then: CodeAction) -> Callable[[Update, LinliContext], Awaitable[None]]:
    """A one-question dialog for a typed code (a check-in code, a voucher code): returns what opens it
    (it asks ``ask``); a message that is not text is answered with ``again``; a text ends the dialog
    and goes to ``then(update, ctx, text)``. ``ask`` and ``again`` are N_-marked messages."""

    async def begin(update: Update, ctx: LinliContext) -> None:
        t = await tr_for(update, ctx)
        assert update.effective_user is not None
        await start(ctx, update.effective_user.id, name, "code")
        await reply(update, t(ask))

    @flow(name)
    async def take(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input) -> None:
        if inp.kind != "text" or not (inp.text or "").strip():
            t = await tr_for(update, ctx)
            await reply(update, t(again))
            return
        await finish(ctx, dialog.tg_user_id)
        await then(update, ctx, inp.text or "")

    return begin


def starter(name: str) -> Callable[[Starter], Starter]:
    """Register what a private message sent outside any dialog may start (a voice note: a quick
    request). Starters are tried after the menu buttons and the running dialog, before the polite
    fallback; one returns True when it answered the message."""

    def deco(fn: Starter) -> Starter:
        STARTERS[name] = fn
        return fn

    return deco


async def handle_start(update: Update, ctx: LinliContext) -> bool:
    """Offer a private message that no dialog took to the starters; False when none answered it."""
    for fn in STARTERS.values():
        if await fn(update, ctx):
            return True
    return False


def button(step: str, value: str) -> str:
    """Callback data for a button of the dialog being worked on (kept under Telegram's 64 bytes)."""
    mark = _current_mark.get()
    data = f"d:{step}:{value}{MARK}{mark}" if mark else f"d:{step}:{value}"
    if len(data.encode()) > 64:
        raise ValueError(f"dialog callback data too long: {data!r}")
    return data


def pressed(data: str) -> tuple[str, str, str]:
    """(step, value, mark) of a dialog button's callback data."""
    _, step, rest = ([*data.split(":", 2), "", ""])[:3]
    value, _, mark = rest.rpartition(MARK) if MARK in rest else (rest, "", "")
    return step, value, mark


def _working_on(dialog: Dialog) -> Dialog:
    _current_mark.set(dialog.gen)
    return dialog


async def load(ctx: LinliContext, tg_user_id: int) -> Dialog | None:
    dialog = await store.get(ctx.db, tg_user_id)
    return _working_on(dialog) if dialog is not None else None


async def save(ctx: LinliContext, dialog: Dialog) -> None:
    """Write the dialog if nobody else did since it was read; else raise ``DialogMoved``."""
    version = await store.compare_and_set(ctx.db, dialog, ctx.now())
    if version is None:
        raise DialogMoved(dialog.tg_user_id)
    dialog.version = version


async def set_value(ctx: LinliContext, dialog: Dialog, key: str, value: Any) -> None:
    """Note one bookkeeping value (not a step: the version stays) in the dialog as it was read."""
    dialog.data[key] = value
    await store.set_value(ctx.db, dialog, key, value)


async def ask(update: Update, ctx: LinliContext, dialog: Dialog, before: int | None, text: str,
              markup: InlineKeyboardMarkup) -> int | None:
    """A question with buttons: after a button press it replaces the pressed message (no stale
    buttons left, one message per step), otherwise it is a new message and the previous
    question's buttons (message ``before``) are taken off, so only one set of buttons is ever live.
    Returns the question's message id, noted in the dialog as ``_q`` when it changed."""
    query = update.callback_query
    if query is not None and query.message is not None:
        await edit_or_send(query, text, markup)
        asked: int | None = query.message.message_id
    else:
        chat = update.effective_chat
        if before is not None and chat is not None:
            await take_buttons_off(update, chat.id, before)
        sent = await reply(update, text, markup)
        asked = sent.message_id if sent is not None else None
    if asked != before:
        # Only into the dialog as it still is: a Cancel pressed meanwhile (button presses run in a
        # lane of their own) must not be undone by writing the whole dialog back.
        await set_value(ctx, dialog, "_q", asked)
    return asked


async def close_buttons(update: Update) -> None:
    """Take the buttons off the message just pressed, so an old step cannot be pressed again."""
    query = update.callback_query
    if query is not None and query.message is not None:
        await take_buttons_off(update, query.message.chat.id, query.message.message_id)


async def take_buttons_off(update: Update, chat_id: int, message_id: int) -> None:
    try:
        # A plain request: the library would add the default parse_mode, which this method lacks.
        await update.get_bot().do_api_request(
            "editMessageReplyMarkup", api_kwargs={"chat_id": chat_id, "message_id": message_id})
    except TelegramError:
        pass


async def start(ctx: LinliContext, tg_user_id: int, flow_name: str, step: str, data: dict[str, Any] | None = None) -> Dialog:
    """Begin a dialog (replacing any other the person had open)."""
    dialog = Dialog(tg_user_id, flow_name, step, data or {}, gen=secrets.token_hex(3))
    dialog.version = await store.put(ctx.db, dialog, ctx.now())
    return _working_on(dialog)  # the buttons made from here on are this dialog's


async def finish(ctx: LinliContext, tg_user_id: int) -> None:
    await store.delete(ctx.db, tg_user_id)


def _secs(value: object) -> int | None:
    if value is None:
        return None
    total = getattr(value, "total_seconds", None)
    return int(total()) if callable(total) else int(value)  # type: ignore[call-overload]


def input_from_message(update: Update) -> Input:
    msg = update.effective_message
    if msg is None:
        return Input("other")
    if msg.contact is not None:
        return Input("contact", phone=msg.contact.phone_number, contact_user_id=msg.contact.user_id)
    if msg.voice is not None:
        return Input("voice", file_id=msg.voice.file_id, duration=_secs(msg.voice.duration))
    if msg.audio is not None:
        return Input("audio", file_id=msg.audio.file_id, duration=_secs(msg.audio.duration))
    if msg.photo:
        return Input("photo", file_id=msg.photo[-1].file_id, text=msg.caption)
    if msg.sticker is not None:
        return Input("sticker")
    if msg.location is not None:
        return Input("location")
    if msg.document is not None:
        return Input("document", file_id=msg.document.file_id)
    if msg.text is not None:
        return Input("text", text=msg.text)
    return Input("other")


async def handle_input(update: Update, ctx: LinliContext) -> bool:
    """Feed a private message to the sender's dialog; False when there is no dialog."""
    user = update.effective_user
    if user is None:
        return False
    dialog = await load(ctx, user.id)
    if dialog is None or dialog.flow not in FLOWS:
        return False
    await _run(update, ctx, dialog, input_from_message(update))
    return True


async def _run(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input) -> None:
    try:
        await FLOWS[dialog.flow](update, ctx, dialog, inp)
    except DialogMoved:
        await _moved(update, ctx, dialog.tg_user_id)


async def _moved(update: Update, ctx: LinliContext, tg_user_id: int) -> None:
    """This lane's answer lost to another lane's: ask the question the dialog is at now (if it is
    still open; when the other lane ended it, that lane has said so)."""
    current = await load(ctx, tg_user_id)
    log.info("dialog of %s moved on meanwhile; now at %s", tg_user_id, current.step if current else None)
    if current is None:
        return
    t = await tr_for(update, ctx)
    prefix = t("Your answers crossed: I kept the one that came first.")
    ask = ASK_AGAIN.get(current.flow)
    if ask is None:
        await reply(update, prefix)
        return
    try:
        await ask(update, ctx, current, prefix)
    except DialogMoved:  # moved yet again: the latest lane asks
        pass


async def _on_button(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None or query.data is None or update.effective_user is None:
        return
    step, value, mark = pressed(query.data)
    dialog = await load(ctx, update.effective_user.id)
    t = await tr_for(update, ctx)
    if dialog is None or dialog.gen != mark or dialog.step != step or dialog.flow not in FLOWS:
        await answer(query, t("This button is out of date. Please use the latest message."), alert=False)
        return
    await _run(update, ctx, dialog, Input("callback", text=value, step=step))
    # The flow may have answered already; answering twice is harmless (logged, not raised).
    await answer(query)


async def _cancel(update: Update, ctx: LinliContext) -> None:
    user = update.effective_user
    if user is None:
        return
    t = await tr_for(update, ctx)
    had = await load(ctx, user.id)
    await finish(ctx, user.id)
    from bot.menu import main_menu

    text = t("Cancelled. Nothing was saved.") if had else t("There is nothing to cancel.")
    await reply(update, text, await main_menu(ctx, user.id, t))


def register(app: LinliApp) -> None:
    app.add_handler(CommandHandler("cancel", _cancel, filters=filters.ChatType.PRIVATE))
    app.add_handler(CallbackQueryHandler(_on_button, pattern=r"^d:"))
