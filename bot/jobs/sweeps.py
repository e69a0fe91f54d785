"""Sweeps over the database on a timer: reminders, escalations, expiry, digests (later issues)."""

from __future__ import annotations

from bot.context import LinliApp


def register(app: LinliApp) -> None:
    """Schedule the sweeps (filled by the notifications issue)."""
