"""A corpus of hostile inputs against the real bot process: clear answers or silence, never a
crash, never a refused API call, nothing changed that should not be."""

from __future__ import annotations

import pytest

from bot.harness import BotProcess, settle
from bot.sandbox import FakeTelegram, SandboxError
from storage.db import open_database
from tests.conftest import ADMIN_ID
from tests.reliability.corpus import CALLBACK_DATA, TEXTS


def test_corpus_is_big_enough() -> None:
    assert len(TEXTS) + len(CALLBACK_DATA) >= 100


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
