"""The series job: posts each recurring event's occurrences as they come within the community's
horizon (bot/services/series.py ``post_due``). Idempotent, so a restart or two runs never post an
occurrence twice; an idle run is one indexed read."""

from __future__ import annotations

import logging

from bot.context import LinliApp, LinliContext
from bot.instance import SWEEPS, run_leased
from bot.services import series

log = logging.getLogger(__name__)


async def _job(ctx: LinliContext) -> None:
    try:
        posted = await series.post_due(ctx.db, ctx.now())
    except Exception:  # a bad row must not stop the timer
        log.exception("series job failed")
        return
    job = ctx.job
    first = job is not None and isinstance(job.data, dict) and job.data.pop("first", False)
    if posted or first:  # the first run of a process is said even when idle (evidence it ran)
        log.info("series job: posted %d events of series", posted)


def register(app: LinliApp) -> None:
    """Schedule the series job (as often as the sweeps)."""
    settings = app.bot_data["runtime"].settings
    run_leased(app, SWEEPS, _job, interval=settings.sweep_interval, first=1.0, name="series", data={"first": True})
