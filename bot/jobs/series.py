"""The series job: posts each recurring event's occurrences as they come within the community's
horizon (bot/services/series.py ``post_due``). Idempotent, so a restart or two runs never post an
occurrence twice; an idle run is one indexed read. Paced like the sweeps (bot/instance.py ``Passes``):
a tick that completed no pass is tried again within ``BOT_JOB_LEASE_RENEW`` seconds."""

from __future__ import annotations

import logging

from bot.context import LinliApp, LinliContext
from bot.instance import SWEEPS, Passes, run_passes
from bot.services import series

log = logging.getLogger(__name__)


async def _job(ctx: LinliContext) -> bool:
    try:
        posted = await series.post_due(ctx.db, ctx.now())
    except Exception:  # a bad row must not stop the timer
        log.exception("series job failed")
        return False
    job = ctx.job
    first = job is not None and isinstance(job.data, dict) and job.data.pop("first", False)
    if posted or first:  # the first run of a process is said even when idle (evidence it ran)
        log.info("series job: posted %d events of series", posted)
    return True


def register(app: LinliApp) -> Passes:
    """Schedule the series job (as often as the sweeps; a tick that completed no pass is tried again
    within ``BOT_JOB_LEASE_RENEW`` seconds)."""
    settings = app.bot_data["runtime"].settings
    return run_passes(app, SWEEPS, _job, interval=settings.sweep_interval, retry=settings.job_lease_renew,
                      first=1.0, name="series", data={"first": True})
