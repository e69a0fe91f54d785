"""The points supermarket in chat: /rewards, redeeming, /vouchers, cancelling, merchant
verification (/verify CODE or the voucher's QR deep link), /merchant new, and the one-line /rewards add
(staff manage rewards with buttons in bot/conversations/reward_admin.py; /rewards manage opens it).

Callback data: ``rw:<action>:<args>`` (all well under 64 bytes).
"""

from __future__ import annotations

import io
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta

import segno
from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot import deeplinks, dialogs
from bot.context import LinliApp, LinliContext
from bot.i18n import Translator
from bot.menu import main_menu, menu_item, merchant, participant
from bot.models import N_, DomainError, InvalidInput, Member, NotAllowed, NotRegistered
from bot.numbers import MAX_ID, StaleButton, button_number, number
from bot.services import access, ledger, merchants, rewards
from bot.ui import answer, edit_or_send, error_text, esc, inline, reply, tr_for
from storage import communities as community_store

log = logging.getLogger(__name__)

KIND_LABELS = {
    "goods": N_("Daily goods"),
    "service": N_("Service"),
    "honour": N_("Honour"),
    "venue": N_("Community room or venue"),
    "discount": N_("Merchant discount"),
}
STATE_LABELS = {
    "issued": N_("ready to use"),
    "used": N_("used"),
    "cancelled": N_("cancelled"),
    "expired": N_("expired"),
}
SLOT_HOURS = (9, 10, 14, 15, 16, 19)
CAPTION_MAX = 1024  # characters of a photo's caption (Bot API)


def _lang(t: Translator) -> str:
    return str(getattr(t, "lang", "zh"))


def _private(update: Update) -> bool:
    return update.effective_chat is not None and update.effective_chat.type == "private"


async def _member(update: Update, ctx: LinliContext) -> Member:
    assert update.effective_user is not None
    return await access.require_registered(ctx.db, update.effective_user.id)


async def _member_or_told(update: Update, ctx: LinliContext, t: Translator) -> Member | None:
    """The registered member who sent this; None once an unregistered sender was told to register."""
    try:
        return await _member(update, ctx)
    except NotRegistered as exc:
        await reply(update, error_text(t, exc))
        return None


def _fmt_time(ctx: LinliContext, moment: datetime) -> str:
    return moment.astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M")


def _reward_line(t: Translator, r: rewards.Reward, lang: str) -> str:
    stock = t("unlimited") if r.stock is None else t("{n} left", n=r.stock)
    return t("{name} · {cost} points · {stock}", name=esc(r.name(lang)), cost=r.cost, stock=stock)


