"""/mytasks lists the person's places on waiting lists through the real bot: "position 2 of 3" with a
button to leave (the waiting list's own Leave), the position moving up when someone ahead leaves, and
a place given with its Keep / Decline buttons and when the offer lapses; in English and Chinese."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from bot.ui import local_time
from storage.db import open_database
from tests.e2e.people import community_with_group
from tests.factories import make_member

T = 10


def _has(data: str) -> Any:
    return lambda m: any(b.get("callback_data") == data for b in m.inline_buttons)


async def _press(fake: FakeTelegram, user: Any, message: Any, data: str) -> str:
    q = await fake.press_button(user, message, data)
    return str((await fake.wait_callback_answer(q, timeout=T)).get("text") or "")


async def _mytasks(fake: FakeTelegram, user: Any, expect: str) -> Any:
    chat = fake.private_chat(user, create=True)
    mark = max((m.message_id for m in chat.messages), default=0)
    await fake.send_text(user, None, "/mytasks")
    try:
        return await fake.wait_for_message(user, lambda m: expect in str(m.text or ""), timeout=T, after_id=mark)
    except TimeoutError:
        raise AssertionError([m.text for m in chat.messages][-3:]) from None


async def test_mytasks_shows_waiting_list_places_and_offers(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now, language="en")
        staff_u = fake.add_user("Staff", language_code="en")
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True)
        ann, bo, chen = (fake.add_user(n, language_code="en") for n in ("Ann", "Bo", "Chen"))
        dai = fake.add_user("Dai", language_code="zh-hans")
        for u in (ann, bo, chen, dai):
            await make_member(db, now, cid, tg_user_id=u.id, language="zh" if u is dai else "en", volunteer=True,
                              name=u.first_name)
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        ev = await tasks.create_task(db, now, staff, tasks.NewTask(
            "other", title="Tree planting", kind="event", slots=1, points=5,
            starts_at=now + timedelta(days=3)), staff=True)
        card = await fake.wait_for_message(group, _has(f"cl:{ev}"), timeout=T)
        assert "You have claimed" in await _press(fake, ann, card, f"cl:{ev}")
        await fake.wait_for(lambda: _has(f"wl:{ev}")(card), timeout=T)
        assert "number 1 on the waiting list" in await _press(fake, bo, card, f"wl:{ev}")
        assert "number 2 on the waiting list" in await _press(fake, chen, card, f"wl:{ev}")
        assert "3" in await _press(fake, dai, card, f"wl:{ev}")  # in Chinese

        listing = await _mytasks(fake, chen, "Waiting list: “Tree planting”, position 2 of 3")
        assert _has(f"wlo:{ev}")(listing), listing.inline_buttons
        zh = await _mytasks(fake, dai, "候补名单：“Tree planting”，第 3 位，共 3 人")
        assert "不再候补" in str(zh.inline_buttons)

        # Bo, ahead of Chen, leaves with the button under his own /mytasks.
        mine = await _mytasks(fake, bo, "position 1 of 3")
        await _press(fake, bo, mine, f"wlo:{ev}")
        await fake.wait_for(lambda: "left the waiting list" in str(mine.text or ""), timeout=T)
        await _mytasks(fake, chen, "position 1 of 2")
        await _mytasks(fake, bo, "no tasks yet")

        # Ann withdraws: the place is offered to Chen; /mytasks shows it with Keep / Decline and the time.
        details = await fake.wait_for_message(ann, _has(f"wd:{ev}"), timeout=T)
        assert "withdrawn" in await _press(fake, ann, details, f"wd:{ev}")
        offer = await _mytasks(fake, chen, "A place on “Tree planting” is yours")
        until = await db.fetchval("SELECT offer_until FROM waitlist WHERE task_id = :t AND state = 'offered'", {"t": ev})
        assert f"by {local_time(until, 'Asia/Shanghai')}" in str(offer.text), offer.text
        assert _has(f"wly:{ev}")(offer) and _has(f"wln:{ev}")(offer), offer.inline_buttons
        await _mytasks(fake, dai, "第 1 位，共 1 人")
        await _press(fake, chen, offer, f"wly:{ev}")
        await fake.wait_for_message(chen, _has(f"wd:{ev}"), timeout=T)  # kept: the event's details follow
        kept = await _mytasks(fake, chen, "Your tasks:")
        assert "A place on" not in str(kept.text) and not _has(f"wly:{ev}")(kept)
        assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    finally:
        await db.close()
