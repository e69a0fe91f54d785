"""An urgent ping is sent or held by the bot's clock, the one every other rule reads (here started
twelve hours away from the machine's, as ``linli demo`` and the tests run it): a volunteer whose
quiet hours cover the machine's time but not the bot's gets the ping."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.factories import make_community, make_member

PING = "A neighbour needs help now"
T = 10


async def test_the_ping_follows_the_bots_clock(fake: FakeTelegram, tmp_path: Path) -> None:
    real = datetime.now(UTC)
    bot_now = real + timedelta(hours=12)
    hour = real.astimezone(ZoneInfo("Asia/Shanghai")).hour
    quiet = (f"{(hour - 1) % 24:02d}:00", f"{(hour + 2) % 24:02d}:00")  # the machine's time, not the bot's
    path = str(tmp_path / "clock.db")
    db = await open_database(path)
    try:
        cid = await make_community(db, real, language="en")
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en, sort)"
                               " VALUES (?, 'shopping', '买菜', 'Shopping', 0)", (cid,))
        resident = await make_member(db, real, cid, resident=True, language="en", address="Room 101")
        vol_u = fake.add_user("Vic", language_code="en")
        fake.private_chat(vol_u, create=True)
        await make_member(db, real, cid, tg_user_id=vol_u.id, volunteer=True, language="en", on_duty=1,
                          quiet_start=quiet[0], quiet_end=quiet[1])
    finally:
        await db.close()
    proc = BotProcess(fake, path, log_path=str(tmp_path / "clock.log"), env={"BOT_CLOCK_START": bot_now.isoformat()})
    await proc.start()
    db = await open_database(path)
    try:
        await tasks.create_task(db, bot_now, resident, tasks.NewTask(category="shopping", description="Bread",
                                                                     when_kind="asap"))

        def ping_shown() -> bool:
            return any(PING in str(m.text or "") for m in fake.bot_messages(fake.private_chat(vol_u)))

        def handled() -> tuple[str, str | None] | None:  # the ping's outbox row once it is dealt with
            with sqlite3.connect(path) as con:
                row = con.execute("SELECT state, last_error FROM outbox WHERE kind = 'task_urgent_ping'"
                                  " AND state NOT IN ('pending', 'sending')").fetchone()
            return None if row is None else (str(row[0]), row[1])

        state, error = await fake.wait_for(handled, timeout=T)
        assert error != "dropped by renderer", (state, error)
        await fake.wait_for(ping_shown, timeout=T)
    finally:
        await db.close()
        await proc.stop()
