"""Completion through the real bot process: done, confirm (double tap, duplicated update), not done,
and closing a 20-person event with 3 no-shows. The world is seeded in the bot's database
(dispatch flows were not available); the Done button reaches the volunteer through the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import Database, open_database
from storage.outbox import enqueue
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task

T = 10


def _has(data: str) -> Any:
    return lambda m: m.carries(data)


async def _send_done_button(db: Database, now: datetime, tg: int, member_id: int, tid: int) -> None:
    async with db.transaction() as conn:
        await enqueue(conn, chat_id=tg, kind="completion_not_done", now=now, payload={"task_id": tid},
                      member_id=member_id, dedupe_key=f"seed:{tid}:{member_id}")


async def _event_and_its_staff(fake: FakeTelegram, db: Database, now: datetime, *,
                               slots: int) -> tuple[int, Any, int, int]:
    """A community without a group, its staff member (in English) and an event “Clean-up” at 05-04 09:30."""
    cid = await make_community(db, now, no_group=True)  # no group chat in this scenario
    staff_u = fake.add_user("Staff", language_code="en")
    staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True)
    fake.private_chat(staff_u, create=True)
    tid = await make_task(db, now, cid, staff, kind="event", slots=slots, points=2, title="Clean-up",
                          starts_at="2026-05-04T01:30:00.000000Z")
    return cid, staff_u, staff, tid


async def test_request_done_confirm_credits_once(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        cid = await make_community(db, now, no_group=True)  # no group chat in this scenario
        res_u = fake.add_user("Li", language_code="en")
        vol_u = fake.add_user("Wang", language_code="en")
        other_u = fake.add_user("Nosy", language_code="en")
        res = await make_member(db, now, cid, tg_user_id=res_u.id, language="en", resident=True, name="Grandma Li")
        vol = await make_member(db, now, cid, tg_user_id=vol_u.id, language="en", volunteer=True, name="Wang")
        await make_member(db, now, cid, tg_user_id=other_u.id, language="en", resident=True)
        for u in (res_u, vol_u, other_u):
            fake.private_chat(u, create=True)
        tid = await make_task(db, now, cid, res, requester_id=res, points=3, title="Buy rice")
        await make_claim(db, now, tid, vol)
        await _send_done_button(db, now, vol_u.id, vol, tid)

        msg = await fake.wait_for_message(vol_u, _has(f"done:{tid}"), timeout=T)
        await fake.press_button(vol_u, msg, f"done:{tid}")
        # The volunteer may add a photo for the resident (optional).
        await fake.wait_for_message(vol_u, _has("d:note:skip"), timeout=T, after_id=msg.message_id)
        await fake.send_photo(vol_u, None, caption="Rice on the kitchen table")
        await fake.wait_for_message(res_u, lambda m: "photo" in m and "Rice on the kitchen table" in (m.caption or ""),
                                    timeout=T, after_id=0)
        ask = await fake.wait_for_message(res_u, _has(f"cf:{tid}:n"), timeout=T, after_id=0)
        assert "Wang" in (ask.text or "")
        # someone else cannot answer: a forged press is refused politely and changes nothing
        qid = await fake.press_raw_callback(other_u, ask, f"cf:{tid}:y")
        refusal = await fake.wait_callback_answer(qid, timeout=T)
        assert "not for you" in str(refusal.get("text", "")), refusal
        for junk in (f"cf:{tid}:zz", "cf:abc:y", f"done:{tid}9999999999999"):
            qid = await fake.press_raw_callback(vol_u, msg, junk)
            assert (await fake.wait_callback_answer(qid, timeout=T)).get("text")
        # "Not done" first, then done again, then yes
        await fake.press_button(res_u, ask, f"cf:{tid}:n")
        # The resident is asked, optionally, what is missing; a sticker is politely refused.
        await fake.wait_for_message(res_u, _has("d:reason:skip"), timeout=T, after_id=ask.message_id)
        await fake.send_sticker(res_u, None)
        await fake.wait_for_message(res_u, lambda m: "up to 300" in (m.text or ""), timeout=T)
        await fake.send_text(res_u, None, "The <b>rice</b> is missing")
        # The volunteer reads the resident's words as typed (escaped, so "<b>" shows as text).
        await fake.wait_for_message(vol_u, lambda m: "The <b>rice</b> is missing" in (m.text or ""), timeout=T)
        again = await fake.wait_for_message(vol_u, _has(f"done:{tid}"), timeout=T, after_id=msg.message_id)
        await fake.press_button(vol_u, again, f"done:{tid}")
        ask2 = await fake.wait_for_message(res_u, _has(f"cf:{tid}:y"), timeout=T, after_id=ask.message_id)
        fake.duplicate_next_updates(True)
        await fake.press_button(res_u, ask2, f"cf:{tid}:y")
        fake.duplicate_next_updates(False)
        await fake.press_button(res_u, ask2, f"cf:{tid}:y")
        await settle(fake)
        account = fake._bot(None)
        fake.redeliver(max(account.history))
        await settle(fake)
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ?", (tid,)) == 1
        assert await db.fetchval("SELECT balance FROM members WHERE id = ?", (vol,)) == 3
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "completed"
        thanks = await fake.wait_for_message(vol_u, lambda m: "+3" in (m.text or ""), timeout=T)
        assert "Buy rice" in (thanks.text or "")

        await fake.send_text(vol_u, None, "/points")
        pts = await fake.wait_for_message(vol_u, lambda m: "Your points" in (m.text or ""), timeout=T)
        assert "<b>3</b>" in (pts.text or "") or "3" in (pts.text or "")
        assert not fake.errors, fake.errors
    finally:
        await db.close()


async def test_event_twenty_with_three_no_shows(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        cid, staff_u, staff, tid = await _event_and_its_staff(fake, db, now, slots=20)
        vols = [await make_member(db, now, cid, volunteer=True, name=f"V{i}", started_bot=0) for i in range(20)]
        for v in vols:
            await make_claim(db, now, tid, v)
        for bad in (f"/closeevent {tid} 25", f"/closeevent {tid} 3 x", f"/closeevent {tid} 0"):
            await fake.send_text(staff_u, None, bad)
            await fake.wait_for_message(staff_u, lambda m: "has 20 people" in (m.text or "") and "from 1 to 20"
                                        in (m.text or ""), timeout=T, after_id=max(
                                            (m.message_id for m in fake.bot_messages(fake.private_chat(staff_u))),
                                            default=0))
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ?", (tid,)) == 0
        await fake.send_text(staff_u, None, f"/closeevent #{tid}")
        sheet = await fake.wait_for_message(staff_u, lambda m: "Attendance" in (m.text or ""), timeout=T)
        assert len([b for b in sheet.inline_buttons if str(b["callback_data"]).startswith("d:att:")]) == 22
        for i in (0, 1, 2, 1, 1):  # untick three (ticking one back and forth on the way)
            q = await fake.press_button(staff_u, sheet, f"d:att:{i}")
            await fake.wait_callback_answer(q, timeout=T)
        assert "17 present" in str([b["text"] for b in sheet.inline_buttons])
        # The list is headed by the event's time and title (it read "Attendance for event 2").
        assert "Attendance for “05-04 09:30 Clean-up”" in (sheet.text or ""), sheet.text
        await fake.press_button(staff_u, sheet, "d:att:close")
        await fake.wait_for(lambda: "Event closed" in (sheet.text or ""), timeout=T)
        await fake.send_text(staff_u, None, f"/closeevent {tid} 4")
        await fake.wait_for_message(staff_u, lambda m: "already" in (m.text or ""), timeout=T)
        # A request is not an event; an event nobody claimed is cancelled, not closed.
        plain = await make_task(db, now, cid, staff, title="Buy rice")
        await fake.send_text(staff_u, None, f"/closeevent {plain}")
        await fake.wait_for_message(staff_u, lambda m: "not an event" in (m.text or ""), timeout=T)
        empty = await make_task(db, now, cid, staff, kind="event", slots=5, title="Nobody came")
        await fake.send_text(staff_u, None, f"/closeevent {empty}")
        await fake.wait_for_message(staff_u, lambda m: "/canceltask" in (m.text or ""), timeout=T)
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (empty,)) == "open"
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ?", (tid,)) == 17
        assert await db.fetchval("SELECT SUM(delta) FROM ledger WHERE task_id = ?", (tid,)) == 34
        assert await db.fetchval("SELECT COUNT(*) FROM no_shows WHERE task_id = ?", (tid,)) == 3
        # Staff look up the entries and take one back with a reason; it is a new negative row.
        await fake.send_text(staff_u, None, f"/entries {tid}")
        listing = await fake.wait_for_message(staff_u, lambda m: "entry" in (m.text or ""), timeout=T)
        assert (listing.text or "").count("+2") == 17
        first = int((listing.text or "").splitlines()[1].split(" · ")[0])
        await fake.send_text(staff_u, None, f"/revoke {first} left early")
        await fake.wait_for_message(staff_u, lambda m: "Taken back 2" in (m.text or ""), timeout=T)
        assert await db.fetchval("SELECT SUM(delta) FROM ledger WHERE task_id = ?", (tid,)) == 32
        assert not fake.errors, fake.errors
    finally:
        await db.close()


async def test_staff_confirm_a_proxy_request_for_the_resident(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """Found in the stories: the grid worker who published for 郭奶奶 was asked "李明 帮您完成…了吗？"."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        cid = await make_community(db, now)
        staff_u = fake.add_user("网格员", language_code="zh-hans")
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, staff=True, name="网格员小周")
        vol = await make_member(db, now, cid, volunteer=True, name="李明")
        fake.private_chat(staff_u, create=True)
        tid = await make_task(db, now, cid, staff, is_proxy=1, proxy_name="郭奶奶", proxy_phone="13900001111",
                              title=None, description="郭奶奶想买两个包子", state="awaiting_confirmation")
        own = await make_task(db, now, cid, staff, title="搬桌椅", state="awaiting_confirmation")
        await make_claim(db, now, tid, vol, state="done", update_task=False)
        async with db.transaction() as conn:
            for task in (tid, own):
                await enqueue(conn, chat_id=staff_u.id, kind="completion_confirm", now=now, member_id=staff,
                              payload={"task_id": task, "volunteers": ["李明"]}, dedupe_key=f"seed:{task}")
        ask = await fake.wait_for_message(staff_u, _has(f"cf:{tid}:y"), timeout=T, after_id=0)
        assert (ask.text or "").startswith("李明 帮郭奶奶完成“郭奶奶想买两个包子”了吗？"), ask.text
        mine = await fake.wait_for_message(staff_u, _has(f"cf:{own}:y"), timeout=T, after_id=0)
        assert (mine.text or "").startswith("李明 完成“搬桌椅”了吗？"), mine.text
        assert not fake.errors, fake.errors
    finally:
        await db.close()


