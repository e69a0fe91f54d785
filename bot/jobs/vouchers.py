"""Expiry sweep: expire vouchers past their validity and refund per the reward's setting. A pass every
ten minutes, paced like the sweeps (bot/instance.py ``Passes``): a tick that completed no pass (the
lease not held at that moment, or the pass failed) is tried again within ``BOT_JOB_LEASE_RENEW``
seconds, not ten minutes later."""

from __future__ import annotations

import logging

from bot.context import LinliApp, LinliContext
from bot.instance import SWEEPS, Passes, run_passes
from bot.services import rewards

log = logging.getLogger(__name__)


EXPIRY_INTERVAL = 600.0


async def expire_vouchers(ctx: LinliContext) -> bool:
    """One expiry pass; whether it completed."""
    try:
        n = await rewards.expire_due(ctx.db, ctx.now())
    except Exception:
        log.exception("voucher expiry sweep failed")
        return False
    if n:
        log.info("expired %d vouchers", n)
    return True


def schedule(app: LinliApp) -> Passes | None:
    if app.job_queue is None:
        return None
    settings = app.bot_data["runtime"].settings
    return run_passes(app, SWEEPS, expire_vouchers, interval=EXPIRY_INTERVAL, retry=settings.job_lease_renew, first=30,
                      name="voucher_expiry")
