"""Staff's recurring events: /series (and the "🔁 My series" menu button) lists the community's running
series (the two halves of a series split by an edit from a later day side by side, named as one
series; a series with nothing left to post while its events are still to come, without buttons) with
buttons to edit the title, description, points or places from a day on
(bot/conversations/series_edit.py: those also reach the events already posted that have not
started), to change the time of the events still to come, or to stop the series from a day on. A
small stored dialog (flow "series"): pick → field → value → from → confirm / time / stop.

A new time or a stop leaves the events already posted as they are; the answer says which, and staff
change or cancel those on their cards (bot/services/series.py).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from telegram import Update
from telegram.ext import CommandHandler, filters

from bot import dialogs
from bot.context import LinliApp, LinliContext
from bot.conversations import series_edit
from bot.conversations.request_flow import repeat_words
from bot.dialogs import Dialog, Input, button, flow
from bot.i18n import Translator
from bot.menu import main_menu, menu_item, staff
from bot.models import N_, DomainError, Member, NotAllowed
from bot.numbers import parse_int
from bot.services import series
from bot.services.access import require_staff
from bot.ui import error_text, esc, inline, reply, tr_for
from storage.series import Series

FLOW = "series"
_RANGE = re.compile(r"([0-9]{1,2}:[0-9]{2})\s*(?:-|–|~|至|到|to|\s)\s*([0-9]{1,2}:[0-9]{2})")


def _end(s: Series) -> str:
    start = series.parse_hm(s.start_time)
    if start is None:
        return ""
    end = datetime.combine(date(2000, 1, 1), start) + timedelta(minutes=s.minutes)
    return end.strftime("%H:%M")


def describe(t: Translator, s: Series, listed: series.Listed | None = None) -> str:
    """One series in a few lines (staff's private chat); ``listed``: how /series found it (split
    halves named as one series, nothing left to post)."""
    name = esc(s.title or s.description or s.category)
    goes_on = listed.goes_on_as if listed is not None else ()
    last = min([s.last_day, *((date.fromisoformat(c.first_day) - timedelta(days=1)).isoformat() for c in goes_on)])
    lines = [t("#{id} “{name}”: {how}, {start}–{end}, {n} places, {first} to {last}.", id=s.id, name=name,
               how=repeat_words(t, s.weekdays), start=s.start_time, end=_end(s), n=s.slots, first=s.first_day,
               last=last)]
    if listed is not None and listed.split_from is not None:
        lines.append(t("The same series as #{id}, changed from {day} on.", id=listed.split_from, day=s.first_day))
    if s.next_day:
        lines.append(t("Next to be posted: the event of {day}.", day=s.next_day))
    elif listed is not None:
        lines.append(_nothing_left(t, listed.posted_ahead))
    for c in goes_on:
        lines.append(t("Changed from {day} on: from then it goes on as #{id}.", day=c.first_day, id=c.id))
    if s.stop_day and s.stop_day not in {c.first_day for c in goes_on}:
        lines.append(t("Stopped from {day} on.", day=s.stop_day))
    return "\n".join(lines)


def _nothing_left(t: Translator, ahead: tuple[int, ...]) -> str:
    said = t("Nothing left to post: all its events are posted.")
    if not ahead:
        return said
    return said + " " + t.np("The event still to come (#{ids}) can be changed or cancelled on its card.",
                             "The {n} events still to come (#{ids}) can be changed or cancelled on their cards.",
                             len(ahead), ids=", #".join(str(i) for i in ahead))


async def _staff(update: Update, ctx: LinliContext) -> Member | None:
    """The staff member pressing or typing, else None (told why)."""
    user = update.effective_user
    if user is None:
        return None
    t = await tr_for(update, ctx)
    try:
        member = await require_staff(ctx.db, user.id, ctx.settings.admin_ids)
    except NotAllowed:
        await reply(update, t("Sorry, only community staff can manage recurring events."))
        return None
    if member is None or member.community_id is None:
        await reply(update, t("Please register in your community first (send /start), so I know where to publish."))
        return None
    return member


async def series_command(update: Update, ctx: LinliContext) -> None:
    """/series: the community's series, with buttons for those still running (bot/services/series.py
    ``listing``: the halves of a split series side by side; those with nothing left to post, no buttons)."""
    member = await _staff(update, ctx)
    if member is None or member.community_id is None:
        return
    t = await tr_for(update, ctx)
    found = await series.listing(ctx.db, member.community_id, ctx.now())
    await dialogs.start(ctx, int(member.tg_user_id or 0), FLOW, "pick", {})
    ahead = await series.days_ahead(ctx.db, member.community_id)
    text = [t("<b>Recurring events</b> (each event is posted in the group {n} days before it starts)", n=ahead)]
    if not any(one.series.next_day for one in found):
        text.append(t("There are no recurring events running. To start one, press 📢 Publish a task, "
                      "choose an event and answer “Does the event repeat?”."))
    rows: list[list[tuple[str, str]]] = []
    for one in found:
        s = one.series
        text.append(describe(t, s, one))
        if s.next_day:
            rows.append([(t("✏ Edit #{id}", id=s.id), button("pick", f"e{s.id}")),
                         (t("🕒 Time #{id}", id=s.id), button("pick", f"t{s.id}")),
                         (t("⏹ Stop #{id}", id=s.id), button("pick", f"s{s.id}"))])
    rows.append([(t("📅 Days ahead"), button("pick", "a0")), (t("✖ Cancel"), button("pick", "-cancel"))])
    await reply(update, "\n\n".join(text), inline(rows))


async def _ask(update: Update, ctx: LinliContext, dialog: Dialog, prefix: str = "") -> None:
    """The question of the dialog's step."""
    t = await tr_for(update, ctx)
    prefix = prefix if not prefix or prefix.endswith("\n") else prefix + "\n\n"
    cancel = [(t("✖ Cancel"), button(dialog.step, "-cancel"))]
    if dialog.step == "ahead":
        await reply(update, prefix + t("How many days before it starts should each event of a series be posted in "
                                       "the group? Please type a number from 1 to {n}.", n=series.DAYS_AHEAD_MAX),
                    inline([cancel]))
        return
    s = await series.load(ctx.db, int(dialog.data.get("series", 0)))
    if dialog.step == "pick" or s is None:
        await reply(update, prefix + t("Please press one of the buttons."))
        return
    if dialog.step in series_edit.STEPS:
        await series_edit.ask(update, ctx, dialog, prefix, s)
    elif dialog.step == "time":
        await reply(update, prefix + t("From when to when should the events still to come run? Please type the "
                                       "times, e.g. 09:00-11:00."), inline([cancel]))
    else:
        rows = [[(t("From the next one ({day})", day=s.next_day), button("stop", "next"))], cancel]
        await reply(update, prefix + t("From which day on should there be no more events? Press the button, or "
                                       "type the day, e.g. {day}.", day=s.next_day), inline(rows))


