"""One clock for the whole bot. Services take ``now``; jobs and handlers ask the clock. And the one
way a moment is shown as a short local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def short_local(moment: datetime, tz: str) -> str:
    """A moment as the community's local ``MM-DD HH:MM`` (cards, reminders, digests, check-in times)."""
    return moment.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M")


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, **kwargs: float) -> datetime:
        self._now += timedelta(**kwargs)
        return self._now


class OffsetClock(Clock):
    """Real time shifted by an offset (the demo and end-to-end tests use this to skip ahead)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset
