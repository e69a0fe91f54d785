"""A volunteer in a hurry taps Claim on a card whose buttons their phone has not redrawn yet (the
task was taken a moment ago, or cancelled): Telegram hands the bot the card as it is now, without
that button. The answer says what happened, in the volunteer's language ("all places are taken",
on a full event "join the waiting list", "you have claimed it already"), not "this button is out of date, use the latest message", which
names no message; nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.e2e.people import community_with_group
from tests.factories import make_member

pytestmark = pytest.mark.unpaced  # the flows, not Telegram's pacing (tests/conftest.py)

T = 15


def _has(m: Any, data: str) -> bool:
    return any(b.get("callback_data") == data for b in m.inline_buttons)


async def test_a_late_tap_on_a_taken_task_says_it_is_taken(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now)
        res = await make_member(db, now, cid, resident=True, name="Grandma Zhou", phone="13912345678")
        first_u, late_u = fake.add_user("Wang", language_code="en"), fake.add_user("Li", language_code="zh-hans")
        await make_member(db, now, cid, tg_user_id=first_u.id, language="en", volunteer=True)
        await make_member(db, now, cid, tg_user_id=late_u.id, language="zh", volunteer=True)
        for u in (first_u, late_u):
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        task = await tasks.create_task(db, now, res, tasks.NewTask("shopping", description="Please buy rice"))
        card = await fake.wait_for_message(group, lambda m: _has(m, f"cl:{task}"), timeout=T)
        await fake.wait_callback_answer(await fake.press_button(first_u, card, f"cl:{task}"), timeout=T)
        await fake.wait_for(lambda: not _has(card, f"cl:{task}"), timeout=T)   # the card is redrawn: no Claim

        late = await fake.wait_callback_answer(await fake.press_raw_callback(late_u, card, f"cl:{task}"), timeout=T)
        assert late.get("text") == "抱歉，名额已满。谢谢您的热心！", late
        again = await fake.wait_callback_answer(await fake.press_raw_callback(first_u, card, f"cl:{task}"), timeout=T)
        assert again.get("text") == "You have already claimed this task.", again
        await settle(fake)
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ?", (task,)) == 1

        # the resident cancels: a late tap says so, in the presser's words
        shown = card.text
        await tasks.cancel(db, datetime.now(UTC), res, task)
        await fake.wait_for(lambda: card.text != shown, timeout=T)   # the card says so
        gone = await fake.wait_callback_answer(await fake.press_raw_callback(late_u, card, f"cl:{task}"), timeout=T)
        assert gone.get("text") == "这件事刚刚有了变化，现在做不了了。", gone
        # what the gate refuses as before: another task's number on this card, junk
        for junk in (f"cl:{task + 1}", "cl:abc", f"wd:{task}"):
            refused = await fake.wait_callback_answer(await fake.press_raw_callback(late_u, card, junk), timeout=T)
            assert refused.get("text") in ("这个按钮已经不能用了，请点最新一条消息里的按钮。", "抱歉，这个按钮不是给您的。"), refused
        await settle(fake)
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ?", (task,)) == 1

        # a full event's card offers its waiting list: a late tap on Claim is pointed to it
        staff = await make_member(db, now, cid, staff=True)
        event = await tasks.create_task(db, datetime.now(UTC), staff, tasks.NewTask(
            "other", title="Clean the park", kind="event", slots=1, points=5), staff=True)
        ecard = await fake.wait_for_message(group, lambda m: _has(m, f"cl:{event}"), timeout=T)
        await fake.wait_callback_answer(await fake.press_button(first_u, ecard, f"cl:{event}"), timeout=T)
        await fake.wait_for(lambda: _has(ecard, f"wl:{event}"), timeout=T)
        late = await fake.wait_callback_answer(await fake.press_raw_callback(late_u, ecard, f"cl:{event}"), timeout=T)
        assert "候补报名" in str(late.get("text")), late
    finally:
        await db.close()
