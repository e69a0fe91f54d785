"""Dispatch in Telegram: group card Claim/Details, Withdraw, requester Cancel, review buttons,
/tasks, /mytasks, and the outbox renderers for dispatch messages.

Also /review, /edittask, /canceltask and /categories for staff. The step-by-step /request and
/publish dialogs are in bot/conversations/request_flow.py."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.context import LinliApp, LinliContext
from bot.conversations.checkin import mytasks_buttons
from bot.deeplinks import link
from bot.fit import clip, fit
from bot.i18n import Translator, normalise_language, translator
from bot.menu import menu_item, participant, volunteer
from bot.models import N_, DomainError, InvalidInput, Member, NotAllowed, NotRegistered
from bot.numbers import parse_int
from bot.renderers import RenderContext, Rendered, renderer
from bot.services import alerts, categories, tasks
from bot.services.access import require_registered
from bot.ui import (
    answer,
    community_translator,
    edit_or_send,
    error_text,
    esc,
    event_time,
    inline,
    local_time,
    member_of,
    reply,
    task_name,
    tr_for,
    when_text,
)
from storage import cards as card_store
from storage import claims as claim_store
from storage import communities as community_store
from storage import members as member_store
from storage import outbox as outbox_store
from storage import tasks as task_store
from storage.tasks import Task, TaskWhen
from storage.waitlist import Waiting

log = logging.getLogger(__name__)

STATE_NAMES = {
    "draft": N_("Draft"), "pending_review": N_("Waiting for review"), "open": N_("Open"), "full": N_("Full"),
    "in_progress": N_("In progress"), "awaiting_confirmation": N_("Waiting for confirmation"),
    "completed": N_("Completed"), "cancelled": N_("Cancelled"), "expired": N_("Expired"),
}


def _state(t: Translator, state: str) -> str:
    return t(STATE_NAMES.get(state, state))


@dataclass(frozen=True)
class _Press:
    """A registered member's press of a task button."""

    update: Update
    query: CallbackQuery
    ctx: LinliContext
    t: Translator
    member: Member
    task_id: int
    prefix: str
    confirmed: bool


