"""/staff in private: staff see the staff list, find members by name and add or remove staff by
member number; the last staff member cannot remove themselves; nobody else may do any of it."""

from __future__ import annotations

from typing import Any

import pytest

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import make_staff, register, say, setup_community

T = 10


@pytest.mark.unpaced  # the commands, not pacing
async def test_staff_by_member_number(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    boss = fake.add_user("Boss", language_code="en")
    helper = fake.add_user("Helper Liu", language_code="en")
    granny = fake.add_user("Granny Zhao", language_code="en")
    await register(fake, boss)
    await register(fake, helper)
    await register(fake, granny, role="resident")
    await make_staff(fake, admin, boss, group)
    db = await open_database(bot_process.database)
    try:
        async def member_id(u: Any) -> int:
            return int(await db.fetchval("SELECT id FROM members WHERE tg_user_id = ?", (u.id,)))
        helper_id, boss_id = await member_id(helper), await member_id(boss)

        await say(fake, helper, f"/staff add {helper_id}", "not allowed")           # not staff: refused
        listing = await say(fake, boss, "/staff", "Staff:")
        assert "Boss" in listing
        found = await say(fake, boss, "/staff find liu", f"#{helper_id}")
        assert "Helper Liu" in found and "Granny" not in found
        await say(fake, boss, "/staff find nobody-like-this", "Nobody registered")
        # Names never go to the group: /staff find there only gets the help.
        await say(fake, boss, "/staff find Granny", "In private", where=group)
        assert not any("Granny" in str(m.text or "") for m in fake.bot_messages(group))
        await say(fake, boss, "/staff add 999999", "could not find")
        await say(fake, boss, f"/staff add #{helper_id}", "is now community staff")
        assert await db.fetchval("SELECT is_staff FROM members WHERE id = ?", (helper_id,)) == 1
        assert await db.fetchval("SELECT actor_id FROM audit_log WHERE action = 'staff.added' AND object_id = ?",
                                 (helper_id,)) == boss_id
        await say(fake, helper, f"/staff remove {boss_id}", "no longer community staff")
        await say(fake, helper, f"/staff remove {helper_id}", "last staff member")
        assert await db.fetchval("SELECT is_staff FROM members WHERE id = ?", (helper_id,)) == 1
    finally:
        await db.close()
