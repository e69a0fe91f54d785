"""Daily digests with an injected clock: group, volunteer, staff; nothing to say sends nothing;
the digest time follows the community's zone (Asia/Shanghai, and Europe/Berlin across DST)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.i18n import translator
from bot.jobs.sweeps import render_group_digest, render_staff_digest, render_volunteer_digest, run_once
from bot.renderers import RenderContext
from bot.services import digest, ledger
from storage import digest as digest_store
from storage.db import Database
from storage.timeutil import to_db
from tests.both import only_sqlite
from tests.factories import make_community, make_member, returned_id
from tests.factories_tasks import make_claim, make_task


async def _digests(db: Database) -> list[dict]:
    return [dict(r) for r in await db.fetchall("SELECT * FROM outbox WHERE kind LIKE 'digest_%' ORDER BY id")]


async def test_a_day_with_nothing_to_say_sends_nothing(db: Database) -> None:
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    cid = await make_community(db, now)
    await make_member(db, now, cid, staff=True)
    await make_member(db, now, cid, volunteer=True)
    assert await digest.sweep_digests(db, now) == 0
    assert await _digests(db) == []
    # Something happens later that day: still nothing until tomorrow (one digest decision a day).
    await make_task(db, now, cid, await make_member(db, now, cid, resident=True))
    assert await digest.sweep_digests(db, now + timedelta(hours=2)) == 0


async def test_shanghai_digest_at_eight_once_a_day(db: Database) -> None:
    before = datetime(2026, 5, 3, 23, 59, tzinfo=UTC)  # 07:59 Shanghai
    cid = await make_community(db, before, digest_time="08:00")
    staff = await make_member(db, before, cid, staff=True)
    res = await make_member(db, before, cid, resident=True)
    vol = await make_member(db, before, cid, volunteer=True, skills='["shopping"]')
    await make_task(db, before, cid, res, requester_id=res, title="Buy rice", category="shopping",
                    published_at=to_db(before - timedelta(hours=5)))
    assert await digest.sweep_digests(db, before) == 0
    at8 = before + timedelta(minutes=1)
    assert await digest.sweep_digests(db, at8) == 3
    assert await digest.sweep_digests(db, at8 + timedelta(hours=3)) == 0  # a restart later the same day
    rows = await _digests(db)
    assert sorted(r["kind"] for r in rows) == ["digest_group", "digest_staff", "digest_volunteer"]
    group = next(r for r in rows if r["kind"] == "digest_group")
    assert [t["title"] for t in json.loads(group["payload"])["open_tasks"]] == ["Buy rice"]
    assert next(r for r in rows if r["kind"] == "digest_staff")["member_id"] == staff
    vol_row = next(r for r in rows if r["kind"] == "digest_volunteer")
    assert vol_row["member_id"] == vol and json.loads(vol_row["payload"])["matching"][0]["title"] == "Buy rice"
    # The next local day, again once.
    assert await digest.sweep_digests(db, at8 + timedelta(days=1)) == 3


async def test_missed_digest_is_sent_late_the_same_day_but_not_the_next(db: Database) -> None:
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True)
    await make_task(db, now, cid, res, requester_id=res)
    # Down from 07:00 to 15:00 local: sent once when back.
    assert await digest.sweep_digests(db, now + timedelta(hours=7)) == 1
    # Down for a whole day after that: the next day's digest goes out once, the missed one never.
    assert await digest.sweep_digests(db, now + timedelta(days=2, hours=3)) == 1
    assert len(await _digests(db)) == 2


async def test_berlin_digest_follows_daylight_saving(db: Database) -> None:
    # Europe/Berlin moves to summer time on 2026-03-29: 08:00 local is 07:00 UTC before, 06:00 UTC after.
    day1 = datetime(2026, 3, 28, 6, 59, tzinfo=UTC)
    cid = await make_community(db, day1, timezone="Europe/Berlin", digest_time="08:00")
    res = await make_member(db, day1, cid, resident=True)
    await make_task(db, day1, cid, res, requester_id=res)
    assert await digest.sweep_digests(db, day1) == 0                             # 07:59 CET
    assert await digest.sweep_digests(db, datetime(2026, 3, 28, 7, 0, tzinfo=UTC)) == 1   # 08:00 CET
    assert await digest.sweep_digests(db, datetime(2026, 3, 29, 5, 59, tzinfo=UTC)) == 0  # 07:59 CEST
    assert await digest.sweep_digests(db, datetime(2026, 3, 29, 6, 0, tzinfo=UTC)) == 1   # 08:00 CEST
    assert await digest.sweep_digests(db, datetime(2026, 3, 29, 21, 59, tzinfo=UTC)) == 0  # 23:59, same day


async def test_yesterday_counts_use_the_local_day_across_dst(db: Database) -> None:
    # 2026-03-29 in Berlin is 23 hours long: 2026-03-28 23:00 UTC .. 2026-03-29 22:00 UTC.
    t0 = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    cid = await make_community(db, t0, timezone="Europe/Berlin")
    res = await make_member(db, t0, cid, resident=True)
    vol = await make_member(db, t0, cid, volunteer=True, name="Wang")
    inside = await make_task(db, t0, cid, res, state="completed", completed_at=to_db(datetime(2026, 3, 29, 21, 30, tzinfo=UTC)))
    await make_task(db, t0, cid, res, state="completed", completed_at=to_db(datetime(2026, 3, 29, 22, 30, tzinfo=UTC)))
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=vol, amount=3, reason="task_completed", key="k1",
                            now=datetime(2026, 3, 29, 21, 30, tzinfo=UTC), task_id=inside)
    async with db.transaction() as conn:
        data = await digest.group_digest(conn, cid, datetime(2026, 3, 30, 6, 0, tzinfo=UTC), "Europe/Berlin")
    assert data is not None
    assert data["completed_yesterday"] == 1  # 22:30 UTC is already Monday in Berlin
    assert data["points_yesterday"] == 3
    assert [x["name"] for x in data["top_volunteers"]] == ["Wang"]


async def test_volunteer_who_turned_it_off_gets_none_and_hour_is_theirs(db: Database) -> None:
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True)
    off = await make_member(db, now, cid, volunteer=True, digest_enabled=0, skills='["shopping"]')
    late = await make_member(db, now, cid, volunteer=True, digest_hour=18, skills='["shopping"]')
    await make_task(db, now, cid, res, requester_id=res)
    await digest.sweep_digests(db, now)
    assert [r["member_id"] for r in await _digests(db) if r["kind"] == "digest_volunteer"] == []
    await digest.sweep_digests(db, now + timedelta(hours=10))  # 18:00
    assert [r["member_id"] for r in await _digests(db) if r["kind"] == "digest_volunteer"] == [late]
    assert off != late


async def test_volunteer_digest_lists_todays_claimed_tasks(db: Database) -> None:
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True)
    vol = await make_member(db, now, cid, volunteer=True)
    today = await make_task(db, now, cid, res, requester_id=res, title="Walk to clinic",
                            starts_at=to_db(now + timedelta(hours=6)))
    await make_task(db, now, cid, res, requester_id=res, title="Next week", starts_at=to_db(now + timedelta(days=6)))
    await make_claim(db, now, today, vol)
    async with db.transaction() as conn:
        data = await digest.volunteer_digest(conn, vol, now, "Asia/Shanghai")
    assert data is not None and [x["title"] for x in data["today"]] == ["Walk to clinic"]


async def test_volunteer_digest_leaves_out_a_held_request_whose_day_is_over(db: Database) -> None:
    """A request for "by tonight" asked yesterday (no start, ended at yesterday's midnight) that the
    volunteer still holds is not one of today's tasks; one that ends tonight is."""
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)  # 08:00 on the 4th in Shanghai
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True)
    vol = await make_member(db, now, cid, volunteer=True)
    midnight = datetime(2026, 5, 3, 16, 0, tzinfo=UTC)  # 00:00 on the 4th in Shanghai
    for title, ends in (("Yesterday's", midnight - timedelta(seconds=1)), ("Tonight's", midnight + timedelta(days=1)),
                        ("Any time", None)):
        tid = await make_task(db, now, cid, res, requester_id=res, title=title, ends_at=ends and to_db(ends))
        await make_claim(db, now, tid, vol)
    async with db.transaction() as conn:
        data = await digest.volunteer_digest(conn, vol, now, "Asia/Shanghai")
    assert data is not None and sorted(x["title"] for x in data["today"]) == ["Any time", "Tonight's"]



