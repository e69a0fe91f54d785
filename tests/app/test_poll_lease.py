"""``linli doctor``'s line about long polling, for each state of the lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.poll_lease import described
from storage.leases import Lease

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def test_the_doctor_line_names_the_poller_or_says_nobody_polls() -> None:
    assert described(None, NOW).startswith("nobody (no instance")
    held = Lease("poll", "aaa", "box", 42, NOW, NOW + timedelta(seconds=20))
    assert described(held, NOW) == "host box, pid 42 (lease renewed to 2026-05-04 09:00:20 UTC; other instances stand by)"
    assert described(held, NOW + timedelta(seconds=20)).startswith("nobody now (the last poller, host box, pid 42,")
