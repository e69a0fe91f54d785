"""The pure parsers of the request dialog (bot/conversations/request_flow.py): typed and spoken times
(parse_when), typed day words and phone numbers, without the bot process."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.conversations.request_flow import _typed_when, clean_phone, parse_when

TZ = ZoneInfo("Asia/Shanghai")


def test_typed_dates_and_times() -> None:
    now = datetime(2026, 12, 20, 2, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 in Shanghai
    assert parse_when("2026-12-21 09:30", now, TZ) == datetime(2026, 12, 21, 9, 30, tzinfo=TZ)
    assert parse_when("12-21 9:30", now, TZ) == datetime(2026, 12, 21, 9, 30, tzinfo=TZ)
    assert parse_when("12/21 09：30", now, TZ) == datetime(2026, 12, 21, 9, 30, tzinfo=TZ)
    assert parse_when("01-05 08:00", now, TZ) == datetime(2027, 1, 5, 8, 0, tzinfo=TZ)  # next January
    assert parse_when("12-20 08:00", now, TZ) == datetime(2026, 12, 20, 8, 0, tzinfo=TZ)  # earlier today: past
    for bad in ("tomorrow", "13-01 10:00", "12-21 25:00", "12-21", "", "2026-02-30 10:00"):
        assert parse_when(bad, now, TZ) is None, bad
    day = datetime(2026, 12, 22, 1, 30, tzinfo=ZoneInfo("UTC"))
    assert parse_when("17:00", now, TZ, day=day) == datetime(2026, 12, 22, 17, 0, tzinfo=TZ)
    assert parse_when("17:00", now, TZ) == datetime(2026, 12, 20, 17, 0, tzinfo=TZ)  # no day given: today


def test_spoken_times() -> None:
    now = datetime(2026, 12, 20, 2, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 in Shanghai
    # as people say it (found by an exploratory review: 明天下午3点 was "not understood")
    spoken = {"明天下午3点": (21, 15, 0), "今天上午十点半": (20, 10, 30), "后天 9:30": (22, 9, 30),
              "下午两点一刻": (20, 14, 15), "晚上8点": (20, 20, 0), "明天下午3点20分": (21, 15, 20),
              "tomorrow 3pm": (21, 15, 0), "today at 10:30 am": (20, 10, 30), "中午12点": (20, 12, 0),
              "3 p.m.": (20, 15, 0), "晚上12点": (21, 0, 0), "3点": (20, 15, 0), "明天3点半": (21, 15, 30)}
    for said, (d, h, mi) in spoken.items():
        assert parse_when(said, now, TZ) == datetime(2026, 12, d, h, mi, tzinfo=TZ), said
    for bad in ("3", "明天", "25点", "13pm", "下午"):
        assert parse_when(bad, now, TZ) is None, bad


def test_typed_day_words() -> None:
    assert [_typed_when(x) for x in ("明天上午。", "今天", "马上", "tomorrow morning", "今天不行", "today is bad")] == [
        "tomorrow", "today", "asap", "tomorrow", None, None]


def test_phone_cleaning() -> None:
    assert clean_phone("139 0000-1111") == "13900001111" and clean_phone("+86 139 0000 1111") == "+8613900001111"
    for bad in ("12ab", "123456", "1" * 16, "++123456789", ""):
        assert clean_phone(bad) is None, bad


def test_typed_times_take_ascii_and_full_width_digits_only() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 12, 20, 2, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 in Shanghai
    assert parse_when("１２-２１ ０９：３０", now, tz) == datetime(2026, 12, 21, 9, 30, tzinfo=tz)
    assert parse_when("明天下午３点", now, tz) == datetime(2026, 12, 21, 15, 0, tzinfo=tz)
    for odd in ("١٢-٢١ ٠٩:٣٠", "१२-२१ ०९:३०", "²-²¹ 09:30", "12-21 ①:30", "𝟏𝟐-𝟐𝟏 𝟗:𝟑𝟎"):
        assert parse_when(odd, now, tz) is None, odd
