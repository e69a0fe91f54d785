"""/settings (the menu's ⚙ Settings): private digest on/off and hour, quiet hours, honours in the group,
name on the leaderboard. /digest now: staff preview the digests."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot.context import LinliApp, LinliContext
from bot.conversations.waitlist import hold_words
from bot.i18n import Translator
from bot.jobs.sweeps import render_group_digest, render_staff_digest
from bot.menu import load_member, menu_item, participant
from bot.models import N_, DomainError
from bot.numbers import parse_int
from bot.renderers import RenderContext, Rendered, renderer
from bot.services import alerts, digest, expiry, members, notifications, points, waitlist
from bot.ui import answer, edit_or_send, inline, reply, tr_for
from storage import communities as community_store
from storage import members as member_store
from storage.members import Member


def _view(t: Translator, m: Member, community_time: str,
          community: CommunityChoices | None = None) -> tuple[str, InlineKeyboardMarkup]:
    """The member's settings; staff (``community`` given) also see their community's choices."""
    on = m.digest_enabled
    hour = m.digest_hour
    at = community_time if hour is None else f"{hour:02d}:00"
    quiet = "off" if m.quiet_start == m.quiet_end else f"{m.quiet_start}–{m.quiet_end}"
    text = "\n".join([
        t("<b>Reminders and digest</b>"),
        t("Private daily digest: on, at {at}", at=at) if on else t("Private daily digest: off"),
        t("Quiet hours: {q}", q=quiet) if quiet != "off" else t("Quiet hours: none"),
        t("During quiet hours, reminders and digests wait until morning. Messages about a task you claimed for that night still come."),
        t("Your honours are announced in the group: yes") if m.announce_consent
        else t("Your honours are announced in the group: no"),
        t("Your name on the leaderboard: hidden") if m.leaderboard_opt_out
        else t("Your name on the leaderboard: shown"),
    ])
    # A switch's data says what it switches to (``st:lb:1`` hides): a double tap, or a tap on an older
    # copy of this message, sets the same again rather than switching back.
    rows = [[(t("Turn digest off") if on else t("Turn digest on"), f"st:dg:{int(not on)}")],
            [(f"{h:02d}:00", f"st:h:{h}") for h in notifications.DIGEST_HOURS],
            [(t("Quiet {q}", q=k.replace("-", ":00–") + ":00") if k != "off" else t("No quiet hours"), f"st:q:{k}")
             for k in notifications.QUIET_PRESETS],
            [(t("Stop announcing my honours") if m.announce_consent else t("Announce my honours"),
              f"st:an:{int(not m.announce_consent)}")],
            [(t("Show my name on the leaderboard") if m.leaderboard_opt_out else t("Hide my name on the leaderboard"),
              f"st:lb:{int(not m.leaderboard_opt_out)}")]]
    if community is not None:
        text += "\n\n" + "\n".join([
            t("For the community: points expire at the end of the year after they are earned.")
            if community.expiry_on else t("For the community: points do not expire."),
            t("Urgent requests go to each on-duty volunteer at most {n} times a day.", n=community.daily_cap),
            t("A place given from a waiting list is held for {hold}.", hold=hold_words(t, community.hold_minutes))])
        rows.append([(t("Turn off points expiry") if community.expiry_on else t("Turn on points expiry"),
                      f"st:px:{int(not community.expiry_on)}")])
        rows.append([(t("{n} a day", n=n), f"st:uc:{n}") for n in alerts.CAP_CHOICES])
        rows.append([(t("Hold {hold}", hold=hold_words(t, n)), f"st:wh:{n}") for n in waitlist.HOLD_CHOICES])
    return text, inline(rows)


@dataclass(frozen=True)
class CommunityChoices:
    """What staff see of their community's choices in /settings."""

    community_id: int
    expiry_on: bool
    daily_cap: int
    hold_minutes: int