async def test_volunteer_digest_lists_a_request_for_today_or_tomorrow_on_its_own_day(db: Database) -> None:
    """Requests asked for "Today" or "Tomorrow" (no start, no end: the /request dialog's words) that the
    volunteer holds are today's on that day only: yesterday's "Today" is over, today's "Tomorrow" is not
    yet; yesterday's "Tomorrow" is today's, and "As soon as possible" is every day's."""
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)  # 08:00 on the 4th in Shanghai
    yesterday = now - timedelta(days=1)  # 08:00 on the 3rd
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True)
    vol = await make_member(db, now, cid, volunteer=True)
    for title, when, asked in (("Today's, asked yesterday", "today", yesterday), ("Today's", "today", now),
                               ("Tomorrow's", "tomorrow", now), ("Tomorrow's, asked yesterday", "tomorrow", yesterday),
                               ("At once", "asap", yesterday)):
        tid = await make_task(db, asked, cid, res, requester_id=res, title=title, when_kind=when)
        await make_claim(db, asked, tid, vol)
    async with db.transaction() as conn:
        data = await digest.volunteer_digest(conn, vol, now, "Asia/Shanghai")
    assert data is not None
    assert sorted(x["title"] for x in data["today"]) == ["At once", "Today's", "Tomorrow's, asked yesterday"]

