"""Waiting lists in Telegram: "Join the waiting list" on a full event's card, and in private the
Leave, Keep and Decline buttons. The rules are bot/services/waitlist.py; the sweep for offers not
answered in time is bot/jobs/waitlist.py."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.context import LinliApp, LinliContext
from bot.i18n import Translator
from bot.models import DomainError, NotRegistered
from bot.renderers import RenderContext, Rendered, renderer
from bot.services import tasks, waitlist
from bot.services.access import member_by_tg
from bot.ui import answer, edit_or_send, error_text, inline, task_name, tr_for
from storage import tasks as task_store
from storage import waitlist as waitlist_store


async def on_press(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    prefix = (query.data or "").split(":", 1)[0]
    t = await tr_for(update, ctx)
    try:
        task_id = tasks.parse_task_id(query.data, prefix)
        member = await member_by_tg(ctx.db, query.from_user.id)
        if member is None or member.registered_at is None:
            raise NotRegistered()
        now = ctx.now()
        if prefix == "wl":
            joined = await waitlist.join(ctx.db, now, member.id, task_id)
            await answer(query, t("You are number {n} on the waiting list. When a place frees, it is yours and I"
                                  " will write to you in private.", n=joined.position), alert=True)
        elif prefix == "wlo":
            await waitlist.leave(ctx.db, now, member.id, task_id)
            await answer(query)
            await edit_or_send(query, t("You have left the waiting list. Thank you!"))
        elif prefix == "wly":
            await waitlist.keep(ctx.db, now, member.id, task_id)
            await answer(query)
            await edit_or_send(query, t("The place is yours. Thank you! The details follow."))
        else:
            await waitlist.decline(ctx.db, now, member.id, task_id)
            await answer(query)
            await edit_or_send(query, t("You have declined the place; it goes to the next one waiting. Thank you!"))
    except DomainError as exc:
        await answer(query, error_text(t, exc), alert=True)


async def _entry(rc: RenderContext, task_id: int) -> str | None:
    return await waitlist_store.state_of(rc.db, task_id, rc.member_id)


@renderer("waitlist_joined")
async def _r_joined(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await task_store.row(rc.db, p["task_id"])
    if task is None or task.state not in ("open", "full") or await _entry(rc, task.id) != "waiting":
        return None  # given a place, or left, before this could be sent
    tid = task.id
    text = rc.t("You are on the waiting list for “{title}” (number {n}). When a place frees, it is yours at once"
                " and I will tell you here.", title=task_name(rc.t, task), n=int(p.get("position") or 0))
    return Rendered(text=text, reply_markup=inline([[(rc.t("Leave the waiting list"), f"wlo:{tid}")]]))


def hold_words(t: Translator, minutes: int) -> str:
    """How long a place offered is held: minutes under an hour, whole hours otherwise."""
    if minutes < 60:
        return t.np("{n} minute", "{n} minutes", max(1, minutes))
    return t.np("{n} hour", "{n} hours", round(minutes / 60))


@renderer("waitlist_offer")
async def _r_offer(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await task_store.row(rc.db, p["task_id"])
    if task is None or task.state not in ("open", "full") or await _entry(rc, task.id) != "offered":
        return None  # declined, lapsed or kept before this could be sent
    tid = task.id
    minutes = int(p.get("minutes") or int(p.get("hours") or 2) * 60)  # "hours": offers queued before minutes
    text = rc.t("Good news: a place on “{title}” has freed and it is yours now. Please press “Keep my place”"
                " within {hold}; otherwise it goes to the next one waiting.",
                title=task_name(rc.t, task), hold=hold_words(rc.t, minutes))
    return Rendered(text=text, reply_markup=inline([[(rc.t("✅ Keep my place"), f"wly:{tid}"),
                                                     (rc.t("✖ I cannot come"), f"wln:{tid}")]]))


async def _title(rc: RenderContext, p: dict[str, Any]) -> str:
    """The event's name for a notice about its waiting list (its number if it is gone)."""
    task = await task_store.row(rc.db, p["task_id"])
    return task_name(rc.t, task) if task else "#" + str(p["task_id"])


@renderer("waitlist_lapsed")
async def _r_lapsed(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=rc.t("The time to keep your place on “{title}” has passed, so it went to the next one"
                              " waiting. Thank you all the same!", title=await _title(rc, p)))


@renderer("waitlist_cancelled")
async def _r_cancelled(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=rc.t("Sorry: “{title}”, whose waiting list you were on, was cancelled. You are no longer on"
                              " its waiting list. Thank you for wanting to help!", title=await _title(rc, p)))


@renderer("waitlist_closed")
async def _r_closed(rc: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=rc.t("“{title}”, whose waiting list you were on, has taken place: no place came free this"
                              " time. Thank you for being ready to help!", title=await _title(rc, p)))


def register(app: LinliApp) -> None:
    app.add_handler(CallbackQueryHandler(on_press, pattern=r"^(wl|wlo|wly|wln):\d{1,12}$"))