async def _community(ctx: LinliContext, m: Member) -> CommunityChoices | None:
    """The community's choices, for staff; None for everyone else."""
    if not m.is_staff or m.community_id is None:
        return None
    cid = m.community_id
    return CommunityChoices(cid, await expiry.is_on(ctx.db, cid), await alerts.daily_cap_of(ctx.db, cid),
                            await waitlist.hold_minutes(ctx.db, cid))


async def _member_row(ctx: LinliContext, tg_user_id: int) -> tuple[Member, str] | None:
    """The registered member and their community's digest time."""
    return await member_store.with_digest_time(ctx.db, tg_user_id)


async def settings_command(update: Update, ctx: LinliContext) -> None:
    user = update.effective_user
    assert user is not None
    t = await tr_for(update, ctx)
    found = await _member_row(ctx, user.id)
    if found is None:
        await reply(update, t("Please register first: send /start."))
        return
    text, markup = _view(t, *found, await _community(ctx, found[0]))
    await reply(update, text, markup)


@menu_item("settings", N_("⚙ Settings"), visible=participant, order=85,
           about=N_("reminders and the daily digest: when, or not at all."))
async def _menu_settings(update: Update, ctx: LinliContext) -> None:
    await settings_command(update, ctx)


async def _pressed_by_member(update: Update, ctx: LinliContext) -> tuple[CallbackQuery, Translator, Member] | None:
    """The press, the presser's words and member row; None once an unregistered presser was answered."""
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    t = await tr_for(update, ctx)
    found = await _member_row(ctx, update.effective_user.id)
    if found is None:
        await answer(query, t("Please register first: send /start."))
        return None
    return query, t, found[0]


def _switch(data: list[str], name: str) -> bool | None:
    """What a switch button (``st:<name>:1`` or ``st:<name>:0``) switches to; None for other data."""
    if len(data) == 3 and data[1] == name and data[2] in ("0", "1"):
        return data[2] == "1"
    return None


async def _member_choice(ctx: LinliContext, m: Member, tg_user_id: int, data: list[str]) -> bool:
    """The member's own settings; False for a stale or unknown button."""
    now = ctx.now()
    if (digest_on := _switch(data, "dg")) is not None:
        return await notifications.update_member_settings(ctx.db, m.id, now, digest_enabled=digest_on)
    if len(data) == 3 and data[1] == "h" and (hour := parse_int(data[2], low=0, high=23, strict=True)) is not None:
        return await notifications.update_member_settings(ctx.db, m.id, now, digest_hour=hour, digest_enabled=True)
    if len(data) == 3 and data[1] == "q":
        return await notifications.update_member_settings(ctx.db, m.id, now, quiet=data[2])
    if (consent := _switch(data, "an")) is not None:
        await members.set_announce_consent(ctx.db, m.id, consent, now)
        return True
    if (hidden := _switch(data, "lb")) is not None:
        await points.set_opt_out(ctx.db, tg_user_id=tg_user_id, opt_out=hidden, now=now)
        return True
    return False


async def on_button(update: Update, ctx: LinliContext) -> None:
    pressed = await _pressed_by_member(update, ctx)
    if pressed is None:
        return
    query, t, m = pressed
    data = (query.data or "").split(":")
    if len(data) > 1 and data[1] in ("px", "uc", "wh"):
        ok = await _community_choice(ctx, m, query.from_user.id, data)
    else:
        ok = await _member_choice(ctx, m, query.from_user.id, data)
    if not ok:
        await answer(query, t("This button is out of date. Please use the latest message."))
        return
    await answer(query, t("Saved."))
    found = await _member_row(ctx, query.from_user.id)
    assert found is not None
    text, markup = _view(t, *found, await _community(ctx, found[0]))
    await edit_or_send(query, text, markup)


