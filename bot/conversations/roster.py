"""Staff see an event's volunteers and take one off it, in a private chat (rules: bot/services/roster.py).

``/volunteers <event number>`` (also named in the check-in message and /help) lists who holds a place
and who waits. Under each name: "✖ Remove" and, until the event starts, "🚫 Not coming". Either
asks first ("Remove Li from “Tree planting”?" Yes / No) in the same message; Yes ends the place,
the message then shows the list as it is now.

Callback data: ``vr:<event>:<member>`` / ``vn:<event>:<member>`` ask; ``vry:…`` / ``vny:…`` do it;
``vb:<event>[:<page>]`` No (back to the list). A list of more than ``MAX_LISTED`` places is shown a
page at a time: ``vp:<event>:<page>`` (Previous / Next, page 0 first); after a question the list comes
back at the page of the name it was about. The list names the first ``MAX_WAITING_LISTED`` waiting and
says how many more; ``vw:<event>:<page>`` shows the whole waiting list, ``WAITING_PAGE`` names a page,
with Previous / Next and a way back to the list (``vp:<event>:0``).
"""

from __future__ import annotations

from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot.context import LinliApp, LinliContext
from bot.conversations import reliability as reliability_ui
from bot.fit import MESSAGE_LIMIT, clip, fit, visible_len
from bot.i18n import Translator
from bot.models import N_, DomainError, InvalidState
from bot.renderers import RenderContext, Rendered, renderer
from bot.services import roster
from bot.ui import (
    answer,
    edit_or_send,
    error_text,
    esc,
    event_time,
    inline,
    only_number,
    reply,
    shown,
    task_name,
    tr_for,
)
from storage import tasks as task_store
from storage.claims import Attendee

MAX_LISTED = 30   # names with buttons in one message (Telegram allows 100 buttons): one page
MAX_PAGE = 999_999  # a larger page number is no button of ours
MAX_WAITING_LISTED = 30  # waiting names on the list of places at most (fewer when long names would not fit)
WAITING_PAGE = 50   # names on a page of the whole waiting list, one a line
NAME_SHOWN = 48     # characters of a name in these lists (Telegram's names run to 129)
ROOM_FOR_SAID = 300  # a list is kept this much under a message, for what was just done above it
USAGE = N_("Please write: /volunteers <event number>")


def _short(name: str) -> str:
    return name if len(name) <= 16 else name[:15] + "…"


