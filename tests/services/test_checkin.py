"""The check-in window: one rule (bot/services/checkin.py ``window``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.services.checkin import EARLY, LENGTH, window

START = datetime(2026, 5, 4, 1, 30, tzinfo=UTC)
END = START + timedelta(hours=2)


def test_from_some_minutes_before_the_start_to_the_end() -> None:
    win = window(START, END)
    assert win.before(START - EARLY - timedelta(seconds=1))
    assert not win.before(START - EARLY) and not win.after(START - EARLY)
    assert not win.after(END - timedelta(seconds=1))
    assert win.after(END)


def test_without_an_end_it_lasts_the_default_length_and_without_a_start_from_any_time() -> None:
    assert window(START, None).after(START + LENGTH) and not window(START, None).after(START + LENGTH / 2)
    open_ended = window(None, None)
    assert not open_ended.before(START) and not open_ended.after(START + timedelta(days=365))
    assert window(None, END).after(END) and not window(None, END).before(START - timedelta(days=1))
