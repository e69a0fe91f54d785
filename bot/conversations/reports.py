"""Handlers for this feature (to be filled by its issue)."""

from __future__ import annotations

from bot.context import LinliApp


def register(app: LinliApp) -> None:
    """Add this feature's handlers to the application."""
