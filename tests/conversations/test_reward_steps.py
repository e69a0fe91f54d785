"""The reward dialog's step table: which step follows which (adding, changing), where ↩ Back goes,
and the accepts that need no database (changing a saved reward is covered end to end)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from bot.conversations import reward_admin as ra
from bot.dialogs import Again, Dialog, Go, Input, Next
from bot.i18n import translator
from bot.models import InvalidInput
from bot.services import rewards


def _turn(step: str, now: datetime, **draft: Any) -> ra.Turn:
    return ra.Turn(None, None, Dialog(7, ra.FLOW, step, {}), ra.RewardDraft(**draft), translator("en"),  # type: ignore[arg-type]
                   rewards.Manager(1, 1), now)


def typed(text: str) -> Input:
    return Input("text", text=text)


def pressed(value: str) -> Input:
    return Input("callback", text=value)


def test_adding_asks_in_order_and_a_discount_asks_for_the_shop() -> None:
    adding = ra.RewardDraft()
    assert [ra.next_step(adding, s) for s in ra.ORDER[:-1]] == ra.ORDER[1:]
    assert ra.next_step(adding, "merchant") == "cost"
    assert set(ra.ORDER) | {"list", "item", "merchant", "restock", "withdraw"} == set(ra.STEPS)


def test_changing_goes_back_to_the_reward_and_withdrawing_to_the_list() -> None:
    changing = ra.RewardDraft(reward_id=3)
    assert ra.next_step(changing, "name_zh") == "name_en"
    for step in ("name_en", "kind", "merchant", "cost", "stock", "restock", "photo", "item"):
        assert ra.next_step(changing, step) == "item", step
    assert ra.next_step(changing, "withdraw") == "list"


def test_back_goes_one_question_back_or_to_the_reward_or_the_list() -> None:
    adding, changing = ra.RewardDraft(), ra.RewardDraft(reward_id=3)
    assert ra.back_step(adding, "name_zh") == "list"
    assert ra.back_step(adding, "cost") == "kind" and ra.back_step(adding, "merchant") == "kind"
    assert ra.back_step(adding, "confirm") == "photo"
    for step in ("cost", "restock", "withdraw", "name_en"):
        assert ra.back_step(changing, step) == "item", step
    assert ra.back_step(changing, "merchant") == "kind"
    assert ra.back_step(changing, "item") == "list"


async def test_typed_answers_where_a_button_is_needed_are_asked_again(now: datetime) -> None:
    for step, accept in (("list", ra.accept_list), ("kind", ra.accept_kind), ("withdraw", ra.accept_withdraw),
                         ("confirm", ra.accept_confirm), ("item", ra.accept_item)):
        assert await accept(_turn(step, now, reward_id=3), typed("yes")) == Again(
            "Please press one of the buttons."), step
    assert await ra.accept_withdraw(_turn("withdraw", now, reward_id=3), pressed("no")) == Go("item")


async def test_add_starts_a_fresh_draft(now: datetime) -> None:
    turn = _turn("list", now, reward_id=3, cost=5, _q=11)
    assert await ra.accept_list(turn, pressed("-add")) == Go("name_zh")
    assert turn.draft.adding and turn.draft.cost is None and turn.draft.asked == 11
    first = turn.draft.key
    assert await ra.accept_list(turn, pressed("-add")) == Go("name_zh")
    assert first and turn.draft.key and turn.draft.key != first  # each new reward its own one-time key


async def test_adding_keeps_each_answer_in_the_draft(now: datetime) -> None:
    turn = _turn("name_zh", now)
    assert await ra.accept_name_zh(turn, typed(" 硒茶九折券 ")) == Next() and turn.draft.name_zh == "硒茶九折券"
    assert await ra.accept_name_en(turn, pressed("-none")) == Next() and turn.draft.name_en == ""
    assert await ra.accept_name_en(turn, Input("sticker")) == Again("Please type the English name, or press a button.")
    assert await ra.accept_kind(turn, pressed("venue")) == Next() and turn.draft.kind == "venue"
    for bad in ("abc", "-3", "²"):
        with pytest.raises(InvalidInput):  # the flow answers with the rule's words and asks again
            await ra.accept_cost(turn, typed(bad))
    assert await ra.accept_cost(turn, typed("５0")) == Next() and turn.draft.cost == 50
    assert await ra.accept_stock(turn, pressed("-unlimited")) == Next() and turn.draft.stock is None
    assert await ra.accept_stock(turn, typed("7")) == Next() and turn.draft.stock == 7
    assert isinstance(await ra.accept_photo(turn, typed("a photo")), Again)
    assert await ra.accept_photo(turn, pressed("-remove")) != Next()  # only a saved reward's photo is removed
    assert await ra.accept_photo(turn, Input("photo", file_id="AgAC")) == Next() and turn.draft.photo == "AgAC"
    assert await ra.accept_photo(turn, pressed("-skip")) == Next() and turn.draft.photo is None
