"""Asking for help and publishing tasks (dialogs)."""

from __future__ import annotations

from bot.context import LinliApp


def register(app: LinliApp) -> None:
    """Add the /request and /publish dialogs."""
