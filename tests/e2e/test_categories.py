"""Staff keep the help categories and their points with /categories; the rule in force is stored
with each task when it is published, so later changes never rewrite a task's points."""

from __future__ import annotations

from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import ask_for_help, make_staff, register, say, setup_community

T = 10


def _text(m: Any) -> str:
    return str(m.text or "")


@pytest.mark.unpaced  # a dozen commands in one chat: the rules, not pacing
async def test_staff_edit_categories_and_points(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    staff = fake.add_user("Grid worker", language_code="en")
    resident = fake.add_user("Granny", language_code="en")
    vol = fake.add_user("Helper", language_code="en")
    for u, role in ((staff, "volunteer"), (resident, "resident"), (vol, "volunteer")):
        await register(fake, u, role=role)
    await make_staff(fake, admin, staff, group)

    # Not staff: refused, nothing changes.
    await say(fake, vol, "/categories points shopping 5", "not allowed")
    # The list, then changes; bad input gets a clear answer and the help.
    listing = await say(fake, staff, "/categories", "Help categories")
    assert "shopping" in listing and ": 1 point" in listing and "1 points" not in listing
    await say(fake, staff, "/categories points shopping 3", "Saved")
    await say(fake, staff, "/categories points shopping lots", "whole number")
    await say(fake, staff, "/categories points shopping 100000", "whole number")
    await say(fake, staff, "/categories add 花园 2 园艺 / Gardening", "Latin letters")
    added = await say(fake, staff, "/categories add garden 2 园艺 / Gardening", "Saved")
    assert "garden" in added and "Gardening" in added
    await say(fake, staff, "/categories add garden 2 Again", "already")
    await say(fake, staff, "/categories rename garden 花园 / Garden", "Saved")
    removed = await say(fake, staff, "/categories remove tech", "Saved")
    assert "Removed: tech" in removed
    await say(fake, staff, "/categories rename nosuch A / B", "could not find")
    await say(fake, staff, "/categories explode", "To change the list")

    # The resident's request picks up the rule in force; a later change leaves it alone.
    await ask_for_help(fake, resident, "Two bags of rice please", category="shopping")
    await settle(fake, quiet=0.5)
    await say(fake, staff, "/categories points all 1", "Saved")
    # The request dialog offers the new category and no longer the removed one.
    await fake.send_text(resident, None, "/request")
    offer = await fake.wait_for_message(resident, lambda m: any(
        str(b.get("callback_data", "")).startswith("d:cat:") for b in m.inline_buttons), timeout=T)
    codes = {str(b["callback_data"]).partition("~")[0] for b in offer.inline_buttons
             if str(b.get("callback_data", "")).startswith("d:cat:")}  # without the dialog's mark
    assert "d:cat:garden" in codes and "d:cat:tech" not in codes
    await fake.send_text(resident, None, "/cancel")
    await settle(fake, quiet=0.5)

    db = await open_database(bot_process.database)
    try:
        assert await db.fetchval("SELECT points FROM tasks WHERE description LIKE 'Two bags%'") == 3
        rows = {r["code"]: (r["default_points"], r["active"], r["name_en"]) for r in
                await db.fetchall("SELECT code, default_points, active, name_en FROM categories")}
        assert rows["garden"] == (1, 1, "Garden") and rows["tech"][1] == 0 and rows["shopping"][0] == 1
        assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'category.%'") == 5  # points, add, rename, remove, points all
    finally:
        await db.close()
    for m in group.messages:
        assert "Granny" not in _text(m)


async def test_editing_a_message_mid_request_is_not_an_answer(fake: FakeTelegram, bot_process: BotProcess) -> None:
    import json

    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    resident = fake.add_user("Granny", language_code="en")
    await register(fake, resident, role="resident")
    await fake.send_text(resident, None, "/request")
    ask = await fake.wait_for_message(resident, lambda m: any(
        str(b.get("callback_data", "")).startswith("d:cat:") for b in m.inline_buttons), timeout=T)
    await fake.press_button(resident, ask, "d:cat:shopping")
    await settle(fake, quiet=0.5)
    typed = await fake.send_text(resident, None, "first version")
    await fake.wait_for_message(resident, lambda m: "When" in _text(m) or "when" in _text(m), timeout=T, after_id=0)
    await settle(fake, quiet=0.5)
    before = len(fake.bot_messages(fake.private_chat(resident)))
    await fake.edit_text(resident, typed, "edited version with phone 13912345678")
    await settle(fake, quiet=1.0)
    assert len(fake.bot_messages(fake.private_chat(resident))) == before     # no "please press a button"
    db = await open_database(bot_process.database)
    try:
        row = await db.fetchone("SELECT step, data FROM dialogs WHERE tg_user_id = ?", (resident.id,))
    finally:
        await db.close()
    assert row is not None and row["step"] == "when" and json.loads(row["data"])["desc"] == "first version"
    log = bot_process.log()
    assert "Traceback" not in log
