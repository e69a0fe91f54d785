"""Every update of a whole scenario delivered twice: the state is as if delivered once."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.devkit import scenario
from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.conftest import ADMIN_ID


async def _state(path: str) -> dict[str, object]:
    db = await open_database(path, migrate=False)
    try:
        out: dict[str, object] = {}
        for table in ("communities", "categories", "tasks", "claims", "ledger", "outbox", "audit_log"):
            out[table] = await db.fetchval(f"SELECT COUNT(*) FROM {table}")
        out["members"] = [tuple(r) for r in await db.fetchall(
            "SELECT display_name, is_resident, is_volunteer, is_staff, balance FROM members ORDER BY id")]
        out["task_states"] = [r[0] for r in await db.fetchall("SELECT state FROM tasks ORDER BY id")]
        return out
    finally:
        await db.close()


async def _scenario(fake: FakeTelegram) -> tuple[object, object, object]:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    resident = fake.add_user("Grandma", language_code="en")
    volunteer = fake.add_user("Helper", language_code="en")
    group = await scenario.setup_community(fake, admin)
    await scenario.register(fake, resident, role="resident")
    await scenario.register(fake, volunteer, role="volunteer")
    await settle(fake, quiet=0.5)
    return group, resident, volunteer


async def test_everything_delivered_twice_equals_once(fake: FakeTelegram, bot_process: BotProcess) -> None:
    fake.duplicate_next_updates(True)
    group, resident, volunteer = await _scenario(fake)
    db = await open_database(bot_process.database)
    try:
        resident_id = await db.fetchval("SELECT id FROM members WHERE display_name = 'Grandma'")
        task_id = await tasks.create_task(db, datetime.now(UTC), resident_id, tasks.NewTask(category="shopping", description="Buns"))
    finally:
        await db.close()
    card = await fake.wait_for_message(group, lambda m: any(
        str(b.get("callback_data", "")) == f"cl:{task_id}" for b in m.inline_buttons), timeout=15, after_id=0)
    await fake.press_button(volunteer, card, f"cl:{task_id}")
    details = await fake.wait_for_message(volunteer, lambda m: any(
        str(b.get("callback_data", "")) == f"done:{task_id}" for b in m.inline_buttons), timeout=15, after_id=0)
    await fake.press_button(volunteer, details, f"done:{task_id}")
    question = await fake.wait_for_message(resident, lambda m: any(
        str(b.get("callback_data", "")) == f"cf:{task_id}:y" for b in m.inline_buttons), timeout=15, after_id=0)
    await fake.press_button(resident, question, f"cf:{task_id}:y")
    await settle(fake, quiet=1.5)
    state = await _state(bot_process.database)
    assert state["communities"] == 1
    assert state["tasks"] == 1 and state["task_states"] == ["completed"]
    assert state["claims"] == 1
    assert state["ledger"] == 1
    names = [m[0] for m in state["members"]]  # type: ignore[union-attr]
    assert names.count("Grandma") == 1 and names.count("Helper") == 1
    balances = {m[0]: m[4] for m in state["members"]}  # type: ignore[union-attr]
    assert balances["Helper"] == 1
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
