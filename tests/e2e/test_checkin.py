"""Check-in at the venue through the real bot process (issue 21, feature 2): staff open check-in
from /mytasks or /checkin and get a QR code and a short code; volunteers with a place scan it or type
the code within the event's window; /closeevent starts from the check-ins. Every refusal is checked:
a code of another event, before and after the window, no place, unregistered, a wrong code, not staff,
and nothing of it in the group."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import segno

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import Database, open_database
from storage.timeutil import to_db
from tests.e2e.people import community_with_group
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task

T = 10
BOT = "linli_test_bot"


def _last_id(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in fake.bot_messages(chat)), default=0) if chat is not None else 0


async def _say(fake: FakeTelegram, user: Any, text: str, expect: str) -> Any:
    """``user`` sends ``text`` in private; the bot's next message there containing ``expect``."""
    mark = _last_id(fake, user)
    await fake.send_text(user, None, text)
    return await fake.wait_for_message(user, lambda m: expect in str(m.text or m.caption or ""), timeout=T,
                                       after_id=mark)


def _short_code(message: Any) -> str:
    found = re.search(r"this code: (?:<code>)?([A-Z]{6})\b", str(message.caption or message.text or ""))
    assert found, message.data
    return found.group(1)


async def _token(db: Database, task_id: int) -> str:
    return str(await db.fetchval("SELECT token FROM checkin_codes WHERE task_id = ?", (task_id,)))


async def _checked_in(db: Database, task_id: int) -> set[int]:
    return {int(r[0]) for r in await db.fetchall("SELECT member_id FROM checkins WHERE task_id = ?", (task_id,))}


def _qr_png(link: str) -> bytes:
    buf = io.BytesIO()
    segno.make(link, error="m").save(buf, kind="png", scale=8, border=2)
    return buf.getvalue()


async def _event(db: Database, now: datetime, cid: int, staff: int, title: str, start: timedelta,
                 end: timedelta | None, people: list[int]) -> int:
    tid = await make_task(db, now, cid, staff, kind="event", slots=10, points=2, title=title,
                          starts_at=to_db(now + start), ends_at=None if end is None else to_db(now + end))
    for member_id in people:
        await make_claim(db, now, tid, member_id)
    return tid


