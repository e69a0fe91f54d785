"""Staff and an event's volunteers through the real bot and the stand-in (issue 21): /volunteers lists
who holds a place and who waits; staff take someone off (asked first), or before the start mark them
not coming (a no-show: their reliability drops); either way they are told in private, the card's
counts change and the first one waiting is offered the place. A double tap ends a place once; a
volunteer cannot do any of it. A cancelled event tells those on its waiting list."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.services import reliability, tasks, waitlist
from storage.db import Database, open_database
from storage.timeutil import to_db
from tests.e2e.people import community_with_group
from tests.factories import make_member

pytestmark = pytest.mark.unpaced  # the flows, not Telegram's pacing (tests/conftest.py)

T = 10


def _has(data: str) -> Any:
    return lambda m: any(b.get("callback_data") == data for b in m.inline_buttons)


def _says(words: str) -> Any:
    return lambda m: words in (m.text or "")


async def _sql(db: Database, sql: str, params: dict[str, Any]) -> None:
    async with db.transaction() as conn:
        await conn.execute(sql, params)


async def _answer(fake: FakeTelegram, query: str) -> str:
    return str((await fake.wait_callback_answer(query, timeout=T)).get("text") or "")


async def _press(fake: FakeTelegram, user: Any, message: Any, data: str) -> str:
    return await _answer(fake, await fake.press_button(user, message, data))


async def _people(fake: FakeTelegram, db: Database, now: datetime, names: tuple[str, ...], lang: str = "en"
                  ) -> tuple[Any, int, list[Any], dict[str, int]]:
    """A community with its group; the first name is staff, the others volunteers; (group, community,
    users, member id by name)."""
    group, cid = await community_with_group(fake, db, now, language=lang)
    code = "en" if lang == "en" else "zh-hans"
    users = [fake.add_user(n, language_code=code) for n in names]
    ids = {names[0]: await make_member(db, now, cid, tg_user_id=users[0].id, language=lang, staff=True,
                                       name=names[0])}
    for u in users[1:]:
        ids[u.first_name] = await make_member(db, now, cid, tg_user_id=u.id, language=lang, volunteer=True,
                                              name=u.first_name)
    for u in users:
        fake.add_member(group, u, announce=False)
        fake.private_chat(u, create=True)
    return group, cid, users, ids


async def _full_event(fake: FakeTelegram, db: Database, now: datetime, group: Any, staff: int, title: str,
                      holders: list[Any], waiting: list[Any]) -> tuple[int, Any]:
    """An event with a place for each holder, all claimed, and the others on its waiting list, in order."""
    ev = await tasks.create_task(db, now, staff, tasks.NewTask(
        "other", title=title, kind="event", slots=len(holders), points=5, starts_at=now + timedelta(days=3)),
        staff=True)
    card = await fake.wait_for_message(group, _has(f"cl:{ev}"), timeout=T)
    for u in holders:
        await _press(fake, u, card, f"cl:{ev}")
    await fake.wait_for(lambda: _has(f"wl:{ev}")(card), timeout=T)
    for u in waiting:
        await _press(fake, u, card, f"wl:{ev}")
    return ev, card


async def _roster(fake: FakeTelegram, staff: Any, ev: int, button: str) -> Any:
    chat = fake.private_chat(staff)
    mark = max((m.message_id for m in chat.messages), default=0) if chat is not None else 0
    await fake.send_text(staff, None, f"/volunteers {ev}")
    return await fake.wait_for_message(staff, _has(button), timeout=T, after_id=mark)


async def test_staff_remove_a_volunteer_and_the_first_one_waiting_gets_the_place(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, _cid, users, ids = await _people(fake, db, now, ("Staff", "Ann", "Bo", "Chen", "Dai", "Eva", "Fay"))
        staff, ann, bo, chen, dai, eva, fay = users
        await _sql(db, "UPDATE members SET is_staff = 1 WHERE id = :id", {"id": ids["Fay"]})
        ev, card = await _full_event(fake, db, now, group, ids["Staff"], "Tree planting", [ann, bo], [chen, dai])
        await fake.wait_for(lambda: "Waiting list: 2" in (card.text or ""), timeout=T)

        # /help names the command to staff (its "<event number>" is text, not a tag).
        await fake.send_text(staff, None, "/help")
        assert "/volunteers <event number>" in ((await fake.wait_for_message(staff, timeout=T)).text or "")

        # Staff see who comes and who waits, with a Remove button for each volunteer.
        listing = await _roster(fake, staff, ev, f"vr:{ev}:{ids['Ann']}")
        text = listing.text or ""
        assert "Volunteers of “Tree planting”" in text and "Places: 2/2 · Waiting list: 2" in text, text
        assert "1. Ann" in text and "2. Bo" in text and "1. Chen, 2. Dai" in text, text
        other = await _roster(fake, staff, ev, f"vr:{ev}:{ids['Ann']}")  # a second list, still showing Ann
        fay_list = await _roster(fake, fay, ev, f"vr:{ev}:{ids['Ann']}")

        # A volunteer may not see it, nor press a Remove button made up on their own message.
        await fake.send_text(eva, None, f"/volunteers {ev}")
        assert "not allowed" in ((await fake.wait_for_message(eva, timeout=T)).text or "")
        forged = await fake.press_raw_callback(eva, fake.bot_messages(fake.private_chat(eva))[-1],
                                               f"vry:{ev}:{ids['Ann']}")
        assert "out of date" in await _answer(fake, forged)
        # Fay was staff when she got the list; no longer, her press is refused and changes nothing.
        await _press(fake, fay, fay_list, f"vr:{ev}:{ids['Ann']}")
        await fake.wait_for(lambda: _has(f"vry:{ev}:{ids['Ann']}")(fay_list), timeout=T)
        await _sql(db, "UPDATE members SET is_staff = 0 WHERE id = :id", {"id": ids["Fay"]})
        assert "not allowed" in await _press(fake, fay, fay_list, f"vry:{ev}:{ids['Ann']}")
        assert await db.fetchval("SELECT state FROM claims WHERE task_id = :t AND member_id = :m",
                                 {"t": ev, "m": ids["Ann"]}) == "active"

        # Staff press Remove: asked first, then Yes pressed twice at once removes Ann once.
        await _press(fake, staff, other, f"vr:{ev}:{ids['Ann']}")
        await fake.wait_for(lambda: _has(f"vry:{ev}:{ids['Ann']}")(other), timeout=T)
        await _press(fake, staff, listing, f"vr:{ev}:{ids['Ann']}")
        await fake.wait_for(lambda: _has(f"vry:{ev}:{ids['Ann']}")(listing), timeout=T)
        assert "Remove Ann from “Tree planting”?" in (listing.text or "")
        taps = [await fake.press_button(staff, listing, f"vry:{ev}:{ids['Ann']}") for _ in range(2)]
        said = [await _answer(fake, q) for q in taps]
        assert sum("Ann was taken off the event" in s for s in said) == 1, said
        assert "The place went to Chen" in " ".join(said), said

        # Ann is told once, politely; Chen is offered the place; Dai still waits; the card counts.
        await fake.wait_for_message(ann, _says("Staff have taken you off “Tree planting”"), timeout=T)
        await fake.wait_for_message(chen, _has(f"wly:{ev}"), timeout=T)
        await fake.wait_for(lambda: "Places: 2/2" in (card.text or "") and "Waiting list: 1" in (card.text or ""),
                            timeout=T)
        await fake.wait_for(lambda: "Chen" in (listing.text or "") and "1. Dai" in (listing.text or ""), timeout=T)
        # The question still open on the other list: Ann is gone, so it says so and changes nothing.
        assert "Ann no longer has a place" in await _press(fake, staff, other, f"vry:{ev}:{ids['Ann']}")
        await fake.wait_for(lambda: not _has(f"vry:{ev}:{ids['Ann']}")(other) and "1. Dai" in (other.text or ""),
                            timeout=T)  # the stale question gives way to the list as it is now
        rows = await db.fetchall("SELECT m.display_name, c.state FROM claims c JOIN members m ON m.id = c.member_id"
                                 " WHERE c.task_id = :t ORDER BY c.id", {"t": ev})
        assert [tuple(r) for r in rows] == [("Ann", "withdrawn"), ("Bo", "active"), ("Chen", "active")]
        assert await db.fetchval("SELECT state FROM waitlist WHERE task_id = :t AND member_id = :m",
                                 {"t": ev, "m": ids["Dai"]}) == "waiting"
        assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action = 'task.removed'") == 1
        assert await db.fetchval("SELECT COUNT(*) FROM no_shows") == 0  # a removal is not a no-show
        assert (await reliability.of_member(db, ids["Ann"], now)).percent == 100
        told = [m for m in fake.bot_messages(fake.private_chat(ann)) if "taken you off" in (m.text or "")]
        assert len(told) == 1
    finally:
        await db.close()


async def test_not_coming_before_the_start_is_a_no_show_and_fills_from_the_waiting_list(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    """In Chinese: staff mark Ann 不来了 before the start; her reliability drops, Bo gets the place and
    Ann cannot claim it back or wait for it. After the start there is no such button."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, _cid, users, ids = await _people(fake, db, now, ("Staff", "Ann", "Bo"), lang="zh")
        staff, ann, bo = users
        ev, card = await _full_event(fake, db, now, group, ids["Staff"], "植树", [ann], [bo])
        listing = await _roster(fake, staff, ev, f"vn:{ev}:{ids['Ann']}")
        assert "“植树”的志愿者" in (listing.text or "") and "候补：1. Bo" in (listing.text or ""), listing.text
        assert "🚫 不来了" in [b["text"] for b in listing.inline_buttons]
        before = (await reliability.of_member(db, ids["Ann"], now)).percent
        await _press(fake, staff, listing, f"vn:{ev}:{ids['Ann']}")
        await fake.wait_for(lambda: _has(f"vny:{ev}:{ids['Ann']}")(listing), timeout=T)
        assert "确定登记 Ann 不来参加“植树”吗" in (listing.text or "")
        assert "已登记 Ann 不来" in await _press(fake, staff, listing, f"vny:{ev}:{ids['Ann']}")

        await fake.wait_for_message(ann, _says("已登记您不能来参加“植树”"), timeout=T)
        offer = await fake.wait_for_message(bo, _has(f"wly:{ev}"), timeout=T)
        assert "现在是您的了" in (offer.text or "")
        after = (await reliability.of_member(db, ids["Ann"], now)).percent
        assert before == 100 and after < before, (before, after)
        assert await db.fetchval("SELECT state FROM claims WHERE task_id = :t AND member_id = :m",
                                 {"t": ev, "m": ids["Ann"]}) == "no_show"
        await fake.wait_for(lambda: "候补：0 人" in (card.text or ""), timeout=T)

        # Bo declines: the place is free again, but Ann cannot take it back herself.
        await _press(fake, bo, offer, f"wln:{ev}")
        await fake.wait_for(lambda: _has(f"cl:{ev}")(card) and "名额：0/1" in (card.text or ""), timeout=T)
        assert "已登记您不来参加这个活动" in await _press(fake, ann, card, f"cl:{ev}")

        # Once the event has started, staff may only take someone off; no-shows wait for /closeevent.
        await _press(fake, bo, card, f"cl:{ev}")
        await _sql(db, "UPDATE tasks SET starts_at = :t WHERE id = :id",
                         {"t": to_db(now - timedelta(minutes=5)), "id": ev})
        started = await _roster(fake, staff, ev, f"vr:{ev}:{ids['Bo']}")
        assert not any(str(b.get("callback_data", "")).startswith("vn:") for b in started.inline_buttons)
    finally:
        await db.close()


