"""The real bot process (``python -m bot run``) on PostgreSQL, against the Telegram stand-in: the
whole story of one request through the group and private chats, a double tap and a redelivered
update included, ends with exactly one point, and nothing private reaches the group."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import ask_for_help, register, setup_community

T = 20
ADDRESS = "Building 3 Room 502"


@pytest.fixture
async def pg_bot(fake: FakeTelegram, pg_url: str, tmp_path: Path) -> AsyncIterator[BotProcess]:
    """The bot with DATABASE_URL on a fresh PostgreSQL database (it migrates it at start-up)."""
    proc = BotProcess(fake, str(tmp_path / "unused.db"), admins=(ADMIN_ID,), env={"DATABASE_URL": pg_url},
                      log_path=str(tmp_path / "bot.log"))
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


def _has(prefix: str) -> Any:
    return lambda m: any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


async def test_request_claim_done_confirm_earns_one_point_on_postgres(fake: FakeTelegram, pg_bot: BotProcess,
                                                                      pg_url: str) -> None:
    admin = fake.add_user("Admin", user_id=ADMIN_ID, language_code="en")
    group = await setup_community(fake, admin)
    granny = fake.add_user("Guo Lan", language_code="en", phone_number="+8613912345678")
    ming = fake.add_user("Li Ming", language_code="en")
    await register(fake, granny, role="resident", area=ADDRESS)
    await register(fake, ming, role="volunteer", phone=False)
    fake.add_member(group, ming, announce=False)

    await ask_for_help(fake, granny, "Please buy two jin of steamed buns. Thank you!")
    card = await fake.wait_for_message(group, _has("cl:"), timeout=T, after_id=0)
    tid = int(next(str(b["callback_data"]) for b in card.inline_buttons
                   if str(b["callback_data"]).startswith("cl:")).split(":")[1])
    fake.duplicate_next_updates(True)  # the claim arrives twice
    await fake.press_button(ming, card, f"cl:{tid}")
    fake.duplicate_next_updates(False)
    details = await fake.wait_for_message(ming, _has(f"done:{tid}"), timeout=T, after_id=0)
    assert ADDRESS in str(details.text or "")

    await fake.press_button(ming, details, f"done:{tid}")
    skip = await fake.wait_for_message(ming, _has("d:note:skip"), timeout=T, after_id=details.message_id)
    await fake.press_button(ming, skip, "d:note:skip")
    question = await fake.wait_for_message(granny, _has(f"cf:{tid}:y"), timeout=T, after_id=0)
    await fake.press_button(granny, question, f"cf:{tid}:y")
    await fake.press_button(granny, question, f"cf:{tid}:y")  # a double tap
    await settle(fake)
    fake.redeliver(max(fake._bot(None).history))  # and the last update once more
    await settle(fake)

    db = await open_database(pg_url, migrate=False)
    try:
        assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t", {"t": tid}) == 1
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = :t", {"t": tid}) == 1
        assert await db.fetchval("SELECT state FROM tasks WHERE id = :t", {"t": tid}) == "completed"
        assert await db.fetchval("SELECT balance FROM members WHERE tg_user_id = :u", {"u": ming.id}) == 1
    finally:
        await db.close()
    shown = " ".join(str(m.text or m.caption or "") for m in group.messages)
    assert ADDRESS not in shown and "13912345678" not in shown and "Guo Lan" not in shown
    assert not fake.errors, fake.errors
    assert "Traceback" not in pg_bot.log()


async def test_two_instances_behind_nginx_share_one_postgresql_database(fake: FakeTelegram, tmp_path: Path,
                                                                        pg_url: str) -> None:
    """Two bot processes in webhook mode behind the real nginx, on one PostgreSQL database: updates
    reach and are handled by both, once each; one instance sends every queued message; a request
    is claimed through whichever instance gets the press."""
    from tests.e2e.test_several_instances import _two_instances

    admin = fake.add_user("Admin", user_id=ADMIN_ID, language_code="en")
    async with _two_instances(fake, tmp_path, str(tmp_path / "unused.db"),
                              env={"DATABASE_URL": pg_url, "BOT_ADMIN_IDS": str(ADMIN_ID)}) as (first, second):
        group = await setup_community(fake, admin)
        granny = fake.add_user("Guo Lan", language_code="en")
        ming = fake.add_user("Li Ming", language_code="en")
        await register(fake, granny, role="resident", area=ADDRESS)
        await register(fake, ming, role="volunteer", phone=False)
        people = [fake.add_user(f"P{i}", language_code="en") for i in range(8)]
        for user in people:
            await fake.send_text(user, None, "/myid")
        for user in people:
            assert f"Your Telegram user id is {user.id}." in str((await fake.wait_for_message(user, timeout=T)).text)
        await ask_for_help(fake, granny, "Please buy rice and eggs")
        card = await fake.wait_for_message(group, _has("cl:"), timeout=T, after_id=0)
        data = next(str(b["callback_data"]) for b in card.inline_buttons if str(b["callback_data"]).startswith("cl:"))
        await fake.press_button(ming, card, data)
        await fake.wait_for_message(ming, _has("done:"), timeout=T, after_id=0)
        await settle(fake, quiet=1.0)
        db = await open_database(pg_url, migrate=False)
        try:
            handled = {str(r[0]) for r in await db.fetchall(
                "SELECT DISTINCT owner FROM inbox WHERE status = 'handled'")}
            senders = {str(r[0]) for r in await db.fetchall(
                "SELECT DISTINCT sending_by FROM outbox WHERE state = 'sent'")}
            assert await db.fetchval("SELECT COUNT(*) FROM inbox WHERE status <> 'handled'") == 0
            assert await db.fetchval("SELECT COUNT(*) FROM claims") == 1
        finally:
            await db.close()
        assert len(handled) == 2, handled          # both instances handled updates
        assert len(senders) == 1, senders          # one instance sent every queued message
        for proc in (first, second):
            assert "Traceback" not in proc.log(), proc.log()
    for user in people:
        assert len(fake.bot_messages(fake.private_chat(user))) == 1
    # Direct replies of both instances share Telegram's limits in the database (bot/budget.py).
    assert fake.errors == []


async def test_a_quick_dialog_across_two_instances_gets_no_429_on_postgres(fake: FakeTelegram, tmp_path: Path,
                                                                           pg_url: str) -> None:
    """Telegram's limits kept across both instances in PostgreSQL (bot/budget.py): no 429."""
    from tests.e2e.test_shared_budget import quick_dialog

    await quick_dialog(fake, tmp_path, pg_url, env={"DATABASE_URL": pg_url})
