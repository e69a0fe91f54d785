"""Review required: staff switch it on, a resident's request waits, staff edit and approve it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.devkit import scenario
from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.conftest import ADMIN_ID


@pytest.mark.unpaced  # the review, not pacing
async def test_review_switch_edit_and_approve(fake: FakeTelegram, bot_process: BotProcess, tmp_path: Path) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await scenario.setup_community(fake, admin)
    resident = fake.add_user("Grandma", language_code="en")
    staff = fake.add_user("Grid worker", language_code="en")
    await scenario.register(fake, resident, role="resident")
    await scenario.register(fake, staff, role="volunteer")
    await scenario.make_staff(fake, admin, staff, group)

    await fake.send_text(resident, None, "/review on")
    refusal = await fake.wait_for_message(resident, timeout=10)
    assert "not allowed" in (refusal.text or "")
    await fake.send_text(staff, None, "/review on")
    await fake.wait_for_message(staff, lambda m: "wait for staff review" in (m.text or ""), timeout=10)

    await scenario.ask_for_help(fake, resident, "Please buy rice")
    review = await fake.wait_for_message(staff, lambda m: any(
        str(b.get("callback_data", "")).startswith("ed:") for b in m.inline_buttons), timeout=15, after_id=0)
    task_id = int(next(b["callback_data"] for b in review.inline_buttons if b["callback_data"].startswith("ed:"))[3:])
    db = await open_database(bot_process.database)
    try:
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (task_id,)) == "pending_review"
        await fake.press_button(staff, review, f"ed:{task_id}")
        await fake.wait_for_message(staff, lambda m: f"/edittask {task_id}" in (m.text or ""), timeout=10)
        await fake.send_text(staff, None, f"/edittask {task_id} description Please buy 5 kg of rice")
        await fake.wait_for_message(staff, lambda m: "is changed" in (m.text or ""), timeout=10)
        await fake.press_button(staff, review, f"ap:{task_id}")
        await fake.wait_for_message(resident, lambda m: "approved" in (m.text or ""), timeout=15, after_id=0)
        card = await fake.wait_for_message(group, lambda m: any(
            b.get("callback_data") == f"cl:{task_id}" for b in m.inline_buttons), timeout=15, after_id=0)
        assert "5 kg of rice" in (card.text or "")
        await settle(fake, quiet=0.5)
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (task_id,)) == "open"
        assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    finally:
        await db.close()
