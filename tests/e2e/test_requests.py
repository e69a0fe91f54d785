"""Dispatch through the real bot process and the Telegram stand-in: a 20-slot event tapped by 50
volunteers at once, a resident request with a voice note claimed/withdrawn/reclaimed/cancelled,
forged callback data, and a privacy scan of every group message.
(Tasks are created via the service in the bot's database: the /request dialog is not built yet.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.e2e.people import community_with_group
from tests.factories import make_community, make_member

T = 15
PHONE = "13912345678"
ADDRESS = "Building 7, Room 1203"
NAME = "Grandma Zhou"


def _text(m: Any) -> str:
    return str(m.text or m.caption or "")


async def test_dispatch_end_to_end(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now)
        res_u = fake.add_user("Zhou", language_code="en")
        res = await make_member(db, now, cid, tg_user_id=res_u.id, language="en", resident=True, name=NAME,
                                phone=PHONE, address=ADDRESS)
        staff_u = fake.add_user("Staff", language_code="en")
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True)
        vol_users = [fake.add_user(f"V{i}", language_code="en") for i in range(50)]
        _vols = [await make_member(db, now, cid, tg_user_id=u.id, language="en", volunteer=True, name=f"Vol {i}",
                                   phone="13800000000" if i == 0 else None)
                for i, u in enumerate(vol_users)]
        for u in [res_u, staff_u, *vol_users]:
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)

        # -- a 20-slot event, 50 volunteers tap at once --------------------------------------
        ev = await tasks.create_task(db, now, staff, tasks.NewTask(
            "other", title="Guard the cherry blossoms", description="Bring a hat", kind="event", slots=20,
            points=5), staff=True)
        card = await fake.wait_for_message(group, lambda m: any(b.get("callback_data") == f"cl:{ev}"
                                                                for b in m.inline_buttons), timeout=T)
        qids = await asyncio.gather(*(fake.press_raw_callback(u, card, f"cl:{ev}") for u in vol_users))
        answers = await asyncio.gather(*(fake.wait_callback_answer(q, timeout=T) for q in qids))
        claimed = [a for a in answers if "You have claimed" in str(a.get("text"))]
        refused = [a for a in answers if "all places are taken" in str(a.get("text"))]
        assert len(claimed) == 20 and len(refused) == 30, answers
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state = 'active'", (ev,)) == 20
        await fake.wait_for(lambda: "20/20" in _text(fake._message(card)),
                            timeout=T)

        # -- a resident request with a voice note ------------------------------------------------
        voice = fake.store_file(b"OggS" + b"\0" * 64, "voice")
        rq = await tasks.create_task(db, now, res, tasks.NewTask(
            "shopping", description=f"Please buy rice, call me at {PHONE}", voice_file_id=voice.file_id))
        rcard = await fake.wait_for_message(group, lambda m: any(b.get("callback_data") == f"cl:{rq}"
                                                                 for b in m.inline_buttons), timeout=T)
        # forged and stale data: refused with an answer, nothing changes
        other_cid = await make_community(db, now, no_group=True)  # no group for the other community
        foreign = await tasks.create_task(db, now, await make_member(db, now, other_cid, resident=True),
                                          tasks.NewTask("shopping", description="elsewhere"))
        for junk in ("cl:abc", f"cl:{foreign}", "cl:987654", f"rc:{rq}", f"wd:{rq}", "cl:-3"):
            q = await fake.press_raw_callback(vol_users[0], rcard, junk)
            assert (await fake.wait_callback_answer(q, timeout=T)).get("text")
        q = await fake.press_raw_callback(res_u, rcard, f"cl:{rq}")   # own request
        assert (await fake.wait_callback_answer(q, timeout=T)).get("text")
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id IN (?, ?)", (rq, foreign)) == 0

        v0 = vol_users[0]
        q = await fake.press_raw_callback(v0, rcard, f"cl:{rq}")
        assert "You have claimed" in str((await fake.wait_callback_answer(q, timeout=T)).get("text"))
        q = await fake.press_raw_callback(v0, rcard, f"cl:{rq}")   # a repeated tap
        assert "already claimed" in str((await fake.wait_callback_answer(q, timeout=T)).get("text"))
        pm = await fake.wait_for_message(v0, lambda m: any(b.get("callback_data") == f"wd:{rq}"
                                                            for b in m.inline_buttons), timeout=T)
        datas = {b.get("callback_data") for b in pm.inline_buttons}
        assert {f"done:{rq}", f"wd:{rq}", f"cs:{rq}"} <= datas
        assert ADDRESS in _text(pm) and PHONE in _text(pm) and NAME in _text(pm)
        await fake.wait_for(lambda: any(c.ok and c.params.get("voice") == voice.file_id
                                        for c in fake.api_calls("sendVoice")), timeout=T)
        coming = await fake.wait_for_message(res_u, lambda m: any(b.get("callback_data") == f"rc:{rq}"
                                                                  for b in m.inline_buttons), timeout=T)
        assert "Vol 0" in _text(coming)
        # When they come, and what the Cancel button cancels (it read "Good news: ... [Cancel]").
        assert "When: As soon as possible" in _text(coming) and "press “✖ Cancel this request”" in _text(coming)
        assert [b["text"] for b in coming.inline_buttons] == ["✖ Cancel this request", "☎ Call staff"]
        # And how to reach the volunteer (it gave no way to): their name opens a chat with them; never
        # their phone (volunteers are told only staff see it).
        assert "To write to them, tap their name: Vol 0" in _text(coming), _text(coming)
        assert "13800000000" not in _text(coming)
        assert [(e["type"], e["user"]["id"]) for e in coming.entities if e["type"] == "text_mention"] == \
            [("text_mention", vol_users[0].id)]

        # withdraw and reclaim by someone else
        await fake.press_button(v0, pm, f"wd:{rq}")
        await settle(fake)
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (rq,)) == "open"
        # the details message of one who withdrew keeps no contact (and no buttons)
        await fake.wait_for(lambda: "you withdrew" in _text(pm), timeout=T)
        assert not any(secret in _text(pm) for secret in (ADDRESS, PHONE, NAME)) and not pm.inline_buttons
        # and the resident's voice note that came with it is deleted (it may say where she lives)
        voices = [m for m in fake.bot_messages(fake.private_chat(v0)) if "voice" in m.data]
        assert voices and all(m.deleted for m in voices), [(m.message_id, m.deleted) for m in voices]
        v1 = vol_users[1]
        q = await fake.press_raw_callback(v1, rcard, f"cl:{rq}")
        assert "You have claimed" in str((await fake.wait_callback_answer(q, timeout=T)).get("text"))
        # cancel after a claim: the volunteer is told
        coming2 = await fake.wait_for_message(res_u, lambda m: any(b.get("callback_data") == f"rc:{rq}"
                                                                   for b in m.inline_buttons),
                                              timeout=T, after_id=coming.message_id)
        pm1 = await fake.wait_for_message(v1, lambda m: any(b.get("callback_data") == f"wd:{rq}"
                                                             for b in m.inline_buttons), timeout=T)
        assert PHONE in _text(pm1)
        # one tap does not call the volunteer off: the resident is asked first ("No" keeps it)
        for keep in (True, False):
            await fake.press_button(res_u, coming2, f"rc:{rq}")
            sure = await fake.wait_for_message(res_u, lambda m: any(b.get("callback_data") == f"rc:{rq}:y"
                                                                     for b in m.inline_buttons),
                                               timeout=T, after_id=coming2.message_id)
            assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (rq,)) == "in_progress"
            await fake.press_button(res_u, sure, "rcn:0" if keep else f"rc:{rq}:y")
            await fake.wait_for(lambda s=sure: not s.inline_buttons, timeout=T)
        await fake.wait_for_message(v1, lambda m: "was cancelled" in _text(m), timeout=T)
        await fake.wait_for(lambda: "contact details were removed" in _text(pm1), timeout=T)
        assert PHONE not in _text(pm1) and ADDRESS not in _text(pm1)
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (rq,)) == "cancelled"
        await asyncio.sleep(6)
        await settle(fake)

        # privacy: nothing private ever reached the group
        for m in fake.messages(group):
            body = _text(m) + repr(getattr(m, "history", ""))
            for secret in (PHONE, ADDRESS, NAME):
                assert secret not in body, (secret, body)
        assert not fake.errors, fake.errors
        assert not [c for c in fake.calls if c.error_code == 429]
    finally:
        await db.close()


@pytest.mark.parametrize(("lang", "code", "gone", "open_again"), [
    ("en", "en", "Update on “Carry rice upstairs”: Vol Li cannot come after all.", "open again"),
    ("zh", "zh-hans", "“Carry rice upstairs”有变化：Vol Li 临时来不了了。", "重新发出"),
])
async def test_the_resident_sees_a_volunteer_who_withdrew_is_no_longer_coming(
        fake: FakeTelegram, bot_process: BotProcess, lang: str, code: str, gone: str, open_again: str) -> None:
    """When Li withdraws, the resident gets one clear message (was two: the "Good news: Li is coming"
    message corrected in place, and a new "The volunteer cannot come after all" notice): a new one,
    so her phone rings, naming Li and the request, saying it is open again, with its Cancel and Call
    staff buttons. The "Good news: Li is coming" message is taken away (it no longer names Li as
    coming nor links to Li's chat)."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now, language=lang)
        res_u, vol_u = fake.add_user("Zhou", language_code=code), fake.add_user("Li", language_code=code)
        res = await make_member(db, now, cid, tg_user_id=res_u.id, language=lang, resident=True, name=NAME)
        await make_member(db, now, cid, tg_user_id=vol_u.id, language=lang, volunteer=True, name="Vol Li")
        for u in (res_u, vol_u):
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        rq = await tasks.create_task(db, now, res, tasks.NewTask("shopping", title="Carry rice upstairs",
                                                                 description="Five kilos"))
        card = await fake.wait_for_message(group, lambda m: any(b.get("callback_data") == f"cl:{rq}"
                                                                for b in m.inline_buttons), timeout=T)
        await fake.wait_callback_answer(await fake.press_raw_callback(vol_u, card, f"cl:{rq}"), timeout=T)
        coming = await fake.wait_for_message(res_u, lambda m: any(b.get("callback_data") == f"rc:{rq}"
                                                                  for b in m.inline_buttons), timeout=T)
        assert "Vol Li" in _text(coming) and any(e["type"] == "text_mention" for e in coming.entities)
        pm = await fake.wait_for_message(vol_u, lambda m: any(b.get("callback_data") == f"wd:{rq}"
                                                               for b in m.inline_buttons), timeout=T)
        await fake.wait_callback_answer(await fake.press_button(vol_u, pm, f"wd:{rq}"), timeout=T)

        told = await fake.wait_for_message(res_u, lambda m: gone in _text(m), timeout=T, after_id=coming.message_id)
        assert open_again in _text(told), _text(told)
        assert [b.get("callback_data") for b in told.inline_buttons] == [f"rc:{rq}", f"cs:{rq}"]
        await fake.wait_for(lambda: coming.deleted, timeout=T)
        await settle(fake)
        assert not any(e["type"] == "text_mention" for e in coming.entities), coming.entities  # if it stayed
        after = [m for m in fake.bot_messages(fake.private_chat(res_u)) if m.message_id > coming.message_id]
        assert after == [told], [_text(m) for m in after]
    finally:
        await db.close()
