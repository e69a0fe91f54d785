"""A button pressed while the bot was down for longer than Telegram waits for the answer (about
15 s): after the restart the press still has its effect, and the person gets the outcome as a
message, since the answer alert can no longer be shown."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.factories import make_community, make_member


async def test_a_late_press_counts_and_its_outcome_comes_by_message(fake: FakeTelegram, bot_process: BotProcess) -> None:
    now = datetime.now(UTC)
    staff = fake.add_user("Staff", language_code="en")
    group = fake.add_group("Volunteers", creator=staff)
    await fake.add_bot_to_group(group, added_by=staff, admin=True)
    resident, volunteer = fake.add_user("Gran", language_code="en"), fake.add_user("Vic", language_code="en")
    fake.private_chat(volunteer, create=True)
    db = await open_database(bot_process.database)
    try:
        cid = await make_community(db, now, group_chat_id=group.id, language="en")
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en, default_points)"
                               " VALUES (?, 'shopping', '跑腿', 'Errands', 1)", (cid,))
        rid = await make_member(db, now, cid, tg_user_id=resident.id, resident=True, language="en", name="Gran")
        await make_member(db, now, cid, tg_user_id=volunteer.id, volunteer=True, language="en", name="Vic",
                          started_bot=1)
        tid = await tasks.create_task(db, now, rid, tasks.NewTask(category="shopping", description="Bread"))
        card = await fake.wait_for_message(group, lambda m: any(
            b.get("callback_data") == f"cl:{tid}" for b in m.inline_buttons), timeout=30, after_id=0)
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
