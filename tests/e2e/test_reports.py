"""Reports through the real bot process: refusal, /stats, /export documents, /report photos, A cannot see B."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from storage.db import open_database
from tests.conftest import ADMIN_ID
from tests.factories import make_community, make_member

T = 15


async def _wait_docs(fake: FakeTelegram, user: object, n: int, after: int) -> list[object]:
    def docs() -> list[object] | None:
        found = [m for m in fake.bot_messages(fake.private_chat(user))  # type: ignore[arg-type]
                 if m.message_id > after and "document" in m.data]
        return found if len(found) >= n else None

    result: list[object] = await fake.wait_for(docs, timeout=20)
    return result


def _last(fake: FakeTelegram, user: object) -> int:
    return max((m.message_id for m in fake.bot_messages(fake.private_chat(user))), default=0)  # type: ignore[arg-type]


async def test_stats_export_report_and_scope(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        a = await make_community(db, now, name="A")
        b = await make_community(db, now, name="B")
        staff_u = fake.add_user("Staff", language_code="en")
        other_u = fake.add_user("Resident", language_code="en")
        admin_u = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
        await make_member(db, now, a, tg_user_id=staff_u.id, language="en", staff=True)
        await make_member(db, now, a, tg_user_id=other_u.id, language="en", resident=True)
        await make_member(db, now, a, language="en", volunteer=True, name="王小明", phone="13900000000")
        await make_member(db, now, b, language="en", volunteer=True, name="B only")
    finally:
        await db.close()

    # non-staff refused
    await fake.send_text(other_u, None, "/stats")
    msg = await fake.wait_for_message(other_u, timeout=T)
    assert "Active volunteers" not in (msg.text or "")

    # staff: /stats counts only community A (staff + resident + volunteer = 3 new members)
    await fake.send_text(staff_u, None, "/stats month")
    msg = await fake.wait_for_message(staff_u, lambda m: "new members" in (m.text or ""), timeout=T)
    assert "new members: 3" in msg.text  # type: ignore[operator]

    # staff cannot ask for community B
    await fake.send_text(staff_u, None, f"/stats month {b}")
    msg = await fake.wait_for_message(staff_u, timeout=T)
    assert "new members" not in (msg.text or "")

    # bad period: polite answer
    await fake.send_text(staff_u, None, "/stats yesterday-ish")
    msg = await fake.wait_for_message(staff_u, timeout=T)
    assert "period" in (msg.text or "")

    # export: 6 CSV + 1 XLSX documents
    before = _last(fake, staff_u)
    await fake.send_text(staff_u, None, "/export month")
    docs = await _wait_docs(fake, staff_u, 7, before)
    names = sorted(d.data["document"].get("file_name", "") for d in docs)  # type: ignore[attr-defined]
    assert "linli.xlsx" in names and "members.csv" in names

    # report: four photos and a summary
    before = _last(fake, staff_u)
    await fake.send_text(staff_u, None, "/report")

    def photos() -> list[Any]:
        return [m for m in fake.bot_messages(fake.private_chat(staff_u)) if m.message_id > before and "photo" in m.data]

    await fake.wait_for(lambda: len(photos()) >= 4, timeout=20)
    assert len(photos()) == 4
    await fake.wait_for_message(staff_u, lambda m: "new members" in (m.text or ""), timeout=T, after_id=before)

    # super-admin: all communities
    await fake.send_text(admin_u, None, "/stats month all")
    msg = await fake.wait_for_message(admin_u, lambda m: "new members" in (m.text or ""), timeout=T)
    assert "new members: 4" in msg.text  # type: ignore[operator]

    assert fake.errors == []
