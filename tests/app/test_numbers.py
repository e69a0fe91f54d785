"""The one number parser (bot.numbers): what it accepts, what it refuses, that it never raises,
and that the rules which use it refuse odd digits politely instead of crashing."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.models import InvalidInput
from bot.numbers import MAX_ID, StaleButton, button_number, number, parse_int
from bot.services import categories, tasks
from bot.ui import only_number
from storage.db import Database
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task

FULL_WIDTH = "０１２３４５６７８９"
DIGITS = "0123456789" + FULL_WIDTH
# Characters that str.isdigit(), int() or \d take for digits, and other look-alikes.
ODD_DIGITS = "²³¹①⑫⓪٣۳१১๓၃𝟓𝟘Ⅻ〇一十"
HOSTILE = ["²", "²³", "①", "⑫", "٣٤", "۳", "१२", "𝟓", "Ⅻ", "一", "9" * 20, "1" * 400, "-1", "-0", "#", "##1", "",
           " ", "+1", "1_000", "1e3", "0x10", "1 2", "1.0", "NaN", "\u200b1", "1\u200b", "9223372036854775808"]


def _oracle(text: str, low: int, high: int, hash_ok: bool) -> int | None:
    """What the parser must do, written the obvious (slow) way."""
    m = re.fullmatch(r"([#＃]?)([-－]?)([0-9０-９]+)", text.strip())
    if m is None or (m.group(1) and not hash_ok) or (m.group(2) and low >= 0):
        return None
    value = int(m.group(3).translate(str.maketrans(FULL_WIDTH, "0123456789")))
    value = -value if m.group(2) else value
    return value if low <= value <= high else None


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_numbers_are_refused(text: str) -> None:
    assert parse_int(text) is None
    assert parse_int(text, hash_ok=True) is None
    assert parse_int(text, low=-MAX_ID, high=MAX_ID) is None or text in ("-1", "-0")
    with pytest.raises(InvalidInput):
        number(text, "problem")
    with pytest.raises(StaleButton):
        button_number(text)


def test_what_is_accepted() -> None:
    assert parse_int("12") == parse_int("１２") == parse_int(" 12 ") == parse_int("\u300012\n") == 12
    assert parse_int("#12") is None and parse_int("#12", hash_ok=True) == parse_int("＃１２", hash_ok=True) == 12
    assert parse_int("007") == 7
    assert parse_int(str(MAX_ID)) == MAX_ID and parse_int(str(MAX_ID + 1)) is None
    assert parse_int("0") is None and parse_int("0", low=0) == 0
    assert parse_int("-3", low=-5, high=5) == parse_int("－３", low=-5, high=5) == -3
    assert parse_int("24", low=0, high=23) is None and parse_int("23", low=0, high=23) == 23
    assert parse_int("5", low=3, high=1) is None  # an empty range accepts nothing
    # Button data: ASCII digits only, exactly as the bot writes them.
    assert button_number("12") == 12 and button_number("0", low=0, high=5) == 0
    for forged in ("１２", " 12", "12 ", "#12", "-1", "0", str(MAX_ID + 1)):
        with pytest.raises(StaleButton):
            button_number(forged)
    with pytest.raises(InvalidInput) as err:
        number("²", "Please give a number from {low} to {high}.", low=1, high=9)
    assert err.value.message == "Please give a number from {low} to {high}." and err.value.params == {"low": 1, "high": 9}


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(), st.text(alphabet=DIGITS + ODD_DIGITS + "#＃-－ +_.e\u3000", max_size=30),
                      st.none(), st.integers(), st.binary()),
       low=st.integers(-(2**70), 2**70), high=st.integers(-(2**70), 2**70), hash_ok=st.booleans(),
       strict=st.booleans())
@example(text="1" * 5000, low=1, high=MAX_ID, hash_ok=False, strict=False)  # longer than int() reads
@example(text="0" * 5000 + "1", low=1, high=MAX_ID, hash_ok=False, strict=False)
def test_never_raises(text: object, low: int, high: int, hash_ok: bool, strict: bool) -> None:
    value = parse_int(text, low=low, high=high, hash_ok=hash_ok, strict=strict)
    assert value is None or (isinstance(value, int) and low <= value <= high)


@settings(max_examples=600, deadline=None)
@given(text=st.one_of(st.text(alphabet=DIGITS, min_size=1, max_size=25),
                      st.text(alphabet=DIGITS + ODD_DIGITS + "#＃-－ \t\u3000+_.", max_size=25),
                      st.integers(-(10**20), 10**20).map(str)),
       low=st.sampled_from([1, 0, -1000, 1, 5]), high=st.sampled_from([MAX_ID, 23, 100, 1000, 10**6, 0]),
       hash_ok=st.booleans())
@example(text="²", low=1, high=MAX_ID, hash_ok=False)
@example(text="１２", low=1, high=MAX_ID, hash_ok=False)
@example(text="99999999999999999999", low=1, high=MAX_ID, hash_ok=True)
def test_accepts_exactly_ascii_and_full_width_digits_in_range(text: str, low: int, high: int, hash_ok: bool) -> None:
    assert parse_int(text, low=low, high=high, hash_ok=hash_ok) == _oracle(text, low, high, hash_ok)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ODD_DIGITS, min_size=1, max_size=6))
def test_digits_of_other_kinds_are_never_numbers(text: str) -> None:
    assert parse_int(text, low=-MAX_ID, high=MAX_ID, hash_ok=True) is None


# -- the rules that read numbers from people ---------------------------------------------------
def test_category_points() -> None:
    assert categories.parse_points("３") == 3 and categories.parse_points("0") == 0
    for bad in ("²", "①", "٣", "-1", str(categories.MAX_POINTS + 1), "9" * 20, ""):
        with pytest.raises(InvalidInput):
            categories.parse_points(bad)


def test_task_ids_in_buttons() -> None:
    assert tasks.parse_task_id(f"cl:{MAX_ID}", "cl") == MAX_ID
    for bad in ("cl:²", "cl:①", "cl:" + "9" * 20, "cl: 1", "cl:#1"):
        with pytest.raises(StaleButton):
            tasks.parse_task_id(bad, "cl")


@pytest.mark.parametrize("value", ["²", "①", "٣", "99999999999999999999", "-1", "1 2"])
async def test_edit_task_refuses_odd_numbers(db: Database, now: datetime, value: str) -> None:
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    tid = await make_task(db, now, cid, staff)
    with pytest.raises(InvalidInput) as err:
        await tasks.edit_task(db, now, staff, tid, "slots", value)
    assert err.value.params == {"low": 1, "high": tasks.SLOTS_MAX}
    await tasks.edit_task(db, now, staff, tid, "points", "４")
    assert await db.fetchval("SELECT points FROM tasks WHERE id = ?", (tid,)) == 4


@pytest.mark.parametrize("args", [None, [], ["12", "3"], ["twelve"], ["0"]])
def test_a_command_taking_one_number_answers_with_its_usage_otherwise(args: list[str] | None) -> None:
    with pytest.raises(InvalidInput) as raised:
        only_number(args, "Please write: /entries <task number>")
    assert raised.value.message == "Please write: /entries <task number>"


def test_a_command_taking_one_number_reads_it_as_typed() -> None:
    assert only_number(["#１２"], "usage") == 12