async def test_check_in_by_qr_code_and_short_code_then_close(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now)
        staff_u, a_u, b_u, c_u, d_u, e_u = (fake.add_user(n, language_code="en")
                                            for n in ("Staff", "Ann", "Bo", "Cai", "Dee", "Eve"))
        elsewhere = await make_community(db, now, name="Far Lane")
        await make_member(db, now, elsewhere, tg_user_id=e_u.id, language="en", volunteer=True, name="Eve")
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True, name="Staff")
        ann = await make_member(db, now, cid, tg_user_id=a_u.id, language="en", volunteer=True, name="Ann")
        bo = await make_member(db, now, cid, tg_user_id=b_u.id, language="zh", volunteer=True, name="Bo")
        cai = await make_member(db, now, cid, tg_user_id=c_u.id, language="en", volunteer=True, name="Cai")
        absent = await make_member(db, now, cid, volunteer=True, name="Xu", started_bot=0)
        for u in (staff_u, a_u, b_u, c_u, d_u, e_u):
            fake.private_chat(u, create=True)
        # Starting in 10 minutes (check-in opened 30 minutes before); another at the same time;
        # one in three hours (check-in not yet open).
        clean = await _event(db, now, cid, staff, "Clean-up", timedelta(minutes=10), timedelta(hours=2),
                             [ann, bo, absent])
        fair = await _event(db, now, cid, staff, "Fair", timedelta(minutes=10), timedelta(hours=2), [cai])
        later = await _event(db, now, cid, staff, "Later", timedelta(hours=3), None, [ann])

        # Staff open check-in with the 📍 button under the event in /mytasks: a QR code and a short code.
        mine = await _say(fake, staff_u, "/mytasks", "Your tasks")
        await fake.press_button(staff_u, mine, f"ci:{clean}")
        sheet = await fake.wait_for_message(staff_u, lambda m: "Check-in for" in str(m.caption or ""), timeout=T,
                                            after_id=mine.message_id)
        code = _short_code(sheet)
        token = await _token(db, clean)
        assert fake.file_bytes(sheet.data["photo"][-1]["file_id"]) == _qr_png(f"https://t.me/{BOT}?start=ci_{token}")
        await _say(fake, staff_u, "/checkin", "/checkin <event number>")
        # Opening it again (the command) shows the same code.
        again = await _say(fake, staff_u, f"/checkin {clean}", "Check-in for")
        assert _short_code(again) == code and "Checked in so far: 0 of 3" in str(again.caption)

        # Scanning the QR code checks in once; a second scan is harmless.
        await _say(fake, a_u, f"/start ci_{token}", "You are checked in at “Clean-up”")
        await _say(fake, a_u, f"/start ci_{token}", "already checked in")
        # Typing the code from the menu, in Chinese, in lower case with a space.
        await _say(fake, b_u, "📍 活动签到", "签到码")
        await _say(fake, b_u, f"{code[:3].lower()} {code[3:]}", "签到成功")
        assert await _checked_in(db, clean) == {ann, bo}
        assert "Checked in so far: 2 of 3" in str((await _say(fake, staff_u, f"/checkin {clean}", "Check-in for")).caption)

        # Refusals: no place here (a place at another event does not count), a wrong code, not
        # registered, another community, not staff; before the window (and no place there either).
        await _say(fake, c_u, f"/checkin {code}", "do not have a place at “Clean-up”")
        await _say(fake, a_u, "/checkin ZZZZZZ", "check-in code is not right")
        await _say(fake, d_u, f"/start ci_{token}", "Please register first")
        await _say(fake, e_u, f"/start ci_{token}", "check-in code is not right")  # another community's event
        await _say(fake, a_u, f"/checkin {fair}", "not allowed")
        await _say(fake, staff_u, f"/checkin {later}", "Check-in for")
        await _say(fake, a_u, f"/start ci_{await _token(db, later)}", "opens at")
        await _say(fake, c_u, f"/start ci_{await _token(db, later)}", "do not have a place at “Later”")
        assert await _checked_in(db, fair) == set() and await _checked_in(db, later) == set()

        # After the window: the fair's code no longer works, and check-in cannot be opened again.
        await _say(fake, staff_u, f"/checkin {fair}", "Check-in for")
        async with db.transaction() as conn:   # the fair is over (its end moved into the past)
            await conn.execute("UPDATE tasks SET starts_at = ?, ends_at = ? WHERE id = ?",
                               (to_db(now - timedelta(hours=3)), to_db(now - timedelta(hours=1)), fair))
        await _say(fake, c_u, f"/start ci_{await _token(db, fair)}", "has ended")
        await _say(fake, staff_u, f"/checkin {fair}", "has ended")
        assert await _checked_in(db, fair) == set()

        # In the group nothing is shown: no code, no picture; the bot points to the private chat.
        fake.add_member(group, staff_u, announce=False)
        mark = max((m.message_id for m in fake.bot_messages(group)), default=0)
        await fake.send_text(staff_u, group, f"/checkin {clean}")
        await fake.wait_for_message(group, lambda m: "private chat" in str(m.text or ""), timeout=T, after_id=mark)
        await settle(fake)
        for m in fake.bot_messages(group):
            assert "photo" not in m.data and code not in str(m.text or m.caption or ""), m.data

        # /closeevent starts from the check-ins: Ann and Bo ticked, Xu (who never came) not.
        att = await _say(fake, staff_u, f"/closeevent {clean}", "Attendance")
        assert "checked in" in str(att.text)
        labels = [str(b["text"]) for b in att.inline_buttons]
        ticks = {label.split(" ")[2]: label.split(" ")[0] for label in labels[:3]}  # "✅ 1. Ann · 100%"
        assert ticks == {"Ann": "✅", "Bo": "✅", "Xu": "❌"} and "2 present" in str(labels), labels
        await fake.press_button(staff_u, att, "d:att:close")
        await fake.wait_for(lambda: "Event closed" in (att.text or ""), timeout=T)
        paid = await db.fetchall("SELECT member_id FROM ledger WHERE task_id = ?", (clean,))
        assert {int(r[0]) for r in paid} == {ann, bo}
        assert await db.fetchval("SELECT member_id FROM no_shows WHERE task_id = ?", (clean,)) == absent
        assert not fake.errors, fake.errors
    finally:
        await db.close()


async def test_the_code_typed_without_the_button_checks_in(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """A volunteer who is also a resident types the code from the sign at the venue straight into the
    chat (no 📍 first): checked in, not a request for help; a resident's six-letter word that is no
    event's code is still read as what she needs."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        _group, cid = await community_with_group(fake, db, now)
        staff_u, ann_u, res_u = (fake.add_user(n, language_code="zh") for n in ("Staff", "Ann", "Wu"))
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="zh", staff=True, name="Staff")
        ann = await make_member(db, now, cid, tg_user_id=ann_u.id, language="zh", volunteer=True, resident=True,
                                name="Ann")
        await make_member(db, now, cid, tg_user_id=res_u.id, language="zh", resident=True, name="Wu",
                          address="3 Sunny Lane")
        for u in (staff_u, ann_u, res_u):
            fake.private_chat(u, create=True)
        clean = await _event(db, now, cid, staff, "Clean-up", timedelta(minutes=10), timedelta(hours=2), [ann])
        sheet = await _say(fake, staff_u, f"/checkin {clean}", "签到")
        code = str(await db.fetchval("SELECT short_code FROM checkin_codes WHERE task_id = ?", (clean,)))
        assert code in str(sheet.caption or sheet.text)
        await _say(fake, ann_u, f"{code[:3].lower()} {code[3:]}", "签到成功")
        assert await _checked_in(db, clean) == {ann}
        word = next(w for w in ("PARCEL", "BASKET") if w != code)
        await _say(fake, res_u, word, word)  # no event has it: her words, in the quick request's summary
        assert await _checked_in(db, clean) == {ann}
    finally:
        await db.close()
