"""Staff publish an event open only to one organisation: its members may claim, others may not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from storage.timeutil import to_db
from tests.conftest import UNPACED
from tests.e2e.test_request_flow import TZ, _card, _mark, _next, _press, _say
from tests.factories import make_community, make_member


async def test_event_only_for_one_organisation(fake: FakeTelegram, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    stf = fake.add_user("Staff", language_code="en")
    banker = fake.add_user("Banker", language_code="en")
    other = fake.add_user("Other", language_code="en")
    group = fake.add_group("Vols", creator=stf, members=[banker, other])
    await fake.add_bot_to_group(group, added_by=stf, admin=True)
    for u in (stf, banker, other):
        await fake.send_text(u, None, "/help")
    path = str(tmp_path / "o.db")
    db = await open_database(path)
    cid = await make_community(db, now, group_chat_id=group.id, language="en")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en) VALUES (?, 'other', '其他', 'Other')", (cid,))
        cur = await conn.execute("INSERT INTO organisations (community_id, name, invite_code, created_at)"
                                 " VALUES (?, 'Bank branch', 'BANK1', ?)", (cid, to_db(now)))
        org = cur.lastrowid
    await make_member(db, now, cid, tg_user_id=stf.id, staff=True, volunteer=True, language="en")
    await make_member(db, now, cid, tg_user_id=banker.id, volunteer=True, language="en", organisation_id=org)
    await make_member(db, now, cid, tg_user_id=other.id, volunteer=True, language="en")
    fake.set_flood_limits(False)  # who sees the event, not pacing, is the point (tests/conftest.py: UNPACED)
    proc = BotProcess(fake, path, env=UNPACED, log_path=str(tmp_path / "o.log"))
    await proc.start()
    try:
        msg = await _say(fake, stf, "/publish", button="d:mode:")
        await _press(fake, stf, msg, "d:mode:event", contains="title of the event")
        msg = await _say(fake, stf, "Bank volunteer day", button="d:cat:")
        msg = await _press(fake, stf, msg, "d:cat:other", button="d:desc:")
        await _press(fake, stf, msg, "d:desc:-skip", contains="How many volunteers")
        await _say(fake, stf, "3", contains="event start")
        start = (datetime.now(TZ) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
        await _say(fake, stf, start.strftime("%Y-%m-%d %H:%M"), contains="event end")
        msg = await _say(fake, stf, "11:00", button="d:repeat:")
        await _press(fake, stf, msg, "d:repeat:once", contains="How many points")
        msg = await _say(fake, stf, "2", button="d:org:")
        summary = await _press(fake, stf, msg, f"d:org:{org}", button="d:confirm:", contains="Bank branch")
        mark = _mark(fake, stf)
        await fake.press_button(stf, summary, "d:confirm:submit")
        await _next(fake, stf, mark, contains="event is published")
        task = await db.fetchone("SELECT id, organisation_id FROM tasks WHERE kind = 'event'")
        assert task["organisation_id"] == org
        async with db.transaction() as conn:   # where it takes place (the dialog above asks no place)
            await conn.execute("UPDATE tasks SET address = 'Bank hall, 2 Main Street' WHERE id = ?", (task["id"],))
        card = await _card(fake, group, task["id"])
        assert "Only for members of Bank branch" in (card.text or ""), card.text  # said on the card
        await fake.send_text(stf, None, "/digest now")   # and in the digest
        await _next(fake, stf, mark, contains="only for Bank branch")
        q_other = await fake.press_button(other, card, f"cl:{task['id']}")
        refused = await fake.wait_callback_answer(q_other, timeout=10)
        assert "open only to members of Bank branch" in str(refused.get("text", "")), refused  # named
        mark = _mark(fake, banker)
        q_bank = await fake.press_button(banker, card, f"cl:{task['id']}")
        accepted = await fake.wait_callback_answer(q_bank, timeout=10)
        assert "claimed" in str(accepted.get("text", ""))
        # The private details say when the event is (they had no date or time).
        details = await _next(fake, banker, mark, button="wd:")
        assert f"When: {start.strftime('%m-%d')} 09:00–11:00" in (details.text or ""), details.text
        assert "Place: Bank hall, 2 Main Street" in (details.text or ""), details.text
        await settle(fake, quiet=0.5)
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ?", (task["id"],)) == 1
        assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    finally:
        await proc.stop()
        await db.close()
