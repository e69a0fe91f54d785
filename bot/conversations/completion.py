"""Completion and points in Telegram: Done button, confirmation buttons, problem cases, event
closing, /points, /history, /leaderboard, /revoke, /closeevent, and the outbox renderers."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, filters

from bot import dialogs
from bot.context import LinliApp, LinliContext
from bot.conversations import reliability as reliability_ui
from bot.fit import pages
from bot.i18n import Translator
from bot.menu import load_member, menu_item, participant
from bot.models import N_, AlreadyDone, DomainError, InvalidInput
from bot.numbers import button_number, parse_int
from bot.renderers import RenderContext, Rendered, renderer
from bot.services import checkin, completion, points
from bot.services.access import require_staff_for
from bot.ui import (
    answer,
    edit_or_send,
    error_text,
    esc,
    inline,
    local_time,
    only_number,
    reply,
    shown,
    task_name,
    tr_for,
    typed_int,
)
from storage import members as member_store
from storage import tasks as task_store

log = logging.getLogger(__name__)

REASONS = {
    "task_completed": N_("Task completed"),
    "task_auto_confirmed": N_("Task completed"),
    "event_attended": N_("Event attended"),
    "case_resolved": N_("Task completed (decided by staff)"),
    "revoke": N_("Taken back by staff"),
    "redeem": N_("Exchanged for a reward"),
    "expired": N_("Expired (not used in time)"),
    "refund": N_("Reward refunded"),
}
HISTORY_PAGES = 1_000_000  # the points history has far fewer pages; a larger page number is no button of ours
HONOURS = {
    "first_task": N_("first task done"),
    "tasks_10": N_("10 tasks"),
    "tasks_50": N_("50 tasks"),
    "tasks_100": N_("100 tasks"),
}


# -- callbacks -------------------------------------------------------------------------------
async def on_callback(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    t = await tr_for(update, ctx)
    parts = (query.data or "").split(":")
    uid = query.from_user.id
    try:
        if parts[0] == "done" and len(parts) == 2:
            text = await _done(update, ctx, t, uid, parts[1])
        elif parts[0] == "cf" and len(parts) == 3 and parts[2] in ("y", "n", "p"):
            text = await _confirmation(update, ctx, t, uid, button_number(parts[1]), parts[2])
        elif parts[0] == "cs" and len(parts) == 3 and parts[2] in ("c", "x", "h"):
            case_id = button_number(parts[1])
            if parts[2] == "h":
                await completion.resolve_case_half(ctx.db, case_id=case_id, tg_user_id=uid, now=ctx.now())
            else:
                await completion.resolve_case(ctx.db, case_id=case_id, tg_user_id=uid, now=ctx.now(),
                                              resolution={"c": "credit", "x": "no_credit"}[parts[2]])
            text = t("The case is resolved.")
        elif await _page(update, ctx, t, uid, parts):
            return
        else:
            raise InvalidInput()
    except DomainError as err:
        await answer(query, error_text(t, err), alert=True)
        if isinstance(err, completion.EventAttended) and query.message is not None:
            await _drop_buttons(ctx, query.message.chat.id, query.message.message_id)
        return
    await answer(query)
    await edit_or_send(query, text)


async def _drop_buttons(ctx: LinliContext, chat_id: int, message_id: int) -> None:
    """Done and Withdraw on an event that is closed have nothing left to do: they go (the text stays)."""
    try:
        await ctx.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
    except TelegramError as exc:
        log.info("the buttons of a closed event's details could not be removed: %s", exc)


async def _page(update: Update, ctx: LinliContext, t: Translator, uid: int, parts: list[str]) -> bool:
    """A leaderboard or points-history page (``lb:PERIOD:BY``, ``ph:PAGE``), or the leaderboard's
    hide/show-my-name button (``lb:PERIOD:BY:h|s``); False if ``parts`` is none of them."""
    query = update.callback_query
    assert query is not None
    note: str | None = None
    named: list[int] = []
    if parts[0] == "ph" and len(parts) == 2:
        text, markup = await _history(ctx, t, uid, button_number(parts[1], low=0, high=HISTORY_PAGES))
    elif parts[0] == "lb" and len(parts) in (3, 4):
        if len(parts) == 4:
            if parts[3] not in ("h", "s"):
                raise InvalidInput()
            hidden = await points.set_opt_out(ctx.db, tg_user_id=uid, opt_out=parts[3] == "h", now=ctx.now())
            note = t("Your name is now hidden on the leaderboard.") if hidden else \
                t("Your name is now shown on the leaderboard.")
        text, markup, named = await _leaderboard(ctx, t, uid, parts[1], parts[2])
    else:
        return False
    # Answered after building the page, so "please register first" can still be shown.
    await answer(query, note)
    await shown(ctx, await edit_or_send(query, text, markup), named)
    return True


async def _done(update: Update, ctx: LinliContext, t: Translator, uid: int, number: str) -> str:
    """The volunteer pressed Done: ask for confirmation, and offer to send a note."""
    await completion.mark_done(ctx.db, task_id=button_number(number), tg_user_id=uid, now=ctx.now())
    text = t("Thank you! I have asked for a confirmation. Your points come once it is confirmed.")
    await dialogs.start(ctx, uid, "donenote", "note", {"task_id": button_number(number)})
    await reply(update, t("If you like, send a short note or a photo for the person you helped. Or press Skip."),
                inline([[(t("Skip"), dialogs.button("note", "skip"))]]))
    return text


async def _confirmation(update: Update, ctx: LinliContext, t: Translator, uid: int, tid: int, answer_: str) -> str:
    """The person helped answered "was it done?": yes, not done (n) or a problem (p)."""
    if answer_ == "y":
        out = await completion.confirm(ctx.db, task_id=tid, tg_user_id=uid, now=ctx.now())
        return t("Thank you! The task is complete and the volunteer has been thanked.") if out.changed else t("Done.")
    if answer_ == "n":
        await completion.not_done(ctx.db, task_id=tid, tg_user_id=uid, now=ctx.now())
        await _ask_reason(update, ctx, t, tid, "n")
        return t("I have told the volunteer that it is not done yet.")
    out = await completion.report_problem(ctx.db, task_id=tid, tg_user_id=uid, now=ctx.now())
    await _ask_reason(update, ctx, t, tid, "p")
    return t("Thank you for telling us. Community staff will look into it.") if out.staff_told else \
        t("Thank you for telling us. No staff member can be reached in the bot right now,"
          " so please also call the community office.")


# -- commands --------------------------------------------------------------------------------
async def _points_text(ctx: LinliContext, t: Translator, uid: int) -> str:
    s = await points.summary(ctx.db, tg_user_id=uid, now=ctx.now())
    me = await load_member(ctx, uid)
    lines = [t("⭐ Your points: <b>{balance}</b>", balance=s.balance),
             t("This month: +{month}", month=s.this_month)]
    lines += [t("{points} of them expire at the end of {date}", points=e.points, date=e.last_day.isoformat())
              for e in s.expiring]
    lines += await reliability_ui.points_lines(ctx, t, me)
    if s.last:
        lines.append("")
        lines.append(t("Latest:"))
        lines += [_entry_line(t, e) for e in s.last]
    else:
        lines.append(t("No points yet. Help a neighbour to earn your first!") if me is None or me.is_volunteer
                     else t("No points yet. Points are earned by volunteers who help neighbours."))
    return "\n".join(lines)


def _entry_line(t: Translator, e: points.Entry) -> str:
    sign = f"+{e.delta}" if e.delta > 0 else str(e.delta)
    what = t(REASONS.get(e.reason, N_("Other")))
    title = f" · {esc(e.task_title)}" if e.task_title else ""
    note = f" ({esc(e.note)})" if e.note else ""
    return f"{e.created_at:%m-%d} {sign} {what}{title}{note}"


async def cmd_points(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    try:
        await reply(update, await _points_text(ctx, t, update.effective_user.id),
                    inline([[(t("Points history"), "ph:0"), (t("Leaderboard"), "lb:month:people")]]))
    except DomainError as err:
        await reply(update, error_text(t, err))


async def _history(ctx: LinliContext, t: Translator, uid: int, page: int) -> tuple[str, Any]:
    pg = await points.history(ctx.db, tg_user_id=uid, page=page)
    lines = [t("Points history (page {page} of {pages})", page=pg.page + 1, pages=pg.pages)]
    lines += [_entry_line(t, e) for e in pg.entries] or [t("No entries yet.")]
    nav = []
    if pg.page > 0:
        nav.append((t("◀ Newer"), f"ph:{pg.page - 1}"))
    if pg.page + 1 < pg.pages:
        nav.append((t("Older ▶"), f"ph:{pg.page + 1}"))
    rows = [nav] if nav else []
    rows.append([(t("Leaderboard"), "lb:month:people")])
    return "\n".join(lines), inline(rows)


async def cmd_history(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    try:
        text, markup = await _history(ctx, t, update.effective_user.id, 0)
        await reply(update, text, markup)
    except DomainError as err:
        await reply(update, error_text(t, err))


async def _leaderboard(ctx: LinliContext, t: Translator, uid: int, period: str,
                       by: str) -> tuple[str, Any, list[int]]:
    """The leaderboard's text and buttons, and the members it names (not the reader)."""
    ranks = await points.leaderboard(ctx.db, tg_user_id=uid, now=ctx.now(), period=period, by=by)
    titles = {"week": t("this week"), "month": t("this month"), "all": t("all time")}
    head = (t("🏆 Organisations with the most points, {period}", period=titles.get(period, "")) if by == "org"
            else t("🏆 Volunteers with the most points, {period}", period=titles.get(period, "")))
    lines = [head]
    for r in ranks:
        name = esc(r.name) if r.name is not None else t("A kind neighbour")
        me = " ⬅" if r.is_me else ""
        lines.append(f"{r.place}. {name} · {r.points}{me}")
    if not ranks:
        lines.append(t("No points earned in this time yet."))
    rows = [[(t("Week"), f"lb:week:{by}"), (t("Month"), f"lb:month:{by}"), (t("All time"), f"lb:all:{by}")],
            [(t("People"), f"lb:{period}:people"), (t("Organisations"), f"lb:{period}:org")]]
    viewer = await load_member(ctx, uid)
    if by == "people" and viewer is not None:   # the viewer's own name: one tap to hide it (or show it again)
        hidden = viewer.leaderboard_opt_out
        rows.append([(t("👁 Show my name") if hidden else t("🙈 Hide my name"),
                      f"lb:{period}:{by}:{'s' if hidden else 'h'}")])
    rows.append([(t("Points history"), "ph:0")])
    return "\n".join(lines), inline(rows), [r.member_id for r in ranks if r.member_id is not None and not r.is_me]


