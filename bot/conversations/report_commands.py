"""Staff reports: /stats [period] [community|all], /report [YYYY-MM] [community|all],
/export [period] [community|all]. Private chat only; staff see their own community,
super-admins any (by id) or all.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta, tzinfo

from telegram import InputFile, Update
from telegram.ext import CommandHandler, filters

from bot.context import LinliApp, LinliContext
from bot.i18n import Translator
from bot.models import NotAllowed
from bot.numbers import parse_int
from bot.report_files.charts import CHART_NAMES, render_charts
from bot.report_files.exports import PERSONAL_FILES, write_exports
from bot.report_files.summary import summary_text
from bot.services import access, reports
from bot.ui import error_text, reply, shown, tr_for

log = logging.getLogger(__name__)


async def _scope(update: Update, ctx: LinliContext, t: Translator,
                 default_period: str) -> tuple[int | None, datetime, datetime, bool, tzinfo] | None:
    """(community or None for all, start, end, is_super_admin, the time zone the period was read in:
    the community's), or None after replying."""
    assert update.effective_user is not None
    uid = update.effective_user.id
    args = list(ctx.args or [])
    is_admin = uid in ctx.settings.admin_ids
    try:
        member = await access.require_staff(ctx.db, uid, ctx.settings.admin_ids)
    except NotAllowed as exc:
        await reply(update, error_text(t, exc))
        return None
    community: int | None = member.community_id if member else None
    if len(args) >= 2:
        target = args.pop(1)
        if not is_admin:
            await reply(update, error_text(t, NotAllowed()))
            return None
        if target.lower() == "all":
            community = None
        elif (number := parse_int(target, hash_ok=True)) is not None:
            community = number
        else:
            await reply(update, t("Please give a community number or “all”."))
            return None
    elif member is None or member.community_id is None:
        community = None if is_admin else community
    tz = await reports.zone(ctx.db, community, ctx.settings.tz)
    period = reports.parse_period(args[0] if args else default_period, ctx.now(), tz)
    if period is None:
        await reply(update, t("I did not understand the period. Try: week, month, 2026-05 or 2026-05-01..2026-05-31."))
        return None
    return community, period[0], period[1], is_admin, tz


def _title(t: Translator, start: datetime, end: datetime) -> str:
    return t("Report {a} to {b}", a=start.strftime("%Y-%m-%d"), b=(end - timedelta(days=1)).strftime("%Y-%m-%d"))


async def _period_stats(update: Update, ctx: LinliContext,
                        default_period: str) -> tuple[Translator, reports.Stats, str] | None:
    """What /stats and /report open with: the asker's words, the numbers of the community and
    period asked for, and the report's title; None after replying why not."""
    t = await tr_for(update, ctx)
    scope = await _scope(update, ctx, t, default_period)
    if scope is None:
        return None
    community, start, end, _, tz = scope
    st = await reports.compute_stats(ctx.db, community_id=community, start=start, end=end, tz=tz)
    return t, st, _title(t, start, end)


async def cmd_stats(update: Update, ctx: LinliContext) -> None:
    if (opened := await _period_stats(update, ctx, "week")) is not None:
        t, st, title = opened
        await shown(ctx, await reply(update, summary_text(t, st, title=title)), st.named)


async def cmd_report(update: Update, ctx: LinliContext) -> None:
    if (opened := await _period_stats(update, ctx, "month")) is None:
        return
    t, st, title = opened
    assert update.effective_chat is not None
    for name, png in zip(CHART_NAMES, render_charts(st, chinese=getattr(t, "lang", "zh") == "zh"), strict=True):
        await ctx.bot.send_photo(update.effective_chat.id, photo=InputFile(png, filename=f"{name}.png"))
    await shown(ctx, await reply(update, summary_text(t, st, title=title)), st.named)


async def cmd_export(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    scope = await _scope(update, ctx, t, "month")
    if scope is None:
        return
    community, start, end, is_admin, _ = scope
    assert update.effective_chat is not None
    await reply(update, t("Preparing the export. The files follow in a moment."))
    named: set[int] = set()
    paths = await write_exports(ctx.db, community_id=community, start=start, end=end, with_phone=is_admin,
                                named=named)
    try:
        for path in paths:
            with path.open("rb") as f:
                sent = await ctx.bot.send_document(update.effective_chat.id, document=InputFile(f, filename=path.name))
            if path.name in PERSONAL_FILES:  # names (and phones): deleted if one of them erases themselves
                await shown(ctx, sent, named, media=True)
    finally:
        shutil.rmtree(paths[0].parent, ignore_errors=True)


def register(app: LinliApp) -> None:
    """Add this feature's handlers to the application."""
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("stats", cmd_stats, filters=private))
    app.add_handler(CommandHandler("report", cmd_report, filters=private))
    app.add_handler(CommandHandler("export", cmd_export, filters=private))
