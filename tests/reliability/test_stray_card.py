"""A second copy of a task's card (posted just before a crash and never recorded) is removed
when someone presses it; the press itself is answered and counts as usual."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.factories import make_community, make_member


async def test_a_press_on_a_stray_card_is_answered_and_the_stray_card_removed(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
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
