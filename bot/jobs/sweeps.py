"""Sweeps over the database on a timer: reminders, escalations, expiry and the daily digests.

Each run asks "what is due before now and not done yet", so a restart or a long downtime loses
nothing and fires nothing twice. The renderers for the messages the sweeps queue live here too.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot import budget
from bot.context import LinliApp, LinliContext
from bot.fit import fit
from bot.instance import SWEEPS, Passes, run_passes
from bot.jobs import expiry
from bot.jobs import waitlist as waitlist_job
from bot.renderers import RenderContext, Rendered, on_unreachable, renderer
from bot.services import digest, housekeeping, notifications, points, tasks
from bot.ui import esc, inline, local_time, task_name
from storage import claims as claim_store
from storage import members as member_store
from storage import tasks as task_store
from storage.tasks import ACTIVE_TASK_STATES, Task

log = logging.getLogger(__name__)


async def _task(ctx: RenderContext, task_id: int) -> Task | None:
    return await task_store.row(ctx.db, task_id)


def _title(ctx: RenderContext, task: Task) -> str:
    return task_name(ctx.t, task)


# Reminders about a task the member claimed go through quiet hours (they are about that task).
@renderer("task_reminder")
async def _reminder(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None or task.state not in ACTIVE_TASK_STATES:
        return None
    if await claim_store.state_of(ctx.db, task.id, ctx.member_id) != "active":
        return None
    shown = await task_store.when_row(ctx.db, task.id)  # with its community's time zone
    if shown is None:
        return None
    when = local_time(shown.starts_at, shown.tz)
    if p.get("which") == "eve":
        text = ctx.t("Reminder: tomorrow you are helping with “{title}” at {when}. Thank you!", title=_title(ctx, task), when=when)
    else:
        text = ctx.t("Reminder: “{title}” starts soon, at {when}. Thank you for helping!", title=_title(ctx, task), when=when)
    return Rendered(text=text)


@renderer("task_reannounce")
async def _reannounce(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None or task.state != "open":
        return None
    # posted in the group: named as its card names it, without the requester's name or address
    title = task_name(ctx.t, task, await tasks.task_secrets(ctx.db, task))
    return Rendered(text=ctx.t("Still looking for a helper: “{title}”. Can you help? Open the task card above to claim it.",
                               title=title))


@renderer("task_unclaimed_staff", deferrable=True)
async def _unclaimed_staff(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None or task.state != "open":
        return None
    return Rendered(text=ctx.t("Nobody has claimed “{title}” yet. It was posted again in the group. You may want to call a volunteer.",
                               title=_title(ctx, task)))


@renderer("task_overdue_ask", deferrable=True)
async def _overdue(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None or task.state not in ACTIVE_TASK_STATES:
        return None
    tid = int(task.id)
    return Rendered(text=ctx.t("How did “{title}” go? If you have finished, please tap Done below. If something went wrong,"
                               " tap Contact staff.", title=_title(ctx, task)),
                    reply_markup=inline([[(ctx.t("✅ Done"), f"done:{tid}")],
                                         [(ctx.t("↩ Withdraw"), f"wd:{tid}"), (ctx.t("☎ Contact staff"), f"cs:{tid}")]]))


@renderer("confirm_reminder", deferrable=True)
async def _confirm_reminder(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None or task.state != "awaiting_confirmation":
        return None
    tid = int(task.id)
    return Rendered(text=ctx.t("The volunteer says “{title}” is done. Please confirm below, so they get their points.",
                               title=_title(ctx, task)),
                    reply_markup=inline([[(ctx.t("✅ Yes, thank you"), f"cf:{tid}:y")],
                                         [(ctx.t("↩ Not done"), f"cf:{tid}:n"), (ctx.t("⚠ Problem"), f"cf:{tid}:p")]]))


@renderer("confirm_escalation", deferrable=True)
async def _confirm_escalation(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None or task.state != "awaiting_confirmation":
        return None
    return Rendered(text=ctx.t("“{title}” (task #{id}) has waited two days for confirmation. Please check with the resident.",
                               title=_title(ctx, task), id=task.id))


@renderer("auto_confirmed_volunteer", deferrable=True)
async def _auto_vol(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None:
        return None
    return Rendered(text=ctx.t("“{title}” was confirmed automatically. You received {points} points. Thank you!",
                               title=_title(ctx, task), points=int(p.get("points", 0))))


@renderer("auto_confirmed_requester", deferrable=True)
async def _auto_req(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None:
        return None
    return Rendered(text=ctx.t("“{title}” was marked as completed, because we did not hear back. If something is wrong, please contact staff.",
                               title=_title(ctx, task)))


@renderer("task_expired", deferrable=True)
async def _expired(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None or task.state != "expired":
        return None
    return Rendered(text=ctx.t("We are sorry: nobody was free to help with “{title}” in time. You can post it again from the menu, or call the community staff and they will help you.",
                               title=_title(ctx, task)))


@renderer("volunteer_unreachable_staff")
async def _unreachable_staff(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    task = await _task(ctx, int(p["task_id"]))
    if task is None or task.state not in ACTIVE_TASK_STATES:
        return None
    named = await member_store.public_name(ctx.db, int(p["member_id"]))
    name = named.display_name if named is not None else None
    return Rendered(text=ctx.t("We cannot reach the volunteer {name} (they may have blocked the bot), who claimed “{title}” (task #{id}). Please call them or find someone else.",
                               name=esc(name or "?"), title=_title(ctx, task), id=task.id))


@on_unreachable
async def _tell_staff_unreachable(conn: Any, member_id: int, kind: str, payload: dict[str, Any], now: Any) -> None:
    await notifications.volunteer_unreachable(conn, member_id, kind, payload, now)


# -- digests ----------------------------------------------------------------------------
def _named(ctx: RenderContext, x: dict[str, Any], tz: str, *, category: bool = True) -> str:
    """A task in a digest as its group card names it (escaped): [time ·] category · what · area, the
    what already masked by the digest builder. Events: time, title and area."""
    t = ctx.t
    cat = (x.get("category_zh") if ctx.lang == "zh" else None) or x.get("category_en")
    what = x.get("title") or (t("voice message") if x.get("voice") else None)
    parts = [local_time(x.get("starts_at"), tz), cat if category else None, what, x.get("area")]
    named = " · ".join(esc(p) for p in parts if p)
    return named or esc(t("Task #{id}", id=x["id"]))


def render_group_digest(ctx: RenderContext, d: dict[str, Any]) -> str:
    t = ctx.t
    tz = str(d["tz"])  # the community's, always in the payload (services.digest)
    lines = [t("<b>Daily digest</b>")]
    if d["open_tasks"]:
        lines.append(t("Tasks needing a helper:"))
        lines += [f"• {_named(ctx, x, tz)}" for x in d["open_tasks"]]
    if d["completed_yesterday"]:
        lines.append(t("Yesterday: {n} tasks completed, {p} points earned.", n=d["completed_yesterday"], p=d["points_yesterday"]))
    if d["top_volunteers"]:
        lines.append(t("Top volunteers this week:"))
        lines += [f"{i}. {esc(x['name'])} ({int(x['points'])})" for i, x in enumerate(d["top_volunteers"], 1)]
    if d["top_organisations"]:
        lines.append(t("Top organisations this week:"))
        lines += [f"{i}. {esc(x['name'])} ({int(x['points'])})" for i, x in enumerate(d["top_organisations"], 1)]
    if d["events"]:
        lines.append(t("Coming events:"))
        lines += [f"• {_named(ctx, x, tz, category=False)}"
                  + (" · " + t("only for {org}", org=esc(x["organisation"])) if x.get("organisation") else "")
                  for x in d["events"]]
    return fit("\n".join(lines), t)


def render_volunteer_digest(ctx: RenderContext, d: dict[str, Any]) -> str:
    t = ctx.t
    tz = str(d["tz"])  # the community's, always in the payload (services.digest)
    lines = [t("<b>Your daily digest</b>")]
    if d["today"]:
        lines.append(t("Your tasks today:"))
        lines += [f"• {_named(ctx, x, tz)}" for x in d["today"]]
    if d["matching"]:
        lines.append(t("Open tasks near you or matching your skills:"))
        lines += [f"• {_named(ctx, x, tz)}" for x in d["matching"]]
    lines.append(t("Your balance: {n} points.", n=d["balance"]))
    lines.append(t("To change or stop this digest, press ⚙ Settings in the menu."))
    return fit("\n".join(lines), t)


def render_staff_digest(ctx: RenderContext, d: dict[str, Any]) -> str:
    t = ctx.t
    lines = [t("<b>Staff digest: what needs you</b>")]
    if d["pending_reviews"]:
        lines.append(t("Requests waiting for review: {n}", n=d["pending_reviews"]))
    if d["open_cases"]:
        lines.append(t("Open problems: {n}", n=d["open_cases"]))
    if d["waiting_confirmation"]:
        lines.append(t("Tasks waiting over two days for confirmation: {n}", n=d["waiting_confirmation"]))
    if d["unclaimed"]:
        lines.append(t("Tasks nobody has claimed: {n}", n=d["unclaimed"]))
    if d["unreachable"]:
        lines.append(t("Volunteers we cannot reach (they have active tasks):"))
        lines += [f"• {esc(x['name'] or '')}" for x in d["unreachable"]]
    return fit("\n".join(lines), t)


@renderer("digest_group")
async def _digest_group(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=render_group_digest(ctx, p))


@renderer("digest_volunteer", deferrable=True)
async def _digest_volunteer(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=render_volunteer_digest(ctx, p))


@renderer("digest_staff", deferrable=True)
async def _digest_staff(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=render_staff_digest(ctx, p))


# -- the job ----------------------------------------------------------------------------
async def run_once(ctx_db: Any, now: datetime) -> dict[str, int]:
    """One pass of every sweep (tests call this with a frozen ``now``)."""
    out = await notifications.run_all(ctx_db, now)
    out["digests"] = await digest.sweep_digests(ctx_db, now)
    out["month_top"] = await points.sweep_month_top(ctx_db, now)
    out.update(await expiry.run_once(ctx_db, now))
    out.update(await waitlist_job.run_once(ctx_db, now))
    out.update({f"pruned_{k}": v for k, v in (await housekeeping.prune(ctx_db, now)).items()})
    out["pruned_send_budget"] = await budget.prune(ctx_db)   # real time, whatever ``now`` says
    await housekeeping.mark_swept(ctx_db, now)
    return out


async def _job(ctx: LinliContext) -> bool:
    try:
        await run_once(ctx.db, ctx.now())
    except Exception:  # a bad row must not stop the timer
        log.exception("sweep failed")
        return False
    return True


def register(app: LinliApp) -> Passes:
    """Schedule the sweeps: a pass every ``BOT_SWEEP_INTERVAL`` seconds; a tick that completed none
    (the lease not held or renewed late, or the pass failed) is tried again within
    ``BOT_JOB_LEASE_RENEW`` seconds (``linli demo`` sweeps once an hour and waits for that pass)."""
    settings = app.bot_data["runtime"].settings
    return run_passes(app, SWEEPS, _job, interval=settings.sweep_interval, retry=settings.job_lease_renew,
                      first=1.0, name="sweeps")