# -- /rewards -------------------------------------------------------------------------------
async def _show_rewards(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    member = await _member_or_told(update, ctx, t)
    if member is None:
        return
    assert member.community_id is not None
    bal = await ledger.balance(ctx.db.reader, member.id)
    items = await rewards.list_rewards(ctx.db, member.community_id, balance=bal)
    if not items:
        await reply(update, t("The points supermarket has nothing on offer yet. Please look again later."))
        return
    lang = _lang(t)
    lines = [t("<b>Points supermarket</b>"), t("You have {n} points.", n=bal), ""]
    buttons = []
    for r in items[:20]:
        can = rewards.within_reach(r, bal)
        lines.append(("✅ " if can else "") + _reward_line(t, r, lang))
        if can:
            buttons.append([(f"{r.name(lang)[:30]} · {r.cost}", f"rw:r:{r.id}")])
    lines.append("")
    lines.append(t("Tap a reward you can afford to redeem it."))
    await reply(update, "\n".join(lines), inline(buttons) if buttons else None)


async def cmd_rewards(update: Update, ctx: LinliContext) -> None:
    if ctx.args and ctx.args[0].lower() == "manage":
        from bot.conversations.reward_admin import open_rewards  # it imports this module

        await open_rewards(update, ctx)
        return
    await _show_rewards(update, ctx)


@menu_item("rewards", N_("🎁 Points supermarket"), visible=participant, order=60,
           about=N_("what your points can buy: goods, services, the community room, shop discounts."))
async def _menu_rewards(update: Update, ctx: LinliContext) -> None:
    await _show_rewards(update, ctx)


@menu_item("vouchers", N_("🎫 My vouchers"), visible=participant, order=61,
           about=N_("what you have redeemed, to show at the counter or the shop."))
async def _menu_vouchers(update: Update, ctx: LinliContext) -> None:
    await cmd_vouchers(update, ctx)


async def _verify_typed(update: Update, ctx: LinliContext, text: str) -> None:
    await _verify(update, ctx, "".join(text.split()))


# Merchants: the next message is taken as a voucher code (scanning the QR code works anyway).
_menu_check = menu_item("check", N_("🏪 Check a voucher"), visible=merchant, order=5,
                        about=N_("a customer's voucher code: whether it is good, and marking it used."))(dialogs.typed_code(
    "verify",
    ask=N_("Please type the voucher's code (10 letters and digits), or scan its QR code with the"
           " phone's camera."),
    again=N_("Please type the voucher's code as text, or send /cancel."),
    then=_verify_typed))


# -- callbacks --------------------------------------------------------------------------------
async def on_callback(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and update.effective_user is not None
    t = await tr_for(update, ctx)
    parts = query.data.split(":")
    action, args = parts[1] if len(parts) > 1 else "", parts[2:]
    answered: bool | None = None
    try:
        if action == "d":
            await _cb_day(update, ctx, t, button_number(args[0]), args[1])
        elif action == "c":
            answered = await _cb_confirm(update, ctx, t, button_number(args[0]), args[1], args[2] if len(args) > 2 else "")
        elif (on_one := _ON_ONE.get(action)) is not None:
            await on_one(update, ctx, t, button_number(args[0]))
        else:
            raise InvalidInput()
    except (ValueError, IndexError, StaleButton):
        await answer(query, t("This button is out of date. Please use the latest message."))
        return
    except DomainError as exc:
        await answer(query, error_text(t, exc), alert=True)
        return
    if not answered:
        await answer(query)


async def _cb_reward(update: Update, ctx: LinliContext, t: Translator, reward_id: int) -> None:
    query = update.callback_query
    assert query is not None
    member = await _member(update, ctx)
    r = await rewards.offered_to(ctx.db, member, reward_id)
    if r.kind == "venue":
        today = ctx.now().astimezone(ctx.settings.tz).date()
        days = [today + timedelta(days=i) for i in range(1, 8)]
        rows = [[(d.strftime("%m-%d"), f"rw:d:{r.id}:{d.strftime('%Y%m%d')}") for d in days[:4]],
                [(d.strftime("%m-%d"), f"rw:d:{r.id}:{d.strftime('%Y%m%d')}") for d in days[4:]]]
        await _show_reward(query, ctx, t, r, t("Which day would you like?"), inline(rows))
        return
    token = secrets.token_hex(4)
    await _show_reward(query, ctx, t, r, t("Redeem it for {n} points?", n=r.cost),
                       inline([[(t("✅ Yes, redeem"), f"rw:c:{r.id}:{token}:-")]]))


def _reward_text(t: Translator, r: rewards.Reward, *, description: bool = True) -> str:
    lang = _lang(t)
    return "\n".join(x for x in [
        f"<b>{esc(r.name(lang))}</b>", t(KIND_LABELS[r.kind]), esc(r.description(lang)) if description else "",
        _reward_line(t, r, lang), t("Valid for {n} days after redeeming.", n=r.valid_days)
        if r.kind != "venue" else "",
    ] if x)


async def _show_reward(query: CallbackQuery, ctx: LinliContext, t: Translator, r: rewards.Reward, question: str,
                       markup: InlineKeyboardMarkup) -> None:
    """A reward's details and the question, in place of the list; a reward with a photo comes as the photo
    with the details as its caption (under the list, which stays)."""
    text = _reward_text(t, r) + "\n\n" + question
    if r.photo_file_id and isinstance(query.message, Message):
        if len(text) > CAPTION_MAX:  # Telegram's limit for a caption: the description gives way
            text = _reward_text(t, r, description=False) + "\n\n" + question
        try:
            await ctx.bot.send_photo(query.message.chat.id, photo=r.photo_file_id, caption=text, reply_markup=markup)
            return
        except TelegramError as exc:
            log.warning("could not show the photo of reward %s: %s", r.id, exc)
    await edit_or_send(query, text, markup)


async def _edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """``edit_or_send``, also for a reward shown with its photo (there the caption changes)."""
    message = query.message
    if not (isinstance(message, Message) and message.photo):
        await edit_or_send(query, text, markup)
        return
    try:
        await query.edit_message_caption(caption=text, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            await message.chat.send_message(text, reply_markup=markup)


def _bookable_day(ctx: LinliContext, day: str) -> date:
    """A day from the venue's day buttons (tomorrow to a week ahead), else InvalidInput."""
    try:
        chosen = datetime.strptime(day, "%Y%m%d").date() if re.fullmatch(r"[0-9]{8}", day) else None
    except ValueError:
        chosen = None
    today = ctx.now().astimezone(ctx.settings.tz).date()
    if chosen is None or not today < chosen <= today + timedelta(days=7):
        raise InvalidInput()
    return chosen


async def _cb_day(update: Update, ctx: LinliContext, t: Translator, reward_id: int, day: str) -> None:
    query = update.callback_query
    assert query is not None
    _bookable_day(ctx, day)
    token = secrets.token_hex(4)
    rows = [[(f"{h:02d}:00", f"rw:c:{reward_id}:{token}:{day}{h:02d}") for h in SLOT_HOURS[:3]],
            [(f"{h:02d}:00", f"rw:c:{reward_id}:{token}:{day}{h:02d}") for h in SLOT_HOURS[3:]]]
    await _edit(query, t("Which time? Each booking is for one hour."), inline(rows))


async def _cb_confirm(update: Update, ctx: LinliContext, t: Translator, reward_id: int, token: str,
                      slot: str) -> bool:
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    member = await _member(update, ctx)
    slot_start = None
    if slot and slot != "-":
        # Only what the buttons offer: one of the next seven days, at one of the hours (the data is untrusted).
        hour = int(slot[8:]) if re.fullmatch(r"[0-9]{10}", slot) else -1
        if hour not in SLOT_HOURS:
            raise InvalidInput()
        slot_start = datetime.combine(_bookable_day(ctx, slot[:8]), datetime.min.time(),
                                      tzinfo=ctx.settings.tz).replace(hour=hour)
    key = f"{update.effective_user.id}:{token}"
    if await rewards.voucher_for_request(ctx.db, member.id, key) is not None:
        await answer(query, t("Already redeemed: your voucher is in /vouchers."))
        return True
    voucher = await rewards.redeem(ctx.db, member_id=member.id, reward_id=reward_id, now=ctx.now(),
                                   slot_start=slot_start, request_key=key)
    await _edit(query, t("Done! Your voucher is below."))
    await _send_voucher(update, ctx, t, voucher)
    return False


def voucher_qr(bot_username: str, code: str) -> bytes:
    buf = io.BytesIO()
    segno.make(deeplinks.link(bot_username, f"v_{code}"), error="m").save(buf, kind="png", scale=8, border=2)
    return buf.getvalue()


async def _send_voucher(update: Update, ctx: LinliContext, t: Translator, v: rewards.Voucher) -> None:
    r = await rewards.get_reward(ctx.db, v.reward_id)
    assert r is not None and update.effective_chat is not None
    lang = _lang(t)
    lines = [t("<b>Voucher: {name}</b>", name=esc(r.name(lang))), t("Code: <code>{code}</code>", code=v.code)]
    if v.slot_start is not None:
        lines.append(t("Booked time: {when}", when=_fmt_time(ctx, v.slot_start)))
    lines.append(t("Valid until {when}.", when=_fmt_time(ctx, v.expires_at)))
    lines.append(t("Show this QR code or the code to the merchant or staff."))
    markup = inline([[(t("Cancel this voucher"), f"rw:x:{v.id}")]]) if v.state == "issued" else None
    try:
        await ctx.bot.send_photo(update.effective_chat.id, photo=voucher_qr(ctx.runtime.bot_username, v.code),
                                 caption="\n".join(lines), reply_markup=markup)
    except TelegramError as exc:
        log.warning("could not send the voucher picture: %s", exc)
        await reply(update, "\n".join(lines), markup)


# -- /vouchers --------------------------------------------------------------------------------
async def cmd_vouchers(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    member = await _member_or_told(update, ctx, t)
    if member is None:
        return
    items = await rewards.member_vouchers(ctx.db, member.id)
    if not items:
        await reply(update, t("You have no vouchers yet. See /rewards to redeem your points."))
        return
    lang = _lang(t)
    lines = [t("<b>Your vouchers</b>")]
    buttons = []
    for v, r in items:
        lines.append(t("{name} · {code} · {state}", name=esc(r.name(lang)), code=v.code, state=t(STATE_LABELS[v.state])))
        if v.state == "issued":
            buttons.append([(t("Show {code}", code=v.code), f"rw:show:{v.id}"), (t("Cancel"), f"rw:x:{v.id}")])
    await reply(update, "\n".join(lines), inline(buttons[:10]) if buttons else None)


async def _own_voucher(update: Update, ctx: LinliContext, voucher_id: int) -> rewards.Voucher:
    member = await _member(update, ctx)
    return await rewards.own_voucher(ctx.db, member.id, voucher_id)


async def _cb_show(update: Update, ctx: LinliContext, t: Translator, voucher_id: int) -> None:
    await _send_voucher(update, ctx, t, await _own_voucher(update, ctx, voucher_id))


async def _cb_cancel_ask(update: Update, ctx: LinliContext, t: Translator, voucher_id: int) -> None:
    v = await _own_voucher(update, ctx, voucher_id)
    if v.state != "issued":
        raise rewards.VoucherNotValid()
    assert update.effective_chat is not None
    await reply(update, t("Cancel voucher {code}? Your {n} points will come back.", code=v.code, n=v.cost),
                inline([[(t("Yes, cancel it"), f"rw:xx:{v.id}")]]))


async def _cb_cancel(update: Update, ctx: LinliContext, t: Translator, voucher_id: int) -> None:
    query = update.callback_query
    assert query is not None
    member = await _member(update, ctx)
    v = await _own_voucher(update, ctx, voucher_id)
    done = await rewards.cancel(ctx.db, member_id=member.id, voucher_id=voucher_id, now=ctx.now())
    bal = await ledger.balance(ctx.db.reader, member.id)
    if done:
        await edit_or_send(query, t("Voucher {code} is cancelled. {n} points are back; you now have {b}.",
                                    code=v.code, n=v.cost, b=bal))
    else:
        await edit_or_send(query, t("Voucher {code} was already cancelled.", code=v.code))


# -- verification ---------------------------------------------------------------------------
async def _verifier(update: Update, ctx: LinliContext) -> tuple[int, int | None]:
    """(actor member id, community where they are staff or None)."""
    assert update.effective_user is not None
    return await rewards.verifier(ctx.db, update.effective_user.id, ctx.settings.admin_ids)


async def _verify(update: Update, ctx: LinliContext, code: str) -> None:
    t = await tr_for(update, ctx)
    try:
        actor, staff_of = await _verifier(update, ctx)
    except NotAllowed as exc:
        # a member who scans their own voucher sees it again
        own = await _own_by_code(update, ctx, code)
        if own is not None:
            await _send_voucher(update, ctx, t, own)
        else:
            await reply(update, error_text(t, exc))
        return
    try:
        v, r = await rewards.check_voucher(ctx.db, actor_id=actor, code=code, now=ctx.now(), staff_of=staff_of)
    except DomainError as exc:
        await reply(update, error_text(t, exc))
        return
    lang = _lang(t)
    lines = [t("Voucher <code>{code}</code> is valid.", code=v.code), t("For: {name}", name=esc(r.name(lang))),
             t("Valid until {when}.", when=_fmt_time(ctx, v.expires_at))]
    if v.slot_start is not None:
        lines.append(t("Booked time: {when}", when=_fmt_time(ctx, v.slot_start)))
    await reply(update, "\n".join(lines), inline([[(t("✅ Mark as used"), f"rw:u:{v.id}")]]))


async def _own_by_code(update: Update, ctx: LinliContext, code: str) -> rewards.Voucher | None:
    assert update.effective_user is not None
    member = await access.member_by_tg(ctx.db, update.effective_user.id)
    if member is None:
        return None
    return await rewards.member_voucher_by_code(ctx.db, member.id, code)


async def cmd_verify(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    if not ctx.args:
        await reply(update, t("Send /verify followed by the voucher code, for example: /verify ABCD234567"))
        return
    await _verify(update, ctx, "".join(ctx.args))


async def _cb_use(update: Update, ctx: LinliContext, t: Translator, voucher_id: int) -> None:
    query = update.callback_query
    assert query is not None
    actor, staff_of = await _verifier(update, ctx)
    try:
        v = await rewards.use_voucher(ctx.db, actor_id=actor, voucher_id=voucher_id, now=ctx.now(), staff_of=staff_of)
    except rewards.VoucherUsed:
        await edit_or_send(query, t("This voucher has already been used."))
        return
    await edit_or_send(query, t("Voucher <code>{code}</code> is marked as used. Thank you!", code=v.code))


@deeplinks.start_payload("v_")
async def _deeplink_voucher(update: Update, ctx: LinliContext, rest: str) -> None:
    await _verify(update, ctx, rest)


@deeplinks.start_payload("merchant_")
async def _deeplink_merchant(update: Update, ctx: LinliContext, rest: str) -> None:
    t = await tr_for(update, ctx)
    user = update.effective_user
    assert user is not None
    try:
        m = await merchants.accept_invite(ctx.db, code=rest, tg_user_id=user.id, language=_lang(t),
                                          display_name=user.full_name or "merchant", now=ctx.now())
    except DomainError as exc:
        await reply(update, error_text(t, exc))
        return
    await reply(update, t("Welcome, {name}! You can now check vouchers: scan a voucher's QR code, or send "
                          "/verify followed by its code.", name=esc(m.name)), await main_menu(ctx, user.id, t))


# -- staff ------------------------------------------------------------------------------------
async def cmd_merchant(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    assert update.effective_user is not None
    try:
        staff = await access.require_staff(ctx.db, update.effective_user.id, ctx.settings.admin_ids)
        if staff is None or staff.community_id is None:
            raise NotAllowed()
        if ctx.args and ctx.args[0].lower() == "list":
            shops = await merchants.list_merchants(ctx.db, staff.community_id)
            community = await community_store.name_of(ctx.db, staff.community_id)
            lines = [t("Merchants of {name} (the number goes in /rewards add discount:NUMBER):",
                       name=esc(str(community or "")))] if shops else [t("No merchants yet.")]
            for shop in shops:
                state = t("linked") if shop.member_id else t("not linked yet: {link}", link=esc(
                    deeplinks.link(ctx.runtime.bot_username, f"merchant_{shop.invite_code}")))
                lines.append(f"#{shop.id} {esc(shop.name)} · {state}")
            lines.append(t("To add a merchant send: /merchant new NAME"))
            await reply(update, "\n".join(lines))
            return
        if not ctx.args or ctx.args[0].lower() != "new" or len(ctx.args) < 2:
            await reply(update, t("To add a merchant send: /merchant new NAME") + "\n"
                        + t("To see the merchants and their numbers: /merchant list"))
            return
        m = await merchants.create_merchant(ctx.db, community_id=staff.community_id, name=" ".join(ctx.args[1:]),
                                            now=ctx.now(), actor_id=staff.id)
    except DomainError as exc:
        await reply(update, error_text(t, exc))
        return
    link = deeplinks.link(ctx.runtime.bot_username, f"merchant_{m.invite_code}")
    await reply(update, t("Merchant {name} added (number {id}). Send them this link; opening it links their "
                          "Telegram account:\n{link}", name=esc(m.name), id=m.id, link=esc(link)))


MANAGE_HELP = N_(
    "To add a reward send:\n/rewards add KIND COST STOCK NAME\n"
    "KIND: goods, service, honour, venue, or discount:MERCHANT_NUMBER. STOCK: a number or - for unlimited.\n"
    "Example: /rewards add goods 50 20 Rice 5 kg\n"
    "Options: limit=N (per member a month), days=N (valid days), refund=no (no refund on expiry). "
    "Two languages: Chinese name / English name."
)


async def cmd_rewards_add(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    assert update.effective_user is not None
    args = ctx.args or []
    try:
        staff = await access.require_staff(ctx.db, update.effective_user.id, ctx.settings.admin_ids)
        if staff is None or staff.community_id is None:
            raise NotAllowed()
        if len(args) < 4:
            raise InvalidInput(MANAGE_HELP)
        kind, merchant_id = args[0].lower(), None
        if kind.startswith("discount:"):
            kind, merchant_id = "discount", _number(kind.split(":", 1)[1], rewards.DISCOUNT_PROBLEM, 1, MAX_ID)
        cost = _number(args[1], rewards.COST_PROBLEM, 1, rewards.COST_MAX)
        stock = None if args[2] == "-" else _number(args[2], rewards.STOCK_PROBLEM, 0, rewards.STOCK_MAX)
        options: dict[str, str] = {}
        words = []
        for word in args[3:]:
            key, sep, value = word.partition("=")
            if sep and key.lower() in ("limit", "days", "refund"):
                options[key.lower()] = value.lower()
            else:
                words.append(word)
        name = " ".join(words)
        name_zh, _, name_en = name.partition(" / ")
        rid = await rewards.create_reward(
            ctx.db, community_id=staff.community_id, name_zh=name_zh, name_en=name_en or name_zh, kind=kind,
            cost=cost, stock=stock, merchant_id=merchant_id, now=ctx.now(), actor_id=staff.id,
            monthly_limit=_number(options["limit"], rewards.LIMIT_PROBLEM, 1, rewards.LIMIT_MAX)
            if "limit" in options else None,
            valid_days=_number(options.get("days", "30"), rewards.DAYS_PROBLEM, 1, rewards.DAYS_MAX),
            refund_on_expiry=options.get("refund", "yes") != "no")
    except DomainError as exc:
        await reply(update, error_text(t, exc) if exc.message != MANAGE_HELP else t(MANAGE_HELP))
        return
    added = await rewards.get_reward(ctx.db, rid)
    assert added is not None
    await reply(update, t("“{name}” is in the points supermarket now: {cost} points, {stock}.", name=esc(
        added.name(_lang(t))), cost=added.cost, stock=t("no limit") if added.stock is None else t(
        "{n} in stock", n=added.stock)) + "\n" + t("To change it or give it a photo, press 🏷 Manage rewards."))


def _number(text: str, problem: str, low: int, high: int) -> int:
    """A whole number typed by staff in ``low..high`` (the range ``problem`` names), else InvalidInput."""
    return number(text, problem, low=low, high=high, hash_ok=True)


async def cmd_rewards_dispatch(update: Update, ctx: LinliContext) -> None:
    if ctx.args and ctx.args[0].lower() == "add":
        ctx.args = ctx.args[1:]
        await cmd_rewards_add(update, ctx)
    else:
        await cmd_rewards(update, ctx)


# Buttons rw:<action>:<number> for one reward or voucher.
_ON_ONE: dict[str, Callable[[Update, LinliContext, Translator, int], Awaitable[None]]] = {
    "r": _cb_reward, "show": _cb_show, "x": _cb_cancel_ask, "xx": _cb_cancel, "u": _cb_use,
}


def register(app: LinliApp) -> None:
    """Add this feature's handlers to the application."""
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("rewards", cmd_rewards_dispatch, filters=private))
    app.add_handler(CommandHandler("vouchers", cmd_vouchers, filters=private))
    app.add_handler(CommandHandler("verify", cmd_verify, filters=private))
    app.add_handler(CommandHandler("merchant", cmd_merchant, filters=private))
    app.add_handler(CallbackQueryHandler(on_callback, pattern=r"^rw:"))
    from bot.jobs.vouchers import schedule

    schedule(app)
