"""/tasks pages through open tasks; staff /edittask and /canceltask; others are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.factories import make_community, make_member


async def test_paging_edit_and_cancel(fake: FakeTelegram, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    staff_u = fake.add_user("Staff", language_code="en")
    vol_u = fake.add_user("Vol", language_code="en")
    group = fake.add_group("Vols", creator=staff_u, members=[vol_u])
    await fake.add_bot_to_group(group, added_by=staff_u, admin=True)
    for u in (staff_u, vol_u):
        await fake.send_text(u, None, "/help")
    path = str(tmp_path / "t.db")
    db = await open_database(path)
    cid = await make_community(db, now, group_chat_id=group.id, language="en")
    staff = await make_member(db, now, cid, tg_user_id=staff_u.id, staff=True, language="en")
    await make_member(db, now, cid, tg_user_id=vol_u.id, volunteer=True, language="en", name="Vol")
    ids = [await tasks.create_task(db, now, staff, tasks.NewTask(category="other", title=f"Job {i}"), staff=True)
           for i in range(7)]
    proc = BotProcess(fake, path, log_path=str(tmp_path / "t.log"))
    await proc.start()
    try:
        await fake.send_text(vol_u, None, "/tasks")
        page = await fake.wait_for_message(vol_u, lambda m: "1–5 of 7" in (m.text or ""), timeout=10)
        nxt = next(b["callback_data"] for b in page.inline_buttons if b["callback_data"].startswith("tp:"))
        await fake.press_button(vol_u, page, nxt)
        await fake.wait_for_message(vol_u, lambda m: "6–7 of 7" in (m.text or ""), timeout=10)

        await fake.send_text(vol_u, None, f"/edittask {ids[0]} points 9")
        refusal = await fake.wait_for_message(vol_u, timeout=10)
        assert "not allowed" in (refusal.text or ""), refusal.text
        assert refusal
        await fake.send_text(staff_u, None, f"/edittask {ids[0]} points 3")
        await fake.wait_for_message(staff_u, lambda m: "is changed" in (m.text or ""), timeout=10)
        await fake.send_text(staff_u, None, "/edittask 1 colour red")
        await fake.wait_for_message(staff_u, lambda m: "/edittask" in (m.text or ""), timeout=10)
        await fake.send_text(staff_u, None, f"/canceltask {ids[1]}")
        await fake.wait_for_message(staff_u, lambda m: "cancelled" in (m.text or ""), timeout=10)
        # Claim from the list, then "Contact staff" under the private details: staff hear of it.
        await fake.press_button(vol_u, page, f"cl:{ids[6]}")
        details = await fake.wait_for_message(vol_u, lambda m: any(
            b.get("callback_data") == f"cs:{ids[6]}" for b in m.inline_buttons), timeout=15, after_id=0)
        query = await fake.press_button(vol_u, details, f"cs:{ids[6]}")
        answer = await fake.wait_callback_answer(query, timeout=10)
        assert "staff" in str(answer.get("text", "")), answer
        await fake.wait_for_message(staff_u, lambda m: f"#{ids[6]}" in (m.text or "") and "asks staff" in (m.text or ""),
                                    timeout=10, after_id=0)
        await settle(fake, quiet=0.5)
        assert await db.fetchval("SELECT points FROM tasks WHERE id = ?", (ids[0],)) == 3
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (ids[1],)) == "cancelled"
        assert await db.fetchval("SELECT COUNT(*) FROM tasks WHERE points = 9") == 0
        assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    finally:
        await proc.stop()
        await db.close()
