"""Expiry sweep: expire vouchers past their validity and refund per the reward's setting."""

from __future__ import annotations

import logging

from bot.context import LinliApp, LinliContext
from bot.instance import SWEEPS, run_leased
from bot.services import rewards

log = logging.getLogger(__name__)


async def expire_vouchers(ctx: LinliContext) -> None:
    try:
        n = await rewards.expire_due(ctx.db, ctx.now())
    except Exception:
        log.exception("voucher expiry sweep failed")
        return
    if n:
        log.info("expired %d vouchers", n)


def schedule(app: LinliApp) -> None:
    if app.job_queue is None:
        return
    run_leased(app, SWEEPS, expire_vouchers, interval=600, first=30, name="voucher_expiry")
