"""The quick request's rules: who a voice note starts a request for, and its defaults (as soon as
possible, one helper, the category the resident used last if it is still offered, else "other")."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.models import Member, NotRegistered
from bot.services import quick_request
from storage.db import Database
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task


async def _member(db: Database, member_id: int) -> Member:
    row = await db.fetchone("SELECT * FROM members WHERE id = ?", (member_id,))
    assert row is not None
    return Member.from_row(row)


async def test_defaults_take_the_category_used_last_while_it_is_still_offered(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    gran = await make_member(db, now, cid, resident=True)
    staff = await make_member(db, now, cid, staff=True)
    offered = ["shopping", "escort", "other"]
    assert await quick_request.defaults(db, gran, offered) == quick_request.QuickDefaults("other", "asap", 1)
    await make_task(db, now, cid, gran, requester_id=gran, category="escort")
    await make_task(db, now, cid, staff, category="shopping", is_proxy=1)  # staff's, for someone else
    assert (await quick_request.defaults(db, gran, offered)).category == "escort"
    assert (await quick_request.defaults(db, gran, ["shopping", "other"])).category == "other"  # escort removed
    assert quick_request.pick_category(["shopping", "repair"], None) == "repair"  # no "other": the last offered


async def test_only_registered_residents_start_a_quick_request(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    resident = await _member(db, await make_member(db, now, cid, resident=True))
    assert quick_request.may_ask(resident) is resident
    volunteer = await _member(db, await make_member(db, now, cid, volunteer=True))
    with pytest.raises(quick_request.NotAResident) as refused:
        quick_request.may_ask(volunteer)
    assert "volunteer" in refused.value.message
    staff_only = await _member(db, await make_member(db, now, cid, staff=True))
    with pytest.raises(quick_request.NotAResident) as refused:
        quick_request.may_ask(staff_only)
    assert refused.value.message == quick_request.NOT_IN_THE_SCHEME
    for member in (None, await _member(db, await make_member(db, now, cid, resident=True, registered=False))):
        with pytest.raises(NotRegistered):
            quick_request.may_ask(member)


@pytest.mark.parametrize("text", ["谢谢", "是的，谢谢", "好的，谢谢！", "谢谢你们啦", "嗯嗯 好的", "OK, thanks!",
                                  "Thank you very much", "👍", "1", "", "辛苦了，谢谢帮忙", "没问题"])
def test_thanks_and_yes_typed_are_chatter(text: str) -> None:
    assert quick_request.typed_intent(text) == "chatter"


@pytest.mark.parametrize("text", ["我需要帮助", "请帮忙！", "Help me", "I need help"])
def test_asking_for_help_without_saying_what(text: str) -> None:
    assert quick_request.typed_intent(text) == "help"


@pytest.mark.parametrize("text", ["买菜", "家里水管漏水了，请帮忙看看", "谢谢，能帮我取个快递吗", "Please carry a box",
                                  "好的，明天能来修灯吗"])
def test_what_is_needed_is_a_request(text: str) -> None:
    assert quick_request.typed_intent(text) == "request"
