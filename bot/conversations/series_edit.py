"""Staff edit a recurring event's title, description, points or places from a day on: the steps of
the /series dialog after "✏ Edit" (bot/conversations/series.py starts them): which field → the new
value → from which day → what will change, confirmed with a button. The rules are
bot/services/series.py (``plan_edit``, ``edit_from``).
"""

from __future__ import annotations

from datetime import date

from telegram import Update

from bot import dialogs
from bot.context import LinliContext
from bot.conversations.request_flow import parse_when
from bot.dialogs import Dialog, Input, button
from bot.i18n import Translator
from bot.menu import main_menu
from bot.models import DomainError, Member
from bot.services import series, tasks
from bot.services.series import EditPlan
from bot.ui import error_text, esc, inline, reply, tr_for
from storage.series import Series

STEPS = ("field", "value", "from", "confirm")


def _field(t: Translator, field: str) -> str:
    names = {"title": t("the title"), "description": t("the description"), "points": t("the points"),
             "slots": t("the places")}
    return names.get(field, field)


def _value(t: Translator, value: int | str | None, field: str) -> str:
    if value is None:
        return t("the category's points") if field == "points" else "—"
    if isinstance(value, int):
        return str(value)
    return "“" + esc(value if len(value) <= 60 else value[:59] + "…") + "”"


