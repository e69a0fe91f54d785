"""Times in the database: UTC, fixed-width text, so string order is time order."""

from __future__ import annotations

from datetime import UTC, datetime

_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_db(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the database; pass an aware one")
    return moment.astimezone(UTC).strftime(_FMT)


def from_db(text: str) -> datetime:
    return datetime.strptime(text, _FMT).replace(tzinfo=UTC)


def opt_from_db(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)