async def _done(update: Update, ctx: LinliContext, dialog: Dialog, text: str) -> None:
    t = await tr_for(update, ctx)
    await dialogs.finish(ctx, dialog.tg_user_id)
    await reply(update, text, await main_menu(ctx, dialog.tg_user_id, t))


def _left_alone(t: Translator, posted: list[int]) -> str:
    if not posted:
        return ""
    return "\n" + t.np("The event already posted stays as it is (#{ids}); change or cancel it on its card if needed.",
                     "{n} events already posted stay as they are (#{ids}); change or cancel them on their cards "
                     "if needed.", len(posted), ids=", #".join(str(i) for i in posted))


@flow(FLOW, ask=_ask)
async def series_flow(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input) -> None:
    t = await tr_for(update, ctx)
    if inp.pressed("-cancel"):
        await _done(update, ctx, dialog, t("Cancelled. Nothing was changed."))
        return
    member = await _staff(update, ctx)
    if member is None:
        await dialogs.finish(ctx, dialog.tg_user_id)
        return
    if dialog.step == "pick":
        await _pick(update, ctx, dialog, inp, member)
        return
    s = await series.load_in(ctx.db, int(dialog.data.get("series", 0)), member.community_id) \
        if dialog.step != "ahead" else None
    if dialog.step != "ahead" and (s is None or s.next_day is None):  # it ended meanwhile: said, and done
        await _done(update, ctx, dialog, error_text(t, series.SeriesGone()))
        return
    if dialog.step in series_edit.STEPS and s is not None:
        await series_edit.step(update, ctx, dialog, inp, member, s)
        return
    try:
        said = await _apply(ctx, dialog, inp, member, t)
    except DomainError as err:
        await _ask(update, ctx, dialog, error_text(t, err))
        return
    if said is None:
        await _ask(update, ctx, dialog, t("Sorry, I could not read that."))
        return
    await _done(update, ctx, dialog, said)


