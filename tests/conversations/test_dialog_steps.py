"""The step tables of /request, /publish and registration: each step's accept, for a typed answer
and a pressed button (steps that need the database or Telegram are covered end to end)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.conversations import members as reg
from bot.conversations import request_flow as rf
from bot.dialogs import Again, Dialog, Go, Input, Next
from bot.i18n import translator
from storage.timeutil import from_db


def _turn(step: str, now: datetime, **draft: Any) -> rf.Turn:
    d = rf.RequestDraft(community_id=1, tz="Asia/Shanghai", **draft)
    return rf.Turn(None, None, Dialog(7, "request", step, {}), d, translator("en"), now)  # type: ignore[arg-type]


def typed(text: str) -> Input:
    return Input("text", text=text)


def pressed(value: str) -> Input:
    return Input("callback", text=value)


async def test_mode_is_pressed_and_starts_that_kind_of_dialog(now: datetime) -> None:
    turn = _turn("mode", now)
    assert await rf.accept_mode(turn, typed("event")) == Again("Please press one of the buttons.")
    assert await rf.accept_mode(turn, pressed("proxy")) == Go("pname") and turn.draft.mode == "proxy"


async def test_title_typed_or_skipped_unless_an_event(now: datetime) -> None:
    turn = _turn("title", now, mode="normal")
    assert await rf.accept_title(turn, pressed("-skip")) == Next() and turn.draft.title is None
    assert isinstance(await rf.accept_title(turn, typed("x" * 81)), Again)
    assert await rf.accept_title(turn, typed("  Carry a box ")) == Next() and turn.draft.title == "Carry a box"
    event = _turn("title", now, mode="event")
    assert isinstance(await rf.accept_title(event, pressed("-skip")), Again)


async def test_proxy_phone_typed_or_shared(now: datetime) -> None:
    turn = _turn("pphone", now, mode="proxy")
    assert isinstance(await rf.accept_pphone(turn, typed("call me")), Again)
    assert await rf.accept_pphone(turn, typed("138 1234-5678")) == Next() and turn.draft.proxy_phone == "13812345678"
    assert await rf.accept_pphone(turn, Input("contact", phone="+8613900000000")) == Next()
    assert turn.draft.proxy_phone == "+8613900000000"


async def test_description_text_or_voice(now: datetime) -> None:
    turn = _turn("desc", now, mode="resident")
    assert isinstance(await rf.accept_desc(turn, Input("sticker")), Again)
    assert isinstance(await rf.accept_desc(turn, typed(" ")), Again)
    assert isinstance(await rf.accept_desc(turn, typed("x" * 501)), Again)
    assert isinstance(await rf.accept_desc(turn, pressed("-skip")), Again)  # only an event's may be skipped
    assert await rf.accept_desc(turn, Input("voice", file_id="v1", duration=4)) == Next()
    assert (turn.draft.voice, turn.draft.voice_s, turn.draft.desc) == ("v1", 4, None)
    assert await rf.accept_desc(turn, typed("Two buns")) == Next() and (turn.draft.desc, turn.draft.voice) == ("Two buns", None)


async def test_when_pressed_typed_or_spoken(now: datetime) -> None:
    turn = _turn("when", now, mode="resident")
    assert await rf.accept_when(turn, pressed("today")) == Next() and turn.draft.when == "today"
    assert await rf.accept_when(turn, typed("明天上午")) == Next() and turn.draft.when == "tomorrow"
    assert await rf.accept_when(turn, typed("明天下午3点")) == Next() and turn.draft.when == "at"
    assert turn.draft.starts_at is not None and from_db(turn.draft.starts_at) == now.replace(hour=7) + timedelta(days=1)
    assert await rf.accept_when(turn, pressed("pick")) == Go("at")
    assert isinstance(await rf.accept_when(turn, typed("sometime")), Again)


async def test_event_times_follow_the_task_services_window(now: datetime) -> None:
    turn = _turn("start", now, mode="event")
    assert await rf.accept_time(turn, typed("2026-05-01 10:00")) == Again(
        "That time has already passed. Please type a time in the future.")
    assert isinstance(await rf.accept_time(turn, typed("2027-01-01 10:00")), Again)  # more than 90 days ahead
    assert await rf.accept_time(turn, typed("2026-05-06 10:00")) == Next()
    turn.dialog.step = "end"
    assert await rf.accept_time(turn, typed("09:00")) == Again("The end must be after the start (2026-05-06 10:00).")
    assert await rf.accept_time(turn, typed("12:00")) == Next() and turn.draft.ends_at is not None


async def test_places_and_points_within_the_task_services_limits(now: datetime) -> None:
    turn = _turn("slots", now, mode="event")
    assert await rf.accept_number(turn, typed("500")) == Again("Please type a number from 1 to 200.")
    assert await rf.accept_number(turn, typed("200")) == Next() and turn.draft.slots == 200
    turn.dialog.step = "points"
    assert await rf.accept_number(turn, typed("-3")) == Again("Please type a number from 0 to 100.")
    assert await rf.accept_number(turn, typed("many")) == Again("Please type a number from 0 to 100.")
    assert await rf.accept_number(turn, typed("0")) == Next() and turn.draft.points == 0


async def test_helpers_pressed_or_typed(now: datetime) -> None:
    turn = _turn("helpers", now, mode="resident")
    assert await rf.accept_helpers(turn, pressed("3")) == Next() and turn.draft.slots == 3
    assert await rf.accept_helpers(turn, typed("两个人")) == Next() and turn.draft.slots == 2
    assert isinstance(await rf.accept_helpers(turn, pressed("9")), Again)


async def test_edit_from_the_summary_comes_back_to_it(now: datetime) -> None:
    turn = _turn("edit", now, mode="event")
    assert await rf.accept_edit(turn, pressed("where")) == Again("Please press one of the buttons.")  # not an event's
    assert await rf.accept_edit(turn, pressed("-back")) == Go("confirm")
    assert await rf.accept_edit(turn, pressed("start")) == Go("start") and turn.draft.fix
    assert rf.next_step(turn.draft, "start") == "end"  # a new start needs a matching end
    assert rf.next_step(turn.draft, "end") == "confirm" and not turn.draft.fix
    assert rf.next_step(turn.draft, "slots") == "start"


def test_every_step_of_every_order_is_in_the_table() -> None:
    assert {s for order in rf.ORDER.values() for s in order} | {"mode", "at", "addr", "days", "edit"} == set(rf.STEPS)


# ---------------------------------------------------------------- registration
def _reg(step: str, **draft: Any) -> reg.RegTurn:
    return reg.RegTurn(None, None, Dialog(7, "register", step, {}), reg.RegisterDraft(**draft), translator("en"))  # type: ignore[arg-type]


async def test_register_language_and_role_are_pressed_or_their_words_typed() -> None:
    turn = _reg("lang")
    assert isinstance(await reg.accept_lang(turn, typed("Englisch bitte")), Again)
    assert await reg.accept_lang(turn, pressed("en")) == Next() and turn.draft.lang == "en"
    assert await reg.accept_lang(turn, typed(" 中文。")) == Next() and turn.draft.lang == "zh"
    assert await reg.accept_lang(turn, typed("ENGLISH")) == Next() and turn.draft.lang == "en"
    turn = _reg("role")
    assert isinstance(await reg.accept_role(turn, pressed("admin")), Again)
    assert isinstance(await reg.accept_role(turn, typed("admin")), Again)
    assert await reg.accept_role(turn, pressed("both")) == Next() and turn.draft.role == "both"
    assert await reg.accept_role(turn, typed("我想当志愿者")) == Next() and turn.draft.role == "volunteer"
    assert await reg.accept_role(turn, typed("I need help")) == Next() and turn.draft.role == "resident"


async def test_register_name_typed() -> None:
    turn = _reg("name")
    assert await reg.accept_name(turn, Input("sticker")) == Again("Please type your name as text.")
    assert await reg.accept_name(turn, typed("王奶奶")) == Next() and turn.draft.name == "王奶奶"


async def test_register_phone_shared_or_skipped_never_typed() -> None:
    turn = _reg("phone", name="Gran")
    assert await reg.accept_phone(turn, Input("contact", phone="+8613800000000", contact_user_id=8)) == Again(
        "Please share your own number with the button below, not someone else's contact.")
    assert "do not type" in (await reg.accept_phone(turn, typed("13800000000"))).why  # type: ignore[union-attr]
    assert await reg.accept_phone(turn, typed("不想给")) == Next("No problem, you can add it later: 👤 My profile, then ✏ Change my details.")
    assert turn.draft.phone is None and '"phone": null' in str(__import__("json").dumps(turn.draft.data()))
    assert await reg.accept_phone(turn, Input("contact", phone="+8613800000000", contact_user_id=7)) == Next(
        "Thank you, Gran.")


async def test_register_availability_and_what_comes_next() -> None:
    turn = _reg("avail", role="volunteer")
    assert await reg.accept_avail(turn, pressed("skip")) == Next() and turn.draft.availability is None
    assert await reg.accept_avail(turn, pressed("evenings")) == Next() and turn.draft.availability == "evenings"
    assert reg.next_step(turn.draft, "area") == "skills"
    assert reg.next_step(reg.RegisterDraft(role="resident"), "area") == "consent"
    assert reg.next_step(turn.draft, "avail") == "consent"


async def test_typed_name_and_addresses_go_into_their_fields(now: datetime) -> None:
    turn = _turn("pname", now, mode="proxy")
    assert await rf.accept_pname(turn, pressed("x")) == Again("Please type the name as text, up to 40 characters.")
    assert await rf.accept_pname(turn, typed(" Gran Wang ")) == Next() and turn.draft.proxy_name == "Gran Wang"
    assert await rf.accept_paddr(turn, typed("x" * 201)) == Again("Please type the address as text, up to 200 characters.")
    assert await rf.accept_paddr(turn, typed("Building 3")) == Next() and turn.draft.proxy_address == "Building 3"
    assert await rf.accept_addr(turn, typed("Riverside market")) == Next() and turn.draft.address == "Riverside market"


async def test_repeat_days_and_weeks_of_an_event(now: datetime) -> None:
    turn = _turn("repeat", now, mode="event", starts_at="2026-05-09T01:00:00.000000Z")  # a Saturday, 09:00 local
    assert (await rf.ask_repeat(turn)).rows[1][0][0] == "Every week on Saturday"
    assert await rf.accept_repeat(turn, pressed("once")) == Next() and not rf.is_series(turn.draft)
    assert await rf.ask_weeks(turn) == Next()  # once: no weeks asked
    assert await rf.accept_repeat(turn, pressed("days")) == Go("days") and turn.draft.days == [5]
    turn.dialog.step = "days"
    assert await rf.accept_days(turn, pressed("1")) == Go("days") and turn.draft.days == [1, 5]
    assert await rf.accept_days(turn, pressed("5")) == Go("days") and turn.draft.days == [1]
    assert await rf.accept_days(turn, pressed("-done")) == Go("weeks")
    turn.dialog.step = "weeks"
    assert await rf.accept_weeks(turn, typed("40")) == Again("Please type a number of weeks from 1 to 26.")
    assert await rf.accept_weeks(turn, pressed("8")) == Next() and turn.draft.weeks == 8
    assert rf.repeat_words(turn.t, rf.repeat_mask(turn.draft)) == "every Tuesday"
    turn.draft.repeat = "weekdays"
    assert rf.repeat_words(turn.t, rf.repeat_mask(turn.draft)) == "every weekday (Monday to Friday)"
    assert rf.next_step(turn.draft, "days") == "weeks" and rf.next_step(turn.draft, "weeks") == "points"
