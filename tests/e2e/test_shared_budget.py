"""Two bot processes behind the real nginx on one database (tests/e2e/test_several_instances.py's
set-up), the stand-in's flood limits ON: one person's quick dialog (each message sent as soon as
the last is answered) is handled by both instances, and together they never send that private
chat more than Telegram allows (bot/budget.py): no 429. Each instance alone would have sent a
burst of up to 8 replies. On SQLite here; on PostgreSQL in tests/postgres/test_bot_on_pg.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.devkit.harness import settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.e2e.test_several_instances import T, _two_instances

MESSAGES = 16
SHARED = "other instances are live: Telegram's limits are kept together, in the database"


async def quick_dialog(fake: FakeTelegram, tmp_path: Path, url: str, env: dict[str, str] | None = None) -> None:
    """Two instances on the database ``url``: one person's quick dialog, answered with no 429."""
    person = fake.add_user("Quick", language_code="en")
    fake.private_chat(person, create=True)
    assert fake.flood_limits
    async with _two_instances(fake, tmp_path, url, env=env) as procs:
        for proc in procs:   # each has seen the other (its lease renewal): the shared budget is on
            await fake.wait_for(lambda proc=proc: SHARED in proc.log(), timeout=T)
        db = await open_database(url, migrate=False)   # a look beside the bots
        try:
            chat = fake.private_chat(person)
            for i in range(MESSAGES):   # each message as soon as the last one is answered
                await fake.send_text(person, None, "/myid")
                await fake.wait_for(lambda i=i: len(fake.bot_messages(chat)) > i, timeout=T)
                # and marked handled: the next one is free for whichever instance nginx gives it to
                deadline = time.monotonic() + T
                while await db.fetchval("SELECT COUNT(*) FROM inbox WHERE status <> 'handled'"):
                    assert time.monotonic() < deadline, "an update stayed unhandled"
                    await asyncio.sleep(0.02)
            await settle(fake, quiet=1.0)
            owners = {str(r[0]) for r in await db.fetchall("SELECT DISTINCT owner FROM inbox WHERE status = 'handled'")}
            names = {str(r[0])[len("instance:"):] for r in await db.fetchall(
                "SELECT name FROM leases WHERE name LIKE 'instance:%'")}
        finally:
            await db.close()
    replies = fake.bot_messages(chat)
    assert len(replies) == MESSAGES
    assert all(f"Your Telegram user id is {person.id}." in str(m.text) for m in replies)
    assert len(names) == 2 and owners == names, (owners, names)   # the dialog went to both instances
    assert fake.stats.too_many_requests == 0, [c.description for c in fake.errors]
    assert fake.errors == []


async def test_a_quick_dialog_across_two_instances_gets_no_429(fake: FakeTelegram, tmp_path: Path) -> None:
    await quick_dialog(fake, tmp_path, str(tmp_path / "bot.db"))
