"""The expiring-points sweep (bot/services/expiry.py) as part of the timed sweeps, and the
month's warning it sends to a member."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.renderers import RenderContext, Rendered, renderer
from bot.services import expiry
from storage.db import Database


async def run_once(db: Database, now: datetime) -> dict[str, int]:
    """Expire what is due and warn a month before (idle: two look-ups per community)."""
    out = await expiry.sweep_expiry(db, now)
    return {"points_expired": out["expired"], "points_expiry_warned": out["warned"]}


@renderer("points_expiring", deferrable=True)
async def _expiring(ctx: RenderContext, p: dict[str, Any]) -> Rendered | None:
    return Rendered(text=ctx.t("{points} of your points will expire at the end of {date}. Please use them before then,"
                               " for example in the points supermarket.",
                               points=int(p["points"]), date=str(p["last_day"])))
