"""Database times: the text is fixed-width UTC whatever the moment's zone, and reads back exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from storage.timeutil import from_db, opt_from_db, to_db

MOMENTS = [
    datetime(2026, 12, 2, 8, 0, tzinfo=UTC),
    datetime(2026, 12, 2, 8, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Shanghai")),
    datetime(2026, 3, 29, 3, 30, 5, 7, tzinfo=ZoneInfo("Europe/London")),
    datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 6, 1, tzinfo=ZoneInfo("UTC")),
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_to_db_is_the_utc_text_and_reads_back(moment: datetime) -> None:
    text = to_db(moment)
    assert text == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(text) == 27
    assert from_db(text) == moment and from_db(text).tzinfo is UTC


def test_each_moment_gets_its_own_text_when_repeated_or_interleaved() -> None:
    a, b = MOMENTS[0], MOMENTS[0] + timedelta(microseconds=1)
    assert [to_db(a), to_db(a), to_db(b), to_db(a)] == [
        "2026-12-02T08:00:00.000000Z", "2026-12-02T08:00:00.000000Z", "2026-12-02T08:00:00.000001Z",
        "2026-12-02T08:00:00.000000Z"]


def test_naive_and_malformed_times_are_refused() -> None:
    with pytest.raises(ValueError):
        to_db(datetime(2026, 1, 1))
    for bad in ("2026-12-02", "2026-12-02T08:00:00Z", "2026-12-02 08:00:00.000000Z", "2026-12-02T08:00:00.000000+08:00"):
        with pytest.raises(ValueError):
            from_db(bad)
    assert opt_from_db(None) is None
