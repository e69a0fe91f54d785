"""A resident who asked twice by mistake, or no longer needs help before anyone took the request,
cancels it from 🗂 My tasks: until now only a "who is coming" message (sent once a volunteer claims)
had a Cancel button, so an unclaimed request could not be called off without phoning staff. Only
her own requests get the button; a double tap cancels once; someone else's forged press changes
nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import ask_for_help, register, setup_community

T = 15


def _text(m: Any) -> str:
    return str(m.text or m.caption or "")


def _has(m: Any, data: str) -> bool:
    return any(b.get("callback_data") == data for b in m.inline_buttons)


def _mark(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


@pytest.mark.unpaced  # the flow, not pacing
async def test_a_resident_cancels_a_request_nobody_took_from_my_tasks(fake: FakeTelegram,
                                                                       bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    res = fake.add_user("Zhou Lan", language_code="zh-hans")
    vol = fake.add_user("Wang", language_code="en")
    await register(fake, res, role="resident", area="7号楼")
    await register(fake, vol, role="volunteer")
    await ask_for_help(fake, res, "帮我买菜")
    await ask_for_help(fake, res, "帮我买菜啊")   # asked twice by mistake
    await fake.wait_for_message(group, lambda m: _has(m, "cl:2"), timeout=T)
    db = await open_database(bot_process.database)
    try:
        mark = _mark(fake, res)
        await fake.press_reply_button(res, None, "🗂 我的任务")
        mine = await fake.wait_for_message(res, lambda m: "#2" in _text(m), timeout=T, after_id=mark)
        assert _has(mine, "rc:1") and _has(mine, "rc:2"), mine.inline_buttons
        assert "取消" in str(mine.inline_buttons), mine.inline_buttons

        # a double tap on the second one's Cancel: cancelled once, the first stays open
        taps = await asyncio.gather(fake.press_button(res, mine, "rc:2"), fake.press_button(res, mine, "rc:2"))
        answers = [await fake.wait_callback_answer(q, timeout=T) for q in taps]
        assert any("求助已取消" in str(a.get("text")) for a in answers), answers
        await settle(fake)
        states = {r["id"]: r["state"] for r in await db.fetchall("SELECT id, state FROM tasks")}
        assert states == {1: "open", 2: "cancelled"}, states
        assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action = 'task.cancel'") == 1

        # a volunteer's /mytasks has no such button, and a forged press on it changes nothing
        mark = _mark(fake, vol)
        await fake.send_text(vol, None, "/mytasks")
        theirs = await fake.wait_for_message(vol, timeout=T, after_id=mark)
        assert not any(str(b.get("callback_data", "")).startswith("rc:") for b in theirs.inline_buttons)
        forged = await fake.wait_callback_answer(await fake.press_raw_callback(vol, theirs, "rc:1"), timeout=T)
        assert forged.get("text"), forged
        await settle(fake)
        assert await db.fetchval("SELECT state FROM tasks WHERE id = 1") == "open"
    finally:
        await db.close()