def _pages(r: roster.Roster) -> int:
    return max(1, -(-len(r.places) // MAX_LISTED))


def _shown(r: roster.Roster, page: int) -> tuple[int, list[Attendee]]:
    """The page's first number (from 0) and its places; a page past the end shows the last one."""
    first = min(page, _pages(r) - 1) * MAX_LISTED
    return first, r.places[first:first + MAX_LISTED]


def _name(attendee: Any) -> str:
    """A name as a list shows it: escaped, a very long one shortened (the list must fit a message)."""
    return esc(clip(attendee.display_name or "?", NAME_SHOWN))


def _lines(t: Translator, r: roster.Roster, when: str, scores: dict[int, int], page: int,
           waiting_named: int = MAX_WAITING_LISTED) -> list[str]:
    task = r.task
    lines = [t("<b>Volunteers of “{event}”</b> (#{id})", event=task_name(t, task), id=task.id)]
    if when:
        lines.append(t("When: {w}", w=esc(when)))
    lines.append(t("Places: {taken}/{slots} · Waiting list: {n}", taken=len(r.places), slots=task.slots,
                   n=len(r.waiting)))
    first, shown = _shown(r, page)
    if _pages(r) > 1:
        lines.append(t("Showing {a}–{b} of {n}: press “Next ▶” or “◀ Previous” below to see the others.",
                       a=first + 1, b=first + len(shown), n=len(r.places)))
    for i, p in enumerate(shown, first + 1):
        mark = " ✓" if p.state == "done" else " " + t("(offered, not yet kept)") if p.member_id in r.offered else ""
        lines.append(f"{i}. {_name(p)}{mark} · {scores.get(p.member_id, 100)}%")
    if not r.places:
        lines.append(t("Nobody has a place yet."))
    if r.waiting:
        named = r.waiting[:max(1, waiting_named)]
        line = t("Waiting list: {names}", names=", ".join(
            f"{i}. {_name(w)}" for i, w in enumerate(named, 1)))
        if len(r.waiting) > len(named):
            line += " " + t("… and {n} more: press “🕒 Whole waiting list” below to see them all.",
                            n=len(r.waiting) - len(named))
        lines.append(line)
    if task.state not in roster.MANAGED_STATES:
        lines.append(t("This event is closed or cancelled: the list can no longer be changed."))
    elif r.places:
        lines.append(t("To take someone off, press “✖” beside their name: they are told, and the place goes to"
                       " the first one waiting."))
        if r.before_start:
            lines.append(t("“🚫 Not coming” (until the start): they said they will not come, or could not be"
                           " reached. It counts as a missed event in their reliability."))
    return lines


def _buttons(t: Translator, r: roster.Roster, page: int,
             waiting_named: int = MAX_WAITING_LISTED) -> InlineKeyboardMarkup | None:
    rows: list[list[tuple[str, str]]] = []
    first, shown = _shown(r, page)
    if r.task.state in roster.MANAGED_STATES:
        for p in shown:
            name = _short(p.display_name or "?")
            row = [(t("✖ Remove {name}", name=name), f"vr:{r.task.id}:{p.member_id}")]
            if r.before_start:
                row.append((t("🚫 Not coming"), f"vn:{r.task.id}:{p.member_id}"))
            rows.append(row)
    turn = first // MAX_LISTED
    paging = [(t("◀ Previous"), f"vp:{r.task.id}:{turn - 1}")] if turn > 0 else []
    if first + len(shown) < len(r.places):
        paging.append((t("Next ▶"), f"vp:{r.task.id}:{turn + 1}"))
    if paging:
        rows.append(paging)
    if len(r.waiting) > max(1, waiting_named):
        rows.append([(t("🕒 Whole waiting list"), f"vw:{r.task.id}:0")])
    return inline(rows) if rows else None


def _waiting_view(t: Translator, r: roster.Roster, page: int) -> tuple[str, InlineKeyboardMarkup]:
    """A page of the whole waiting list (a page past the end shows the last one), in order."""
    pages = max(1, -(-len(r.waiting) // WAITING_PAGE))
    turn = min(page, pages - 1)
    first = turn * WAITING_PAGE
    shown = r.waiting[first:first + WAITING_PAGE]
    lines = [t("<b>Waiting list of “{event}”</b> (#{id})", event=task_name(t, r.task), id=r.task.id)]
    if pages > 1:
        lines.append(t("Showing {a}–{b} of {n}: press “Next ▶” or “◀ Previous” below to see the others.",
                       a=first + 1, b=first + len(shown), n=len(r.waiting)))
    lines += [f"{i}. {_name(w)}" for i, w in enumerate(shown, first + 1)]
    if not shown:
        lines.append(t("Nobody is waiting."))
    paging = [(t("◀ Previous"), f"vw:{r.task.id}:{turn - 1}")] if turn > 0 else []
    if turn + 1 < pages:
        paging.append((t("Next ▶"), f"vw:{r.task.id}:{turn + 1}"))
    rows = [paging] if paging else []
    rows.append([(t("◀ Back to the volunteers"), f"vp:{r.task.id}:0")])
    return fit("\n".join(lines), t), inline(rows)


# A view of the list: its text, its buttons, and the members it names (erasing one of them cuts the
# message down: bot.ui.shown).
View = tuple[str, InlineKeyboardMarkup | None, list[int]]


def _named(r: roster.Roster) -> list[int]:
    """Everyone the event's list may name: those with a place and those waiting."""
    return [p.member_id for p in r.places] + [w.member_id for w in r.waiting]


async def _waiting(ctx: LinliContext, t: Translator, tg_user_id: int, task_id: int, page: int) -> View:
    r = await roster.roster(ctx.db, task_id=task_id, tg_user_id=tg_user_id, admin_ids=ctx.settings.admin_ids,
                            now=ctx.now())
    return (*_waiting_view(t, r, page), _named(r))


async def _view(ctx: LinliContext, t: Translator, tg_user_id: int, task_id: int, page: int = 0) -> View:
    r = await roster.roster(ctx.db, task_id=task_id, tg_user_id=tg_user_id, admin_ids=ctx.settings.admin_ids,
                            now=ctx.now())
    when = await task_store.when_row(ctx.db, task_id)
    scores = await reliability_ui.percents(ctx, [p.member_id for p in _shown(r, page)[1]])
    named = MAX_WAITING_LISTED
    text = "\n".join(_lines(t, r, event_time(when) if when else "", scores, page, named))
    while visible_len(text) > MESSAGE_LIMIT - ROOM_FOR_SAID and named > 1:
        # Fewer waiting named (the rest counted, "🕒 Whole waiting list" shows them page by page).
        named = max(1, named * 2 // 3)
        text = "\n".join(_lines(t, r, event_time(when) if when else "", scores, page, named))
    return fit(text, t, MESSAGE_LIMIT - ROOM_FOR_SAID), _buttons(t, r, page, named), _named(r)


async def cmd_volunteers(update: Update, ctx: LinliContext) -> None:
    """/volunteers <event number> (staff)."""
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    try:
        text, markup, named = await _view(ctx, t, update.effective_user.id, only_number(ctx.args, USAGE))
    except DomainError as err:
        await reply(update, error_text(t, err))
        return
    await shown(ctx, await reply(update, text, markup), named)


def _parts(data: str) -> tuple[str, int, int]:
    prefix, *numbers = data.split(":")
    return prefix, int(numbers[0]), int(numbers[1]) if len(numbers) > 1 else 0


async def _ask(ctx: LinliContext, t: Translator, tg_user_id: int, prefix: str, task_id: int,
               member_id: int) -> View:
    """The question before a place ends (or the list as it is, if the place has gone meanwhile)."""
    r = await roster.roster(ctx.db, task_id=task_id, tg_user_id=tg_user_id, admin_ids=ctx.settings.admin_ids,
                            now=ctx.now())
    place = next((p for p in r.places if p.member_id == member_id), None)
    if place is None or r.task.state not in roster.MANAGED_STATES or (prefix == "vn" and not r.before_start):
        text, markup, named = await _view(ctx, t, tg_user_id, task_id)
        return (t("That can no longer be done: the list has changed. Here it is as it is now.") + "\n\n" + text,
                markup, named)
    name, event = esc(place.display_name or "?"), task_name(t, r.task)
    if prefix == "vr":
        question = t("Remove {name} from “{event}”? They will be told politely, and the place goes to the first one"
                     " waiting. It does not count against them.", name=name, event=event)
        yes = t("Yes, remove")
    else:
        question = t("Mark {name} as not coming to “{event}”? It counts as a missed event in their reliability,"
                     " and the place goes to the first one waiting.", name=name, event=event)
        yes = t("Yes, not coming")
    page = _page_of(r, member_id)
    return (question, inline([[(yes, f"{prefix}y:{task_id}:{member_id}"), (t("No"), f"vb:{task_id}:{page}")]]),
            [member_id])


def _page_of(r: roster.Roster, member_id: int) -> int:
    """The page of the list that shows the member's place (the first, if they hold none)."""
    return next((i // MAX_LISTED for i, p in enumerate(r.places) if p.member_id == member_id), 0)


def _done_text(t: Translator, ended: roster.Ended, given: str) -> str:
    """What was done, in plain text (the press's answer; escaped before it goes into the message)."""
    name = ended.name
    said = (t("{name} was taken off the event and told.", name=name) if ended.how == roster.REMOVED
            else t("{name} is marked as not coming and was told.", name=name))
    if given:
        said += " " + t("The place went to {given}, who has been asked to keep it.", given=given)
    return said


async def _act(ctx: LinliContext, t: Translator, tg_user_id: int, prefix: str, task_id: int,
               member_id: int) -> tuple[str, int, list[int]]:
    """End the place; what was done, the page of the list where it was, and whom it names."""
    before = await roster.roster(ctx.db, task_id=task_id, tg_user_id=tg_user_id, admin_ids=ctx.settings.admin_ids,
                                 now=ctx.now())
    do = roster.remove if prefix == "vry" else roster.mark_no_show
    ended = await do(ctx.db, task_id=task_id, member_id=member_id, tg_user_id=tg_user_id,
                     admin_ids=ctx.settings.admin_ids, now=ctx.now())
    r = await roster.roster(ctx.db, task_id=task_id, tg_user_id=tg_user_id, admin_ids=ctx.settings.admin_ids,
                            now=ctx.now())
    names = {w.member_id: w.display_name or "?" for w in r.waiting} | {p.member_id: p.display_name or "?"
                                                                        for p in r.places}
    return (_done_text(t, ended, t.join(names.get(m, "?") for m in ended.given)), _page_of(before, member_id),
            [ended.member_id, *ended.given])


async def on_press(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    t = await tr_for(update, ctx)
    prefix, task_id, member_id = _parts(query.data or "")
    try:
        if prefix in ("vr", "vn"):
            text, markup, named = await _ask(ctx, t, query.from_user.id, prefix, task_id, member_id)
            await answer(query)
        elif prefix == "vb":
            text, markup, named = await _view(ctx, t, query.from_user.id, task_id, min(member_id, MAX_PAGE))
            await answer(query, t("Nothing was changed."))
        elif prefix == "vp":
            text, markup, named = await _view(ctx, t, query.from_user.id, task_id, min(member_id, MAX_PAGE))
            await answer(query)
        elif prefix == "vw":
            text, markup, named = await _waiting(ctx, t, query.from_user.id, task_id, min(member_id, MAX_PAGE))
            await answer(query)
        else:
            said, page, ended = await _act(ctx, t, query.from_user.id, prefix, task_id, member_id)
            await answer(query, said)
            text, markup, named = await _view(ctx, t, query.from_user.id, task_id, page)
            text, named = esc(said) + "\n\n" + text, [*ended, *named]
    except DomainError as err:
        await answer(query, error_text(t, err), alert=True)
        if prefix in ("vry", "vny") and isinstance(err, InvalidState):
            await _show_as_now(ctx, t, query, task_id)  # the question is stale: show the list instead
        return
    await shown(ctx, await edit_or_send(query, fit(text, t), markup), named)


async def _show_as_now(ctx: LinliContext, t: Translator, query: CallbackQuery, task_id: int) -> None:
    try:
        text, markup, named = await _view(ctx, t, query.from_user.id, task_id)
    except DomainError:
        return
    await shown(ctx, await edit_or_send(query, text, markup), named)


@renderer("task_place_ended")
async def _r_ended(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await task_store.row(rc.db, p["task_id"])
    title = task_name(rc.t, task) if task else "#" + str(p["task_id"])
    if p.get("how") == roster.NO_SHOW:
        text = rc.t("Staff have noted that you cannot come to “{title}”, so your place has gone to someone else."
                    " It counts as a missed event in your reliability. If this is a mistake, please contact"
                    " staff.", title=title)
    else:
        text = rc.t("Staff have taken you off “{title}”, so you do not need to go. Thank you for offering to"
                    " help! If you have a question, please contact staff.", title=title)
    return Rendered(text=text)


def register(app: LinliApp) -> None:
    """Add this feature's handlers to the application."""
    app.add_handler(CommandHandler("volunteers", cmd_volunteers, filters=filters.ChatType.PRIVATE))
    app.add_handler(CallbackQueryHandler(on_press, pattern=r"^(vr|vn|vry|vny):[0-9]{1,12}:[0-9]{1,12}$"))
    app.add_handler(CallbackQueryHandler(on_press, pattern=r"^(vp|vw):[0-9]{1,12}:[0-9]{1,6}$"))
    app.add_handler(CallbackQueryHandler(on_press, pattern=r"^vb:[0-9]{1,12}(:[0-9]{1,6})?$"))
