"""A volunteer who has lost the details of a task they hold (they had blocked the bot when they
claimed, so the details never came; or the message is lost far up the chat) gets them again from
/mytasks, with the Done and Withdraw buttons, and can finish the task. Only the volunteer holding
the task gets them: nobody else sees the resident's phone and address."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.e2e.people import community_with_group
from tests.factories import make_member

T = 15
PHONE = "13912345678"
ADDRESS = "Building 7, Room 1203"


def _text(m: Any) -> str:
    return str(m.text or m.caption or "")


def _has(m: Any, data: str) -> bool:
    return any(b.get("callback_data") == data for b in m.inline_buttons)


def _last(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


async def test_a_volunteer_gets_the_details_again_from_mytasks(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now)
        res_u = fake.add_user("Zhou", language_code="en")
        res = await make_member(db, now, cid, tg_user_id=res_u.id, language="en", resident=True, name="Grandma Zhou",
                                phone=PHONE, address=ADDRESS)
        vol_u = fake.add_user("Wang", language_code="zh-hans")
        await make_member(db, now, cid, tg_user_id=vol_u.id, language="zh", volunteer=True, name="Wang")
        other_u = fake.add_user("Li", language_code="en")
        await make_member(db, now, cid, tg_user_id=other_u.id, language="en", volunteer=True, name="Li")
        for u in (res_u, vol_u, other_u):
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        task = await tasks.create_task(db, now, res, tasks.NewTask("shopping", description="Please buy rice"))
        card = await fake.wait_for_message(group, lambda m: _has(m, f"cl:{task}"), timeout=T)

        # Wang had blocked the bot: the claim counts, but the details cannot reach him
        fake.block_bot(vol_u)
        await fake.wait_callback_answer(await fake.press_button(vol_u, card, f"cl:{task}"), timeout=T)
        await fake.wait_for(lambda: any(c.method == "sendMessage" and c.params.get("chat_id") == vol_u.id
                                        for c in fake.errors), timeout=T)
        await settle(fake)

        # he comes back and asks for his tasks: the task he holds has a button for its details
        mark = _last(fake, vol_u)
        await fake.send_text(vol_u, None, "/mytasks")
        mine = await fake.wait_for_message(vol_u, lambda m: "Please buy rice" in _text(m), timeout=T, after_id=mark)
        assert _has(mine, f"md:{task}"), mine.inline_buttons
        assert "详细信息" in str(mine.inline_buttons), mine.inline_buttons

        # a double tap sends the details once, with Done and Withdraw, in his language
        mark = _last(fake, vol_u)
        taps = await asyncio.gather(fake.press_button(vol_u, mine, f"md:{task}"),
                                    fake.press_button(vol_u, mine, f"md:{task}"))
        for q in taps:
            await fake.wait_callback_answer(q, timeout=T)
        details = await fake.wait_for_message(vol_u, lambda m: _has(m, f"done:{task}"), timeout=T, after_id=mark)
        assert PHONE in _text(details) and ADDRESS in _text(details), _text(details)
        assert _has(details, f"wd:{task}") and "谢谢您领取这个任务" in _text(details), _text(details)
        await settle(fake)
        again = [m for m in fake.bot_messages(fake.private_chat(vol_u)) if m.message_id > mark and PHONE in _text(m)]
        assert len(again) == 1, [_text(m) for m in again]

        # nobody else gets them: Li's own /mytasks has no such button, and a forged press shows nothing
        mark = _last(fake, other_u)
        await fake.send_text(other_u, None, "/mytasks")
        theirs = await fake.wait_for_message(other_u, timeout=T, after_id=mark)
        assert not theirs.inline_buttons, theirs.inline_buttons
        forged = await fake.press_raw_callback(other_u, theirs, f"md:{task}")
        assert (await fake.wait_callback_answer(forged, timeout=T)).get("text")
        await settle(fake)
        assert not any(PHONE in _text(m) for m in fake.bot_messages(fake.private_chat(other_u)))
        assert not any(PHONE in _text(m) for m in fake.bot_messages(group))

        # with the details again he finishes the task: the resident is asked to confirm
        mark = _last(fake, res_u)
        await fake.wait_callback_answer(await fake.press_button(vol_u, details, f"done:{task}"), timeout=T)
        await fake.wait_for_message(res_u, lambda m: any(str(b.get("callback_data", "")).startswith(f"cf:{task}")
                                                         for b in m.inline_buttons), timeout=T, after_id=mark)
    finally:
        await db.close()
