"""Urgent requests ping a few on-duty volunteers in private; the on-duty switch."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.models import InvalidInput, NotAllowed
from bot.services import alerts, tasks
from storage.db import Database
from tests.factories import make_community, make_member


async def test_urgent_request_pings_on_duty_volunteers_only(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    resident = await make_member(db, now, cid, resident=True, volunteer=True, on_duty=1)
    on_duty = [await make_member(db, now, cid, volunteer=True, on_duty=1) for _ in range(5)]
    off_duty = await make_member(db, now, cid, volunteer=True)
    task_id = await tasks.create_task(db, now, resident, tasks.NewTask(category="shopping", description="Buns", when_kind="asap"))
    pinged = [r[0] for r in await db.fetchall("SELECT member_id FROM outbox WHERE kind = 'task_urgent_ping'")]
    assert len(pinged) == alerts.URGENT_PINGS
    assert set(pinged) <= set(on_duty)
    assert resident not in pinged and off_duty not in pinged
    # Not urgent: nobody is pinged.
    await tasks.create_task(db, now, resident, tasks.NewTask(category="shopping", description="Later", when_kind="tomorrow"))
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'task_urgent_ping'") == alerts.URGENT_PINGS
    assert task_id


async def test_on_duty_toggle(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    await make_member(db, now, cid, tg_user_id=42, volunteer=True)
    await make_member(db, now, cid, tg_user_id=43, resident=True)
    assert await tasks.toggle_on_duty(db, now, 42) is True
    assert await tasks.toggle_on_duty(db, now, 42) is False
    with pytest.raises(NotAllowed):
        await tasks.toggle_on_duty(db, now, 43)


async def test_only_staff_choose_the_daily_cap_among_the_offered(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    await make_member(db, now, cid, tg_user_id=50, staff=True)
    await make_member(db, now, cid, tg_user_id=51, volunteer=True)
    assert await alerts.daily_cap_of(db, cid) == alerts.DAILY_CAP
    with pytest.raises(NotAllowed):
        await alerts.set_daily_cap(db, community_id=cid, tg_user_id=51, admin_ids=(), cap=3, now=now)
    with pytest.raises(InvalidInput):
        await alerts.set_daily_cap(db, community_id=cid, tg_user_id=50, admin_ids=(), cap=4, now=now)
    assert await alerts.set_daily_cap(db, community_id=cid, tg_user_id=50, admin_ids=(), cap=10, now=now) == 10
    assert await alerts.daily_cap_of(db, cid) == 10
    assert alerts.daily_cap('{"urgent_daily_cap": 0}') == alerts.daily_cap("not json") == alerts.DAILY_CAP


async def test_volunteers_in_quiet_hours_are_not_picked_nor_counted(db: Database) -> None:
    """At 23:30 in the community, a volunteer in their quiet hours (22:00–07:00, the default) would
    never see the ping (the outbox drops it): the urgent request goes to those awake instead, and the
    sleeper's daily count and turn are left as they were."""
    night = datetime(2026, 5, 4, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    cid = await make_community(db, night)
    resident = await make_member(db, night, cid, resident=True)
    asleep = [await make_member(db, night, cid, volunteer=True, on_duty=1) for _ in range(alerts.URGENT_PINGS)]
    awake = await make_member(db, night, cid, volunteer=True, on_duty=1, quiet_start="00:00", quiet_end="00:00")
    late = await make_member(db, night, cid, volunteer=True, on_duty=1, quiet_start="01:00", quiet_end="06:00")
    await tasks.create_task(db, night, resident, tasks.NewTask(category="shopping", description="Buns", when_kind="asap"))
    pinged = {int(r[0]) for r in await db.fetchall("SELECT member_id FROM outbox WHERE kind = 'task_urgent_ping'")}
    assert pinged == {awake, late}
    for member_id in asleep:
        assert await db.fetchval("SELECT urgent_last_at FROM members WHERE id = ?", (member_id,)) is None


async def test_a_ping_dropped_when_due_does_not_count_toward_the_daily_cap(db: Database, now: datetime) -> None:
    """The request was taken before its pings went out: the ones not sent are not counted."""
    import bot.conversations.dispatch  # noqa: F401  (registers the renderers)
    from bot.i18n import translator
    from bot.renderers import RENDERERS, RenderContext
    from storage import alerts as alert_store

    cid = await make_community(db, now, timezone="Asia/Shanghai")
    resident = await make_member(db, now, cid, resident=True)
    vols = [await make_member(db, now, cid, volunteer=True, on_duty=1) for _ in range(2)]
    task_id = await tasks.create_task(db, now, resident, tasks.NewTask(category="shopping", description="Buns",
                                                                      when_kind="asap"))
    day = now.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")
    rows = await db.fetchall("SELECT member_id, payload FROM outbox WHERE kind = 'task_urgent_ping' ORDER BY id")
    assert sorted(r[0] for r in rows) == sorted(vols)
    async with db.transaction() as conn:
        assert [await alert_store.pings_on(conn, v, day) for v in vols] == [1, 1]
    render = RENDERERS["task_urgent_ping"].render
    first, second = (json.loads(r[1]) for r in rows)
    shown = await render(RenderContext(db, translator("en"), "en", 1, rows[0][0], "bot", now=now), first)
    assert shown is not None and "Buns" in shown.text          # sent: stays counted
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET state = 'full' WHERE id = :id", {"id": task_id})
    assert await render(RenderContext(db, translator("en"), "en", 2, rows[1][0], "bot", now=now), second) is None
    again = await render(RenderContext(db, translator("en"), "en", 2, rows[1][0], "bot", now=now), second)
    assert again is None
    async with db.transaction() as conn:
        assert await alert_store.pings_on(conn, rows[0][0], day) == 1
        assert await alert_store.pings_on(conn, rows[1][0], day) == 0   # dropped: not counted (never below 0)
