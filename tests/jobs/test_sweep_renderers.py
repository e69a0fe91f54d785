"""The messages the sweeps queue, rendered at send time from what the database holds then."""

from __future__ import annotations

from datetime import datetime, timedelta

import bot.jobs.sweeps  # noqa: F401  (registers the renderers)
from bot.i18n import translator
from bot.renderers import RENDERERS, RenderContext
from storage.db import Database
from storage.timeutil import to_db
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task


async def test_a_reminder_goes_to_a_volunteer_still_holding_a_place_in_the_communitys_time(
        db: Database, now: datetime) -> None:
    cid = await make_community(db, now, timezone="Asia/Shanghai")
    staff = await make_member(db, now, cid, staff=True)
    vol = await make_member(db, now, cid, volunteer=True)
    other = await make_member(db, now, cid, volunteer=True)
    starts = now.replace(hour=2, minute=30, second=0, microsecond=0) + timedelta(days=1)  # 10:30 in Shanghai
    tid = await make_task(db, now, cid, staff, title="Carry rice", starts_at=to_db(starts))
    await make_claim(db, now, tid, vol)
    render = RENDERERS["task_reminder"].render
    shown = await render(RenderContext(db, translator("en"), "en", 1, vol, "bot"), {"task_id": tid, "which": "soon"})
    assert shown is not None and "Carry rice" in shown.text and starts.strftime("%m-%d") + " 10:30" in shown.text
    assert await render(RenderContext(db, translator("en"), "en", 2, other, "bot"), {"task_id": tid}) is None
    assert await render(RenderContext(db, translator("en"), "en", 1, vol, "bot"), {"task_id": tid + 1}) is None


async def test_staff_hear_which_volunteer_cannot_be_reached(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    vol = await make_member(db, now, cid, volunteer=True, name="Zhao Lei")
    tid = await make_task(db, now, cid, staff, title="Carry rice")
    await make_claim(db, now, tid, vol)
    rc = RenderContext(db, translator("en"), "en", 3, staff, "bot")
    shown = await RENDERERS["volunteer_unreachable_staff"].render(rc, {"task_id": tid, "member_id": vol})
    assert shown is not None and "Zhao Lei" in shown.text and f"#{tid}" in shown.text
    gone = await RENDERERS["volunteer_unreachable_staff"].render(rc, {"task_id": tid, "member_id": vol + 100})
    assert gone is not None and "volunteer ?" in gone.text


async def test_reminders_and_digests_show_times_in_the_communitys_own_zone(db: Database, now: datetime) -> None:
    """Not Shanghai's: a community in Berlin reads Berlin times in its reminder and both digests
    (the renderers take the zone from the task's community or the digest's payload, with no default)."""
    from bot.jobs.sweeps import render_group_digest, render_volunteer_digest
    from bot.services import digest

    cid = await make_community(db, now, timezone="Europe/Berlin")
    staff = await make_member(db, now, cid, staff=True)
    vol = await make_member(db, now, cid, volunteer=True)
    starts = now.replace(hour=8, minute=30, second=0, microsecond=0) + timedelta(days=1)  # 10:30 in Berlin in May
    tid = await make_task(db, now, cid, staff, kind="event", title="Plant trees", slots=5, starts_at=to_db(starts))
    await make_claim(db, now, tid, vol)
    berlin = starts.strftime("%m-%d") + " 10:30"
    rc = RenderContext(db, translator("en"), "en", 1, vol, "bot")
    shown = await RENDERERS["task_reminder"].render(rc, {"task_id": tid, "which": "soon"})
    assert shown is not None and berlin in shown.text
    async with db.transaction() as conn:
        group = await digest.group_digest(conn, cid, now, "Europe/Berlin")
        mine = await digest.volunteer_digest(conn, vol, starts - timedelta(hours=9), "Europe/Berlin")
    assert group is not None and group["tz"] == "Europe/Berlin" and berlin in render_group_digest(rc, group)
    assert mine is not None and berlin in render_volunteer_digest(rc, mine)