async def test_staff_digest_lists_unreachable_volunteers(db: Database) -> None:
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True)
    vol = await make_member(db, now, cid, volunteer=True, name="Zhao", reachable=0)
    tid = await make_task(db, now, cid, res, requester_id=res)
    await make_claim(db, now, tid, vol)
    async with db.transaction() as conn:
        data = await digest.staff_digest(conn, cid, now)
    assert data is not None and [x["name"] for x in data["unreachable"]] == ["Zhao"]


async def test_renderers_make_valid_text_in_both_languages(db: Database) -> None:
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True)
    await make_task(db, now, cid, res, requester_id=res, title="<b>Fix & mend</b>")
    async with db.transaction() as conn:
        g = await digest.group_digest(conn, cid, now, "Asia/Shanghai")
    assert g is not None
    for lang in ("zh", "en"):
        rctx = RenderContext(db, translator(lang), lang, -1, None, "bot")
        text = render_group_digest(rctx, g)
        assert "&lt;b&gt;Fix &amp; mend&lt;/b&gt;" in text and len(text) <= 4096
        assert render_volunteer_digest(rctx, {"today": [], "matching": [{"id": 1, "title": None}], "balance": 7,
                                                  "tz": "Asia/Shanghai"})
        assert render_staff_digest(rctx, {"pending_reviews": 1, "open_cases": 0, "waiting_confirmation": 0,
                                          "unclaimed": 0, "unreachable": []})


async def test_run_once_runs_sweeps_and_digests(db: Database) -> None:
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True)
    await make_task(db, now, cid, res, requester_id=res, published_at=to_db(now - timedelta(hours=3)))
    out = await run_once(db, now)
    assert out["digests"] == 1 and out["unclaimed"] >= 1


async def _next(db: Database, member_id: int) -> str | None:
    return await db.fetchval("SELECT digest_next_at FROM members WHERE id = ?", (member_id,))


async def _due_now(db: Database, at: datetime) -> list[int]:
    return [int(r[0]) for r in await db.fetchall(digest_store.DUE_MEMBERS, (to_db(at),))]


