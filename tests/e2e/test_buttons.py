"""Buttons do only what their owner may, where they were made for (bot/buttons.py), through the
real bot process: forged presses on the group's messages change nothing and are refused; a real
Claim still works; a card overwritten anyway is redrawn; every press is answered; /org in the group
posts nothing personal."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.devkit import scenario
from bot.devkit.harness import BotProcess, message_text, settle
from bot.devkit.sandbox import FakeTelegram, PressRefused
from storage.db import open_database
from tests.conftest import ADMIN_ID
from tests.reliability.test_forged_presses import _no_digests_today

T = 15


def _has(data: str) -> Any:
    return lambda m: any(b.get("callback_data") == data for b in m.inline_buttons)


def _shown(message: Any) -> tuple[Any, ...]:
    return message_text(message), message.data.get("reply_markup"), len(message.edits), message.deleted


@pytest.mark.unpaced  # the presses and the card, not pacing
async def test_forged_presses_on_group_messages_are_refused_and_a_damaged_card_is_redrawn(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    granny = fake.add_user("Granny", language_code="en")
    vol = fake.add_user("Vol", language_code="en")
    stranger = fake.add_user("Stranger", language_code="en")
    group = await scenario.setup_community(fake, admin)
    await scenario.register(fake, granny, role="resident")
    await scenario.register(fake, vol, role="volunteer")
    for person in (vol, stranger, granny):
        fake.add_member(group, person, announce=False)
    await scenario.ask_for_help(fake, granny, "Please carry my rice upstairs")
    db = await open_database(bot_process.database, migrate=False)
    try:
        await _no_digests_today(db)  # nothing but these presses may touch the group
        tid = int(await db.fetchval("SELECT id FROM tasks"))
        card = await fake.wait_for_message(group, _has(f"cl:{tid}"), timeout=T, after_id=0)
        welcome = next(m for m in fake.bot_messages(group) if m.pinned)
        await settle(fake, quiet=0.5)
        before = {m.message_id: _shown(m) for m in fake.messages(group)}

        # The stand-in refuses, as Telegram does, data that is on no button of the message.
        with pytest.raises(PressRefused, match="DATA_INVALID"):
            await fake.press_button(stranger, welcome, "rcn:0")

        # Forged presses (a modified app): each is answered with a refusal; no group message changes.
        forged = ["rcn:0", "lg:en", "lg:", "lg:fr", "ph:0", "lb:month:people", "tp:0", "rw:show:1", "rc:1",
                  f"cl:{tid + 1}", "cl:" + "9" * 40, f"dt:{tid}:x", "d:org:1", "garbage", ""]
        queries = []
        for presser in (stranger, vol, granny):
            for target in (welcome, card):
                for data in forged:
                    queries.append(await fake.press_raw_callback(presser, target, data))
        # a press on an inline message (the bot sends none) is refused too
        queries.append(await fake.inject_callback(vol, f"cl:{tid}", inline_message_id="AAEAAA"))
        for qid in queries:
            got = await fake.wait_callback_answer(qid, timeout=T)
            assert got.get("text"), got
        await settle(fake, quiet=1.0)
        assert {m.message_id: _shown(m) for m in fake.messages(group)} == before
        assert await db.fetchval("SELECT COUNT(*) FROM claims") == 0

        # A card overwritten anyway (as forged presses could before buttons were checked: it became a
        # leaderboard) is redrawn once anyone presses a button on it.
        card.data["text"] = "🏆 Leaderboard, this month"
        card.data.pop("entities", None)
        card.data["reply_markup"] = card.markup = {"inline_keyboard": [[{"text": "Week", "callback_data": "lb:week:people"}]]}
        qid = await fake.press_button(vol, card, "lb:week:people")
        assert "not for you" in str((await fake.wait_callback_answer(qid, timeout=T)).get("text"))
        await fake.wait_for(lambda: _has(f"cl:{tid}")(card) and "rice" in message_text(card), timeout=T)
        assert _shown(card)[:2] == before[card.message_id][:2]
        await settle(fake, quiet=1.0)  # the card job has recorded what it drew

        # The same when only its text was changed: pressing Details both answers and redraws it.
        card.data["text"] = "Good: the request stays as it is."
        card.data.pop("entities", None)
        qid = await fake.press_button(vol, card, f"dt:{tid}")
        assert "rice" in str((await fake.wait_callback_answer(qid, timeout=T)).get("text"))
        await fake.wait_for(lambda: "rice" in message_text(card), timeout=T)

        # A real Claim still works.
        qid = await fake.press_button(vol, card, f"cl:{tid}")
        assert "You have claimed" in str((await fake.wait_callback_answer(qid, timeout=T)).get("text"))
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state = 'active'", (tid,)) == 1
        # The welcome was never touched.
        assert _shown(welcome) == before[welcome.message_id]
    finally:
        await db.close()
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    log = bot_process.log()
    assert "Traceback" not in log and "error while handling" not in log, log[-3000:]


@pytest.mark.unpaced  # the presses and the card, not pacing
async def test_every_press_is_answered_and_org_in_a_group_posts_nothing_personal(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    vol = fake.add_user("Vol", language_code="en")
    group = await scenario.setup_community(fake, admin)
    await scenario.register(fake, admin, role="volunteer")
    await scenario.register(fake, vol, role="volunteer")
    fake.add_member(group, vol, announce=False)

    # /language, then presses no button carries: every one answered (they were never answered).
    mark = max(m.message_id for m in fake.private_chat(vol).messages)
    await fake.send_text(vol, None, "/language")
    chooser = await fake.wait_for_message(vol, _has("lg:en"), timeout=T, after_id=mark)
    for data in ("lg:fr", "lg:", "lg:zh:en"):
        qid = await fake.press_raw_callback(vol, chooser, data)
        assert (await fake.wait_callback_answer(qid, timeout=T)).get("text")
    qid = await fake.press_button(vol, chooser, "lg:en")  # the real one still works
    await fake.wait_callback_answer(qid, timeout=T)
    await fake.wait_for_message(vol, lambda m: "English" in message_text(m), timeout=T, after_id=mark)

    mark = max(m.message_id for m in fake.private_chat(admin).messages)
    await fake.send_text(admin, None, "/org new City Bank")
    await fake.wait_for_message(admin, lambda m: "Invite code" in message_text(m), timeout=T, after_id=mark)
    await settle(fake, quiet=0.5)

    # In the group: /org (the chooser) and /org list (invite links) only point to the private chat.
    for who, text in ((vol, "/org"), (admin, "/org list"), (admin, "/org new Other"), (vol, "/join abc"),
                      (admin, "/areas")):
        mark = max(m.message_id for m in group.messages)
        await fake.send_text(who, group, text)
        answer = await fake.wait_for_message(group, lambda m: m.from_bot, timeout=T, after_id=mark)
        assert any("url" in b for b in answer.inline_buttons), message_text(answer)
        await settle(fake, quiet=0.5)
        posted = [m for m in fake.bot_messages(group) if m.message_id > mark]
        for m in posted:
            assert not any(str(b.get("callback_data", "")).startswith("d:") for b in m.inline_buttons)
            assert "City Bank" not in message_text(m) and "org_" not in str(m.data), message_text(m)
            assert "joined" not in message_text(m) and m.data.get("reply_markup", {}).get("keyboard") is None
            assert "Areas" not in message_text(m) and "/areas add" not in message_text(m)
    db = await open_database(bot_process.database, migrate=False)
    try:
        assert await db.fetchval("SELECT COUNT(*) FROM organisations") == 1
        assert await db.fetchval("SELECT COUNT(*) FROM members WHERE organisation_id IS NOT NULL") == 0
    finally:
        await db.close()
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    assert "Traceback" not in bot_process.log()


@pytest.mark.unpaced  # the presses and the card, not pacing
async def test_a_press_made_just_before_the_cards_latest_edit_leaves_the_card_alone(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    """In a claim storm most presses carry the card as it was one edit ago: the card shows the latest
    drawing, so it is not drawn again (that edit would change nothing, and cost the group's budget)."""
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    granny = fake.add_user("Granny", language_code="en")
    vol = fake.add_user("Vol", language_code="en")
    other = fake.add_user("Other", language_code="en")
    group = await scenario.setup_community(fake, admin)
    await scenario.register(fake, granny, role="resident")
    await scenario.register(fake, vol, role="volunteer")
    await scenario.register(fake, other, role="volunteer")
    for person in (vol, other):
        fake.add_member(group, person, announce=False)
    await scenario.ask_for_help(fake, granny, "Please carry my rice upstairs")
    db = await open_database(bot_process.database, migrate=False)
    try:
        await _no_digests_today(db)
        tid = int(await db.fetchval("SELECT id FROM tasks"))
        card = await fake.wait_for_message(group, _has(f"cl:{tid}"), timeout=T, after_id=0)
        await settle(fake, quiet=0.5)
        as_other_saw_it = copy.deepcopy(card.data)  # Other's app has not shown the next edit yet
        qid = await fake.press_button(vol, card, f"cl:{tid}")
        assert "You have claimed" in str((await fake.wait_callback_answer(qid, timeout=T)).get("text"))
        await fake.wait_for(lambda: not _has(f"cl:{tid}")(card), timeout=T)  # the card was edited
        await settle(fake, quiet=0.5)
        edits = sum(1 for c in fake.calls if c.method == "editMessageText")

        qid = await fake.inject_callback(other, f"dt:{tid}", message=as_other_saw_it)
        assert "rice" in str((await fake.wait_callback_answer(qid, timeout=T)).get("text"))
        assert "shows something else" not in bot_process.log()  # decided before the answer
        await settle(fake, quiet=1.0)
        assert sum(1 for c in fake.calls if c.method == "editMessageText") == edits
        assert await db.fetchval("SELECT card_version - card_rendered FROM tasks WHERE id = ?", (tid,)) == 0

        # Overwritten all the same: the first press redraws it; a press that left before the redraw
        # reached the app (it still shows the overwritten text) does not ask again.
        card.data["text"] = "Good: the request stays as it is."
        card.data.pop("entities", None)
        card.data["reply_markup"] = card.markup = as_other_saw_it["reply_markup"]
        overwritten = copy.deepcopy(card.data)
        qid = await fake.press_button(vol, card, f"dt:{tid}")
        assert "rice" in str((await fake.wait_callback_answer(qid, timeout=T)).get("text"))
        await fake.wait_for(lambda: "rice" in message_text(card), timeout=T)
        await settle(fake, quiet=0.5)
        qid = await fake.inject_callback(other, f"dt:{tid}", message=overwritten)
        assert "rice" in str((await fake.wait_callback_answer(qid, timeout=T)).get("text"))
        assert bot_process.log().count("shows something else") == 1
    finally:
        await db.close()
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
