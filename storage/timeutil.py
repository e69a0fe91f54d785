"""Times in the database: UTC, fixed-width text, so string order is time order."""

from __future__ import annotations

from datetime import UTC, datetime

# BOT_TIMEZONE's default (bot/config.py), and the zone of whatever has no community of its own when no
# setting is at hand: the one place that names it (each community has its own zone).
DEFAULT_TIMEZONE = "Asia/Shanghai"
_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"
# The last moment converted and its text: a claim stores the same ``now`` about eight times (its
# rows, the outbox's, the dedupe keys), and the caller passes the same object each time.
_last: tuple[datetime, str] | None = None


def to_db(moment: datetime) -> str:
    global _last
    last = _last  # one read: another thread may replace it, never half of it
    if last is not None and last[0] is moment:
        return last[1]
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the database; pass an aware one")
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    # isoformat is C code and about a third cheaper than strftime; same text ("...T08:00:00.000000Z").
    text = utc.isoformat(timespec="microseconds")[:26] + "Z"
    _last = (moment, text)
    return text


def from_db(text: str) -> datetime:
    if len(text) == 27 and text[10] == "T" and text[26] == "Z":  # what to_db writes: the C parser
        try:
            return datetime.fromisoformat(text).astimezone(UTC)
        except ValueError:
            pass
    return datetime.strptime(text, _FMT).replace(tzinfo=UTC)  # anything else: as strict as before


def opt_from_db(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)