async def test_sweep_reads_only_members_due_now(db: Database) -> None:
    """Found by an audit: every sweep (every 30 s) read every member and opened a transaction for each
    one past their digest time. Now each has a next digest time, and a sweep reads only those due."""
    before = datetime(2026, 5, 3, 23, 0, tzinfo=UTC)  # 07:00 Shanghai
    cid = await make_community(db, before, digest_time="08:00")
    res = await make_member(db, before, cid, resident=True)
    vol = await make_member(db, before, cid, volunteer=True, skills='["shopping"]')
    late = await make_member(db, before, cid, volunteer=True, digest_hour=18, skills='["shopping"]')
    off = await make_member(db, before, cid, volunteer=True, digest_enabled=0)
    staff = await make_member(db, before, cid, staff=True)
    await make_task(db, before, cid, res, requester_id=res, published_at=to_db(before - timedelta(hours=5)))
    assert await digest.sweep_digests(db, before) == 0
    at8, at18 = "2026-05-04T00:00:00.000000Z", "2026-05-04T10:00:00.000000Z"  # 08:00 and 18:00 Shanghai
    assert [await _next(db, m) for m in (vol, late, off, staff, res)] == [at8, at18, None, at8, None]
    assert await _due_now(db, before + timedelta(minutes=59)) == []      # 07:59: nobody to read
    assert sorted(await _due_now(db, before + timedelta(hours=1))) == sorted([vol, staff])
    assert await digest.sweep_digests(db, before + timedelta(hours=1)) == 3  # group, staff, vol
    tomorrow8 = "2026-05-05T00:00:00.000000Z"
    assert [await _next(db, m) for m in (vol, late, staff)] == [tomorrow8, at18, tomorrow8]
    assert await _due_now(db, before + timedelta(hours=10, minutes=59)) == []
    assert await db.fetchval("SELECT digest_next_at FROM communities WHERE id = ?", (cid,)) == tomorrow8
    assert await digest.sweep_digests(db, before + timedelta(hours=11)) == 1  # 18:00: the late one
    assert await _next(db, late) == "2026-05-05T10:00:00.000000Z"


async def test_due_members_and_communities_come_from_an_index(db: Database) -> None:
    only_sqlite(db, "SQLite's query plan")
    for sql in (digest_store.DUE_MEMBERS, digest_store.DUE_COMMUNITIES):
        plan = " | ".join(r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, ("2026-05-04",)))
        assert "USING" in plan and "_digest_due" in plan and "SCAN" not in plan, plan


async def test_schedule_follows_changes_to_settings_registration_and_the_community(db: Database) -> None:
    from bot.services import notifications

    now = datetime(2026, 5, 4, 1, 0, tzinfo=UTC)  # 09:00 Shanghai, after today's 08:00 digest time
    cid = await make_community(db, now, digest_time="08:00")
    res = await make_member(db, now, cid, resident=True)
    await make_task(db, now, cid, res, requester_id=res)
    done = await make_member(db, now, cid, volunteer=True, skills='["shopping"]')
    late = await make_member(db, now, cid, volunteer=True, digest_hour=18, skills='["shopping"]')
    newcomer = await make_member(db, now, cid, volunteer=True, registered=False, skills='["shopping"]')
    assert await digest.sweep_digests(db, now) == 2  # group and `done` (late for 08:00, the same day)
    assert await _next(db, newcomer) is None
    # Moving one's hour later after today's digest: nothing more today, tomorrow at the new hour.
    assert await notifications.update_member_settings(db, done, now, digest_hour=12)
    assert await _due_now(db, now) == [done]
    assert await digest.sweep_digests(db, now) == 0
    assert await _next(db, done) == "2026-05-04T04:00:00.000000Z"  # 12:00 today: looked at again, but
    assert await digest.sweep_digests(db, now + timedelta(hours=3)) == 0    # today's was decided already
    assert await _next(db, done) == "2026-05-05T04:00:00.000000Z"
    # Moving it to an hour already past today: due at once.
    assert await notifications.update_member_settings(db, late, now, digest_hour=7)
    assert await digest.sweep_digests(db, now) == 1
    # Finishing registration schedules them.
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET registered_at = ? WHERE id = ?", (to_db(now), newcomer))
    assert await digest.sweep_digests(db, now) == 1
    assert await _next(db, newcomer) == "2026-05-05T00:00:00.000000Z"
    # Turning it off: never read again until it is turned on.
    assert await notifications.update_member_settings(db, newcomer, now, digest_enabled=False)
    await digest.sweep_digests(db, now)
    assert await _next(db, newcomer) is None
    # The community moves to Berlin (08:00 CEST is 06:00 UTC): everybody follows, the group too.
    async with db.transaction() as conn:
        await conn.execute("UPDATE communities SET timezone = 'Europe/Berlin' WHERE id = ?", (cid,))
    assert await digest.sweep_digests(db, now) == 0  # 03:00 in Berlin
    assert await _next(db, late) == "2026-05-04T05:00:00.000000Z"          # their own 07:00, Berlin
    assert await db.fetchval("SELECT digest_next_at FROM communities WHERE id = ?", (cid,)) == "2026-05-04T06:00:00.000000Z"
    # A setting that does not touch the digest leaves the schedule alone.
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET display_name = 'X', digest_hour = digest_hour WHERE id = ?", (late,))
    assert await _next(db, late) == "2026-05-04T05:00:00.000000Z"


