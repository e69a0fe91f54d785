"""Expiring points through the real bot and the stand-in, with the bot's clock set to each moment:
staff switch the policy on in /settings; on 2 December the member is warned in their own language
and /points shows what expires when; on 1 January the points expire once (the bot restarted on
the same day expires nothing more) and /points, the history and /report show it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.devkit.harness import BotProcess, message_text, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from storage.timeutil import to_db
from tests.factories import make_community, make_member

T = 10


def _swept(path: str) -> bool:
    """Has the running bot's sweep expired the points (read beside it, as a reader may)?"""
    with closing(sqlite3.connect(path)) as conn:
        return bool(conn.execute("SELECT COUNT(*) FROM ledger WHERE reason = 'expired'").fetchone()[0])


async def _bot(fake: FakeTelegram, path: str, log: str, clock: str) -> BotProcess:
    proc = BotProcess(fake, path, log_path=log, env={"BOT_CLOCK_START": clock})
    await proc.start()
    return proc


async def _ask(fake: FakeTelegram, user: Any, text: str, expect: str) -> Any:
    chat = fake.private_chat(user)
    mark = max((m.message_id for m in chat.messages), default=0) if chat is not None else 0
    await fake.send_text(user, None, text)
    return await fake.wait_for_message(user, lambda m: expect in message_text(m), timeout=T, after_id=mark)


async def test_points_expire_at_the_end_of_the_next_year_with_a_warning(fake: FakeTelegram, tmp_path: Path) -> None:
    path, log = str(tmp_path / "x.db"), str(tmp_path / "x.log")
    staff_u = fake.add_user("Staff", language_code="en")
    vol_u = fake.add_user("老王", language_code="zh-hans")
    group = fake.add_group("Volunteers", creator=staff_u, members=[vol_u])
    await fake.add_bot_to_group(group, added_by=staff_u)
    fake.private_chat(vol_u, create=True)
    start = datetime(2025, 1, 10, tzinfo=UTC)
    db = await open_database(path)
    try:
        cid = await make_community(db, start, group_chat_id=group.id)
        await make_member(db, start, cid, tg_user_id=staff_u.id, staff=True, language="en")
        vol = await make_member(db, start, cid, tg_user_id=vol_u.id, volunteer=True, language="zh",
                                quiet_start="00:00", quiet_end="00:00")
        async with db.transaction() as conn:
            for key, delta, when in (("a", 9, "2025-03-01"), ("b", 4, "2026-03-01")):
                await conn.execute("INSERT INTO ledger (community_id, member_id, delta, reason, idempotency_key,"
                                   " created_at) VALUES (?, ?, ?, 'task_completed', ?, ?)",
                                   (cid, vol, delta, key, to_db(datetime.fromisoformat(when + "T04:00:00+00:00"))))
    finally:
        await db.close()

    # 20 November 2026: staff turn the policy on.
    proc = await _bot(fake, path, log, "2026-11-20T10:00:00+08:00")
    try:
        card = await _ask(fake, staff_u, "/settings", "points do not expire")
        qid = await fake.press_button(staff_u, card, "st:px:1")
        assert "Saved" in (await fake.wait_callback_answer(qid, timeout=T)).get("text", "")
        await fake.wait_for(lambda: "points expire at the end of the year after" in message_text(card), timeout=T)
        vol_settings = await _ask(fake, vol_u, "/settings", "")
        assert "st:px" not in str(vol_settings.inline_buttons)  # only staff see the switch
        assert "其中 9 积分的有效期到 2026-12-31" in message_text(await _ask(fake, vol_u, "/points", "13"))
        await settle(fake)
        assert not [m for m in fake.bot_messages(vol_u) if "请在这之前用掉" in message_text(m)]  # not warned yet
    finally:
        await proc.stop()

    # 2 December 2026: one warning, in Chinese, with the amount and the last day; /points says so.
    proc = await _bot(fake, path, log, "2026-12-02T10:00:00+08:00")
    try:
        warning = await fake.wait_for_message(vol_u, lambda m: "请在这之前用掉" in message_text(m), timeout=T)
        assert "9 积分" in message_text(warning) and "2026-12-31" in message_text(warning)
        shown = message_text(await _ask(fake, vol_u, "/points", "13"))
        assert "其中 9 积分的有效期到 2026-12-31" in shown and "其中 4 积分的有效期到 2027-12-31" in shown
    finally:
        await proc.stop()

    # 1 January 2027, twice (a restart): the 2025 points expire once.
    for _ in range(2):
        proc = await _bot(fake, path, log, "2027-01-01T00:05:00+08:00")
        try:
            await fake.wait_for(lambda: _swept(path), timeout=T)
            shown = message_text(await _ask(fake, vol_u, "/points", "过期（未及时使用）"))
            assert shown.splitlines()[0] == "⭐ 您的积分：4", shown
            report = await _ask(fake, staff_u, "/report 2027-01", "Points expired")
            assert "Points expired (not used in time): 9" in message_text(report)
            await settle(fake)
        finally:
            await proc.stop()
    db = await open_database(path)
    try:
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE reason = 'expired'") == 1
        assert await db.fetchval("SELECT balance FROM members WHERE id = ?", (vol,)) == 4
        assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'points_expiring'") == 1
    finally:
        await db.close()
    assert not fake.errors, fake.errors
