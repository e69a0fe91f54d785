"""Long texts never break a message (through the real bot and the stand-in, which refuses what Telegram
refuses: a broken tag or entity, more than 4,096 characters once parsed): a resident's long request
full of ``&<>`` reaches the reviewing staff and the volunteer who claims it, and says what it leaves out.
An event's /volunteers with a full page of places and a long waiting list, names as long as Telegram
allows and full of ``&<>``: every place is named, names are shortened, the waiting are named as far
as they fit and the rest counted, with the button that pages through them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks, waitlist
from storage import ledger
from storage.db import open_database
from tests.e2e.people import community_with_group
from tests.factories import make_member

pytestmark = pytest.mark.unpaced  # the texts, not Telegram's pacing (tests/conftest.py)

T = 15
LIMIT = 4096


def _starts(prefix: str) -> Any:
    return lambda m: any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


def _errors(fake: FakeTelegram) -> list[tuple[str, str | None]]:
    """Messages Telegram refused for their text (a broken tag or entity, too long)."""
    return [(c.method, c.description) for c in fake.errors
            if any(why in (c.description or "") for why in ("parse entities", "too long", "text must be"))]


async def test_a_long_request_full_of_html_characters_reaches_staff_and_the_volunteer(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now, language="en")
        users = {n: fake.add_user(n, language_code="en") for n in ("Grandma", "Staff", "Helper")}
        for user in users.values():
            fake.private_chat(user, create=True)
        resident = await make_member(db, now, cid, tg_user_id=users["Grandma"].id, language="en", resident=True)
        staff = await make_member(db, now, cid, tg_user_id=users["Staff"].id, language="en", staff=True)
        await make_member(db, now, cid, tg_user_id=users["Helper"].id, language="en", volunteer=True)
        await tasks.set_review(db, now, staff, True)
        # Longer than the dialogs let anyone type today (an older row, an import): 4,500 characters.
        words = ("Rice & oil <5 kg> from the shop > the market & back; " * 90)[:4500].strip()
        task_id = await tasks.create_task(db, now, resident, tasks.NewTask("shopping", description=words))

        review = await fake.wait_for_message(users["Staff"], _starts("ap:"), timeout=T, after_id=0)
        text = review.text or ""
        assert text.startswith("A new request waits for your review:\nRice & oil <5 kg> from the shop"), text[:200]
        assert len(text) <= LIMIT and text.endswith("…\n(the rest is too long to show)"), text[-200:]

        await fake.press_button(users["Staff"], review, f"ap:{task_id}")
        card = await fake.wait_for_message(group, _starts(f"cl:{task_id}"), timeout=T, after_id=0)
        await fake.press_button(users["Helper"], card, f"cl:{task_id}")
        details = await fake.wait_for_message(users["Helper"], _starts(f"done:{task_id}"), timeout=T, after_id=0)
        text = details.text or ""
        assert text.startswith("Thank you for taking this task!\nRice & oil <5 kg>"), text[:200]
        assert len(text) <= LIMIT and text.split("\n")[-1].startswith("When: "), text[-200:]   # the time kept
        assert "…" in text   # the words shortened, and it says so
        await settle(fake, quiet=0.5)
        assert _errors(fake) == []
    finally:
        await db.close()


async def test_a_long_list_of_points_reaches_staff_whole_in_several_messages(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        _group, cid = await community_with_group(fake, db, now, language="en")
        boss = fake.add_user("Staff", language_code="en")
        fake.private_chat(boss, create=True)
        staff = await make_member(db, now, cid, tg_user_id=boss.id, language="en", staff=True, name="Staff")
        ev = await tasks.create_task(db, now, staff, tasks.NewTask("other", title="Clean-up", kind="event", slots=60,
                                                                   points=5), staff=True)
        people = [await make_member(db, now, cid, language="en", volunteer=True,
                                    name=f"Li & Wang <Building {i:02}> " + "neighbourhood & helpers " * 3)
                  for i in range(60)]
        async with db.transaction() as conn:
            for i, member in enumerate(people):
                await ledger.append(conn, member_id=member, delta=5, reason="event_attended", key=f"e{i}", now=now,
                                    task_id=ev)
        entries = [int(r[0]) for r in await db.fetchall("SELECT id FROM ledger WHERE task_id = :t", {"t": ev})]

        await fake.send_text(boss, None, f"/entries {ev}")
        last = await fake.wait_for_message(boss, lambda m: "/revoke" in (m.text or ""), timeout=T, after_id=0)
        texts = [m.text or "" for m in fake.bot_messages(fake.private_chat(boss)) if m.message_id <= last.message_id]
        texts = texts[next(i for i, x in enumerate(texts) if x.startswith(f"Points for task {ev}")):]
        assert len(texts) > 1 and all(len(x) <= LIMIT for x in texts)
        lines = "\n".join(texts).split("\n")
        assert [int(x.split(" · ")[0]) for x in lines[1:-1]] == entries   # every entry, in order, none cut
        assert lines[-1] == "To take points back: /revoke <entry number> <reason>"
        assert _errors(fake) == []
    finally:
        await db.close()


async def test_any_reply_too_long_is_fitted_in_the_readers_language(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """/staff lists a community's staff on one line: with many long names the reply is shortened (it
    was refused whole: "message is too long"), and says so in the reader's language."""
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        _group, cid = await community_with_group(fake, db, now)
        boss = fake.add_user("主任", language_code="zh-hans")
        fake.private_chat(boss, create=True)
        await make_member(db, now, cid, tg_user_id=boss.id, language="zh", staff=True, name="主任")
        for i in range(40):
            await make_member(db, now, cid, language="zh", staff=True,
                              name=f"李 & 王 <{i:02}号楼> " + "邻里互助志愿服务队" * 12)
        await fake.send_text(boss, None, "/staff")
        answer = await fake.wait_for_message(boss, lambda m: "李 & 王" in (m.text or ""), timeout=T, after_id=0)
        text = answer.text or ""
        assert len(text) <= LIMIT and text.endswith("…\n…（还有 2 行）"), text[-200:]
        assert _errors(fake) == []
    finally:
        await db.close()


