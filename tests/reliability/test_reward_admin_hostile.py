"""Managing rewards attacked as a confused or careless staff member would, through the real bot: a
photo where a name is expected, a voice and a sticker where a button is, text and a file where the
photo is, a name written in HTML, an over-long name, odd numbers, and Save tapped twice. Every
answer is polite, nothing is refused by the Bot API, and one reward is added."""

from __future__ import annotations

import datetime as dt

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.e2e.test_reward_admin import _last_id, _press, _said, _type
from tests.factories import make_community, make_member

T = 10
NAME = "<b>Tea</b> & <i>cakes</i> </code>"


async def test_wrong_kinds_of_answers_and_a_double_save(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = dt.datetime.now(dt.UTC)
        cid = await make_community(db, now)
        staff_u = fake.add_user("Grid", language_code="en")
        await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True)
        await fake.send_text(staff_u, None, "/rewards manage")
        await _said(fake, staff_u, "no rewards", 0)
        await _press(fake, staff_u, "d:list:-add", "name")
        after = _last_id(fake, staff_u)
        await fake.send_photo(staff_u, None, caption="Tea")           # a photo where the Chinese name is typed
        await _said(fake, staff_u, "name", after)
        await _type(fake, staff_u, "长" * 61, "60")                    # too long: asked again
        await _type(fake, staff_u, NAME, "English")
        await _type(fake, staff_u, NAME, "kind")
        for send in (fake.send_voice, fake.send_sticker):            # a button is expected
            after = _last_id(fake, staff_u)
            await send(staff_u, None)
            await _said(fake, staff_u, "press", after)
        await _press(fake, staff_u, "d:kind:goods", "points")
        for bad in ("²", "-0", "9" * 40, "1e3", "\u200b5"):
            await _type(fake, staff_u, bad, "1 to 100000")
        await _type(fake, staff_u, "３", "How many")
        await _type(fake, staff_u, "-1", "")
        await _type(fake, staff_u, "5", "photo")
        await _type(fake, staff_u, "here is the photo", "photo")     # text where the photo is expected
        after = _last_id(fake, staff_u)
        await fake.send_document(staff_u, None, b"\xff\xd8\xff\xe0jpeg", "tea.jpg", "image/jpeg")
        await _said(fake, staff_u, "photo", after)
        after = _last_id(fake, staff_u)
        await fake.send_photo(staff_u, None, b"\xff\xd8\xff\xe0tea")
        summary = await _said(fake, staff_u, "Put it in the points supermarket?", after)
        assert "<b>Tea</b> &amp; <i>cakes</i>" in str(summary.data.get("text")) or NAME in str(summary.text)
        saves = [await fake.press_button(staff_u, summary, "d:confirm:save") for _ in range(2)]
        for qid in saves:
            await fake.wait_callback_answer(qid, timeout=T)
        await settle(fake)
        assert await db.fetchval("SELECT COUNT(*) FROM rewards") == 1
        assert tuple(await db.fetchone("SELECT name_en, cost, stock FROM rewards") or ()) == (NAME.strip(), 3, 5)
        assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
        everything = [str(m.text or m.caption or "") for m in fake.bot_messages(fake.private_chat(staff_u))]
        assert not any("went wrong" in s for s in everything)
        log = bot_process.log()
        assert "Traceback" not in log and "error while handling" not in log, log[-4000:]
    finally:
        await db.close()
