"""The round's new features attacked through the real bot as a confused or hostile person would:
check-in codes typed the way a Chinese phone keyboard writes them, in the group, by people without
a place or of another community, a photo where the code is expected, /reliability and its buttons
by people who are not staff. Afterwards: no traceback, no refused API call, nothing private or the
code in the group, nobody checked in who should not be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from storage.timeutil import to_db
from tests.e2e.people import community_with_group
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task

T = 10
FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}


async def _say(fake: FakeTelegram, user: Any, text: str, expect: str, where: Any = None) -> Any:
    chat = fake.private_chat(user) if where is None else where
    mark = max((m.message_id for m in fake.bot_messages(chat)), default=0) if chat is not None else 0
    await fake.send_text(user, where, text)
    return await fake.wait_for_message(where or user, lambda m: expect in str(m.text or m.caption or ""), timeout=T,
                                       after_id=mark)


async def test_check_in_code_as_typed_on_a_phone_and_by_the_wrong_people(fake: FakeTelegram,
                                                                          bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now, language="en")
        staff_u, vol_u, no_place_u, stranger, far_u = (fake.add_user(n, language_code=lang) for n, lang in (
            ("Sam", "en"), ("Wang", "zh-hans"), ("Li", "zh-hans"), ("Nobody", "en"), ("Far", "en")))
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, staff=True, language="en", name="Sam")
        vol = await make_member(db, now, cid, tg_user_id=vol_u.id, volunteer=True, language="zh", name="Wang Fang",
                                phone="+8613912345678")
        await make_member(db, now, cid, tg_user_id=no_place_u.id, volunteer=True, language="zh", name="Li Lei")
        far = await make_community(db, now, name="Far Lane")
        await make_member(db, now, far, tg_user_id=far_u.id, staff=True, volunteer=True, language="en", name="Far")
        for u in (staff_u, vol_u, no_place_u, stranger, far_u):
            fake.private_chat(u, create=True)
            if u is not stranger:
                fake.add_member(group, u, announce=False)
        event = await make_task(db, now, cid, staff, kind="event", slots=5, points=2, title="Clean the park",
                                starts_at=to_db(now + timedelta(minutes=5)), ends_at=to_db(now + timedelta(hours=2)))
        await make_claim(db, now, event, vol)
        sheet = await _say(fake, staff_u, f"/checkin {event}", "Check-in for")
        code = str(await db.fetchval("SELECT short_code FROM checkin_codes WHERE task_id = ?", (event,)))
        assert code in str(sheet.caption)
        group_before = [(m.message_id, m.text, m.caption) for m in fake.bot_messages(group)]

        # Wrong people and wrong places first: nothing of it checks anyone in.
        await _say(fake, no_place_u, f"/checkin {code}", "您")                 # no place: refused, in Chinese
        await _say(fake, stranger, f"/checkin {code}", "register")
        await _say(fake, far_u, f"/checkin {code}", "not right")              # another community's code
        await _say(fake, far_u, f"/checkin {event}", "not allowed")           # another community's staff
        await fake.send_text(vol_u, group, f"/checkin {code}")               # the code typed in the group
        await fake.send_text(vol_u, group, f"/checkin@linli_test_bot {code}")
        await fake.send_text(vol_u, group, code)
        await fake.send_text(staff_u, group, "/reliability")
        for n in ("²", "-1", "９" * 30, "#" + str(event) + "x"):
            await _say(fake, staff_u, f"/checkin {n}", "")
        # A photo, a voice and a sticker where the code is expected, then the code in full-width
        # letters with an ideographic space (a Chinese keyboard in full-width mode).
        await _say(fake, vol_u, "📍 活动签到", "签到码")
        await fake.send_photo(vol_u, None)
        await fake.send_voice(vol_u, None)
        await fake.send_sticker(vol_u, None)
        typed = "".join(FULL_WIDTH[c] for c in code[:3].lower()) + "\u3000" + "".join(FULL_WIDTH[c] for c in code[3:])
        await _say(fake, vol_u, typed, "签到成功")
        await _say(fake, vol_u, f"/checkin {code}", "已")                     # again: nothing changes
        await settle(fake)

        assert {int(r[0]) for r in await db.fetchall("SELECT member_id FROM checkins WHERE task_id = ?",
                                                     (event,))} == {vol}
        group_after = [(m.message_id, m.text, m.caption) for m in fake.bot_messages(group)]
        for _mid, text, caption in group_after[len(group_before):]:
            shown = str(text or caption or "")
            assert code not in shown and "Wang" not in shown and "13912345678" not in shown, shown
        everything = [str(m.text or m.caption or "") for c in fake.private_chats.values() for m in fake.bot_messages(c)]
        assert not any("went wrong" in s for s in everything)
        assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
        log = bot_process.log()
        assert "Traceback" not in log and "error while handling" not in log, log[-4000:]
    finally:
        await db.close()