async def test_a_long_list_of_volunteers_reaches_staff_with_what_is_left_out_said(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now, language="en")
        boss = fake.add_user("Staff", language_code="en")
        staff = await make_member(db, now, cid, tg_user_id=boss.id, language="en", staff=True, name="Staff")
        fake.private_chat(boss, create=True)
        ev = await tasks.create_task(db, now, staff, tasks.NewTask(
            "other", title="Clean-up & <spring> campaign", kind="event", slots=30, points=5,
            starts_at=now + timedelta(days=3)), staff=True)
        await fake.wait_for_message(group, _starts(f"cl:{ev}"), timeout=T)
        people = []
        for i in range(70):   # 30 take the places (a page), 40 wait; names as long as Telegram allows, full of & < >
            name = f"Li & Wang <Building {i:02}> " + "neighbourhood & helpers " * 4 + f"#{i:02}"
            people.append(await make_member(db, now, cid, language="en", volunteer=True, name=name))
        for member in people[:30]:
            await tasks.claim(db, now, member, ev)
        for member in people[30:]:
            await waitlist.join(db, now, member, ev)

        await fake.send_text(boss, None, f"/volunteers {ev}")
        listing = await fake.wait_for_message(boss, _starts(f"vr:{ev}:"), timeout=T, after_id=0)
        text = listing.text or ""
        assert text.startswith("Volunteers of “Clean-up & <spring> campaign”") and len(text) <= LIMIT, text[:200]
        assert "30. Li & Wang <Building 29>" in text, text              # every place on the page named
        assert "more: press “🕒 Whole waiting list” below" in text, text  # the waiting named as far as they fit
        assert text.split("\n")[-1].startswith("“🚫 Not coming” (until the start)"), text[-300:]
        assert _starts(f"vw:{ev}:")(listing)
        await settle(fake, quiet=0.5)
        assert _errors(fake) == []
    finally:
        await db.close()
