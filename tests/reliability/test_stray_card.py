"""A second copy of a task's card (posted just before a crash and never recorded) is removed
when someone presses it; the press itself is answered and counts as usual."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.reliability.world import posted_task


async def test_a_press_on_a_stray_card_is_answered_and_the_stray_card_removed(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    now = datetime.now(UTC)
    db = await open_database(bot_process.database)
    try:
        posted = await posted_task(fake, db, now)
        group, volunteer, tid, card = posted.group, posted.volunteer, posted.task_id, posted.card
        # The copy a killed process posted and never recorded.
        await fake.call_api(None, "sendMessage", {"chat_id": group.id, "text": card.text,
                                                 "reply_markup": {"inline_keyboard": [[{"text": "Claim",
                                                                                         "callback_data": f"cl:{tid}"}]]}})
        stray = group.messages[-1]
        query = await fake.press_button(volunteer, stray, f"cl:{tid}")
        said = await fake.wait_callback_answer(query, timeout=30)
        assert "claimed" in (said["text"] or "")
        await fake.wait_for(lambda: stray.deleted, timeout=30)
        await settle(fake, quiet=1.0)
        assert not card.deleted
        assert await db.fetchval("SELECT group_message_id FROM tasks WHERE id = ?", (tid,)) == card.message_id
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ?", (tid,)) == 1
        live = [m for m in group.messages if not m.deleted and any(
            b.get("callback_data") == f"cl:{tid}" for b in m.inline_buttons)]
        assert len(live) <= 1
    finally:
        await db.close()
