"""The waiting list of a full event through the real bot and the stand-in: the card offers to join
and shows how many wait; a withdrawal gives the place to the first one waiting, who is told in
private; declined, it goes to the next; not kept in time, to the one after."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.e2e.people import community_with_group
from tests.factories import make_member

T = 10


def _has(data: str) -> Any:
    return lambda m: any(b.get("callback_data") == data for b in m.inline_buttons)


async def _press(fake: FakeTelegram, user: Any, message: Any, data: str) -> str:
    q = await fake.press_button(user, message, data)
    return str((await fake.wait_callback_answer(q, timeout=T)).get("text") or "")


async def test_full_event_waiting_list_decline_and_lapse(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now, language="en")
        names = ("Staff", "Ann", "Bo", "Chen", "Dai", "Eva")
        users = [fake.add_user(n, language_code="en") for n in names]
        staff = await make_member(db, now, cid, tg_user_id=users[0].id, language="en", staff=True)
        for u in users[1:]:
            await make_member(db, now, cid, tg_user_id=u.id, language="en", volunteer=True, name=u.first_name)
        for u in users:
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        ann, bo, chen, dai, eva = users[1:]
        ev = await tasks.create_task(db, now, staff, tasks.NewTask(
            "other", title="Tree planting", kind="event", slots=1, points=5,
            starts_at=now + timedelta(days=3)), staff=True)
        card = await fake.wait_for_message(group, _has(f"cl:{ev}"), timeout=T)
        assert "You have claimed" in await _press(fake, ann, card, f"cl:{ev}")

        # Full: the card offers the waiting list; Bo, Chen and Dai join (Bo twice: harmless).
        await fake.wait_for(lambda: _has(f"wl:{ev}")(card), timeout=T)
        assert "Waiting list: 0" in (card.text or "")
        assert "number 1 on the waiting list" in await _press(fake, bo, card, f"wl:{ev}")
        assert "number 2 on the waiting list" in await _press(fake, chen, card, f"wl:{ev}")
        assert "number 1 on the waiting list" in await _press(fake, bo, card, f"wl:{ev}")
        assert "number 3 on the waiting list" in await _press(fake, dai, card, f"wl:{ev}")
        await fake.wait_for_message(bo, _has(f"wlo:{ev}"), timeout=T)  # told in private, with a Leave button
        await fake.wait_for(lambda: "Waiting list: 3" in (card.text or ""), timeout=T)

        # Ann withdraws: Bo has the place at once and is told in private.
        details = await fake.wait_for_message(ann, _has(f"wd:{ev}"), timeout=T)
        assert "withdrawn" in await _press(fake, ann, details, f"wd:{ev}")
        offer = await fake.wait_for_message(bo, _has(f"wln:{ev}"), timeout=T)
        assert "it is yours now" in (offer.text or "") and "within 2 hours" in (offer.text or "")
        await fake.wait_for(lambda: "Places: 1/1" in (card.text or "") and "Waiting list: 2" in (card.text or ""),
                            timeout=T)

        # Staff shorten the hold to 30 minutes in /settings (volunteers have no such buttons).
        await fake.send_text(users[0], None, "/settings")
        panel = await fake.wait_for_message(users[0], _has("st:wh:30"), timeout=T)
        assert "held for 2 hours" in (panel.text or "")
        assert "Saved" in await _press(fake, users[0], panel, "st:wh:30")
        await fake.wait_for(lambda: "held for 30 minutes" in (panel.text or ""), timeout=T)
        assert await db.fetchval("SELECT waitlist_hold_minutes FROM communities WHERE id = :c", {"c": cid}) == 30
        await fake.send_text(eva, None, "/settings")
        eva_panel = await fake.wait_for_message(
            eva, lambda m: any(str(b.get("callback_data", "")).startswith("st:") for b in m.inline_buttons), timeout=T)
        assert "st:wh:" not in str(eva_panel.inline_buttons)

        # Bo cannot come: Chen is next, with 30 minutes to keep it.
        await _press(fake, bo, offer, f"wln:{ev}")
        chen_offer = await fake.wait_for_message(chen, _has(f"wly:{ev}"), timeout=T)
        assert "within 30 minutes" in (chen_offer.text or ""), chen_offer.text
        assert await db.fetchval("SELECT member_id FROM claims WHERE task_id = :t AND state = 'active'",
                                 {"t": ev}) == await db.fetchval("SELECT id FROM members WHERE tg_user_id = :u",
                                                                 {"u": chen.id})

        # Chen lets the time pass (the offer's time is set to have passed): the sweep gives it to Dai.
        async with db.transaction() as conn:
            await conn.execute("UPDATE waitlist SET offer_until = :past WHERE task_id = :t AND state = 'offered'",
                               {"past": "2000-01-01T00:00:00.000000Z", "t": ev})
        await fake.wait_for_message(chen, lambda m: "has passed" in (m.text or ""), timeout=T)
        dai_offer = await fake.wait_for_message(dai, _has(f"wly:{ev}"), timeout=T)
        assert "You are not on the waiting list" in await _press(fake, chen, chen_offer, f"wly:{ev}")
        await _press(fake, dai, dai_offer, f"wly:{ev}")
        await fake.wait_for_message(dai, _has(f"wd:{ev}"), timeout=T)  # kept: the event's details follow
        await fake.wait_for(lambda: "Waiting list: 0" in (card.text or ""), timeout=T)
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t AND state = 'active'",
                                 {"t": ev}) == 1
        # Eva, not on the list, may still join it.
        assert "number 1 on the waiting list" in await _press(fake, eva, card, f"wl:{ev}")
    finally:
        await db.close()


async def test_in_chinese_the_card_and_the_answers_speak_of_the_waiting_list(fake: FakeTelegram,
                                                                            bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now)  # a Chinese community, Chinese members
        staff_u, ann, bo = (fake.add_user(n, language_code="zh-hans") for n in ("Staff", "Ann", "Bo"))
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="zh", staff=True)
        for u in (ann, bo):
            await make_member(db, now, cid, tg_user_id=u.id, language="zh", volunteer=True, name=u.first_name)
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        ev = await tasks.create_task(db, now, staff, tasks.NewTask(
            "other", title="植树", kind="event", slots=1, points=5, starts_at=now + timedelta(days=3)), staff=True)
        card = await fake.wait_for_message(group, _has(f"cl:{ev}"), timeout=T)
        await _press(fake, ann, card, f"cl:{ev}")
        await fake.wait_for(lambda: _has(f"wl:{ev}")(card), timeout=T)
        assert "候补：0 人" in (card.text or "")
        assert "🕒 候补报名" in [b["text"] for b in card.inline_buttons]
        assert "候补第 1 位" in await _press(fake, bo, card, f"wl:{ev}")
        await fake.wait_for(lambda: "候补：1 人" in (card.text or ""), timeout=T)
        details = await fake.wait_for_message(ann, _has(f"wd:{ev}"), timeout=T)
        await _press(fake, ann, details, f"wd:{ev}")
        offer = await fake.wait_for_message(bo, _has(f"wly:{ev}"), timeout=T)
        assert "现在是您的了" in (offer.text or "") and "2 小时" in (offer.text or ""), offer.text
    finally:
        await db.close()


async def test_fifty_joins_and_withdrawals_at_once_through_the_bot(fake: FakeTelegram,
                                                                  bot_process: BotProcess) -> None:
    """50 volunteers press "Join the waiting list" while the 5 holding the places withdraw, all
    pressed at once: never more places held than the event has, and nobody given a place who joined
    after someone still waiting."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now, language="en")
        staff_u = fake.add_user("Staff", language_code="en")
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True)
        users = [fake.add_user(f"V{i}", language_code="en") for i in range(55)]
        for u in users:
            await make_member(db, now, cid, tg_user_id=u.id, language="en", volunteer=True, name=u.first_name)
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        slots = 5
        ev = await tasks.create_task(db, now, staff, tasks.NewTask(
            "other", title="Fair", kind="event", slots=slots, points=1, starts_at=now + timedelta(days=3)), staff=True)
        card = await fake.wait_for_message(group, _has(f"cl:{ev}"), timeout=T)
        holders, joiners = users[:slots], users[slots:]
        for u in holders:
            assert "You have claimed" in await _press(fake, u, card, f"cl:{ev}")
        details = [await fake.wait_for_message(u, _has(f"wd:{ev}"), timeout=T) for u in holders]
        await fake.wait_for(lambda: _has(f"wl:{ev}")(card), timeout=T)

        # Half of them have joined when the rest press at the same moment as the 5 withdrawals.
        first = [await fake.press_button(u, card, f"wl:{ev}") for u in joiners[:25]]
        answers = [await fake.wait_callback_answer(q, timeout=4 * T) for q in first]
        presses = [(u, card, f"wl:{ev}") for u in joiners[25:]]
        presses += [(u, m, f"wd:{ev}") for u, m in zip(holders, details, strict=True)]
        random.Random(3).shuffle(presses)
        queries = [await fake.press_button(u, m, data) for u, m, data in presses]
        answers += [await fake.wait_callback_answer(q, timeout=4 * T) for q in queries]
        assert not [a for a in answers if "went wrong" in str(a.get("text"))]

        held = await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t AND state IN ('active', 'done')",
                                 {"t": ev})
        rows = await db.fetchall("SELECT id, state FROM waitlist WHERE task_id = :t ORDER BY id", {"t": ev})
        given = [r[0] for r in rows if r[1] == "offered"]
        waiting = [r[0] for r in rows if r[1] == "waiting"]
        assert held <= slots
        assert len(given) == slots  # the 25 who joined first were waiting when the places freed
        assert not waiting or max(given) < min(waiting), (given, waiting)
        assert held == slots or not waiting
        assert len(rows) == len(joiners) - sum("There is a free place" in str(a.get("text")) for a in answers)
    finally:
        await db.close()
