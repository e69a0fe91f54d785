"""/settings and /digest now in the real bot process against the stand-in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.devkit.harness import BotProcess, message_text, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task

NOW = datetime(2026, 5, 4, 1, 0, tzinfo=UTC)


async def test_settings_and_digest_preview(fake: FakeTelegram, tmp_path: Path) -> None:
    path = str(tmp_path / "d.db")
    vol_user = fake.add_user("Vol", language_code="en")
    staff_user = fake.add_user("Staff", language_code="en")
    stranger = fake.add_user("Stranger", language_code="en")
    group = fake.add_group("Volunteers", creator=staff_user, members=[vol_user])
    await fake.add_bot_to_group(group, added_by=staff_user)
    db = await open_database(path)
    try:
        cid = await make_community(db, NOW, digest_time="08:00", group_chat_id=group.id)
        vol = await make_member(db, NOW, cid, tg_user_id=vol_user.id, volunteer=True, language="en")
        staff = await make_member(db, NOW, cid, tg_user_id=staff_user.id, staff=True, language="en")
        # Far in the future, so the sweeps in the running process leave it alone.
        await make_task(db, NOW, cid, staff, title="Carry <shopping>", published_at="2999-01-01T00:00:00.000000Z")
        # A resident's request has no title: the digest names it as its card does, never "Task #7".
        res = await make_member(db, NOW, cid, resident=True, language="en", name="Grandma Guo")
        await make_task(db, NOW, cid, res, requester_id=res, title=None, published_at="2999-01-01T00:00:00.000000Z",
                        description="Grandma Guo wants two buns, call 13812345678")
    finally:
        await db.close()
    proc = BotProcess(fake, path, log_path=str(tmp_path / "d.log"))
    await proc.start()
    try:
        await fake.send_text(vol_user, None, "/settings")
        card = await fake.wait_for_message(vol_user, timeout=10)
        assert "Private daily digest: on, at 08:00" in message_text(card)
        qid = await fake.press_button(vol_user, card, "st:dg:0")
        await fake.wait_callback_answer(qid, timeout=10)
        qid = await fake.press_button(vol_user, card, "st:h:18")
        await fake.wait_callback_answer(qid, timeout=10)
        qid = await fake.press_button(vol_user, card, "st:q:off")
        await fake.wait_callback_answer(qid, timeout=10)
        assert "announced in the group: yes" in message_text(card) and "leaderboard: shown" in message_text(card)
        for data in ("st:an:0", "st:lb:1"):
            qid = await fake.press_button(vol_user, card, data)
            assert "Saved" in (await fake.wait_callback_answer(qid, timeout=10)).get("text", "")
        qid = await fake.press_raw_callback(vol_user, card, "st:h:99")
        assert "out of date" in (await fake.wait_callback_answer(qid, timeout=10)).get("text", "")
        await fake.send_text(vol_user, None, "/digest now")
        refused = await fake.wait_for_message(vol_user, timeout=10)
        assert "Only community staff" in message_text(refused)
        await fake.send_text(staff_user, None, "/digest now")
        preview = await fake.wait_for_message(staff_user, timeout=10)
        assert "Carry &lt;shopping&gt;" in str(preview.get("text", "")) or "Carry <shopping>" in message_text(preview)
        shown = message_text(preview)
        assert "wants two buns" in shown and "Task #" not in shown, shown
        assert "Guo" not in shown and "13812345678" not in shown, shown
        await fake.send_text(stranger, None, "/settings")
        assert "register" in message_text(await fake.wait_for_message(stranger, timeout=10))
        await settle(fake)
    finally:
        await proc.stop()
    db = await open_database(path)
    try:
        row = await db.fetchone("SELECT digest_enabled, digest_hour, quiet_start, quiet_end, announce_consent,"
                                " leaderboard_opt_out FROM members WHERE id = ?", (vol,))
    finally:
        await db.close()
    assert row is not None and tuple(row) == (1, 18, "00:00", "00:00", 0, 1)
    assert fake.errors == []
