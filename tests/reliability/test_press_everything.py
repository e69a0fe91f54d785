"""A staff member who is also a volunteer and a resident opens every new screen (⚙ Settings,
/reliability, /mytasks with its 📍 check-in buttons, the leaderboard, managing rewards, check-in) and
presses every button on every message the bot sent, each twice in a row, in English and then in
Chinese: every press is answered, no traceback, no Bot API call refused, nothing in the group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram, PressRefused
from storage.db import open_database
from storage.timeutil import to_db
from tests.e2e.people import community_with_group
from tests.factories import make_member
from tests.factories_tasks import make_claim, make_task

T = 10
SCREENS = ["/settings", "/reliability", "/mytasks", "/leaderboard", "/points", "/rewards manage", "/checkin"]


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_press_every_button_twice(fake: FakeTelegram, bot_process: BotProcess, lang: str) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now, language=lang)
        me_u = fake.add_user("Sam", language_code=lang)
        me = await make_member(db, now, cid, tg_user_id=me_u.id, staff=True, volunteer=True, resident=True,
                               language=lang, name="Sam Li", phone="+8613912345678", address="Building 7 Room 1203")
        fake.private_chat(me_u, create=True)
        event = await make_task(db, now, cid, me, kind="event", slots=5, points=2, title="Clean the park",
                                starts_at=to_db(now + timedelta(minutes=5)), ends_at=to_db(now + timedelta(hours=2)))
        await make_claim(db, now, event, me)
        group_before = len(fake.bot_messages(group))
        queries: list[tuple[str, str]] = []
        for screen in SCREENS:
            await fake.send_text(me_u, None, screen)
            await settle(fake)
            await fake.send_text(me_u, None, "/cancel")
            await settle(fake)
        pressed: set[tuple[int, str]] = set()
        for _round in range(2):
            for message in list(fake.bot_messages(fake.private_chat(me_u))):
                for button in list(message.inline_buttons):
                    data = button.get("callback_data")
                    if data is None or (message.message_id, data) in pressed:
                        continue
                    pressed.add((message.message_id, data))
                    for _tap in range(2):
                        try:
                            queries.append((await fake.press_button(me_u, message, data), data))
                        except PressRefused:
                            break  # the message changed under the first tap: the button is gone
                    await settle(fake)
        unanswered = [data for qid, data in queries if fake.callback_answer(qid) is None]
        assert unanswered == [], unanswered
        assert len(queries) > 20
        refused = [(c.method, c.description) for c in fake.errors if "message is not modified" not in c.description]
        assert refused == [], refused
        log = bot_process.log()
        assert "Traceback" not in log and "error while handling" not in log, log[-4000:]
        for m in fake.bot_messages(group)[group_before:]:
            shown = str(m.text or m.caption or "")
            assert "13912345678" not in shown and "1203" not in shown, shown
        everything = [str(m.text or m.caption or "") for m in fake.bot_messages(fake.private_chat(me_u))]
        assert not any("went wrong" in s or "系统出了点问题" in s for s in everything)
    finally:
        await db.close()
