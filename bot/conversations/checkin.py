"""Check-in at the venue in chat (rules: bot/services/checkin.py).

Staff open check-in with the 📍 button under an event in /mytasks or with ``/checkin <event
number>``: the bot sends a QR code (``start=ci_<token>``) and a short code to show at the venue.
Volunteers scan it (``/start ci_<token>``), or press "📍 Check in" in the menu and type the code
(``/checkin CODE`` works too). Everything happens in private chats.

Callback data: ``ci:<event number>`` (staff open check-in).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import segno
from telegram import InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot import deeplinks, dialogs
from bot.clock import short_local
from bot.context import LinliApp, LinliContext
from bot.i18n import Translator
from bot.menu import menu_item, volunteer
from bot.models import N_, DomainError, Member
from bot.numbers import parse_int
from bot.services import checkin
from bot.services.access import member_by_tg
from bot.ui import answer, error_text, esc, inline, reply, task_name, tr_for
from storage.tasks import Task

log = logging.getLogger(__name__)


def checkin_qr(bot_username: str, token: str) -> bytes:
    buf = io.BytesIO()
    segno.make(deeplinks.link(bot_username, f"ci_{token}"), error="m").save(buf, kind="png", scale=8, border=2)
    return buf.getvalue()


def _window_text(t: Translator, opened: checkin.Opened) -> str:
    tz = opened.event["tz"]
    win = opened.window
    if win.opens is not None and win.closes is not None:
        return t("Check-in works from {start} to {end}.", start=short_local(win.opens, tz), end=short_local(win.closes, tz))
    if win.closes is not None:
        return t("Check-in works until {end}.", end=short_local(win.closes, tz))
    return t("Check-in works until the event is closed.")


# -- staff: open check-in -----------------------------------------------------------------------
async def _open(update: Update, ctx: LinliContext, t: Translator, task_id: int) -> None:
    assert update.effective_user is not None and update.effective_chat is not None
    try:
        opened = await checkin.open_checkin(ctx.db, task_id=task_id, tg_user_id=update.effective_user.id,
                                            admin_ids=ctx.settings.admin_ids, now=ctx.now())
    except DomainError as err:
        await reply(update, error_text(t, err))
        return
    lines = [t("<b>Check-in for “{event}”</b>", event=task_name(t, opened.event)),
             t("Show this QR code at the venue: volunteers with a place scan it with their phone's camera."),
             t("Or they press “📍 Check in” in my menu and type this code: <code>{code}</code>",
               code=opened.short_code),
             _window_text(t, opened),
             t("Checked in so far: {came} of {held} with a place.", came=opened.came, held=opened.held),
             t("When the event is over, close it with /closeevent {id}: those who checked in are ticked.",
               id=task_id),
             t("Who is coming, and taking someone off: /volunteers {id}", id=task_id)]
    text = "\n".join(lines)
    try:
        await ctx.bot.send_photo(update.effective_chat.id, photo=checkin_qr(ctx.runtime.bot_username, opened.token),
                                 caption=text)
    except TelegramError as exc:
        log.warning("could not send the check-in picture: %s", exc)
        await reply(update, text)


async def on_callback(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None:
        return
    task_id = parse_int((query.data or "").split(":", 1)[-1], strict=True)
    await answer(query)
    if task_id is not None:
        await _open(update, ctx, await tr_for(update, ctx), task_id)


def mytasks_buttons(t: Translator, member: Member, rows: Sequence[Task]) -> InlineKeyboardMarkup | None:
    """For staff, under /mytasks: a 📍 button for each of the listed events still open."""
    if not member.is_staff:
        return None
    buttons = [[(t("📍 Check-in: {event}", event=task_name(t, r))[:60], f"ci:{r.id}")]
               for r in rows if r.kind == "event" and r.state in checkin.OPEN_STATES]
    return inline(buttons[:10]) if buttons else None


# -- volunteers: check in ---------------------------------------------------------------------------
async def _check_in(update: Update, ctx: LinliContext, *, token: str | None = None, code: str | None = None) -> None:
    t = await tr_for(update, ctx)
    assert update.effective_user is not None
    try:
        done = await checkin.check_in(ctx.db, tg_user_id=update.effective_user.id, now=ctx.now(), token=token,
                                      short_code=code)
    except DomainError as err:
        await reply(update, error_text(t, err))
        return
    name = task_name(t, done.event)
    if done.first_time:
        await reply(update, t("✅ You are checked in at “{event}”. Thank you for coming!", event=name))
    else:
        await reply(update, t("You are already checked in at “{event}”. Nothing more is needed.", event=name))


@deeplinks.start_payload("ci_")
async def _deeplink(update: Update, ctx: LinliContext, rest: str) -> None:
    await _check_in(update, ctx, token=rest)


async def _check_in_typed(update: Update, ctx: LinliContext, text: str) -> None:
    await _check_in(update, ctx, code=text)


@dialogs.starter("typed-checkin-code")
async def _code_without_button(update: Update, ctx: LinliContext) -> bool:
    """The venue's short code typed straight into the chat, without 📍 first (as the sign at the venue
    says "type this code"): checked in as with it. Words that are no event's code go on to the others."""
    msg = update.effective_message
    text = msg.text if msg is not None else None
    if update.effective_user is None or not await checkin.is_code(ctx.db, text):
        return False
    await _check_in(update, ctx, code=text)
    return True


_menu_checkin = menu_item("checkin", N_("📍 Check in"), visible=volunteer, order=25,
                          about=N_("at an event, the code shown at the venue says you are there."))(dialogs.typed_code(
    "checkin",
    ask=N_("Please type the check-in code shown at the venue (6 letters), or scan its QR code with"
           " your phone's camera."),
    again=N_("Please type the check-in code shown at the venue, in letters. To do something else, press a button of"
             " the menu."),
    then=_check_in_typed))


async def cmd_checkin(update: Update, ctx: LinliContext) -> None:
    """/checkin <event number> (staff open check-in) or /checkin <code> (check in)."""
    args = list(ctx.args or [])
    if not args:
        assert update.effective_user is not None
        member = await member_by_tg(ctx.db, update.effective_user.id)
        if member is not None and member.is_staff and not member.is_volunteer:
            t = await tr_for(update, ctx)
            await reply(update, esc(t("Please write: /checkin <event number> (or press 📍 under the event in"
                                      " /mytasks).")))
            return
        await _menu_checkin(update, ctx)
        return
    task_id = parse_int(args[0], hash_ok=True)
    if task_id is not None and len(args) == 1:
        await _open(update, ctx, await tr_for(update, ctx), task_id)
        return
    await _check_in(update, ctx, code="".join(args))


def register(app: LinliApp) -> None:
    """Add this feature's handlers to the application."""
    app.add_handler(CommandHandler("checkin", cmd_checkin, filters=filters.ChatType.PRIVATE))
    app.add_handler(CallbackQueryHandler(on_callback, pattern=r"^ci:\d{1,12}$"))