async def _pick(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input, member: Member) -> None:
    value = inp.text or "" if inp.kind == "callback" else ""
    steps = {"e": "field", "t": "time", "s": "stop", "a": "ahead"}
    # "a0": Days ahead is for the whole community, so its button carries 0 rather than a series.
    series_id = parse_int(value[1:], low=0, strict=True) if value[:1] in steps else None
    if series_id == 0 and value[:1] != "a":
        series_id = None
    if series_id and await series.load_in(ctx.db, series_id, member.community_id) is None:
        series_id = None   # another community's series (a forged button): asked again, nothing shown
    if series_id is None:
        await _ask(update, ctx, dialog)
        return
    dialog.step, dialog.data = steps[value[:1]], {"series": series_id}
    await dialogs.save(ctx, dialog)
    await _ask(update, ctx, dialog)


async def _apply(ctx: LinliContext, dialog: Dialog, inp: Input, member: Member, t: Translator) -> str | None:
    """Do what was answered; the words to say, or None if the answer could not be read."""
    series_id, now = int(dialog.data.get("series", 0)), ctx.now()
    text = (inp.text or "").strip() if inp.kind == "text" else ""
    n = parse_int(text, low=-(10**9), high=10**9)
    if dialog.step == "ahead":
        if n is None:
            return None
        await series.set_days_ahead(ctx.db, now, member.id, n)
        return t("Done: each event of a series is now posted {n} days before it starts.", n=n)
    if dialog.step == "time":
        m = _RANGE.fullmatch(text.replace("：", ":"))
        start, end = (series.parse_hm(m.group(1)), series.parse_hm(m.group(2))) if m else (None, None)
        if start is None or end is None:
            return None
        posted = await series.edit_time(ctx.db, now, member.id, series_id, start, end)
        return (t("Done: the events still to come will run from {start} to {end}.", start=start.strftime("%H:%M"),
                  end=end.strftime("%H:%M")) + _left_alone(t, posted))
    day = await _stop_day(ctx, series_id, inp, text)
    if day is None:
        return None
    posted = await series.stop_from(ctx.db, now, member.id, series_id, day)
    return t("Done: no more events of this series from {day} on.", day=day.isoformat()) + _left_alone(t, posted)


async def _stop_day(ctx: LinliContext, series_id: int, inp: Input, text: str) -> date | None:
    s = await series.load(ctx.db, series_id)
    if s is None:
        raise series.SeriesGone()
    if inp.pressed("next"):
        if s.next_day is None:
            raise series.SeriesGone()
        return date.fromisoformat(s.next_day)
    return await series_edit.typed_day(ctx, s, text)


@menu_item("series", N_("🔁 My series"), visible=staff, order=16,
           about=N_("events that come back every week, published for you."))
async def _menu_series(update: Update, ctx: LinliContext) -> None:
    await series_command(update, ctx)


def register(app: LinliApp) -> None:
    """Add /series (staff, private chats)."""
    app.add_handler(CommandHandler("series", series_command, filters=filters.ChatType.PRIVATE))
