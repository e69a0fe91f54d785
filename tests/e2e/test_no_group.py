"""While Linli is out of its community's volunteer group (removed by someone), a resident who asks
for help is told plainly that the volunteers cannot see it yet and that staff were told, rather
than "I will tell you when a volunteer takes it"; each staff member gets a private word naming the
request. Added back, the card goes up as before."""

from __future__ import annotations

from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from tests.conftest import ADMIN_ID
from tests.e2e.people import ask_for_help, register, setup_community

T = 15


def _text(m: Any) -> str:
    return str(m.text or m.caption or "")


def _mark(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


@pytest.mark.unpaced  # the flow, not pacing
async def test_a_request_while_the_bot_is_out_of_the_group(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="zh-hans", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    res = fake.add_user("Mary", language_code="en")
    await register(fake, admin, role="volunteer")
    await register(fake, res, role="resident", area="Building 2")
    await fake.remove_bot_from_group(group, admin)
    await fake.wait_for_message(admin, lambda m: "移出" in _text(m), timeout=T)
    await settle(fake)

    res_mark, staff_mark = _mark(fake, res), _mark(fake, admin)
    await ask_for_help(fake, res, "Please buy some rice")
    told = await fake.wait_for_message(res, lambda m: "(#1)" in _text(m), timeout=T, after_id=res_mark)
    assert "staff" in _text(told) and "when a volunteer takes it" not in _text(told), _text(told)
    staff = await fake.wait_for_message(admin, lambda m: "#1" in _text(m), timeout=T, after_id=staff_mark)
    assert "群" in _text(staff), _text(staff)
    await settle(fake)
    assert not any("rice" in _text(m) for m in group.messages)

    # back in the group: the card is posted
    await fake.add_bot_to_group(group, admin, admin=True)
    await fake.wait_for_message(group, lambda m: "rice" in _text(m), timeout=T)