async def cmd_leaderboard(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    try:
        args = [a.lower() for a in (ctx.args or [])]
        if args and args[0] in ("hide", "show"):
            hidden = await points.set_opt_out(ctx.db, tg_user_id=update.effective_user.id,
                                              opt_out=args[0] == "hide", now=ctx.now())
            await reply(update, t("Your name is now hidden on the leaderboard.") if hidden
                        else t("Your name is now shown on the leaderboard."))
            return
        text, markup, named = await _leaderboard(ctx, t, update.effective_user.id, "month", "people")
        await shown(ctx, await reply(update, text, markup), named)
    except DomainError as err:
        await reply(update, error_text(t, err))


async def cmd_revoke(update: Update, ctx: LinliContext) -> None:
    """/revoke <entry number> <reason> (staff)."""
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    args = list(ctx.args or [])
    try:
        if len(args) < 2:
            raise InvalidInput(N_("Please write: /revoke <entry number> <reason>"))
        r = await completion.revoke(ctx.db, ledger_id=typed_int(args[0], N_("Please write: /revoke <entry number> <reason>")),
                                    tg_user_id=update.effective_user.id,
                                    now=ctx.now(), reason=" ".join(args[1:]))
        await reply(update, t("Taken back {amount} points (entry {id}).", amount=r.amount, id=r.ledger_id))
    except DomainError as err:
        await reply(update, error_text(t, err))


async def cmd_entries(update: Update, ctx: LinliContext) -> None:
    """/entries <task number> (staff): the points given for a task, with the entry numbers /revoke needs."""
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    try:
        tid = only_number(ctx.args, N_("Please write: /entries <task number>"))
        community = await task_store.community_of(ctx.db, tid)
        await require_staff_for(ctx.db, update.effective_user.id, ctx.settings.admin_ids, community)
        rows = await points.task_entries(ctx.db, task_id=tid)
    except DomainError as err:
        await reply(update, error_text(t, err))
        return
    if not rows:
        await reply(update, t("No points were given for task {id}.", id=tid))
        return
    lines = [t("Points for task {id} (entry · who · points):", id=tid)]
    lines += [f"{e.id} · {esc(e.name)} · {e.delta:+d} {esc(t(REASONS.get(e.reason, e.reason)))}" for e in rows]
    lines.append(esc(t("To take points back: /revoke <entry number> <reason>")))
    named = [e.member_id for e in rows]
    for page in pages("\n".join(lines)):   # staff need every entry: as many messages as it takes
        await shown(ctx, await reply(update, page), named)


async def cmd_closeevent(update: Update, ctx: LinliContext) -> None:
    """/closeevent <event number> [numbers of no-shows from the list] (staff)."""
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    args = list(ctx.args or [])
    try:
        if not args:
            raise InvalidInput(N_("Please write: /closeevent <event number> and the list numbers of no-shows"))
        tid = typed_int(args[0], N_("Please write: /closeevent <event number> and the list numbers of no-shows"))
        people = await completion.attendance_to_close(ctx.db, task_id=tid, tg_user_id=update.effective_user.id,
                                                      admin_ids=ctx.settings.admin_ids)
        if not people:
            await reply(update, t("Nobody has claimed event #{id}. To end it without points, send /canceltask {id}.",
                                  id=tid))
            return
        if len(args) == 1:
            # A tick list: everyone is present; tap the names of those who did not come.
            row = await task_store.when_row(ctx.db, tid)
            heading = " ".join(x for x in (local_time(row.starts_at, row.tz), task_name(t, row)) if x) if row else ""
            unticked = await checkin.unticked(ctx.db, tid, [p.member_id for p in people])
            dialog = await dialogs.start(ctx, update.effective_user.id, "attend", "att",
                                         {"task_id": tid, "absent": unticked or [], "heading": heading,
                                          "checkin": unticked is not None})
            text, markup = _attendance(t, dialog, people, await reliability_ui.percents(ctx, _ids(people)))
            await shown(ctx, await reply(update, text, markup), _ids(people))
            return
        wrong = N_("The list of event #{id} has {n} people: the numbers of those who did not come go from 1 to {n}"
                   " (send /closeevent {id} to see the list).")
        picks = [parse_int(a, low=1, high=len(people), hash_ok=True)
                 for a in " ".join(args[1:]).replace(",", " ").replace("，", " ").replace("、", " ").split()]
        if any(p is None for p in picks):
            raise InvalidInput(wrong, id=tid, n=len(people))
        absent = [people[p - 1].member_id for p in picks if p is not None]
        out = await completion.close_event(ctx.db, task_id=tid, tg_user_id=update.effective_user.id,
                                           now=ctx.now(), absent=absent, admin_ids=ctx.settings.admin_ids)
        await reply(update, t("Event closed. {n} volunteers received points; {m} did not come.",
                              n=len(out.credited), m=len(absent)))
    except DomainError as err:
        await reply(update, error_text(t, err))


def _ids(people: list[Any]) -> list[int]:
    return [int(a.member_id) for a in people[:90]]


def _pct(percent: int | None) -> str:
    return "" if percent is None else f" · {percent}%"


def _attendance(t: Translator, dialog: dialogs.Dialog, people: list[Any], scores: dict[int, int]) -> tuple[str, Any]:
    """The tick list; each name shows the volunteer's reliability (``scores``: member id → %)."""
    absent = set(dialog.data.get("absent", []))
    tid = dialog.data["task_id"]
    event = dialog.data.get("heading") or t("Task #{id}", id=tid)
    text = (t("Attendance for “{event}”: those who checked in are ticked as present. Tap a name to change it,"
              " then press Close the event.", event=event) if dialog.data.get("checkin") else
            t("Attendance for “{event}”: everyone is ticked as present. Tap the names of those who did not come,"
              " then press Close the event.", event=event))
    text += "\n" + t("The % after a name is that volunteer's reliability. Instead of tapping you may send the"
                      " numbers of those who did not come, for example /closeevent {id} 2 5.", id=tid)
    rows = [[(("❌ " if i in absent else "✅ ") + f"{i + 1}. " + a.name[:30] + _pct(scores.get(a.member_id)),
              dialogs.button("att", str(i)))] for i, a in enumerate(people[:90])]
    rows.append([(t("🏁 Close the event ({n} present)", n=len(people) - len(absent)), dialogs.button("att", "close")),
                 (t("✖ Cancel"), dialogs.button("att", "cancel"))])
    return text, inline(rows)


def _list_over(t: Translator, dialog: dialogs.Dialog, err: DomainError) -> str:
    if isinstance(err, AlreadyDone):
        event = dialog.data.get("heading") or t("Task #{id}", id=dialog.data["task_id"])
        return t("“{event}” has been closed already, so this list is finished. Nothing more is needed.", event=event)
    return error_text(t, err)


@dialogs.flow("attend")
async def _attend_flow(update: Update, ctx: LinliContext, dialog: dialogs.Dialog, inp: dialogs.Input) -> None:
    t = await tr_for(update, ctx)
    query = update.callback_query
    tid = int(dialog.data["task_id"])
    try:  # closed meanwhile (with numbers, or by another staff member): the list is finished
        people = await completion.attendance_to_close(ctx.db, task_id=tid, tg_user_id=dialog.tg_user_id,
                                                      admin_ids=ctx.settings.admin_ids)
    except DomainError as err:
        await dialogs.finish(ctx, dialog.tg_user_id)
        await (edit_or_send(query, _list_over(t, dialog, err)) if query is not None
               else reply(update, _list_over(t, dialog, err)))
        return
    if inp.kind != "callback" or query is None:
        await reply(update, t("Please use the buttons of the attendance list, or send /cancel."))
        return
    value = inp.text or ""
    if value == "cancel":
        await dialogs.finish(ctx, dialog.tg_user_id)
        await edit_or_send(query, t("Cancelled. The event is still open."))
        return
    if value == "close":
        absent_idx = [int(i) for i in dialog.data.get("absent", []) if int(i) < len(people)]
        try:
            out = await completion.close_event(ctx.db, task_id=tid, tg_user_id=dialog.tg_user_id, now=ctx.now(),
                                               absent=[people[i].member_id for i in absent_idx],
                                               admin_ids=ctx.settings.admin_ids)
        except DomainError as err:
            await dialogs.finish(ctx, dialog.tg_user_id)
            await edit_or_send(query, error_text(t, err))
            return
        await dialogs.finish(ctx, dialog.tg_user_id)
        await edit_or_send(query, t("Event closed. {n} volunteers received points; {m} did not come.",
                                    n=len(out.credited), m=len(absent_idx)))
        return
    tapped = parse_int(value, low=0, high=len(people) - 1, strict=True)
    if tapped is not None:
        absent = set(dialog.data.get("absent", []))
        absent ^= {tapped}
        dialog.data["absent"] = sorted(absent)
        await dialogs.save(ctx, dialog)
    text, markup = _attendance(t, dialog, people, await reliability_ui.percents(ctx, _ids(people)))
    await shown(ctx, await edit_or_send(query, text, markup), _ids(people))


@menu_item("points", N_("⭐ My points"), visible=participant, order=55,
           about=N_("how many points you have, and what for."))
async def _menu_points(update: Update, ctx: LinliContext) -> None:
    await cmd_points(update, ctx)


# -- renderers ---------------------------------------------------------------------------------
async def _title(rc: RenderContext, task_id: Any) -> str:
    row = await task_store.name_row(rc.db, task_id)
    return task_name(rc.t, row) if row is not None else esc(rc.t("task {id}", id=task_id))


@renderer("completion_confirm")
async def _r_confirm(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    tid = p["task_id"]
    state = await task_store.state_of(rc.db, tid)
    if state != "awaiting_confirmation":
        return None
    names = rc.t.join(esc(n) for n in p.get("volunteers", [])) or "?"
    task = await task_store.row(rc.db, tid)
    title = await _title(rc, tid)
    if task is not None and task.is_proxy:  # staff confirm for the resident they published for
        resident = esc(task.proxy_name) if task.proxy_name else rc.t("the resident")
        text = rc.t("Did {names} help {resident} with “{title}”?", names=names, title=title, resident=resident)
    elif task is not None and task.requester_id is None:  # staff's own task: nobody to help
        text = rc.t("Did {names} finish “{title}”?", names=names, title=title)
    else:
        text = rc.t("Did {names} help you with “{title}”?", names=names, title=title)
    if p.get("note"):
        text += "\n" + rc.t("Their note: {note}", note=esc(p["note"]))
    return Rendered(text=text, reply_markup=inline([[(rc.t("✅ Yes, thank you"), f"cf:{tid}:y")],
                                                    [(rc.t("↩ Not done"), f"cf:{tid}:n"),
                                                     (rc.t("⚠ Problem"), f"cf:{tid}:p")]]))


@renderer("completion_not_done")
async def _r_not_done(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    tid = p["task_id"]
    text = rc.t("“{title}” is not finished yet, they say.", title=await _title(rc, tid))
    if p.get("reason"):
        text += "\n" + rc.t("Reason: {reason}", reason=esc(p["reason"]))
    text += "\n" + rc.t("Press Done again when it is finished.")
    return Rendered(text=text, reply_markup=inline([[(rc.t("✅ Done"), f"done:{tid}")]]))


@renderer("completion_thanks")
async def _r_thanks(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    title = await _title(rc, p["task_id"])
    if p.get("points"):
        return Rendered(text=rc.t("Thank you! “{title}” is complete. +{points} points.", title=title,
                                  points=p["points"]))
    return Rendered(text=rc.t("“{title}” is closed. Thank you for your help.", title=title))


@renderer("event_absent")
async def _r_absent(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    tid = p["task_id"]
    text = rc.t("“{title}” is over. Staff noted that you did not come, so there are no points for it, and it counts"
                " as a missed event in your reliability. If you did come, please press ☎ Contact staff.",
                title=await _title(rc, tid))
    return Rendered(text=text, reply_markup=inline([[(rc.t("☎ Contact staff"), f"cs:{tid}")]]))


@renderer("completion_case_staff")
async def _r_case(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    text = rc.t("⚠ A problem was reported with “{title}” (case {case}).", title=await _title(rc, p["task_id"]),
                case=p["case_id"])
    if p.get("reason"):
        text += "\n" + rc.t("Reason: {reason}", reason=esc(p["reason"]))
    pts = await task_store.points_of(rc.db, p["task_id"])
    row = [(rc.t("Give points"), f"cs:{p['case_id']}:c")]
    if completion.offers_half(pts):
        row.append((rc.t("Half the points"), f"cs:{p['case_id']}:h"))
    row.append((rc.t("No points"), f"cs:{p['case_id']}:x"))
    return Rendered(text=text, reply_markup=inline([row]))


@renderer("completion_reason_volunteer")
async def _r_reason_volunteer(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=rc.t("About “{title}”, the resident says: {reason}", title=await _title(rc, p["task_id"]),
                              reason=esc(p["reason"])))


@renderer("completion_reason_staff")
async def _r_reason_staff(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=rc.t("About the problem with “{title}”: {reason}", title=await _title(rc, p["task_id"]),
                              reason=esc(p["reason"])))


async def _ask_reason(update: Update, ctx: LinliContext, t: Translator, task_id: int, kind: str) -> None:
    """Ask, optionally, for a few words; the answer already took effect, so skipping is fine."""
    user = update.effective_user
    if user is None:
        return
    await dialogs.start(ctx, user.id, "cfreason", "reason", {"task_id": task_id, "kind": kind})
    question = t("What is missing? Type a few words for the volunteer, or press Skip.") if kind == "n" \
        else t("What went wrong? Type a few words for the staff, or press Skip.")
    await reply(update, question, inline([[(t("Skip"), dialogs.button("reason", "skip"))]]))


@renderer("completion_done_note")
async def _r_done_note(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    text = rc.t("{name} sends you a note about “{title}”:", name=esc(p.get("volunteer")), title=await _title(rc, p["task_id"]))
    if p.get("note"):
        text += "\n" + esc(p["note"])
    return Rendered(text=text[:1000], photo=p.get("photo"))


async def _skipped(update: Update, ctx: LinliContext, dialog: dialogs.Dialog, inp: dialogs.Input,
                   t: Translator) -> bool:
    """Skip (the only button of these optional steps) ends the step politely."""
    if inp.kind != "callback":
        return False
    await dialogs.finish(ctx, dialog.tg_user_id)
    if update.callback_query is not None:
        await edit_or_send(update.callback_query, t("All right. Thank you."))
    return True


@dialogs.flow("donenote")
async def _done_note_flow(update: Update, ctx: LinliContext, dialog: dialogs.Dialog, inp: dialogs.Input) -> None:
    t = await tr_for(update, ctx)
    if await _skipped(update, ctx, dialog, inp, t):
        return
    note = (inp.text or "").strip() or None
    photo = inp.file_id if inp.kind == "photo" else None
    if (inp.kind not in ("text", "photo")) or (photo is None and not note) or (note is not None and len(note) > 300):
        await reply(update, t("Please send a few words (up to 300 characters) or one photo, or press Skip."),
                    inline([[(t("Skip"), dialogs.button("note", "skip"))]]))
        return
    try:
        await completion.add_done_note(ctx.db, task_id=int(dialog.data["task_id"]), tg_user_id=dialog.tg_user_id,
                                       now=ctx.now(), note=note, photo_file_id=photo)
    except DomainError as exc:
        await dialogs.finish(ctx, dialog.tg_user_id)
        await reply(update, error_text(t, exc))
        return
    await dialogs.finish(ctx, dialog.tg_user_id)
    await reply(update, t("Thank you. I have passed it on."))


@dialogs.flow("cfreason")
async def _reason_flow(update: Update, ctx: LinliContext, dialog: dialogs.Dialog, inp: dialogs.Input) -> None:
    t = await tr_for(update, ctx)
    if await _skipped(update, ctx, dialog, inp, t):
        return
    text = (inp.text or "").strip() if inp.kind == "text" else ""
    if not text or len(text) > 300:
        await reply(update, t("Please type a few words (up to 300 characters), or press Skip."),
                    inline([[(t("Skip"), dialogs.button("reason", "skip"))]]))
        return
    try:
        told = await completion.add_reason(ctx.db, task_id=int(dialog.data["task_id"]), tg_user_id=dialog.tg_user_id,
                                           now=ctx.now(), kind=str(dialog.data["kind"]), reason=text)
    except DomainError as exc:
        await dialogs.finish(ctx, dialog.tg_user_id)
        await reply(update, error_text(t, exc))
        return
    await dialogs.finish(ctx, dialog.tg_user_id)
    await reply(update, t("Thank you. I have passed it on.") if told else t("Thank you. I have noted it."))


@renderer("completion_case_resolved")
async def _r_case_resolved(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=rc.t("Staff have looked into “{title}” and closed it. Thank you for telling us.",
                              title=await _title(rc, p["task_id"])))


@renderer("points_revoked")
async def _r_revoked(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=rc.t("Staff took back {amount} points. Reason: {reason}", amount=p["amount"],
                              reason=esc(p.get("reason"))))


def _honour(rc: RenderContext, p: dict[str, Any]) -> str:
    code = str(p.get("code", ""))
    if code.startswith("top_month:"):
        return rc.t("top volunteer of {month}", month=esc(p.get("month", "")))
    return rc.t(HONOURS.get(code, N_("a milestone")))


@renderer("honour_member", deferrable=True)
async def _r_honour(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    text = rc.t("🎉 Congratulations: {honour}! Thank you for helping your neighbours.", honour=_honour(rc, p))
    shown = await member_store.announce_consent(rc.db, rc.member_id)
    if shown and await member_store.announce_asked(rc.db, rc.member_id):
        text += "\n" + rc.t("The volunteer group hears of it too.")   # as they answered when asked
    elif shown:
        text += "\n" + rc.t("The volunteer group hears of it too. To keep your honours private, press ⚙ Settings"
                             " in the menu.")
    return Rendered(text=text)


GROUP_TEXT_MAX = 4096  # Telegram's limit for one message


@renderer("honour_group", deferrable=True)
async def _r_honour_group(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    """One honour, or the honours of one sweep (the outbox gathers them: ``{"items": [...]}``) as
    one message: one line per honour naming everyone who reached it."""
    names: dict[str, list[str]] = {}   # honour as shown -> names, in the order they came
    for item in p.get("items") or [p]:
        who = await member_store.public_name(rc.db, item.get("member_id"))
        if who is None or not who.announce_consent or who.deleted:
            continue
        names.setdefault(_honour(rc, item), []).append(esc(who.display_name))
    if not names:
        return None
    if len(names) == 1 and sum(len(v) for v in names.values()) == 1:
        (honour, (name,)), = names.items()
        return Rendered(text=rc.t("🎉 {name}: {honour}. Thank you!", name=name, honour=honour))
    lines = [rc.t("🎉 Today's honours:")]
    used, left_out = len(lines[0]), 0
    for honour, people in names.items():   # as many names as fit, the rest counted
        shown: list[str] = []
        for person in people:
            line = rc.t("{names}: {honour}", names=rc.t.join([*shown, person]), honour=honour)
            if used + len(line) + 1 > GROUP_TEXT_MAX - 200:   # room for the last two lines
                break
            shown.append(person)
        left_out += len(people) - len(shown)
        if shown:
            lines.append(rc.t("{names}: {honour}", names=rc.t.join(shown), honour=honour))
            used += len(lines[-1]) + 1
    if left_out:
        lines.append(rc.t("… and {n} more", n=left_out))
    lines.append(rc.t("Thank you, everyone!"))
    return Rendered(text="\n".join(lines))


def register(app: LinliApp) -> None:
    """Add this feature's handlers to the application."""
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("points", cmd_points, filters=private))
    app.add_handler(CommandHandler("history", cmd_history, filters=private))
    app.add_handler(CommandHandler("leaderboard", cmd_leaderboard, filters=private))
    app.add_handler(CommandHandler("revoke", cmd_revoke, filters=private))
    app.add_handler(CommandHandler("entries", cmd_entries, filters=filters.ChatType.PRIVATE))
    app.add_handler(CommandHandler("closeevent", cmd_closeevent, filters=private))
    app.add_handler(CallbackQueryHandler(on_callback, pattern=r"^(done|cf|cs|lb|ph):"))
