"""Conversations in private chats whose every step is stored in the database.

A dialog is (flow, step, data) per Telegram user, written in the ``dialogs`` table on every
step, so a restart of the bot in the middle loses nothing already typed and continues at the
same step. A flow is an async function called with the stored dialog and the normalised input;
it decides the next step (``save``), finishes (``finish``) or re-prompts.

Buttons that belong to a dialog carry ``d:<step>:<value>`` as callback data; a button from an
older step is answered with "this button is out of date" and changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot.context import LinliApp, LinliContext
from bot.ui import answer, reply, tr_for
from storage.timeutil import to_db

log = logging.getLogger(__name__)

InputKind = Literal["text", "contact", "voice", "audio", "photo", "sticker", "location", "document", "callback", "other"]
MAX_TEXT = 1000  # longest free text any step accepts


@dataclass
class Dialog:
    tg_user_id: int
    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Input:
    kind: InputKind
    text: str | None = None          # text, or callback value
    phone: str | None = None         # shared contact
    contact_user_id: int | None = None
    file_id: str | None = None       # voice / photo / document
    duration: int | None = None
    step: str | None = None          # for callbacks: the step the button belonged to


FlowHandler = Callable[[Update, LinliContext, Dialog, Input], Awaitable[None]]
FLOWS: dict[str, FlowHandler] = {}


def flow(name: str) -> Callable[[FlowHandler], FlowHandler]:
    """Register a flow: ``@flow("register") async def register(update, ctx, dialog, inp): ...``."""

    def deco(fn: FlowHandler) -> FlowHandler:
        FLOWS[name] = fn
        return fn

    return deco


def button(step: str, value: str) -> str:
    """Callback data for a dialog button (kept well under Telegram's 64 bytes)."""
    data = f"d:{step}:{value}"
    if len(data.encode()) > 64:
        raise ValueError(f"dialog callback data too long: {data!r}")
    return data


async def load(ctx: LinliContext, tg_user_id: int) -> Dialog | None:
    row = await ctx.db.fetchone("SELECT flow, step, data FROM dialogs WHERE tg_user_id = ?", (tg_user_id,))
    if row is None:
        return None
    return Dialog(tg_user_id, row["flow"], row["step"], json.loads(row["data"]))


async def save(ctx: LinliContext, dialog: Dialog) -> None:
    async with ctx.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO dialogs (tg_user_id, flow, step, data, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (tg_user_id) DO UPDATE SET flow = excluded.flow, step = excluded.step,"
            " data = excluded.data, updated_at = excluded.updated_at",
            (dialog.tg_user_id, dialog.flow, dialog.step, json.dumps(dialog.data, ensure_ascii=False), to_db(ctx.now())),
        )


async def start(ctx: LinliContext, tg_user_id: int, flow_name: str, step: str, data: dict[str, Any] | None = None) -> Dialog:
    dialog = Dialog(tg_user_id, flow_name, step, data or {})
    await save(ctx, dialog)
    return dialog


async def finish(ctx: LinliContext, tg_user_id: int) -> None:
    async with ctx.db.transaction() as conn:
        await conn.execute("DELETE FROM dialogs WHERE tg_user_id = ?", (tg_user_id,))


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
    await FLOWS[dialog.flow](update, ctx, dialog, input_from_message(update))
    return True


async def _on_button(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None or query.data is None or update.effective_user is None:
        return
    _, step, value = ([*query.data.split(":", 2), "", ""])[:3]
    dialog = await load(ctx, update.effective_user.id)
    t = await tr_for(update, ctx)
    if dialog is None or dialog.step != step or dialog.flow not in FLOWS:
        await answer(query, t("This button is out of date. Please use the latest message."), alert=False)
        return
    await FLOWS[dialog.flow](update, ctx, dialog, Input("callback", text=value, step=step))
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