async def test_after_the_close_the_list_and_the_no_shows_buttons_are_finished(fake: FakeTelegram,
                                                                            bot_process: BotProcess) -> None:
    """Found in the stories: /closeevent's numbers were not on the list; after the close the tick list's
    buttons still worked; the no-shows were told nothing and their Done / Withdraw buttons stayed."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        cid, staff_u, _staff, tid = await _event_and_its_staff(fake, db, now, slots=3)
        users = [fake.add_user(name, language_code="en") for name in ("Ann", "Bob", "Cai")]
        for u in users:
            fake.private_chat(u, create=True)
            vol = await make_member(db, now, cid, tg_user_id=u.id, language="en", volunteer=True, name=u.first_name)
            await make_claim(db, now, tid, vol)
            async with db.transaction() as conn:   # the details with Done and Withdraw, as a claim sends them
                await enqueue(conn, chat_id=u.id, kind="task_claimed_volunteer", now=now, payload={"task_id": tid},
                              member_id=vol, dedupe_key=f"seed:{tid}:{vol}")
        bob = users[1]
        details = await fake.wait_for_message(bob, _has(f"wd:{tid}"), timeout=T, after_id=0)
        ann_details = await fake.wait_for_message(users[0], _has(f"done:{tid}"), timeout=T, after_id=0)

        await fake.send_text(staff_u, None, f"/closeevent #{tid}")
        sheet = await fake.wait_for_message(staff_u, lambda m: "Attendance" in (m.text or ""), timeout=T)
        names = [str(b["text"]) for b in sheet.inline_buttons if str(b["callback_data"]).startswith("d:att:")]
        assert [n.split(" · ")[0] for n in names[:3]] == ["✅ 1. Ann", "✅ 2. Bob", "✅ 3. Cai"], names
        assert f"/closeevent {tid} 2 5" in (sheet.text or "")
        # Closed with the list's numbers while the list is open: Bob (number 2) did not come.
        await fake.send_text(staff_u, None, f"/closeevent {tid} 2")
        await fake.wait_for_message(staff_u, lambda m: "Event closed. 2 volunteers" in (m.text or ""), timeout=T)
        await fake.wait_callback_answer(await fake.press_button(staff_u, sheet, "d:att:0"), timeout=T)
        await fake.wait_for(lambda: "closed already" in (sheet.text or "") and not sheet.inline_buttons, timeout=T)
        assert "Clean-up" in (sheet.text or "")

        told = await fake.wait_for_message(bob, lambda m: "did not come" in (m.text or ""), timeout=T)
        assert "Clean-up" in (told.text or "") and "no points" in (told.text or ""), told.text
        await fake.wait_for(lambda: not details.inline_buttons and "is closed" in (details.text or ""), timeout=T)
        # Ann came: her Done and Withdraw buttons go too (a Done pressed after the close only said "already").
        await fake.wait_for(lambda: not ann_details.inline_buttons, timeout=T)
        assert "“Clean-up” is closed. Thank you for coming!" in (ann_details.text or ""), ann_details.text
        # The way to say it is wrong works: staff hear of it.
        answer = await fake.wait_callback_answer(await fake.press_button(bob, told, f"cs:{tid}"), timeout=T)
        assert "told the community staff" in str(answer.get("text")), answer
        await fake.wait_for_message(staff_u, lambda m: "Bob asks staff" in (m.text or ""), timeout=T)
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ?", (tid,)) == 2
        assert await db.fetchval("SELECT COUNT(*) FROM no_shows WHERE task_id = ?", (tid,)) == 1
        assert not fake.errors, fake.errors
    finally:
        await db.close()


@pytest.mark.parametrize(("lang", "code", "closed", "attended"), [
    ("en", "en", "“Clean-up” is closed. Thank you for coming!", "you were counted as having come"),
    ("zh", "zh-hans", "“Clean-up”已经结束。谢谢您来参加！", "已经记录您来参加了"),
])
async def test_those_who_came_lose_their_done_buttons_at_the_close(fake: FakeTelegram, bot_process: BotProcess,
                                                                  lang: str, code: str, closed: str,
                                                                  attended: str) -> None:
    """Ann's details are edited at the close. Bo's edit is held back (as if it had not gone out yet):
    his Done then says the event is closed and he was counted, and takes the buttons away."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        cid, staff_u, _staff, tid = await _event_and_its_staff(fake, db, now, slots=2)
        details = {}
        for name in ("Ann", "Bo"):
            user = fake.add_user(name, language_code=code)
            fake.private_chat(user, create=True)
            vol = await make_member(db, now, cid, tg_user_id=user.id, language=lang, volunteer=True, name=name)
            await make_claim(db, now, tid, vol)
            async with db.transaction() as conn:
                await enqueue(conn, chat_id=user.id, kind="task_claimed_volunteer", now=now,
                              payload={"task_id": tid}, member_id=vol, dedupe_key=f"seed:{tid}:{vol}")
            details[name] = (user, vol, await fake.wait_for_message(user, _has(f"done:{tid}"), timeout=T, after_id=0))
        bo, bo_id, bo_details = details["Bo"]
        async with db.transaction() as conn:  # the close's edit of Bo's details will not find them
            await conn.execute("UPDATE outbox SET member_id = NULL WHERE member_id = ?", (bo_id,))
        await fake.send_text(staff_u, None, f"/closeevent {tid}")
        sheet = await fake.wait_for_message(staff_u, lambda m: "Attendance" in (m.text or ""), timeout=T)
        await fake.press_button(staff_u, sheet, "d:att:close")
        await fake.wait_for(lambda: "Event closed" in (sheet.text or ""), timeout=T)
        ann_details = details["Ann"][2]
        await fake.wait_for(lambda: not ann_details.inline_buttons, timeout=T)
        assert closed in (ann_details.text or ""), ann_details.text

        assert bo_details.inline_buttons
        said = await fake.wait_callback_answer(await fake.press_button(bo, bo_details, f"done:{tid}"), timeout=T)
        assert attended in str(said.get("text")), said
        await fake.wait_for(lambda: not bo_details.inline_buttons, timeout=T)
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = ? AND member_id = ?", (tid, bo_id)) == 1
        assert not fake.errors, fake.errors
    finally:
        await db.close()