async def on_callback(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    data = query.data or ""
    prefix = data.split(":", 1)[0]
    confirmed = prefix == "rc" and data.endswith(":y")
    if confirmed:
        data = data[:-2]
    # One read for the member serves the language too (in a claim storm every read counts).
    member = await member_of(ctx, query.from_user.id)
    t = translator(member.language if member is not None and member.language
                   else normalise_language(query.from_user.language_code, ctx.settings.default_language))
    try:
        task_id = tasks.parse_task_id(data, prefix)
        if member is None or member.registered_at is None:
            if prefix == "cl" and await _open_registration(query, ctx):
                return
            raise NotRegistered()
        action = _ACTIONS.get(prefix)
        if action is None:
            raise InvalidInput()
        await action(_Press(update, query, ctx, t, member, task_id, prefix, confirmed))
    except DomainError as exc:
        await answer(query, error_text(t, exc), alert=True)
    finally:
        if prefix in ("cl", "dt"):
            await _tidy_stray_card(query, ctx, data, prefix)


async def _tidy_stray_card(query: CallbackQuery, ctx: LinliContext, data: str, prefix: str) -> None:
    """A card posted just before a crash, and not recorded, is a second card once the restarted
    bot posts the task again. A press on it (answered as usual) tells us its id: if the task has no
    recorded card yet, this one becomes it (the card job redraws it); if it has another, this
    stray copy is deleted, or at least loses its buttons."""
    message = query.message
    if message is None or message.chat.type not in ("group", "supergroup"):
        return
    try:
        task_id = tasks.parse_task_id(data, prefix)
        if ctx.pressed_card == task_id:
            return  # the gate found this message recorded as the task's card: no stray copy
        if await tasks.card_pressed(ctx.db, task_id, message.chat.id, message.message_id) != "stray":
            return
        log.info("task %s: a stray card %s is removed", task_id, message.message_id)
        try:
            await ctx.bot.delete_message(message.chat.id, message.message_id)
        except TelegramError:
            await ctx.bot.edit_message_reply_markup(message.chat.id, message.message_id, reply_markup=None)
    except (DomainError, TelegramError) as exc:
        log.info("a stray card could not be tidied: %s", exc)


async def _claim(p: _Press) -> None:
    glance = p.ctx.pressed_glance if p.ctx.pressed_card == p.task_id else None  # read with the card by the gate
    res = await tasks.claim(p.ctx.db, p.ctx.now(), p.member.id, p.task_id, glance=glance)
    if p.member.started_bot:
        text = p.t("You have claimed it ({taken}/{slots}). Thank you! I sent you the details in private.",
                   taken=res.taken, slots=res.slots)
    else:
        text = p.t("You have claimed it. Please open a private chat with me to see the details.")
    await answer(p.query, text, alert=True)


async def _details(p: _Press) -> None:
    details = await tasks.details_for(p.ctx.db, p.task_id, p.member)
    said = details.text[:190]
    if not said:
        said = (p.t("The request is a voice message: the volunteer who claims it hears it.")
                if details.voice else p.t("No more details: ask staff if unsure."))
    await answer(p.query, said, alert=True)


async def _details_again(p: _Press) -> None:
    await tasks.details_again(p.ctx.db, p.ctx.now(), p.member.id, p.task_id)
    await answer(p.query, p.t("I am sending you the details again, just below."))


async def _withdraw(p: _Press) -> None:
    late = await tasks.withdraw(p.ctx.db, p.ctx.now(), p.member.id, p.task_id)
    await answer(p.query, p.t("You have withdrawn. The task is open again for others.") + (
        " " + p.t("It was less than a day before the start, so it lowers your reliability a little.") if late else ""))


async def _cancel(p: _Press) -> None:
    # Someone is on the way: one tap must not call them off.
    if not p.confirmed and await tasks.volunteers_coming(p.ctx.db, p.member.id, p.task_id):
        await answer(p.query)
        await reply(p.update, p.t("A volunteer is already on the way. Cancel the request anyway?"),
                    inline([[(p.t("Yes, cancel it"), f"rc:{p.task_id}:y"), (p.t("No, keep it"), "rcn:0")]]))
        return
    await tasks.cancel(p.ctx.db, p.ctx.now(), p.member.id, p.task_id)
    await answer(p.query, p.t("The request is cancelled."))
    await edit_or_send(p.query, p.t("The request is cancelled."))


async def _how_to_edit(p: _Press) -> None:
    if not p.member.is_staff:
        raise NotAllowed()
    await answer(p.query)
    await reply(p.update, esc(p.t("To change task #{id} before approving, send for example:\n"
                                  "/edittask {id} description new text\n/edittask {id} title new title\n"
                                  "/edittask {id} slots 2\nThen press Approve.", id=p.task_id)))


async def _review(p: _Press) -> None:
    approve = p.prefix == "ap"
    await tasks.review(p.ctx.db, p.ctx.now(), p.member.id, p.task_id, approve=approve)
    await answer(p.query, p.t("Approved and published.") if approve else p.t("Rejected."))


_ACTIONS: dict[str, Callable[[_Press], Awaitable[None]]] = {
    "cl": _claim, "dt": _details, "wd": _withdraw, "rc": _cancel, "ed": _how_to_edit, "ap": _review, "rj": _review,
    "md": _details_again,
}


async def on_keep(update: Update, ctx: LinliContext) -> None:
    """"No, keep it" under the cancel question."""
    query = update.callback_query
    if query is None:
        return
    t = await tr_for(update, ctx)
    await answer(query)
    await edit_or_send(query, t("Good: the request stays as it is."))


async def _open_registration(query: CallbackQuery, ctx: LinliContext) -> bool:
    """Someone not registered tapped Claim on a card: open registration for that community."""
    chat_id = query.message.chat.id if query.message is not None else None
    code = await community_store.join_code_of_group(ctx.db, chat_id)
    if not code or not ctx.runtime.bot_username:
        return False
    await answer(query, url=link(ctx.runtime.bot_username, f"join_{code}"))
    return True


@menu_item("duty", N_("🟢 On duty / off duty"), visible=volunteer, order=25,
           about=N_("while you are on duty, I may ask you first when a neighbour needs help urgently."))
async def toggle_duty(update: Update, ctx: LinliContext) -> None:
    """Volunteers mark themselves available for urgent requests (and off again)."""
    t = await tr_for(update, ctx)
    user = update.effective_user
    if user is None:
        return
    try:
        on = await tasks.toggle_on_duty(ctx.db, ctx.now(), user.id)
    except DomainError as exc:
        await reply(update, error_text(t, exc))
        return
    await reply(update, t("🟢 You are on duty: I may ask you first when a neighbour needs help urgently.") if on
                else t("⚪ You are off duty. Thank you for your time!"))


@renderer("task_urgent_ping")
async def _r_urgent(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    """An urgent request, to an on-duty volunteer, with its own Claim button (not in quiet hours)."""
    from bot.jobs.outbox_drain import quiet_until

    task = await _task(rc, p.get("task_id"))
    if task is None or task.state != "open" or \
            await quiet_until(rc.db, rc.member_id, rc.moment(), rc.default_tz) is not None:
        await alerts.ping_not_sent(rc.db, rc.member_id, p)   # not sent: not counted toward the daily cap
        return None
    text = rc.t("🆘 A neighbour needs help now: {what}", what=esc((await tasks.public_description(rc.db, task))[:500]))
    return Rendered(text=text, reply_markup=inline([[(rc.t("🙋 Claim"), f"cl:{task.id}")]]))


PAGE = 5
WORDS_SHOWN = 3000  # of a task's words in a claimed task's details: the lines after them must fit too
MAX_OFFSET = 999_999  # where the list's Next and Previous buttons can point


async def cmd_tasks(update: Update, ctx: LinliContext) -> None:
    await _show_tasks(update, ctx, 0)


async def _show_tasks(update: Update, ctx: LinliContext, offset: int) -> None:
    """Open tasks of the member's community, five a page, each with its Claim button."""
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    member = await member_of(ctx, update.effective_user.id)
    if member is None or member.community_id is None or not member.registered:
        await reply(update, error_text(t, NotRegistered()))
        return
    if not member.is_volunteer:
        await reply(update, t("This list is for volunteers. To help neighbours too: 👤 My profile, then ✏ Change"
                              " my details, and choose “both”. To ask for help, press 🆘 Ask for help."))
        return
    total = await tasks.count_open(ctx.db, member.community_id)
    offset = max(0, min(offset, max(0, total - 1) // PAGE * PAGE))
    rows = await tasks.list_open(ctx.db, member.community_id, offset=offset, limit=PAGE)
    if not rows:
        await reply(update, t("There are no open tasks right now."))
        return
    lines = [t("Open tasks ({first}–{last} of {total}):", first=offset + 1, last=offset + len(rows), total=total)]
    buttons = []
    for r in rows:
        what = (await tasks.public_title(ctx.db, r)) or (await tasks.public_description(ctx.db, r)) or r.category
        lines.append(f"#{r.id} {esc(what[:80])}")
        buttons.append([(t("Claim #{id}", id=r.id), f"cl:{r.id}")])
    nav = []
    if offset > 0:
        nav.append((t("◀ Previous"), f"tp:{offset - PAGE}"))
    if offset + PAGE < total:
        nav.append((t("Next ▶"), f"tp:{offset + PAGE}"))
    if nav:
        buttons.append(nav)
    await reply(update, "\n".join(lines), inline(buttons))


async def on_contact_staff(update: Update, ctx: LinliContext) -> None:
    """"Contact staff" under a task: staff are told at once who asks, about which task."""
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    t = await tr_for(update, ctx)
    try:
        task_id = tasks.parse_task_id(query.data, "cs")
        member = await require_registered(ctx.db, query.from_user.id)
        told = await tasks.contact_staff(ctx.db, ctx.now(), member.id, task_id)
    except DomainError as exc:
        await answer(query, error_text(t, exc), alert=True)
        return
    await answer(query, t("I have told the community staff. They will contact you soon.") if told
                 else t("Sorry, no staff member can be reached in the bot right now. Please call the community office."),
                 alert=True)


async def on_page(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None:
        return
    offset = parse_int((query.data or "").split(":", 1)[-1], low=0, high=MAX_OFFSET, strict=True)
    if offset is None:
        t = await tr_for(update, ctx)
        await answer(query, t("This button is out of date. Please use the latest message."))
        return
    await answer(query)
    await _show_tasks(update, ctx, offset)


async def cmd_edittask(update: Update, ctx: LinliContext) -> None:
    """/edittask <id> title|description|slots|points <value> (staff)."""
    t = await tr_for(update, ctx)
    user = update.effective_user
    parts = (update.effective_message.text or "").split(maxsplit=3) if update.effective_message else []
    task_id = parse_int(parts[1], hash_ok=True) if len(parts) > 1 else None
    if user is None or len(parts) < 4 or task_id is None or parts[2] not in tasks.EDITABLE:
        await reply(update, esc(t("Please write: /edittask <task number> title|description|slots|points <new value>")))
        return
    try:
        member = await require_registered(ctx.db, user.id)
        await tasks.edit_task(ctx.db, ctx.now(), member.id, task_id, parts[2], parts[3])
    except DomainError as exc:
        await reply(update, error_text(t, exc))
        return
    await reply(update, t("Task #{id} is changed. The card in the group will show it shortly.", id=task_id))


async def cmd_review(update: Update, ctx: LinliContext) -> None:
    """/review on|off (staff): residents' requests wait for staff review, or publish at once."""
    t = await tr_for(update, ctx)
    user = update.effective_user
    arg = (ctx.args or [""])[0].lower() if ctx.args else ""
    if user is None or arg not in ("on", "off"):
        await reply(update, t("Please write /review on (requests wait for staff review) or /review off (they publish at once)."))
        return
    try:
        member = await require_registered(ctx.db, user.id)
        await tasks.set_review(ctx.db, ctx.now(), member.id, arg == "on")
    except DomainError as exc:
        await reply(update, error_text(t, exc))
        return
    await reply(update, t("From now on, residents' requests wait for staff review.") if arg == "on"
                else t("From now on, residents' requests are published at once."))


CATEGORY_HELP = N_(
    "To change the list:\n"
    "/categories points shopping 2 (points for new tasks of a category)\n"
    "/categories points all 1 (every category)\n"
    "/categories add garden 2 园艺 / Gardening\n"
    "/categories rename garden 花园 / Garden\n"
    "/categories remove garden · /categories restore garden\n"
    "Tasks already published keep their points.")


async def cmd_categories(update: Update, ctx: LinliContext) -> None:
    """/categories [points|add|rename|remove|restore ...] (staff): the help categories and their points."""
    t = await tr_for(update, ctx)
    user = update.effective_user
    text = update.effective_message.text if update.effective_message and update.effective_message.text else ""
    parts = text.split(maxsplit=2)
    verb = parts[1].lower() if len(parts) > 1 else ""
    rest = parts[2] if len(parts) > 2 else ""
    if user is None:
        return
    try:
        member = await require_registered(ctx.db, user.id)
        if verb:
            await _change_categories(ctx, member.id, verb, rest)
        rows = await categories.listing(ctx.db, member.id)  # staff only; refuses everyone else
    except DomainError as exc:
        await reply(update, error_text(t, exc) + "\n\n" + esc(t(CATEGORY_HELP)))
        return
    lines = [("✅ " + t("Saved.") + "\n") if verb else "", "<b>" + esc(t("Help categories and points per task")) + "</b>"]
    for c in rows:
        if c.active:
            lines.append(f"• <code>{esc(c.code)}</code> {esc(c.name_zh)} / {esc(c.name_en)}: "
                         + esc(t("{n} points", n=c.points)))
    removed = [c for c in rows if not c.active]
    if removed:
        lines.append(esc(t("Removed: {list}", list=", ".join(c.code for c in removed))))
    lines.append("\n" + esc(t(CATEGORY_HELP)))
    await reply(update, "\n".join(x for x in lines if x))


async def _change_categories(ctx: LinliContext, member_id: int, verb: str, rest: str) -> None:
    """/categories points|add|rename|remove|restore: parse the words and make the change."""
    now, args = ctx.now(), rest.split(maxsplit=2)
    if verb == "points" and len(args) == 2:
        code = "*" if args[0].lower() in ("all", "*", "全部") else categories.check_code(args[0])
        await categories.set_points(ctx.db, now, member_id, code, categories.parse_points(args[1]))
    elif verb == "add" and len(args) == 3:
        zh, en = categories.parse_names(args[2])
        await categories.add(ctx.db, now, member_id, code=args[0], points=categories.parse_points(args[1]),
                             name_zh=zh, name_en=en)
    elif verb == "rename" and len(rest.split(maxsplit=1)) == 2:
        code, names = rest.split(maxsplit=1)
        zh, en = categories.parse_names(names)
        await categories.rename(ctx.db, now, member_id, code, zh, en)
    elif verb in ("remove", "restore") and len(args) == 1:
        await categories.set_active(ctx.db, now, member_id, args[0], verb == "restore")
    else:
        raise InvalidInput()


async def cmd_canceltask(update: Update, ctx: LinliContext) -> None:
    """/canceltask <id>: staff cancel any task of their community; the requester their own."""
    t = await tr_for(update, ctx)
    user = update.effective_user
    parts = (update.effective_message.text or "").split() if update.effective_message else []
    task_id = parse_int(parts[1], hash_ok=True) if len(parts) == 2 else None
    if user is None or task_id is None:
        await reply(update, esc(t("Please write: /canceltask <task number>")))
        return
    try:
        member = await require_registered(ctx.db, user.id)
        told = await tasks.cancel(ctx.db, ctx.now(), member.id, task_id)
    except DomainError as exc:
        await reply(update, error_text(t, exc))
        return
    await reply(update, t("Task #{id} is cancelled. {n} volunteer(s) were told.", id=task_id, n=len(told)))


async def cmd_mytasks(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    if update.effective_user is None:
        return
    member = await member_of(ctx, update.effective_user.id)
    if member is None:
        await reply(update, error_text(t, NotRegistered()))
        return
    rows = await tasks.list_mine(ctx.db, member.id)
    waiting = await tasks.waiting_mine(ctx.db, member.id, ctx.now())
    if not rows and not waiting:
        await reply(update, t("You have no tasks yet."))
        return
    lines = [t("Your tasks:")] if rows else []
    for r in rows:
        lines.append(f"#{r.id} {task_name(t, r)} · {esc(_state(t, r.state))}")
    if waiting:
        lines += ([""] if rows else []) + [_waiting_line(t, w) for w in waiting]
    staff = mytasks_buttons(t, member, rows)
    held = _held_buttons(t, rows, set(await tasks.held_mine(ctx.db, member.id)))
    buttons = [list(row) for row in inline(held + _cancel_buttons(t, rows, member.id)).inline_keyboard]
    buttons += [list(row) for row in staff.inline_keyboard] if staff is not None else []
    buttons += [list(row) for row in inline(_waiting_buttons(t, waiting)).inline_keyboard]
    await reply(update, "\n".join(lines), InlineKeyboardMarkup(buttons) if buttons else None)


def _held_buttons(t: Translator, rows: list[Task], held: set[int]) -> list[list[tuple[str, str]]]:
    """The details again (the resident's contact, Done, Withdraw) of each task the volunteer holds."""
    return [[(t("📄 Details: {task}", task=tasks.label(r.title, r.description, limit=20) or f"#{r.id}")[:60],
              f"md:{r.id}")] for r in rows if r.id in held]


def _cancel_buttons(t: Translator, rows: list[Task], member_id: int) -> list[list[tuple[str, str]]]:
    """Cancel each of the member's own requests still to happen, taken or not (the "who is coming"
    message has the same button; a request nobody took had none)."""
    return [[(t("✖ Cancel: {task}", task=tasks.label(r.title, r.description, limit=20) or f"#{r.id}")[:60],
              f"rc:{r.id}")] for r in rows
            if r.requester_id == member_id and r.kind == "request" and r.state in tasks.CANCELLABLE_STATES][:10]


def _waiting_line(t: Translator, w: Waiting) -> str:
    """A waiting-list entry in /mytasks: its place in the line, or the place offered and until when."""
    if w.state == "offered":
        return t("🎟 A place on “{event}” is yours: please keep or decline it by {until}, or it goes to the next one "
                 "waiting.", event=task_name(t, w), until=local_time(w.offer_until, w.tz))
    return t("⏳ Waiting list: “{event}”, position {n} of {total}.", event=task_name(t, w), n=w.position,
             total=w.waiting)


def _waiting_buttons(t: Translator, waiting: list[Waiting]) -> list[list[tuple[str, str]]]:
    """Keep / decline a place offered, leave a waiting list (the waiting list's own buttons)."""
    rows: list[list[tuple[str, str]]] = []
    for w in waiting:
        name = tasks.label(w.title, w.description, limit=20) or f"#{w.id}"
        if w.state == "offered":
            rows.append([(t("✅ Keep: {event}", event=name)[:60], f"wly:{w.id}"),
                         (t("✖ Decline: {event}", event=name)[:60], f"wln:{w.id}")])
        else:
            rows.append([(t("Leave the waiting list: {event}", event=name)[:60], f"wlo:{w.id}")])
    return rows


# -- renderers -------------------------------------------------------------------------------
async def _task(rc: RenderContext, task_id: Any) -> Task | None:
    return await task_store.row(rc.db, task_id)


@renderer("task_claimed_volunteer")
async def _r_claimed(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    # One read: the task, this volunteer's claim, the resident's contact, the time and the place.
    task = await task_store.claimed_view(rc.db, p["task_id"], rc.member_id)
    if task is None or task.state in ("cancelled", "expired", "completed"):
        return None
    # Withdrawn (or let go) before this could be sent: the resident's contact is no longer theirs to see.
    if task.mine != "active":
        return None
    lines = [rc.t("Thank you for taking this task!"), esc(clip(task.title or task.description or "", WORDS_SHOWN))
             or rc.t("The request is a voice message: listen to it below.")]
    if task.is_proxy:
        lines.append(rc.t("For: {name}, phone {phone}", name=esc(task.proxy_name or ""),
                          phone=esc(task.proxy_phone or "")))
        lines.append(rc.t("Address: {a}", a=esc(task.proxy_address or "")))
    elif task.requester_id is not None:
        if task.requester_found:
            lines.append(rc.t("For: {name}, phone {phone}", name=esc(task.requester_name or ""),
                              phone=esc(task.requester_phone or "")))
        if task.address:
            lines.append(rc.t("Address: {a}", a=esc(task.address)))
    if task.description and task.title:
        lines.append(esc(clip(task.description, WORDS_SHOWN)))
    lines += _when_and_where(rc, task.kind, task.when())
    tid = task.id
    markup = inline([[(rc.t("✅ Done"), f"done:{tid}"), (rc.t("↩ Withdraw"), f"wd:{tid}")],
                     [(rc.t("☎ Contact staff"), f"cs:{tid}")]])
    return Rendered(text=fit("\n".join(lines), rc.t), reply_markup=markup, voice=task.voice_file_id)


def _when_and_where(rc: RenderContext, kind: str, row: TaskWhen) -> list[str]:
    """The time of a claimed task, and for an event its place (the address given, else its area)."""
    if kind != "event":
        return [rc.t("When: {w}", w=esc(when_text(rc.t, row)))]
    lines = [rc.t("When: {w}", w=esc(event_time(row)))] if row.starts_at else []
    place = row.address or row.area_name
    if place:
        lines.append(rc.t("Place: {p}", p=esc(place)))
    return lines


@renderer("task_details_removed")
async def _r_details_removed(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    """Edit an earlier details message down to one line once its reader withdrew or the task was cancelled."""
    about = await outbox_store.sent_about(rc.db, p.get("outbox_id"), p["task_id"])  # one read for both
    if about is None or about.sent.message_id is None:
        return None
    row, task = about.sent, about.task
    sent = int(about.sent.message_id)
    name = task_name(rc.t, task) if task else "#" + str(p["task_id"])
    why = p.get("why")
    if why == "withdrawn":
        text = rc.t("“{title}”: you withdrew, so the resident's contact details were removed from this message.",
                    title=name)
    elif why == "absent":  # the event was closed with them marked as not come (bot/services/completion.py)
        text = rc.t("“{title}” is closed, so its buttons were removed from this message.", title=name)
    elif why == "closed":  # the event was closed with them counted as come (bot/services/completion.py)
        text = rc.t("“{title}” is closed. Thank you for coming! Its buttons were removed from this message.",
                    title=name)
    elif why in ("removed", "no_show"):  # staff ended the place (bot/services/roster.py)
        text = rc.t("“{title}”: you no longer have a place, so the details were removed from this message.",
                    title=name)
    else:
        text = rc.t("“{title}” was cancelled, so the resident's contact details were removed from this message.",
                    title=name)
    voice = (int(row.voice_message_id),) if row.voice_message_id else ()  # the resident's voice goes too
    return Rendered(text=text, edit_message_id=sent, delete_message_ids=voice)


@renderer("task_who_is_coming")
async def _r_coming(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    tid = p["task_id"]
    if p.get("volunteer_id") and await claim_store.state_of(rc.db, tid, int(p["volunteer_id"])) == "withdrawn":
        return None  # they withdrew before this could be sent: it would name someone who is not coming
    text = rc.t("Good news: {name} is coming to help you.", name=esc(p.get("volunteer") or ""))
    task = await task_store.when_row(rc.db, tid)
    if task is not None:  # when, as the card says it, and what the Cancel button cancels
        text += "\n" + rc.t("When: {w}", w=esc(when_text(rc.t, task)))
    # How to reach them: their name as a link to their Telegram chat, read now (none once they erased
    # their data). Never their phone: volunteers are told only staff see it.
    who = await member_store.by_id(rc.db, int(p["volunteer_id"])) if p.get("volunteer_id") else None
    if who is not None and who.tg_user_id and who.deleted_at is None:
        link = f'<a href="tg://user?id={who.tg_user_id}">{esc(who.display_name or "")}</a>'
        text += "\n" + rc.t("To write to them, tap their name: {link}", link=link)
    text += "\n" + rc.t("If you no longer need help, press “✖ Cancel this request”.")
    return Rendered(text=text, reply_markup=inline([[(rc.t("✖ Cancel this request"), f"rc:{tid}")],
                                                    [(rc.t("☎ Call staff"), f"cs:{tid}")]]))


@renderer("task_coming_ended")
async def _r_coming_ended(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    """Take away an earlier "who is coming" message once that volunteer withdrew (the resident is told
    in one new message, ``task_volunteer_withdrew``): it is first edited down to one line that no
    longer names them as coming nor links to them, then deleted; Telegram lets a bot delete its
    messages for about two days only, so an older one stays as that line."""
    about = await outbox_store.sent_about(rc.db, p.get("outbox_id"), p["task_id"])
    if about is None or about.sent.message_id is None:
        return None  # never sent (its renderer dropped it): nothing to correct
    title = task_name(rc.t, about.task) if about.task else "#" + str(p["task_id"])
    sent = int(about.sent.message_id)
    return Rendered(text=await _cannot_come(rc, title, p.get("volunteer_id")), edit_message_id=sent,
                    delete_message_ids=(sent,))


async def _cannot_come(rc: RenderContext, title: str, volunteer_id: object) -> str:
    who = await member_store.by_id(rc.db, int(str(volunteer_id))) if volunteer_id else None
    if who is not None and who.deleted_at is None and who.display_name:
        return rc.t("Update on “{title}”: {name} cannot come after all.", title=title, name=esc(who.display_name))
    return rc.t("Update on “{title}”: the volunteer cannot come after all.", title=title)


@renderer("task_cancelled")
async def _r_cancelled(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(rc, p["task_id"])
    title = task_name(rc.t, task) if task else "#" + str(p["task_id"])
    return Rendered(text=rc.t("The task “{title}” was cancelled. You do not need to go. Thank you!", title=title))


@renderer("task_volunteer_withdrew")
async def _r_withdrew(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    """The one message a resident gets when their volunteer withdrew: who cannot come, and while the
    request is open, that it is open again, with its Cancel and Call staff buttons (the earlier
    "who is coming" message is taken away: ``task_coming_ended``)."""
    task = await task_store.row(rc.db, p["task_id"])
    title = task_name(rc.t, task) if task is not None else "#" + str(p["task_id"])
    text = await _cannot_come(rc, title, p.get("volunteer_id"))
    if task is None or task.state not in ("open", "in_progress"):
        return Rendered(text=text)
    text += "\n" + rc.t("Your request is open again for other volunteers. I will tell you when someone takes it.")
    return Rendered(text=text, reply_markup=inline([[(rc.t("✖ Cancel this request"), f"rc:{task.id}")],
                                                    [(rc.t("☎ Call staff"), f"cs:{task.id}")]]))


@renderer("task_review")
async def _r_review(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(rc, p["task_id"])
    if task is None or task.state != "pending_review":
        return None
    tid = task.id
    text = rc.t("A new request waits for your review:") + "\n" + esc(task.description or task.title or "")
    return Rendered(text=fit(text, rc.t), reply_markup=inline([[(rc.t("Approve"), f"ap:{tid}"),
                                                            (rc.t("✏ Edit"), f"ed:{tid}"),
                                                            (rc.t("Reject"), f"rj:{tid}")]]))


@renderer("task_reviewed")
async def _r_reviewed(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    if p.get("approved"):
        return Rendered(text=rc.t("Your request was approved and published. A volunteer will take it soon."))
    return Rendered(text=rc.t("Sorry, your request was not approved. Staff will contact you if needed."))


menu_item("tasks", N_("📋 Open tasks"), visible=volunteer, order=20,
          about=N_("tasks you can help with: one tap takes one on."))(cmd_tasks)
menu_item("mytasks", N_("🗂 My tasks"), visible=participant, order=30,
          about=N_("what you asked for or took on, who is coming, and what is still open."))(cmd_mytasks)


async def on_card_reply(update: Update, ctx: LinliContext) -> None:
    """Words typed in answer to an open task's card in the group ("我来", "I can go"): a claim is a tap,
    so the bot says so under them, in the group's language (else the volunteer thinks it is theirs
    and nobody comes), once per card. Nothing is claimed; nothing private is said."""
    msg, user = update.effective_message, update.effective_user
    replied = msg.reply_to_message if msg is not None else None
    if msg is None or user is None or replied is None or replied.from_user is None or replied.from_user.id != ctx.bot.id:
        return
    seen = await card_store.pressed(ctx.db, msg.chat.id, replied.message_id, user.id)
    if seen.card is None or str(seen.card["state"]) != "open":
        return
    if not await tasks.card_reply_hint(ctx.db, int(seen.card["id"]), ctx.now()):
        return  # said once under this card already: the group's messages are few (20 a minute)
    t = await community_translator(ctx, int(seen.card["community_id"]))
    try:
        await msg.reply_text(t("To take this task, please tap “{claim}” on it: a message here does not claim it.",
                               claim=t("🙋 Claim")), do_quote=True)
    except TelegramError as exc:
        log.info("could not answer a reply to a card in %s: %s", msg.chat.id, exc)


def register(app: LinliApp) -> None:
    """Add this feature's handlers to the application."""
    from bot.instance import OUTBOX, run_leased
    from bot.jobs import cards

    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("tasks", cmd_tasks, filters=private))
    app.add_handler(CommandHandler("mytasks", cmd_mytasks, filters=private))
    app.add_handler(CommandHandler("edittask", cmd_edittask, filters=private))
    app.add_handler(CommandHandler("canceltask", cmd_canceltask, filters=private))
    app.add_handler(CommandHandler("review", cmd_review, filters=private))
    app.add_handler(CommandHandler("categories", cmd_categories, filters=private))
    app.add_handler(MessageHandler(filters.ChatType.GROUPS & filters.REPLY & filters.TEXT & ~filters.COMMAND,
                                   on_card_reply))
    app.add_handler(CallbackQueryHandler(on_page, pattern=r"^tp:"))
    app.add_handler(CallbackQueryHandler(on_contact_staff, pattern=r"^cs:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(on_callback, pattern=r"^(cl|dt|wd|rc|ap|rj|ed|md):"))
    app.add_handler(CallbackQueryHandler(on_keep, pattern=r"^rcn:"))
    if app.job_queue is not None:
        # the cards spend the groups' budget with the outbox: on the instance holding its lease
        run_leased(app, OUTBOX, cards.refresh_cards, interval=1, first=1, name="cards")