async def typed_day(ctx: LinliContext, s: Series, text: str) -> date | None:
    """A day typed as 2026-05-16 or 05-16 (the community's calendar), None if it is not one."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    tz = await series.tz_of(ctx.db, s.community_id)
    when = parse_when(text + " 12:00", ctx.now(), tz) if text else None  # "05-16": that day
    return when.date() if when is not None else None


async def ask(update: Update, ctx: LinliContext, dialog: Dialog, prefix: str, s: Series) -> None:
    """The question of an edit step (``prefix``: what to say first, ending in a blank line or empty)."""
    t = await tr_for(update, ctx)
    cancel = [(t("✖ Cancel"), button(dialog.step, "-cancel"))]
    if dialog.step == "field":
        rows = [[(t("Title"), button("field", "title")), (t("Description"), button("field", "description"))],
                [(t("Points"), button("field", "points")), (t("Places"), button("field", "slots"))], cancel]
        await reply(update, prefix + t("What should change in the events of series #{id}?", id=s.id), inline(rows))
    elif dialog.step == "value":
        field = str(dialog.data.get("field"))
        words = {"title": t("Please type the new title (1 to {n} characters).", n=tasks.EDITABLE["title"]),
                 "description": t("Please type the new description (1 to {n} characters).",
                                  n=tasks.EDITABLE["description"]),
                 "points": t("How many points should each volunteer earn? Please type a number from 0 to {n}.",
                             n=tasks.POINTS_MAX),
                 "slots": t("How many places should each event have? Please type a number from 1 to {n}.",
                            n=tasks.SLOTS_MAX)}
        await reply(update, prefix + words.get(field, ""), inline([cancel]))
    elif dialog.step == "from":
        today = await series.today(ctx.db, s.community_id, ctx.now())
        rows = [[(t("From today ({day})", day=today.isoformat()), button("from", "today"))],
                [(t("From the next one not yet posted ({day})", day=s.next_day), button("from", "next"))], cancel]
        await reply(update, prefix + t("From which day on should the change apply? Press a button, or type the day, "
                                       "e.g. {day}.", day=s.next_day), inline(rows))
    else:
        await _ask_confirm(update, ctx, dialog, prefix, t)


async def _ask_confirm(update: Update, ctx: LinliContext, dialog: Dialog, prefix: str, t: Translator) -> None:
    try:
        plan = await _plan(ctx, dialog)
    except DomainError as err:  # the series ended or changed meanwhile: said, and the dialog ends
        await dialogs.finish(ctx, dialog.tg_user_id)
        await reply(update, error_text(t, err), await main_menu(ctx, dialog.tg_user_id, t))
        return
    rows = [[(t("✅ Yes, change it"), button("confirm", "yes")), (t("✖ Cancel"), button("confirm", "-cancel"))]]
    await reply(update, prefix + describe(t, plan, done=False) + "\n\n" + t("Change it?"), inline(rows))


async def _plan(ctx: LinliContext, dialog: Dialog) -> EditPlan:
    d = dialog.data
    return await series.plan_edit(ctx.db, ctx.now(), int(d.get("member", 0)), int(d.get("series", 0)),
                                  str(d.get("field")), str(d.get("value", "")), date.fromisoformat(str(d.get("from"))))


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


def describe(t: Translator, plan: EditPlan, *, done: bool) -> str:
    """What the edit changes (before: will change; after: changed)."""
    what = t("Series #{id}: {field} {old} → {new}, from {day} on.", id=plan.series_id, field=_field(t, plan.field),
             old=_value(t, plan.old, plan.field), new=_value(t, plan.new, plan.field), day=plan.from_day.isoformat())
    lines = [t("Done.") + " " + what if done else what]
    if plan.split:
        lines.append(t("The events before that day keep the old value; from that day on the series goes on as a "
                       "new series with the new value."))
    else:
        lines.append(t("The events not yet posted take the new value."))
    if plan.change:
        lines.append(t.np("The event already posted {ids} takes it too: its card is redrawn and its volunteers are told.",
                          "The events already posted {ids} take it too: their cards are redrawn and their volunteers "
                          "are told.", len(plan.change), ids=_ids(plan.change)))
    if plan.kept:
        lines.append(t.np("The event {ids} stays as it is (started, finished, completed by someone, or more volunteers "
                          "than places).", "The events {ids} stay as they are (started, finished, completed by "
                          "someone, or more volunteers than places).", len(plan.kept), ids=_ids(plan.kept)))
    if done and plan.continued_as is not None:
        lines.append(t("The new series is #{id} (see /series).", id=plan.continued_as))
    lines.append(t("Finished events and points already earned never change."))
    return "\n".join(lines)


async def step(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input, member: Member, s: Series) -> None:
    """Take the answer to an edit step and ask the next question (or finish)."""
    t = await tr_for(update, ctx)
    try:
        if dialog.step == "confirm":
            if not inp.pressed("yes"):
                await ask(update, ctx, dialog, t("Please press one of the buttons.") + "\n\n", s)
                return
            plan = await series.edit_from(ctx.db, ctx.now(), member.id, s.id, str(dialog.data.get("field")),
                                          str(dialog.data.get("value", "")),
                                          date.fromisoformat(str(dialog.data.get("from"))))
            await dialogs.finish(ctx, dialog.tg_user_id)
            await reply(update, describe(t, plan, done=True), await main_menu(ctx, dialog.tg_user_id, t))
            return
        if not await _take(ctx, dialog, inp, member, s):
            await ask(update, ctx, dialog, t("Sorry, I could not read that.") + "\n\n", s)
            return
    except DomainError as err:
        await ask(update, ctx, dialog, error_text(t, err) + "\n\n", s)
        return
    await dialogs.save(ctx, dialog)
    await ask(update, ctx, dialog, "", s)


async def _take(ctx: LinliContext, dialog: Dialog, inp: Input, member: Member, s: Series) -> bool:
    """The answer to the field, value or from step, noted in the dialog (not saved); False if unreadable."""
    text = (inp.text or "").strip() if inp.kind == "text" else ""
    if dialog.step == "field":
        field = inp.text if inp.kind == "callback" and inp.text in series.EDIT_FIELDS else None
        if field is None:
            return False
        dialog.data.update(field=field, member=member.id)
        dialog.step = "value"
        return True
    if dialog.step == "value":
        if not text:
            return False
        series.edit_value(str(dialog.data.get("field")), text)  # a bad value is said now, not at the end
        dialog.data["value"] = text
        dialog.step = "from"
        return True
    day = await _from_day(ctx, s, inp, text)
    if day is None:
        return False
    dialog.data.update(member=member.id, **{"from": day.isoformat()})
    await series.plan_edit(ctx.db, ctx.now(), member.id, s.id, str(dialog.data.get("field")),
                           str(dialog.data.get("value", "")), day)  # a day it cannot start from is said now
    dialog.step = "confirm"
    return True


async def _from_day(ctx: LinliContext, s: Series, inp: Input, text: str) -> date | None:
    if inp.pressed("today"):
        return await series.today(ctx.db, s.community_id, ctx.now())
    if inp.pressed("next"):
        if s.next_day is None:
            raise series.SeriesGone()
        return date.fromisoformat(s.next_day)
    return await typed_day(ctx, s, text) if text else None
