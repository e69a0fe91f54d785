"""Fair urgent alerts through the real bot and the stand-in: urgent requests rotate over the on-duty
volunteers (least recently pinged first), nobody gets more than the daily cap, and volunteers of
the request's area or skill are still asked first."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.devkit.harness import BotProcess, message_text, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import alerts, tasks
from storage.db import Database, open_database
from tests.e2e.people import ask_for_help
from tests.factories import make_community, make_member

PING = "A neighbour needs help now"
T = 60
NO_PACING = {"BOT_FLOOD_CONTROL": "false"}


def _pings(fake: FakeTelegram, users: list[Any]) -> Counter[int]:
    """How many urgent pings each user has in their private chat."""
    return Counter({u.id: sum(PING in (m.text or "") for m in fake.bot_messages(fake.private_chat(u)))
                    for u in users if fake.private_chat(u) is not None})


async def _volunteers(fake: FakeTelegram, db: Database, now: datetime, cid: int, n: int, **fields: Any) -> list[Any]:
    users = []
    for i in range(n):
        u = fake.add_user(f"Vol{i:02d}", language_code="en")
        fake.private_chat(u, create=True)
        await make_member(db, now, cid, tg_user_id=u.id, volunteer=True, language="en", on_duty=1,
                          quiet_start="00:00", quiet_end="00:00", **fields)
        users.append(u)
    return users


async def _urgent(db: Database, now: datetime, resident: int, what: str, category: str = "shopping") -> int:
    return await tasks.create_task(db, now, resident, tasks.NewTask(category=category, description=what,
                                                                    when_kind="asap"))


async def test_100_urgent_requests_spread_evenly_over_20_on_duty(fake: FakeTelegram, tmp_path: Path) -> None:
    path = str(tmp_path / "fair.db")
    real_now = datetime.now(UTC)
    db = await open_database(path)
    try:
        staff_user = fake.add_user("Staff", language_code="en")
        group = fake.add_group("Volunteers", creator=staff_user)
        await fake.add_bot_to_group(group, added_by=staff_user)
        cid = await make_community(db, real_now, group_chat_id=group.id, language="en",
                                   settings={"urgent_daily_cap": 20})
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en, sort)"
                               " VALUES (?, 'shopping', '买菜', 'Shopping', 0)", (cid,))
        res_user = fake.add_user("Resident", language_code="en")
        fake.private_chat(res_user, create=True)
        resident = await make_member(db, real_now, cid, tg_user_id=res_user.id, resident=True, language="en", address="Room 101",
                                     quiet_start="00:00", quiet_end="00:00")
        vols = await _volunteers(fake, db, real_now, cid, 20)
    finally:
        await db.close()
    # 300 private messages and 100 cards: paced by the flood limits they would take minutes, and
    # the pacing is not what this test is about (tests/e2e/test_outbox.py is).
    fake.set_flood_limits(False)
    proc = BotProcess(fake, path, env=NO_PACING, log_path=str(tmp_path / "fair.log"))
    await proc.start()
    db = await open_database(path)
    try:
        # The first through the bot's own dialog, then 99 more (the cap, 20 a day here, is not reached).
        await ask_for_help(fake, res_user, "Bread and milk please")
        for i in range(99):
            await _urgent(db, datetime.now(UTC), resident, f"Job {i}")
        assert await db.fetchval("SELECT COUNT(*) FROM tasks WHERE urgent = 1") == 100
        await fake.wait_for(lambda: sum(_pings(fake, vols).values()) >= 100 * alerts.URGENT_PINGS, timeout=60)
        await settle(fake)
        counts = _pings(fake, vols)
        even = 100 * alerts.URGENT_PINGS / len(vols)  # 15 each
        print("pings per volunteer:", sorted(counts.values()))
        assert sum(counts.values()) == 300
        assert all(0.8 * even <= counts[u.id] <= 1.2 * even for u in vols), counts
        assert _pings(fake, [res_user])[res_user.id] == 0  # the requester is never pinged
        assert not fake.errors, fake.errors
    finally:
        await db.close()
        await proc.stop()


async def test_daily_cap_holds_and_matching_volunteers_come_first(fake: FakeTelegram, tmp_path: Path) -> None:
    path = str(tmp_path / "cap.db")
    now = datetime.now(UTC)
    # Noon yesterday in the community's time zone (Shanghai): the first day's requests all fall on one local day.
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    yesterday = (local - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0).astimezone(UTC)
    staff_user = fake.add_user("Staff", language_code="en")
    db = await open_database(path)
    try:
        group = fake.add_group("Volunteers", creator=staff_user)
        await fake.add_bot_to_group(group, added_by=staff_user)
        # Yesterday's requests are still open today (they would expire after 24 hours by default).
        cid = await make_community(db, yesterday, group_chat_id=group.id, language="en",
                                   settings={"notifications": {"expire_asap_hours": 72}})
        await make_member(db, yesterday, cid, tg_user_id=staff_user.id, staff=True, language="en")
        async with db.transaction() as conn:
            area = int((await conn.execute("INSERT INTO areas (community_id, name) VALUES (?, 'Block 3')",
                                           (cid,))).lastrowid or 0)
        resident = await make_member(db, yesterday, cid, resident=True, area_id=area)
        near = await _volunteers(fake, db, yesterday, cid, 1, area_id=area)            # the resident's area
        skilled = await _volunteers(fake, db, yesterday, cid, 1, skills='["repair"]')  # the request's skill
        others = await _volunteers(fake, db, yesterday, cid, 4)
    finally:
        await db.close()
    everyone = near + skilled + others
    proc = BotProcess(fake, path, log_path=str(tmp_path / "cap.log"))
    await proc.start()
    db = await open_database(path)
    try:
        # Staff choose three alerts a day per volunteer (six by default) in /settings.
        await fake.send_text(staff_user, None, "/settings")
        card = await fake.wait_for_message(staff_user, lambda m: "at most 6 times a day" in message_text(m), timeout=T)
        qid = await fake.press_button(staff_user, card, "st:uc:3")
        assert "Saved" in (await fake.wait_callback_answer(qid, timeout=T)).get("text", "")
        await fake.wait_for(lambda: "at most 3 times a day" in message_text(card), timeout=T)

        await _urgent(db, yesterday, resident, "Fix a tap", category="repair")
        await fake.wait_for(lambda: sum(_pings(fake, everyone).values()) == 3, timeout=T)
        first = _pings(fake, everyone)
        assert first[near[0].id] == 1 and first[skilled[0].id] == 1  # area first, then skill
        # Eight more the same day: 27 alerts wanted, six volunteers with a cap of three give 18.
        for i in range(8):
            await _urgent(db, yesterday + timedelta(minutes=i + 1), resident, f"Fix tap {i}", category="repair")
        await fake.wait_for(lambda: sum(_pings(fake, everyone).values()) == 18, timeout=T)
        assert set(_pings(fake, everyone).values()) == {3}
        # The next day the count starts again, and the matching two are asked first again.
        await _urgent(db, now, resident, "Fix the door", category="repair")
        await fake.wait_for(lambda: sum(_pings(fake, everyone).values()) == 21, timeout=T)
        await settle(fake)
        counts = _pings(fake, everyone)
        assert sum(counts.values()) == 21
        assert counts[near[0].id] == 4 and counts[skilled[0].id] == 4
        assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'task_urgent_ping'") == 21
        assert not fake.errors, fake.errors
    finally:
        await db.close()
        await proc.stop()
