"""A corpus of hostile inputs against the real bot process: clear answers or silence, never a
crash, never a refused API call, nothing changed that should not be."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.buttons import BUTTONS
from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram, SandboxError
from bot.services import members, rewards
from storage.db import open_database
from storage.timeutil import to_db
from tests.conftest import ADMIN_ID
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task
from tests.reliability import corpus
from tests.reliability.corpus import CALLBACK_DATA, TEXTS


def test_corpus_is_big_enough() -> None:
    assert len(TEXTS) + len(CALLBACK_DATA) >= 100


def test_corpus_has_every_button_and_command() -> None:
    """Each button prefix the bot makes (``bot.buttons.BUTTONS``) is forged in the corpus, and each new
    command is typed: a feature added later is attacked too."""
    prefixes = {data.split(":", 1)[0] for data in CALLBACK_DATA}
    assert set(BUTTONS) <= prefixes, sorted(set(BUTTONS) - prefixes)
    commands = {text.split()[0].split("@")[0] for text in TEXTS if text.startswith("/") and text.strip() != "/"}
    for command in ("/checkin", "/reliability", "/settings", "/leaderboard", "/rewards", "/start"):
        assert command in commands, command


async def _snapshot(path: str) -> dict[str, int]:
    db = await open_database(path, migrate=False)
    try:
        out = {}
        for table in ("communities", "tasks", "claims", "ledger", "vouchers", "rewards", "merchants", "organisations"):
            out[table] = int(await db.fetchval(f"SELECT COUNT(*) FROM {table}") or 0)
        out["balance"] = int(await db.fetchval("SELECT COALESCE(SUM(balance), 0) FROM members") or 0)
        return out
    finally:
        await db.close()


async def test_hostile_private_messages_and_callbacks(fake: FakeTelegram, bot_process: BotProcess) -> None:
    stranger = fake.add_user("Stranger", language_code="en")
    await fake.send_text(stranger, None, "/help")
    await fake.wait_for_message(stranger, timeout=10)
    before = await _snapshot(bot_process.database)
    for text in TEXTS:
        if not text.strip():
            continue
        try:
            await fake.send_text(stranger, None, text)
        except SandboxError:
            continue  # the stand-in itself refuses what Telegram would (e.g. over 4096 characters)
    await fake.send_sticker(stranger, None)
    await fake.send_photo(stranger, None)
    await fake.send_document(stranger, None, b"%PDF-1.4", "x.pdf", "application/pdf")
    await fake.send_location(stranger, None, 30.27, 109.48)
    await fake.send_voice(stranger, None)
    await fake.send_contact(stranger, None, "+8613800138000")
    help_msg = fake.bot_messages(fake.private_chat(stranger))[0]
    queries = [await fake.press_raw_callback(stranger, help_msg, data) for data in CALLBACK_DATA]
    await settle(fake, quiet=1.0, timeout=60)
    assert bot_process.running, bot_process.log()[-3000:]
    for qid in queries:
        assert fake.callback_answer(qid) is not None, f"callback {CALLBACK_DATA[queries.index(qid)]!r} was never answered"
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    log = bot_process.log()
    assert "Traceback" not in log and "error while handling" not in log, log[-4000:]
    assert await _snapshot(bot_process.database) == before
    await bot_process.kill()  # replies still queued behind the per-chat limit need not be waited for


@pytest.mark.soak
@pytest.mark.parametrize("who", ["stranger", "admin"])
async def test_hostile_group_commands(fake: FakeTelegram, bot_process: BotProcess, who: str) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    stranger = fake.add_user("Visitor", language_code="en")
    group = fake.add_group("Hostile group", creator=stranger, members=[admin])
    await fake.add_bot_to_group(group, added_by=stranger)
    sender = admin if who == "admin" else stranger
    for text in TEXTS:
        if text.startswith("/") and not text.startswith("/setup"):
            try:
                await fake.send_text(sender, group, text)
            except SandboxError:
                continue
    await settle(fake, quiet=1.0, timeout=60)
    assert bot_process.running
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    log = bot_process.log()
    assert "Traceback" not in log and "error while handling" not in log, log[-4000:]
    # Nothing private was sent to the group, and no community was created by these commands.
    snap = await _snapshot(bot_process.database)
    assert snap["tasks"] == 0 and snap["ledger"] == 0


async def test_hostile_numbers_in_every_command_and_button(fake: FakeTelegram, tmp_path: Path) -> None:
    """Every command and button that takes a number, sent every odd number a client can write, by
    people allowed to use it (staff and super-admins, people in the middle of a dialog): each text
    gets a polite answer, each press is answered, and the bot never ends in a traceback."""
    fake.set_flood_limits(False)
    now = datetime.now(UTC)
    admins = [fake.add_user(f"Admin {i}", language_code="en", user_id=ADMIN_ID + i) for i in range(3)]
    vol_u = fake.add_user("Vol", language_code="en")
    group = fake.add_group("Numbers", creator=admins[0], members=[*admins[1:], vol_u])
    await fake.add_bot_to_group(group, added_by=admins[0], admin=True)
    dialog_users = {(flow, step): fake.add_user(f"{flow} {step}", language_code="en")
                    for flow, step, _ in corpus.NUMBER_DIALOG_BUTTONS}
    typing_users = {(flow, step): fake.add_user(f"typing {step}", language_code="en")
                    for flow, step in corpus.NUMBER_DIALOG_TEXTS}

    path = str(tmp_path / "n.db")
    db = await open_database(path)
    cid = await make_community(db, now, group_chat_id=group.id, language="en")
    staff_ids = [await make_member(db, now, cid, tg_user_id=u.id, staff=True, volunteer=True, resident=True,
                                   language="en", name=u.first_name) for u in admins]
    vol = await make_member(db, now, cid, tg_user_id=vol_u.id, volunteer=True, language="en", name="Vol")
    task = await make_task(db, now, cid, staff_ids[0], title="Carry a box")
    event = await make_task(db, now, cid, staff_ids[0], kind="event", slots=5, title="Clean the park")
    await make_claim(db, now, event, vol)
    await members.create_organisation(db, community_id=cid, name="Bank volunteers", actor_id=None, now=now)
    reward = await rewards.create_reward(db, community_id=cid, name_zh="茶", kind="goods", cost=5, now=now)
    draft = {"draft": "n1", "community_id": cid, "staff": True, "tz": "Asia/Shanghai", "slots": 1, "fix": True}
    data = {
        ("register", "community"): {"lang": "en"},
        ("register", "area"): {"community_id": cid, "lang": "en", "role": "resident", "name": "Mover"},
        ("org", "org"): {"lang": "en"},
        ("request", "org"): {**draft, "mode": "normal"},
        ("attend", "att"): {"task_id": event, "absent": []},
        ("request", "slots"): {**draft, "mode": "event"},
        ("request", "points"): {**draft, "mode": "event"},
    }
    registered = {("org", "org"), ("request", "org"), ("attend", "att"), ("request", "slots"), ("request", "points")}
    for key, user in [*dialog_users.items(), *typing_users.items()]:
        if key in registered:
            await make_member(db, now, cid, tg_user_id=user.id, staff=key != ("org", "org"), volunteer=True,
                              language="en", name=user.first_name)
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO dialogs (tg_user_id, flow, step, data, updated_at) VALUES (?, ?, ?, ?, ?)",
                               (user.id, key[0], key[1], json.dumps(data[key]), to_db(now)))

    proc = BotProcess(fake, path, admins=tuple(u.id for u in admins), log_path=str(tmp_path / "n.log"),
                      env={"BOT_FLOOD_CONTROL": "false"})
    await proc.start()
    sent: list[tuple[str, str]] = []  # (what was sent, the first answer)
    try:
        async def ask(user: Any, text: str) -> None:
            chat = fake.private_chat(user)
            mark = max((m.message_id for m in chat.messages), default=0) if chat is not None else 0
            await fake.send_text(user, None, text)
            got = await fake.wait_for_message(user, timeout=120, after_id=mark)
            sent.append((text, str(got.text or got.caption or "")))

        async def commands(user: Any, templates: list[str]) -> None:
            for template in templates:
                for i, n in enumerate(corpus.NUMBERS):
                    text = template.format(n=n, i=i, task=task, event=event).strip()
                    await ask(user, text)

        async def typing(user: Any) -> None:
            for n in corpus.NUMBERS:
                if n.strip():  # an empty message cannot be sent
                    await ask(user, n)

        everyone = [*admins, vol_u, *dialog_users.values(), *typing_users.values()]
        for u in everyone:  # each opens the private chat (the bot may write to them) and gets a message to press on
            await ask(u, "/help")
        templates = corpus.NUMBER_COMMANDS
        await asyncio.gather(*(commands(u, templates[i::len(admins)]) for i, u in enumerate(admins)),
                             *(typing(u) for u in typing_users.values()))
        wrong = [(text[:40], answer) for text, answer in sent if "went wrong" in answer]
        assert wrong == [], (len(wrong), wrong[:20])

        # Buttons (forged data, as a modified client sends it) pressed on the latest bot message in the presser's chat.
        day = (now + timedelta(days=2)).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
        presses: list[tuple[str, str]] = []
        for n in corpus.NUMBERS:
            for template in corpus.NUMBER_BUTTONS:
                cb = corpus.callback_data(template, n=n, reward=reward, day=day)
                msg = fake.bot_messages(fake.private_chat(admins[0]))[-1]
                presses.append((await fake.press_raw_callback(admins[0], msg, cb), cb))
            for flow, step, template in corpus.NUMBER_DIALOG_BUTTONS:
                user = dialog_users[(flow, step)]
                cb = corpus.callback_data(template, n=n)
                msg = fake.bot_messages(fake.private_chat(user))[-1]
                presses.append((await fake.press_raw_callback(user, msg, cb), cb))
        for qid, cb in presses:
            got = await fake.wait_callback_answer(qid, timeout=120)
            assert "went wrong" not in str(got.get("text", "")), (cb, got)
        await settle(fake, quiet=1.0, timeout=120)
        assert proc.running, proc.log()[-3000:]
        log = proc.log()
        assert "Traceback" not in log and "error while handling" not in log, log[-6000:]
        # A question asked again on the same message is an edit Telegram refuses as "not modified" (handled).
        refused = [(c.method, c.description) for c in fake.errors if "message is not modified" not in c.description]
        assert refused == [], refused[:10]
        chats = [fake.private_chat(u) for u in everyone]
        everything = [str(m.text or m.caption or "") for chat in [*chats, group] if chat is not None for m in chat.messages]
        assert not any("went wrong" in text for text in everything)
        expected = len(corpus.NUMBER_COMMANDS) * len(corpus.NUMBERS) + 2 * sum(1 for n in corpus.NUMBERS if n.strip())
        assert len(sent) == expected + len(everyone) and len(presses) >= 30 * len(corpus.NUMBERS)
        # Only the plain and full-width numbers did anything: "１２" places and points.
        assert tuple(await db.fetchone("SELECT state, slots, points FROM tasks WHERE id = ?", (task,)) or ()) == ("open", 12, 12)
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (event,)) == "open"
    finally:
        await proc.stop()
        await db.close()
