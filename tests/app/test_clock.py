"""The one way a moment is shown as a short local time (bot.clock.short_local), and the stored-text
form the cards, reminders and digests use (bot.ui.local_time)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import short_local
from bot.ui import local_time
from storage.timeutil import to_db


def test_a_moment_is_shown_as_month_day_and_time_in_the_communitys_zone() -> None:
    moment = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    assert short_local(moment, "Asia/Shanghai") == "05-04 17:00"
    assert short_local(moment, "Europe/London") == "05-04 10:00"
    assert short_local(datetime(2026, 12, 31, 20, 5, tzinfo=UTC), "Asia/Shanghai") == "01-01 04:05"


def test_a_stored_time_is_shown_the_same_way_and_nothing_for_none() -> None:
    moment = datetime(2026, 12, 31, 20, 5, tzinfo=UTC)
    assert local_time(to_db(moment), "Asia/Shanghai") == short_local(moment, "Asia/Shanghai") == "01-01 04:05"
    assert local_time(None, "Asia/Shanghai") == local_time("", "Asia/Shanghai") == ""
