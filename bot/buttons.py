"""Who may press which button, and where: one rule for every button press, checked before any handler.

Callback data is sent by the person's app, and a modified app can send any data on any message it
sees. So a press goes on to the feature that handles it only when:

1. it was pressed on a message (not an inline message) that carries exactly that data on one of its
   buttons: Telegram sends the message as it is shown, so data copied from another button or made up
   is refused here even if Telegram let it through;
2. the data's prefix is one the bot makes (``BUTTONS``), and the message is in the kind of chat that
   prefix is made for: in a group only the buttons the bot puts on group messages (Claim and
   Details on a task's card, for that card's task); every other button only in the private chat of
   the person it was sent to.

Anything else is answered with a short refusal in the presser's language and goes no further:
nothing changes and nothing is posted. A press on a task's card also tells the card job when the
card shows something other than it should (``bot.jobs.cards.check_shown``).
"""

from __future__ import annotations

import logging
from typing import Literal

from telegram import Message, Update
from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot.context import LinliApp, LinliContext
from bot.models import N_, AlreadyClaimed, DomainError, InvalidState
from bot.services.tasks import full, refuse_taken_off
from bot.ui import answer, tr_for
from storage import cards as card_store
from storage import tasks as task_store

log = logging.getLogger(__name__)

Where = Literal["private", "group"]
PRIVATE: frozenset[Where] = frozenset({"private"})
GROUP: frozenset[Where] = frozenset({"group"})

# Prefix of the callback data (up to the first ":") -> the kinds of chat its buttons are made for.
# Who may press: in a private chat, the person the message was sent to; on a group card, anyone in
# the group (the feature decides, e.g. only registered volunteers of that community may claim).
BUTTONS: dict[str, frozenset[Where]] = {
    "cl": frozenset({"group", "private"}),  # Claim: the group card; the urgent ping and /tasks in private
    "dt": GROUP,        # Details (and "All places taken") on the group card
    "wl": GROUP,        # Join the waiting list, on the card of a full event
    "wlo": PRIVATE, "wly": PRIVATE, "wln": PRIVATE,  # leave the waiting list; keep or decline a place given
    "d": PRIVATE,       # a dialog's buttons (registration, /request, /publish, /deleteme, organisation, attendance,
                        # managing rewards)
    "lg": PRIVATE,      # /language
    "pf": PRIVATE,      # the profile's Change and Erase
    "tp": PRIVATE,      # /tasks pages
    "rc": PRIVATE, "rcn": PRIVATE,    # a resident cancels their request (and "No, keep it")
    "wd": PRIVATE, "done": PRIVATE,   # a volunteer's Withdraw and Done
    "md": PRIVATE,      # /mytasks: the details of a task the volunteer holds, again
    "cs": PRIVATE,      # Contact staff (volunteer, resident) and a staff member's case decision
    "ap": PRIVATE, "rj": PRIVATE, "ed": PRIVATE,  # staff review a request
    "cf": PRIVATE,      # the resident confirms, says not done, or reports a problem
    "lb": PRIVATE, "ph": PRIVATE,     # leaderboard and points history
    "st": PRIVATE,      # /settings
    "an": PRIVATE,      # may the group hear of my honours? (asked once, at a first claim)
    "rw": PRIVATE,      # points supermarket and vouchers
    "rl": PRIVATE,      # /reliability: staff pick the minimum score to claim events
    "ci": PRIVATE,      # staff open check-in for an event (under /mytasks)
    "vr": PRIVATE, "vn": PRIVATE,     # /volunteers: staff take someone off an event, or mark them not coming
    "vry": PRIVATE, "vny": PRIVATE, "vb": PRIVATE,  # ... and answer Yes, or No (back to the list)
    "vp": PRIVATE,                    # ... and a long list's Previous / Next page
    "vw": PRIVATE,                    # ... and the whole waiting list, a page at a time
}

OUT_OF_DATE = N_("This button is out of date. Please use the latest message.")
NOT_YOURS = N_("Sorry, this button is not for you.")


def _chat_kind(message: Message) -> Where | None:
    if message.chat.type == "private":
        return "private"
    if message.chat.type in ("group", "supergroup"):
        return "group"
    return None  # a channel: the bot puts no buttons there