async def test_digests_name_a_request_as_its_card_does_never_by_number(db: Database) -> None:
    """Found in the stories: both digests listed a resident's request (no title) as "任务 #7". Now a
    request reads as its card: category, the start of the description masked, the area; an event
    as its time, title and area. The requester's name and phone never reach the group."""
    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
    cid = await make_community(db, now)
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en) VALUES (?, 'shopping', '买菜购物', 'Shopping')", (cid,))
        cur = await conn.execute("INSERT INTO areas (community_id, name) VALUES (?, '幸福里3栋') RETURNING id", (cid,))
        area = await returned_id(cur)
    res = await make_member(db, now, cid, resident=True, name="郭秀兰")
    vol = await make_member(db, now, cid, volunteer=True, area_id=area)
    tid = await make_task(db, now, cid, res, requester_id=res, title=None, area_id=area,
                          description="郭秀兰想买两个包子，电话13812345678")
    async with db.transaction() as conn:
        cur = await conn.execute("INSERT INTO organisations (community_id, name, invite_code, created_at)"
                                 " VALUES (?, '烟草局', 'TOB1', ?) RETURNING id", (cid, to_db(now)))
        org = await returned_id(cur)
    await make_task(db, now, cid, res, kind="event", title="义诊", category="other", area_id=area, slots=20,
                    starts_at=to_db(now + timedelta(days=1, hours=1)), organisation_id=org)
    async with db.transaction() as conn:
        g = await digest.group_digest(conn, cid, now, "Asia/Shanghai")
        v = await digest.volunteer_digest(conn, vol, now, "Asia/Shanghai")
    assert g is not None and v is not None
    rctx = RenderContext(db, translator("zh"), "zh", -1, None, "bot")
    group, mine = render_group_digest(rctx, g), render_volunteer_digest(rctx, v)
    for text in (group, mine):
        assert f"任务 #{tid}" not in text and "郭秀兰" not in text and "13812345678" not in text
        assert "买菜购物" in text and "想买两个包子" in text and "幸福里3栋" in text
    assert "05-05 09:00 · 义诊 · 幸福里3栋 · 仅限“烟草局”的成员" in group  # an event for one organisation says so
    english = render_group_digest(RenderContext(db, translator("en"), "en", -1, None, "bot"), g)
    assert "Shopping · " in english and "Task #" not in english


async def test_balance_line_does_not_repeat_the_unit(db: Database) -> None:
    """Found in the stories: "您的积分：1 分" said the unit twice."""
    rctx = RenderContext(db, translator("zh"), "zh", -1, None, "bot")
    text = render_volunteer_digest(rctx, {"today": [], "matching": [{"id": 1, "title": "买菜"}], "balance": 1,
                                           "tz": "Asia/Shanghai"})
    assert "您现在有 1 积分。" in text and "1 分" not in text


async def test_volunteer_digest_names_the_settings_button(db: Database) -> None:
    """It said "send /settings"; the menu has a ⚙ Settings button now, and the digest names it."""
    for lang in ("zh", "en"):
        t = translator(lang)
        text = render_volunteer_digest(RenderContext(db, t, lang, -1, None, "bot"),
                                       {"today": [], "matching": [], "balance": 0, "tz": "Asia/Shanghai"})
        assert t("⚙ Settings") in text and "/settings" not in text, text
