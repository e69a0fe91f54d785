"""/deleteme reaches the messages that carry the erased person's private data in someone else's
chat, whoever sent them: the details a volunteer asked for again from /mytasks (through the outbox)
and the lists a handler showed staff itself (/volunteers of an event, with the names). After the
person erases themselves, each such message is edited down to one line (a valid edit: the fake
records no refused call) and no message in the other chat shows their data any more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.e2e.people import community_with_group
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task

pytestmark = pytest.mark.unpaced  # erasure, not Telegram's pacing (tests/conftest.py)

T = 15
R_NAME, R_PHONE, R_HOME = "Rosalind Quince", "13912345678", "Plum Court 7 Flat 1203"
V_NAME, W_NAME = "Quentin Marchbanks", "Wilhelmina Tuck"
ABOUT_LEFT = "Personal details in this message were removed at the request of the person they belong to."


def _text(m: Any) -> str:
    return str(m.text or m.caption or "")


def _seen(m: Any) -> str:
    """All a reader sees of a message: its text and its buttons (an attendance list names people on them)."""
    return _text(m) + " " + str([b.get("text") for b in m.inline_buttons])


def _has(m: Any, data: str) -> bool:
    return bool(m.carries(data))  # (a dialog's button carries its dialog's mark too)


def _last(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


async def _deleteme(fake: FakeTelegram, user: Any) -> None:
    mark = _last(fake, user)
    await fake.send_text(user, None, "/deleteme")
    ask = await fake.wait_for_message(user, lambda m: _has(m, "d:confirm:yes"), timeout=T, after_id=mark)
    await fake.wait_callback_answer(await fake.press_button(user, ask, "d:confirm:yes"), timeout=T)
    await fake.wait_for(lambda: "erased" in _text(ask) or any(
        "erased" in _text(m) for m in fake.bot_messages(fake.private_chat(user)) if m.message_id > mark), timeout=T)
    await settle(fake)


def _showing(fake: FakeTelegram, user: Any, words: tuple[str, ...]) -> list[str]:
    """What the bot's messages in ``user``'s chat, not deleted, that show any of ``words`` show."""
    return [_seen(m) for m in fake.bot_messages(fake.private_chat(user))
            if not m.deleted and any(w in _seen(m) for w in words)]


async def test_a_volunteers_details_from_mytasks_are_cut_down_when_the_resident_leaves(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now)
        res_u, vol_u = fake.add_user("Rosalind", language_code="en"), fake.add_user("Quentin", language_code="en")
        res = await make_member(db, now, cid, tg_user_id=res_u.id, language="en", resident=True, name=R_NAME,
                                phone=R_PHONE, address=R_HOME)
        await make_member(db, now, cid, tg_user_id=vol_u.id, language="en", volunteer=True, name=V_NAME)
        for u in (res_u, vol_u):
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        task = await tasks.create_task(db, now, res, tasks.NewTask("shopping", description="Please buy rice"))
        card = await fake.wait_for_message(group, lambda m: _has(m, f"cl:{task}"), timeout=T)
        await fake.wait_callback_answer(await fake.press_button(vol_u, card, f"cl:{task}"), timeout=T)
        first = await fake.wait_for_message(vol_u, lambda m: _has(m, f"done:{task}"), timeout=T)
        await settle(fake)
        # he opens the details again from /mytasks ("📄 Details")
        mark = _last(fake, vol_u)
        await fake.send_text(vol_u, None, "/mytasks")
        mine = await fake.wait_for_message(vol_u, lambda m: _has(m, f"md:{task}"), timeout=T, after_id=mark)
        mark = _last(fake, vol_u)
        await fake.wait_callback_answer(await fake.press_button(vol_u, mine, f"md:{task}"), timeout=T)
        again = await fake.wait_for_message(vol_u, lambda m: _has(m, f"done:{task}"), timeout=T, after_id=mark)
        assert R_HOME in _text(again) and R_PHONE in _text(again), _text(again)
        await settle(fake)

        await _deleteme(fake, res_u)
        # Her request is cancelled as she leaves: both copies of its details say so, without her data.
        await fake.wait_for(lambda: not _showing(fake, vol_u, (R_NAME, R_PHONE, R_HOME)), timeout=T)
        assert "contact details were removed" in _text(again) and "contact details were removed" in _text(first)
        assert again.markup is None
        assert fake.errors == []
    finally:
        await db.close()


async def test_staffs_list_of_an_events_volunteers_is_cut_down_when_a_volunteer_leaves(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now)
        staff_u = fake.add_user("Sam", language_code="en")
        vol_u, stay_u = fake.add_user("Quentin", language_code="en"), fake.add_user("Wilhelmina", language_code="en")
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True, name="Sam Staff")
        await make_member(db, now, cid, tg_user_id=vol_u.id, language="en", volunteer=True, name=V_NAME)
        await make_member(db, now, cid, tg_user_id=stay_u.id, language="en", volunteer=True, name=W_NAME)
        for u in (staff_u, vol_u, stay_u):
            fake.add_member(group, u, announce=False)
            fake.private_chat(u, create=True)
        ev = await tasks.create_task(db, now, staff, tasks.NewTask(
            "other", title="Tree planting", kind="event", slots=3, points=5, starts_at=now + timedelta(days=3)),
            staff=True)
        card = await fake.wait_for_message(group, lambda m: _has(m, f"cl:{ev}"), timeout=T)
        for u in (vol_u, stay_u):
            await fake.wait_callback_answer(await fake.press_button(u, card, f"cl:{ev}"), timeout=T)
        await settle(fake)
        # staff open the list (a handler's reply), and the question about one name (an edit of it)
        mark = _last(fake, staff_u)
        await fake.send_text(staff_u, None, f"/volunteers {ev}")
        listed = await fake.wait_for_message(staff_u, lambda m: V_NAME in _text(m), timeout=T, after_id=mark)
        assert W_NAME in _text(listed)
        await fake.send_text(staff_u, None, f"/volunteers {ev}")  # a second copy, further down
        second = await fake.wait_for_message(staff_u, lambda m: V_NAME in _text(m), timeout=T,
                                             after_id=listed.message_id)
        assert second.message_id != listed.message_id
        await settle(fake)

        await _deleteme(fake, vol_u)
        await fake.wait_for(lambda: _text(listed) == ABOUT_LEFT and _text(second) == ABOUT_LEFT, timeout=T)
        assert listed.markup is None and second.markup is None
        assert _showing(fake, staff_u, (V_NAME,)) == []
        assert fake.errors == []
    finally:
        await db.close()


async def test_staffs_other_lists_naming_a_volunteer_are_cut_down_when_they_leave(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    """/staff find, /closeevent's attendance list, /entries, the leaderboard, /stats and /export's files
    naming people (deleted: files), as staff saw them."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        cid = await make_community(db, now, no_group=True)  # no group chat in this scenario
        staff_u, vol_u = fake.add_user("Sam", language_code="en"), fake.add_user("Quentin", language_code="en")
        staff = await make_member(db, now, cid, tg_user_id=staff_u.id, language="en", staff=True, volunteer=True,
                                  name="Sam Staff")
        vol = await make_member(db, now, cid, tg_user_id=vol_u.id, language="en", volunteer=True, name=V_NAME)
        stay = await make_member(db, now, cid, language="en", volunteer=True, name=W_NAME, started_bot=0)
        for u in (staff_u, vol_u):
            fake.private_chat(u, create=True)
        open_ev, closed_ev = [await make_task(db, now, cid, staff, kind="event", slots=2, points=2, title=title,
                                              starts_at="2026-05-04T01:30:00.000000Z")
                              for title in ("Clean-up", "Tree planting")]
        for ev in (open_ev, closed_ev):
            for m in (vol, stay):
                await make_claim(db, now, ev, m)

        async def ask(command: str, words: str) -> Any:
            mark = _last(fake, staff_u)
            await fake.send_text(staff_u, None, command)
            return await fake.wait_for_message(staff_u, lambda m: words in _seen(m), timeout=T, after_id=mark)

        found = await ask("/staff find Quentin", V_NAME)
        sheet = await ask(f"/closeevent {open_ev}", V_NAME)
        closing = await ask(f"/closeevent {closed_ev}", "Attendance")
        await fake.wait_callback_answer(await fake.press_button(staff_u, closing, "d:att:close"), timeout=T)
        await fake.wait_for(lambda: "Event closed" in _text(closing), timeout=T)
        entries = await ask(f"/entries {closed_ev}", V_NAME)
        board = await ask("/leaderboard", V_NAME)
        stats = await ask("/stats", V_NAME)  # "Top volunteers: ..."
        mark = _last(fake, staff_u)
        await fake.send_text(staff_u, None, "/export month")
        docs = await fake.wait_for(lambda: (lambda d: d if len(d) == 7 else None)(
            [m for m in fake.bot_messages(fake.private_chat(staff_u)) if m.message_id > mark and "document" in m.data]),
            timeout=T)
        files = {str(d.data["document"].get("file_name")): d for d in docs}
        assert W_NAME in _text(entries) and W_NAME in _text(board) and W_NAME in _text(stats)
        await settle(fake)

        await _deleteme(fake, vol_u)
        await fake.wait_for(lambda: all(_text(m) == ABOUT_LEFT for m in (found, sheet, entries, board, stats)),
                            timeout=T)
        assert _showing(fake, staff_u, (V_NAME,)) == []
        assert sheet.markup is None and board.markup is None
        # The files that name people (the members file, the workbook) are deleted, the others stay.
        await fake.wait_for(lambda: files["members.csv"].deleted and files["linli.xlsx"].deleted, timeout=T)
        assert not files["ledger.csv"].deleted and not files["tasks.csv"].deleted
        assert fake.errors == []
    finally:
        await db.close()