def verdict(update: Update) -> str | None:
    """Why this press must not act (a message id to answer with), or None when it may go on."""
    query = update.callback_query
    if query is None:
        return None
    message = query.message
    if (query.inline_message_id is not None or not isinstance(message, Message) or not message.is_accessible
            or query.data is None):
        return NOT_YOURS  # inline messages, games, and messages Telegram no longer shows: the bot makes none
    data = query.data
    shown = message.reply_markup.inline_keyboard if message.reply_markup is not None else ()
    if not any(button.callback_data == data for row in shown for button in row):
        return OUT_OF_DATE
    made_for = BUTTONS.get(data.split(":", 1)[0])
    kind = _chat_kind(message)
    if made_for is None:
        return OUT_OF_DATE
    if kind is None or kind not in made_for:
        return NOT_YOURS
    if kind == "private" and message.chat.id != query.from_user.id:
        return NOT_YOURS  # someone else's private message
    return None


async def _for_this_card(ctx: LinliContext, message: Message, data: str, card: int | None) -> bool:
    """A group button acts for the task of the card it is on; other group messages carry none."""
    task = data.split(":", 1)[1] if ":" in data else ""
    if card is not None:
        return task == str(card)
    # Not known as a card: pressed the moment it was posted, before the card job wrote down its message
    # id, or a copy posted just before a crash and never recorded (dispatch removes it after the
    # press). Either way a message the bot sent with this very button (``verdict`` checked that the
    # data is on its keyboard), for a task of this group's community.
    if not (task.isascii() and task.isdigit() and len(task) <= 12):
        return False
    sender = message.from_user
    if sender is None or sender.id != ctx.bot.id:
        return False
    return await task_store.in_group(ctx.db, int(task), message.chat.id)


def _late_claim(data: str, card: int | None, seen: card_store.Pressed) -> str | None:
    """A Claim the card no longer shows, pressed on that very task's card (the presser's phone had not
    redrawn it yet): what became of the task, rather than "out of date" (None: not such a press)."""
    prefix, _, task = data.partition(":")
    if prefix != "cl" or card is None or task != str(card) or seen.card is None:
        return None
    glance = seen.glance
    if glance is not None and glance.mine in ("active", "done", "completed"):
        return AlreadyClaimed.message
    if glance is not None:
        try:
            refuse_taken_off(glance.mine, glance.removed)  # staff's word first, full or not, as the claim says
        except DomainError as err:
            return err.message
    if str(seen.card["state"]) in ("full", "in_progress"):
        return full(str(seen.card["kind"])).message
    return InvalidState.message


async def gate(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None:
        return
    why = verdict(update)
    message = query.message
    card: int | None = None
    late: str | None = None
    if isinstance(message, Message) and message.is_accessible and message.chat.type in ("group", "supergroup"):
        from bot.jobs.cards import check_shown

        try:
            # One read for the card, the presser and their claim on its task: what the handler needs too.
            seen = await card_store.pressed(ctx.db, message.chat.id, message.message_id, query.from_user.id)
            ctx.seen_member, ctx.pressed_glance = (query.from_user.id, seen.member), seen.glance
            card = await check_shown(ctx, seen.card, message.text, message.reply_markup)
            ctx.pressed_card = card
            late = _late_claim(query.data or "", card, seen) if why == OUT_OF_DATE else None
        except Exception:  # a repair that fails must not stop the press from being answered
            log.exception("could not compare the card in %s with what it should show", message.chat.id)
        if late is not None:
            why = late
        elif why is None and not await _for_this_card(ctx, message, query.data or "", card):
            why = NOT_YOURS
    if why is None:
        return
    t = await tr_for(update, ctx)
    await answer(query, t(why), alert=late is not None)
    log.info("button %r from %s refused: %s", (query.data or "")[:64], query.from_user.id, why)
    raise ApplicationHandlerStop


async def answer_leftover(update: Update, ctx: LinliContext) -> None:
    """After every handler: a press nobody answered (a path that returned early) is answered now,
    so the person's app stops waiting. Each query is answered once (``bot.ui.answer``)."""
    query = update.callback_query
    if query is not None:
        await answer(query)


def register(app: LinliApp) -> None:
    # Before every other handler (the edited-message filter is -2, the private-chat note -1).
    app.add_handler(TypeHandler(Update, gate), group=-3)
    app.add_handler(TypeHandler(Update, answer_leftover), group=100)