async def _community_choice(ctx: LinliContext, m: Member, tg_user_id: int, data: list[str]) -> bool:
    """Staff turn points expiry on or off (``st:px:1``, ``st:px:0``), choose the urgent alerts' daily cap
    (``st:uc:N``) or how long a place from a waiting list is held (``st:wh:MINUTES``); False for
    anyone else or a stale button."""
    shown = await _community(ctx, m)
    if shown is None:
        return False
    cid, admins = shown.community_id, ctx.settings.admin_ids
    try:
        if data[1] == "px":
            on = _switch(data, "px")
            if on is None:
                return False
            await expiry.set_policy(ctx.db, community_id=cid, tg_user_id=tg_user_id, admin_ids=admins, on=on,
                                    now=ctx.now())
            return True
        n = parse_int(data[2], low=1, high=1000, strict=True) if len(data) == 3 else None
        if n is None:
            return False
        if data[1] == "wh":
            await waitlist.set_hold_minutes(ctx.db, community_id=cid, tg_user_id=tg_user_id, admin_ids=admins,
                                            minutes=n, now=ctx.now())
        else:
            await alerts.set_daily_cap(ctx.db, community_id=cid, tg_user_id=tg_user_id, admin_ids=admins, cap=n,
                                       now=ctx.now())
    except DomainError:
        return False
    return True


async def digest_command(update: Update, ctx: LinliContext) -> None:
    """``/digest now``: staff see today's group and staff digests (nothing is sent to anyone)."""
    user = update.effective_user
    assert user is not None
    t = await tr_for(update, ctx)
    member = await load_member(ctx, user.id)
    if member is None or not member.is_staff or member.community_id is None:
        await reply(update, t("Only community staff can preview the digest."))
        return
    if [a.lower() for a in (ctx.args or [])] != ["now"]:
        await reply(update, t("Send /digest now to preview today's digest."))
        return
    tz = await community_store.timezone_of(ctx.db, member.community_id) or ctx.settings.timezone
    now = ctx.now()
    async with ctx.db.transaction() as conn:
        group = await digest.group_digest(conn, member.community_id, now, tz)
        staff = await digest.staff_digest(conn, member.community_id, now)
    lang = t.lang if hasattr(t, "lang") else "zh"
    rctx = RenderContext(ctx.db, t, str(lang), user.id, member.id, ctx.runtime.bot_username, now=now,
                         default_tz=ctx.settings.timezone)
    if group is None and staff is None:
        await reply(update, t("Nothing to report today: no digest would be sent."))
        return
    if group is not None:
        await reply(update, t("Preview of the group digest:") + "\n\n" + render_group_digest(rctx, group))
    if staff is not None:
        await reply(update, render_staff_digest(rctx, staff))


def _announce_question(t: Translator) -> str:
    return t("When you reach a milestone (your first task done, 10 tasks…), may we congratulate you"
             " by name in the volunteer group? You can change this later with ⚙ Settings in the menu.")


@renderer("announce_ask")
async def _r_announce_ask(rc: RenderContext, p: dict[str, object]) -> Rendered | None:
    """Asked once, at a volunteer's first claim (or before a first honour): before any announcement."""
    t = rc.t
    return Rendered(text=_announce_question(t),
                    reply_markup=inline([[(t("Yes, announce it"), "an:y"), (t("No, keep it private"), "an:n")]]))


async def on_announce_answer(update: Update, ctx: LinliContext) -> None:
    """The answer to the question above: saved at once, the question shows what was chosen."""
    pressed = await _pressed_by_member(update, ctx)
    if pressed is None:
        return
    query, t, m = pressed
    consent = (query.data or "") == "an:y"
    await members.set_announce_consent(ctx.db, m.id, consent, ctx.now())
    await answer(query, t("Saved."))
    chosen = (t("Your honours are announced in the group: yes") if consent
              else t("Your honours are announced in the group: no"))
    await edit_or_send(query, _announce_question(t) + "\n\n" + chosen)


def register(app: LinliApp) -> None:
    private = filters.ChatType.PRIVATE
    app.add_handler(CallbackQueryHandler(on_announce_answer, pattern=r"^an:[yn]$"))
    app.add_handler(CommandHandler("settings", settings_command, filters=private))
    app.add_handler(CommandHandler("digest", digest_command, filters=private))
    app.add_handler(CallbackQueryHandler(on_button, pattern=r"^st:"))
