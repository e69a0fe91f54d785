"""The waiting-list sweep (bot/services/waitlist.py) as part of the timed sweeps: offers of a
place not kept in time go to the next one waiting."""

from __future__ import annotations

from datetime import datetime

from storage.db import Database


async def run_once(db: Database, now: datetime) -> dict[str, int]:
    """Lapse the offers whose time has passed (idle: one look-up in the index of open offers)."""
    from bot.services import waitlist

    return {"waitlist_lapsed": await waitlist.sweep(db, now)}
