"""Staff commands that take a number (a task, an event, a points entry): someone who is not staff
of the community is refused first, with the same words whether the number exists or not, so they
learn nothing about which numbers exist; staff then hear "not found" for a number that does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import ledger
from storage.db import open_database
from storage.timeutil import to_db
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task

T = 10
REFUSED = ("not allowed", "only community staff")
NOT_FOUND = "could not find"
MISSING = 987654


async def _answer(fake: FakeTelegram, user: object, text: str) -> str:
    chat = fake.private_chat(user)  # type: ignore[arg-type]
    mark = max((m.message_id for m in chat.messages), default=0) if chat is not None else 0
    await fake.send_text(user, None, text)  # type: ignore[arg-type]
    return str((await fake.wait_for_message(user, timeout=T, after_id=mark)).text)  # type: ignore[arg-type]


async def test_the_refusal_comes_before_not_found(fake: FakeTelegram, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    staff_u, vol_u, res_u, far_u = (fake.add_user(n, language_code="en") for n in ("Staff", "Vol", "Res", "Far"))
    group = fake.add_group("Vols", creator=staff_u, members=[vol_u])
    await fake.add_bot_to_group(group, added_by=staff_u, admin=True)
    for u in (staff_u, vol_u, res_u, far_u):
        await fake.send_text(u, None, "/help")
    path = str(tmp_path / "t.db")
    db = await open_database(path)
    cid = await make_community(db, now, group_chat_id=group.id, language="en")
    far = await make_community(db, now, name="Far Lane", language="en")
    staff = await make_member(db, now, cid, tg_user_id=staff_u.id, staff=True, language="en")
    vol = await make_member(db, now, cid, tg_user_id=vol_u.id, volunteer=True, language="en", name="Vol")
    res = await make_member(db, now, cid, tg_user_id=res_u.id, resident=True, language="en", name="Res")
    await make_member(db, now, far, tg_user_id=far_u.id, staff=True, language="en", name="Far")
    task = await make_task(db, now, cid, staff, requester_id=res, title="Rice")
    event = await make_task(db, now, cid, staff, kind="event", slots=3, title="Garden",
                            starts_at=to_db(now + timedelta(days=2)), ends_at=to_db(now + timedelta(days=2, hours=2)))
    await make_claim(db, now, event, vol)
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=vol, amount=2, reason="task", key="test:entry", now=now, task_id=task)
    entry = int(await db.fetchval("SELECT MAX(id) FROM ledger"))
    commands = [
        (f"/edittask {task} title Bread", f"/edittask {MISSING} title Bread"),
        (f"/canceltask {task}", f"/canceltask {MISSING}"),
        (f"/entries {task}", f"/entries {MISSING}"),
        (f"/revoke {entry} mistake", f"/revoke {MISSING} mistake"),
        (f"/closeevent {event}", f"/closeevent {MISSING}"),
        (f"/volunteers {event}", f"/volunteers {MISSING}"),
        (f"/checkin {event}", f"/checkin {MISSING}"),
    ]
    proc = BotProcess(fake, path, log_path=str(tmp_path / "t.log"))
    await proc.start()
    try:
        await settle(fake, quiet=0.5)  # the answers to /help first
        # A volunteer: the same refusal for a number that exists and one that does not.
        for existing, missing in commands:
            said = await _answer(fake, vol_u, existing)
            assert any(words in said for words in REFUSED), (existing, said)
            assert await _answer(fake, vol_u, missing) == said, missing
        # Staff of another community are refused this community's numbers (and, being staff,
        # hear "not found" for a number that does not exist, as staff do).
        for existing, _ in commands:
            said = await _answer(fake, far_u, existing)
            assert any(words in said for words in REFUSED), (existing, said)
        # The resident may cancel her own request, but another's number or a missing one is refused alike.
        said = await _answer(fake, res_u, f"/canceltask {event}")
        assert "not allowed" in said and await _answer(fake, res_u, f"/canceltask {MISSING}") == said
        # Staff: not found.
        for _, missing in commands:
            assert NOT_FOUND in await _answer(fake, staff_u, missing), missing
        # Nothing changed.
        assert await db.fetchval("SELECT title FROM tasks WHERE id = ?", (task,)) == "Rice"
        assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (task,)) == "open"
        assert await db.fetchval("SELECT COUNT(*) FROM ledger") == 1
    finally:
        await proc.stop()
        await db.close()
