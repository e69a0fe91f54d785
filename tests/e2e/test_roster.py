"""An event's waiting list through the real bot and the stand-in (issue 21): a cancelled event tells
those on its waiting list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import Database, open_database
from tests.e2e.people import community_with_group
from tests.factories import make_member

T = 10


def _has(data: str) -> Any:
    return lambda m: any(b.get("callback_data") == data for b in m.inline_buttons)


def _says(words: str) -> Any:
    return lambda m: words in (m.text or "")


async def _sql(db: Database, sql: str, params: dict[str, Any]) -> None:
    async with db.transaction() as conn:
        await conn.execute(sql, params)


async def _answer(fake: FakeTelegram, query: str) -> str:
    return str((await fake.wait_callback_answer(query, timeout=T)).get("text") or "")


async def _press(fake: FakeTelegram, user: Any, message: Any, data: str) -> str:
    return await _answer(fake, await fake.press_button(user, message, data))


async def _people(fake: FakeTelegram, db: Database, now: datetime, names: tuple[str, ...], lang: str = "en"
                  ) -> tuple[Any, int, list[Any], dict[str, int]]:
    """A community with its group; the first name is staff, the others volunteers; (group, community,
    users, member id by name)."""
    group, cid = await community_with_group(fake, db, now, language=lang)
    code = "en" if lang == "en" else "zh-hans"
    users = [fake.add_user(n, language_code=code) for n in names]
    ids = {names[0]: await make_member(db, now, cid, tg_user_id=users[0].id, language=lang, staff=True,
                                       name=names[0])}
    for u in users[1:]:
        ids[u.first_name] = await make_member(db, now, cid, tg_user_id=u.id, language=lang, volunteer=True,
                                              name=u.first_name)
    for u in users:
        fake.add_member(group, u, announce=False)
        fake.private_chat(u, create=True)
    return group, cid, users, ids


async def _full_event(fake: FakeTelegram, db: Database, now: datetime, group: Any, staff: int, title: str,
                      holders: list[Any], waiting: list[Any]) -> tuple[int, Any]:
    """An event with a place for each holder, all claimed, and the others on its waiting list, in order."""
    ev = await tasks.create_task(db, now, staff, tasks.NewTask(
        "other", title=title, kind="event", slots=len(holders), points=5, starts_at=now + timedelta(days=3)),
        staff=True)
    card = await fake.wait_for_message(group, _has(f"cl:{ev}"), timeout=T)
    for u in holders:
        await _press(fake, u, card, f"cl:{ev}")
    await fake.wait_for(lambda: _has(f"wl:{ev}")(card), timeout=T)
    for u in waiting:
        await _press(fake, u, card, f"wl:{ev}")
    return ev, card


async def test_a_cancelled_event_tells_those_on_its_waiting_list(fake: FakeTelegram,
                                                                bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, _cid, users, ids = await _people(fake, db, now, ("Staff", "Ann", "Bo", "Chen"))
        staff, ann, bo, chen = users
        ev, _card = await _full_event(fake, db, now, group, ids["Staff"], "Litter pick", [ann], [bo, chen])
        await fake.send_text(staff, None, f"/canceltask {ev}")
        assert "3 volunteer(s) were told" in ((await fake.wait_for_message(staff, timeout=T)).text or "")
        await fake.wait_for_message(ann, _says("“Litter pick” was cancelled"), timeout=T)
        for u in (bo, chen):
            await fake.wait_for_message(u, _says("“Litter pick”, whose waiting list you were on, was cancelled"),
                                        timeout=T)
        states = await db.fetchall("SELECT state FROM waitlist WHERE task_id = :t", {"t": ev})
        assert [r[0] for r in states] == ["cancelled", "cancelled"]
    finally:
        await db.close()
