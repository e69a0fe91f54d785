"""A button pressed while the bot was down for longer than Telegram waits for the answer (about
15 s): after the restart the press still has its effect, and the person gets the outcome as a
message, since the answer alert can no longer be shown."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.reliability.world import posted_task


async def test_a_late_press_counts_and_its_outcome_comes_by_message(fake: FakeTelegram, bot_process: BotProcess) -> None:
    now = datetime.now(UTC)
    db = await open_database(bot_process.database)
    try:
        posted = await posted_task(fake, db, now)
        volunteer, tid, card = posted.volunteer, posted.task_id, posted.card
        await bot_process.kill()
        query = await fake.press_button(volunteer, card, f"cl:{tid}")
        fake.callbacks[query].created -= fake.callback_timeout + 5  # the bot stayed down that long
        await bot_process.start()
        told = await fake.wait_for_message(volunteer, lambda m: "You have claimed it" in (m.text or ""),
                                           timeout=60, after_id=0)
        assert "Thank you" in (told.text or "")
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state = 'active'", (tid,)) == 1
        assert fake.callback_answer(query) is None  # Telegram refused the late answer
    finally:
        await db.close()
