"""The reliability score in Telegram: the line in a volunteer's /points, the % beside the names
staff see (the attendance list, /staff find), and /reliability, where staff choose the minimum
score a volunteer needs to claim events (off by default). The rule is bot/services/reliability.py."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot.context import LinliApp, LinliContext
from bot.i18n import Translator
from bot.menu import load_member
from bot.models import N_, DomainError, NotRegistered
from bot.numbers import parse_int
from bot.services import reliability
from bot.services.access import require_staff
from bot.ui import answer, edit_or_send, error_text, inline, reply, tr_for
from storage.members import Member

RULE = N_("Reliability = (1 + tasks completed) ÷ (1 + tasks completed + no-shows + half of the late withdrawals),"
          " each counted less as it ages: its weight halves every 90 days. A withdrawal within 24 hours of the"
          " start is late. Everyone starts at 100%.")


async def points_lines(ctx: LinliContext, t: Translator, member: Member | None) -> list[str]:
    """What a volunteer's /points says about their reliability (nothing for others)."""
    if member is None or not member.is_volunteer:
        return []
    mine = await reliability.of_member(ctx.db, member.id, ctx.now())
    if mine.recorded:
        lines = [t("Reliability: {percent}% (last two years: {done} tasks done, missed {missed},"
                   " withdrew late {late})", percent=mine.percent, done=mine.done, missed=mine.no_shows,
                   late=mine.late)]
    else:
        lines = [t("Reliability: 100% (nothing missed so far)")]
    if member.community_id is not None:
        minimum = await reliability.minimum(ctx.db, member.community_id)
        if mine.percent < minimum:
            lines.append(t("Events here need {minimum}%. Complete a few small tasks to raise yours.",
                           minimum=minimum))
    return lines


async def percents(ctx: LinliContext, member_ids: Sequence[int]) -> dict[int, int]:
    """Each member's score, for lists staff see."""
    return {mid: r.percent for mid, r in (await reliability.of_members(ctx.db, member_ids, ctx.now())).items()}


async def staff_labels(ctx: LinliContext, t: Translator, member_ids: Sequence[int]) -> dict[int, str]:
    """" · reliability 90% (9 done, 1 missed, 0 late)" for those with a record (a search staff see)."""
    scores = await reliability.of_members(ctx.db, member_ids, ctx.now())
    return {mid: " · " + t("reliability {percent}% ({done} done, {missed} missed, {late} withdrawn late)",
                           percent=r.percent, done=r.done, missed=r.no_shows, late=r.late)
            for mid, r in scores.items() if r.recorded}


def _view(t: Translator, minimum: int) -> tuple[str, InlineKeyboardMarkup]:
    now = (t("Volunteers need at least {n}% to claim an event. Requests stay open to everyone.", n=minimum)
           if minimum else t("No minimum: every volunteer may claim events."))
    text = "\n".join([t("<b>Reliability</b>"), t(RULE), "", now, t("Choose the minimum to claim events:")])
    buttons = [((("✅ " if n == minimum else "") + (f"{n}%" if n else t("No minimum"))), f"rl:{n}")
               for n in reliability.MINIMUM_CHOICES]
    return text, inline([buttons[:3], buttons[3:]])


async def _staff_community(ctx: LinliContext, tg_user_id: int) -> int:
    """The community of this staff member (NotRegistered / NotAllowed otherwise)."""
    me = await load_member(ctx, tg_user_id)
    if me is None or me.community_id is None:
        raise NotRegistered()
    await require_staff(ctx.db, tg_user_id, ctx.settings.admin_ids, me.community_id)
    return me.community_id


async def reliability_command(update: Update, ctx: LinliContext) -> None:
    """/reliability (staff): the rule, and buttons for the minimum score to claim events."""
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    try:
        cid = await _staff_community(ctx, update.effective_user.id)
    except DomainError as err:
        await reply(update, error_text(t, err))
        return
    await reply(update, *_view(t, await reliability.minimum(ctx.db, cid)))


async def on_button(update: Update, ctx: LinliContext) -> None:
    """``rl:<percent>``: staff pick the minimum."""
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    t = await tr_for(update, ctx)
    value = parse_int((query.data or "").partition(":")[2], low=0, high=100, strict=True)
    try:
        cid = await _staff_community(ctx, query.from_user.id)
        if value is None:
            raise DomainError(N_("This button is out of date. Please use the latest message."))
        await reliability.set_minimum(ctx.db, tg_user_id=query.from_user.id, admin_ids=ctx.settings.admin_ids,
                                      community_id=cid, value=value, now=ctx.now())
    except DomainError as err:
        await answer(query, error_text(t, err))
        return
    await answer(query, t("Saved."))
    await edit_or_send(query, *_view(t, await reliability.minimum(ctx.db, cid)))


def register(app: LinliApp) -> None:
    app.add_handler(CommandHandler("reliability", reliability_command, filters=filters.ChatType.PRIVATE))
    app.add_handler(CallbackQueryHandler(on_button, pattern=r"^rl:"))
