"""Authorisation matrix: every staff, merchant and super-admin action, tried by each other role,
is refused with an answer and changes nothing."""

from __future__ import annotations

import pytest

from bot.devkit import scenario
from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.conftest import ADMIN_ID

STAFF_COMMANDS = [
    "/areas add Building 9",
    "/org new Bank branch",
    "/merchant new Noodle shop",
    "/rewards manage",
    "/rewards add goods 5 10 大米 / Rice",
    "/stats",
    "/report 2026-05",
    "/export month",
    "/digest now",
    "/revoke 1 mistake",
    "/closeevent 1 0",
    "/checkin 1",
    "/verify ABCDEFGHJK",
]
GROUP_COMMANDS = ["/setup Another community", "/staff add"]


async def _snapshot(path: str) -> dict[str, object]:
    db = await open_database(path, migrate=False)
    try:
        out: dict[str, object] = {}
        for table in ("communities", "areas", "organisations", "merchants", "rewards", "vouchers", "tasks", "claims", "ledger",
                      "checkin_codes"):
            out[table] = await db.fetchval(f"SELECT COUNT(*) FROM {table}")
        out["staff"] = await db.fetchval("SELECT COUNT(*) FROM members WHERE is_staff = 1")
        return out
    finally:
        await db.close()


@pytest.mark.soak
async def test_non_staff_roles_are_refused_everywhere(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    resident = fake.add_user("Resident", language_code="en")
    volunteer = fake.add_user("Volunteer", language_code="en")
    stranger = fake.add_user("Stranger", language_code="en")
    group = await scenario.setup_community(fake, admin)
    await scenario.register(fake, resident, role="resident")
    await scenario.register(fake, volunteer, role="volunteer")
    await fake.send_text(stranger, None, "/help")
    for person in (resident, volunteer, stranger):
        if person.id not in group.members:
            fake.add_member(group, person, announce=False)
    await settle(fake, quiet=0.5)
    before = await _snapshot(bot_process.database)

    for person in (resident, volunteer, stranger):
        for command in STAFF_COMMANDS:
            chat = fake.private_chat(person)
            last = max(m.message_id for m in chat.messages)
            await fake.send_text(person, None, command)
            reply = await fake.wait_for_message(person, timeout=10, after_id=last)
            assert reply.text, f"{command} by {person.first_name}: empty answer"
        hello = await fake.send_text(resident, group, "hello")
        for command in GROUP_COMMANDS:
            await fake.send_text(person, group, command, reply_to=hello)
    await settle(fake, quiet=1.0)
    assert await _snapshot(bot_process.database) == before
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    assert "Traceback" not in bot_process.log()