async def test_a_cancelled_event_tells_those_on_its_waiting_list(fake: FakeTelegram,
                                                                bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, _cid, users, ids = await _people(fake, db, now, ("Staff", "Ann", "Bo", "Chen"))
        staff, ann, bo, chen = users
        ev, _card = await _full_event(fake, db, now, group, ids["Staff"], "Litter pick", [ann], [bo, chen])
        await fake.send_text(staff, None, f"/canceltask {ev}")
        assert "3 volunteer(s) were told" in ((await fake.wait_for_message(staff, timeout=T)).text or "")
        await fake.wait_for_message(ann, _says("“Litter pick” was cancelled"), timeout=T)
        for u in (bo, chen):
            await fake.wait_for_message(u, _says("“Litter pick”, whose waiting list you were on, was cancelled"),
                                        timeout=T)
        states = await db.fetchall("SELECT state FROM waitlist WHERE task_id = :t", {"t": ev})
        assert [r[0] for r in states] == ["cancelled", "cancelled"]
    finally:
        await db.close()


@pytest.mark.parametrize(("lang", "refused"), [("en", "Staff took you off this event"),
                                               ("zh", "社区工作人员已经把您从这个活动中移出")])
async def test_a_volunteer_staff_removed_is_refused_the_event_again(fake: FakeTelegram, bot_process: BotProcess,
                                                                   lang: str, refused: str) -> None:
    """Ann, taken off by staff, finds the place free on the card: her Claim is refused politely, and so
    are the waiting list and Claim once Bo has the place (not "all places are taken"); nothing changes."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, _cid, users, ids = await _people(fake, db, now, ("Staff", "Ann", "Bo"), lang=lang)
        staff, ann, bo = users
        ev, card = await _full_event(fake, db, now, group, ids["Staff"], "Tree planting", [ann], [])
        listing = await _roster(fake, staff, ev, f"vr:{ev}:{ids['Ann']}")
        await _press(fake, staff, listing, f"vr:{ev}:{ids['Ann']}")
        await fake.wait_for(lambda: _has(f"vry:{ev}:{ids['Ann']}")(listing), timeout=T)
        await _press(fake, staff, listing, f"vry:{ev}:{ids['Ann']}")
        await fake.wait_for(lambda: _has(f"cl:{ev}")(card), timeout=T)

        assert refused in await _press(fake, ann, card, f"cl:{ev}")
        with_claim = copy.deepcopy(card.data)  # the card as Telegram sends it before its next edit
        await _press(fake, bo, card, f"cl:{ev}")
        await fake.wait_for(lambda: _has(f"wl:{ev}")(card), timeout=T)
        assert refused in await _press(fake, ann, card, f"wl:{ev}")
        # Claim pressed on the full event while the card still showed it: the removal, not "all taken".
        assert refused in await _answer(fake, await fake.inject_callback(ann, f"cl:{ev}", message=with_claim))
        # ... and as Telegram sends it once redrawn (Claim gone, her phone had not caught up): the same.
        assert refused in await _answer(fake, await fake.inject_callback(ann, f"cl:{ev}", message=card.data))
        rows = await db.fetchall("SELECT member_id, state FROM claims WHERE task_id = :t ORDER BY id", {"t": ev})
        assert [tuple(r) for r in rows] == [(ids["Ann"], "withdrawn"), (ids["Bo"], "active")]
        assert await db.fetchval("SELECT COUNT(*) FROM waitlist WHERE task_id = :t", {"t": ev}) == 0
    finally:
        await db.close()


@pytest.mark.parametrize(("lang", "showing", "later", "nxt", "prev"), [
    ("en", "Showing 1–30 of 35", "Showing 31–35 of 35", "Next ▶", "◀ Previous"),
    ("zh", "这里显示第 1–30 位，共 35 位", "这里显示第 31–35 位，共 35 位", "下一页 ▶", "◀ 上一页"),
])
async def test_a_long_list_of_volunteers_is_shown_a_page_at_a_time(
        fake: FakeTelegram, bot_process: BotProcess, lang: str, showing: str, later: str, nxt: str,
        prev: str) -> None:
    """35 places: the list shows 30 and says so, Next shows the other 5 with their Remove buttons
    (removing one there shows that page again), Previous goes back."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        _group, cid, users, ids = await _people(fake, db, now, ("Staff",), lang=lang)
        ev = await tasks.create_task(db, now, ids["Staff"], tasks.NewTask(
            "other", title="Big clean-up", kind="event", slots=40, points=5, starts_at=now + timedelta(days=3)),
            staff=True)
        vols = [await make_member(db, now, cid, volunteer=True, name=f"V{i:02}") for i in range(1, 36)]
        for v in vols:
            await tasks.claim(db, now, v, ev)
        listing = await _roster(fake, users[0], ev, f"vp:{ev}:1")
        assert showing in (listing.text or "") and "30. V30" in (listing.text or ""), listing.text
        assert "31. V31" not in (listing.text or "")
        assert [b["text"] for b in listing.inline_buttons][-1] == nxt
        await _press(fake, users[0], listing, f"vp:{ev}:1")
        await fake.wait_for(lambda: later in (listing.text or ""), timeout=T)
        text = listing.text or ""
        assert "31. V31" in text and "35. V35" in text and "30. V30" not in text, text
        datas = [b.get("callback_data") for b in listing.inline_buttons]
        assert f"vr:{ev}:{vols[30]}" in datas and f"vr:{ev}:{vols[0]}" not in datas and f"vp:{ev}:0" in datas
        assert [b["text"] for b in listing.inline_buttons][-1] == prev
        # A question about a name on this page comes back to this page: after No, and after Yes.
        for yes in (False, True):
            await _press(fake, users[0], listing, f"vr:{ev}:{vols[32]}")
            await fake.wait_for(lambda: _has(f"vry:{ev}:{vols[32]}")(listing), timeout=T)
            await _press(fake, users[0], listing, f"vry:{ev}:{vols[32]}" if yes else f"vb:{ev}:1")
            await fake.wait_for(lambda: _has(f"vp:{ev}:0")(listing), timeout=T)
        fewer = later.replace("31–35", "31–34").replace("35", "34")
        assert fewer in (listing.text or "") and "V33" not in (listing.text or "").split("\n\n", 1)[1], listing.text
        await _press(fake, users[0], listing, f"vp:{ev}:0")
        await fake.wait_for(lambda: showing.replace("35", "34") in (listing.text or ""), timeout=T)
        # A page button not on the message (made up) is refused; the list stays as it is.
        assert await _answer(fake, await fake.press_raw_callback(users[0], listing, f"vp:{ev}:99"))
        assert showing.replace("35", "34") in (listing.text or "")
    finally:
        await db.close()


@pytest.mark.parametrize(("lang", "more", "whole", "page1", "page2", "back"), [
    ("en", "… and 90 more", "🕒 Whole waiting list", "Showing 1–50 of 120", "Showing 51–100 of 120",
     "◀ Back to the volunteers"),
    ("zh", "……还有 90 位", "🕒 完整候补名单", "这里显示第 1–50 位，共 120 位", "这里显示第 51–100 位，共 120 位",
     "◀ 回到志愿者名单"),
])
async def test_a_long_waiting_list_is_shown_a_page_at_a_time(
        fake: FakeTelegram, bot_process: BotProcess, lang: str, more: str, whole: str, page1: str, page2: str,
        back: str) -> None:
    """120 waiting (long names): the list shows the first 30 and says how many more, under Telegram's
    4,096 characters; a button opens the whole waiting list, 50 names a page, with Next / Previous and
    a way back to the list of places."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        _group, cid, users, ids = await _people(fake, db, now, ("Staff",), lang=lang)
        ev = await tasks.create_task(db, now, ids["Staff"], tasks.NewTask(
            "other", title="Big clean-up", kind="event", slots=2, points=5, starts_at=now + timedelta(days=3)),
            staff=True)
        long = "Wanda Wilhelmina Waterhouse-"
        vols = [await make_member(db, now, cid, volunteer=True, name=f"{long}{i:03}") for i in range(1, 123)]
        for v in vols[:2]:
            await tasks.claim(db, now, v, ev)
        for v in vols[2:]:
            await waitlist.join(db, now, v, ev)
        listing = await _roster(fake, users[0], ev, f"vw:{ev}:0")
        text = listing.text or ""
        assert len(text) < 4096 and more in text, (len(text), text[-600:])
        assert f"30. {long}032" in text and f"{long}033" not in text, text[-600:]
        assert whole in [b["text"] for b in listing.inline_buttons]

        await _press(fake, users[0], listing, f"vw:{ev}:0")
        await fake.wait_for(lambda: page1 in (listing.text or ""), timeout=T)
        text = listing.text or ""
        assert len(text) < 4096 and f"1. {long}003" in text and f"50. {long}052" in text, text
        assert f"{long}053" not in text and f"{long}001" not in text, text   # those holding a place are not waiting
        assert f"vw:{ev}:1" in [b.get("callback_data") for b in listing.inline_buttons]
        await _press(fake, users[0], listing, f"vw:{ev}:1")
        await fake.wait_for(lambda: page2 in (listing.text or ""), timeout=T)
        assert f"51. {long}053" in (listing.text or "") and f"{long}052" not in (listing.text or "")
        await _press(fake, users[0], listing, f"vw:{ev}:2")
        await fake.wait_for(lambda: f"120. {long}122" in (listing.text or ""), timeout=T)
        assert not any(b.get("callback_data") == f"vw:{ev}:3" for b in listing.inline_buttons)
        assert back in [b["text"] for b in listing.inline_buttons]
        await _press(fake, users[0], listing, f"vp:{ev}:0")
        await fake.wait_for(lambda: more in (listing.text or ""), timeout=T)
        # A page button not on the message (made up) is refused; the list stays as it is.
        assert await _answer(fake, await fake.press_raw_callback(users[0], listing, f"vw:{ev}:99"))
        assert more in (listing.text or "")
    finally:
        await db.close()
