"""Staff edit tasks; refusals change nothing; places never go below those already claimed."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.models import DomainError, InvalidInput, InvalidState, NotAllowed
from bot.services import tasks
from storage.db import Database
from tests.factories import make_community, make_member


async def _world(db: Database, now: datetime) -> tuple[int, int, int, list[int]]:
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    vols = [await make_member(db, now, cid, volunteer=True) for _ in range(3)]
    task_id = await tasks.create_task(db, now, staff, tasks.NewTask(category="other", title="Guard the blossoms",
                                                                    kind="event", slots=5, points=2), staff=True)
    return cid, staff, task_id, vols


async def test_staff_edit_title_points_and_places(db: Database, now: datetime) -> None:
    _, staff, task_id, vols = await _world(db, now)
    for v in vols[:2]:
        await tasks.claim(db, now, v, task_id)
    await tasks.edit_task(db, now, staff, task_id, "title", "Guard the cherry blossoms")
    await tasks.edit_task(db, now, staff, task_id, "points", "3")
    await tasks.edit_task(db, now, staff, task_id, "slots", "2")
    row = await db.fetchone("SELECT title, points, slots, state FROM tasks WHERE id = ?", (task_id,))
    assert tuple(row) == ("Guard the cherry blossoms", 3, 2, "full")
    with pytest.raises(DomainError):
        await tasks.edit_task(db, now, staff, task_id, "slots", "1")  # two have claimed
    await tasks.edit_task(db, now, staff, task_id, "slots", "4")
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (task_id,)) == "open"
    told = await db.fetchval("SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'edited:%'")
    assert told >= 2


@pytest.mark.parametrize(("field", "value"), [("slots", "-1"), ("slots", "0"), ("points", "99999"),
                                              ("title", ""), ("description", "x" * 501), ("address", "x")])
async def test_bad_edits_change_nothing(db: Database, now: datetime, field: str, value: str) -> None:
    _, staff, task_id, _ = await _world(db, now)
    before = tuple(await db.fetchone("SELECT * FROM tasks WHERE id = ?", (task_id,)))
    with pytest.raises(InvalidInput):
        await tasks.edit_task(db, now, staff, task_id, field, value)
    assert tuple(await db.fetchone("SELECT * FROM tasks WHERE id = ?", (task_id,))) == before


async def test_only_staff_edit_and_not_after_completion(db: Database, now: datetime) -> None:
    _, staff, task_id, vols = await _world(db, now)
    with pytest.raises(NotAllowed):
        await tasks.edit_task(db, now, vols[0], task_id, "title", "Mine now")
    await tasks.cancel(db, now, staff, task_id)
    with pytest.raises(InvalidState):
        await tasks.edit_task(db, now, staff, task_id, "title", "Too late")


async def test_contact_staff_from_the_task(db: Database, now: datetime) -> None:
    cid, _staff, task_id, vols = await _world(db, now)
    stranger = await make_member(db, now, cid, volunteer=True)
    await tasks.claim(db, now, vols[0], task_id)
    assert await tasks.contact_staff(db, now, vols[0], task_id) == 1
    assert await tasks.contact_staff(db, now, vols[0], task_id) == 1  # a double tap ...
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'contact:%'") == 1  # ... one alert
    with pytest.raises(NotAllowed):
        await tasks.contact_staff(db, now, stranger, task_id)
    other = await make_community(db, now)
    outsider = await make_member(db, now, other, volunteer=True)
    with pytest.raises(NotAllowed):
        await tasks.contact_staff(db, now, outsider, task_id)
