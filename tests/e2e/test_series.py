"""Recurring events through the real bot: staff publish a weekly series of 8; the first Saturday
within the horizon is posted as its own card, the next when the clock moves on; an edit of the
places from the next event not yet posted reaches those, not the one already posted before that day;
a stop from a date leaves none after it, and the series stays listed (without buttons) while
the last event it posted is still to come. An edit of the points from today reaches the events already
posted that have not started (their cards redrawn), never a finished one or the points it credited;
volunteers cannot edit a series; bad values get a polite answer; a double tap changes nothing more."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.services import completion, series
from storage.db import Database, open_database
from storage.timeutil import from_db
from tests.conftest import UNPACED
from tests.e2e.test_request_flow import TZ, T, _card, _mark, _next, _press, _say
from tests.factories import make_community, make_member


async def _bot(fake: FakeTelegram, path: str, tmp_path: Path, clock: datetime | None, name: str) -> BotProcess:
    fake.set_flood_limits(False)  # the series' rules, not pacing, are the point (tests/conftest.py: UNPACED)
    env = {**UNPACED, "BOT_CLOCK_START": clock.isoformat()} if clock else UNPACED
    proc = BotProcess(fake, path, env=env, log_path=str(tmp_path / f"{name}.log"))
    await proc.start()
    return proc


async def _events(db: Database) -> list[Any]:
    return list(await db.fetchall("SELECT id, starts_at, slots FROM tasks WHERE kind = 'event' ORDER BY starts_at"))


async def _new_card(fake: FakeTelegram, group: Any, known: set[int]) -> Any:
    """The next event card in the group that is not one of ``known``."""
    def ok(m: Any) -> bool:
        return any(str(b.get("callback_data", "")).startswith("cl:") and int(b["callback_data"][3:]) not in known
                   for b in m.inline_buttons)
    return await fake.wait_for_message(group, ok, timeout=T, after_id=0)


async def _publish_weekly(fake: FakeTelegram, stf: Any, start: datetime) -> None:
    msg = await _say(fake, stf, "/publish", button="d:mode:")
    await _press(fake, stf, msg, "d:mode:event", contains="title of the event")
    msg = await _say(fake, stf, "Saturday clean-up", button="d:cat:")
    msg = await _press(fake, stf, msg, "d:cat:other", button="d:desc:")
    await _press(fake, stf, msg, "d:desc:-skip", contains="How many volunteers")
    await _say(fake, stf, "3", contains="event start")
    await _say(fake, stf, start.strftime("%Y-%m-%d %H:%M"), contains="event end")
    msg = await _say(fake, stf, "11:00", button="d:repeat:", contains="repeat")
    assert "Every week on Saturday" in str(msg.inline_buttons), msg.inline_buttons
    msg = await _press(fake, stf, msg, "d:repeat:weekly", button="d:weeks:")
    await _press(fake, stf, msg, "d:weeks:8", contains="How many points")
    summary = await _say(fake, stf, "2", button="d:confirm:", contains="every Saturday, for 8 weeks")
    mark = _mark(fake, stf)
    await fake.press_button(stf, summary, "d:confirm:submit")
    await _next(fake, stf, mark, contains="series is saved: 8 events")


async def _series_action(fake: FakeTelegram, stf: Any, which: str, answer: str, expect: str) -> Any:
    listing = await _say(fake, stf, "/series", button="d:pick:")
    sid = next(str(b["callback_data"])[len("d:pick:") + 1:] for b in listing.inline_buttons
               if str(b.get("callback_data", "")).startswith(f"d:pick:{which}"))
    await _press(fake, stf, listing, f"d:pick:{which}{sid}", contains="?")
    try:
        return await _say(fake, stf, answer, contains=expect)
    except TimeoutError:
        chat = fake.private_chat(stf)
        raise AssertionError([m.text for m in chat.messages][-4:]) from None


async def _edit(fake: FakeTelegram, stf: Any, field: str, value: str, day: str, *, expect: str) -> Any:
    """/series → ✏ Edit → field → value → from (a button) → the confirm step, pressed; the answer."""
    listing = await _say(fake, stf, "/series", button="d:pick:e")
    data = next(str(b["callback_data"]) for b in listing.inline_buttons
                if str(b.get("callback_data", "")).startswith("d:pick:e"))
    msg = await _press(fake, stf, listing, data, button="d:field:")
    await _press(fake, stf, msg, f"d:field:{field}", contains="Please type")
    msg = await _say(fake, stf, value, button="d:from:")
    confirm = await _press(fake, stf, msg, f"d:from:{day}", button="d:confirm:", contains=expect)
    mark = _mark(fake, stf)
    await fake.press_button(stf, confirm, "d:confirm:yes")
    return await _next(fake, stf, mark, contains="Done.")


async def test_weekly_series_posts_ahead_follows_edits_and_stops(fake: FakeTelegram, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    stf = fake.add_user("Staff", language_code="en")
    vol = fake.add_user("Vol", language_code="en")
    group = fake.add_group("Vols", creator=stf, members=[vol])
    await fake.add_bot_to_group(group, added_by=stf, admin=True)
    for u in (stf, vol):
        await fake.send_text(u, None, "/help")
    path = str(tmp_path / "s.db")
    db = await open_database(path)
    cid = await make_community(db, now, group_chat_id=group.id, language="en", timezone="Asia/Shanghai")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en) VALUES (?, 'other', '其他', 'Other')",
                           (cid,))
    await make_member(db, now, cid, tg_user_id=stf.id, staff=True, volunteer=True, language="en")
    await make_member(db, now, cid, tg_user_id=vol.id, volunteer=True, language="en")
    local = now.astimezone(TZ)
    first = (local + timedelta(days=(5 - local.weekday()) % 7 or 7)).replace(hour=9, minute=0, second=0, microsecond=0)
    proc = await _bot(fake, path, tmp_path, None, "b1")
    try:
        await _publish_weekly(fake, stf, first)
        events = await _events(db)
        assert len(events) == 1 and events[0]["slots"] == 3  # only the first Saturday is within 7 days
        assert from_db(events[0]["starts_at"]).astimezone(TZ) == first
        await _card(fake, group, events[0]["id"])  # its own card in the group
        await _series_action(fake, stf, "a", "7", "now posted 7 days before it starts")
        assert await db.fetchval("SELECT series_days_ahead FROM communities WHERE id = ?", (cid,)) == 7
        said = await _edit(fake, stf, "slots", "5", "next", expect="the places 3 → 5")
        assert "already posted" not in (said.text or "") and "stays" not in (said.text or ""), said.text
        stop = (first + timedelta(days=14)).date()  # the third Saturday and after: none
        await _series_action(fake, stf, "s", stop.isoformat(), f"no more events of this series from {stop}")
    finally:
        await proc.stop()
    # The clock moves on past the second Saturday's posting time (a week before it): it is posted
    # with the new places; the first keeps its own. Two bot runs at that time post it once.
    for name in ("b2", "b3"):
        proc = await _bot(fake, path, tmp_path, first + timedelta(hours=1), name)
        try:
            events = await _events(db)
            if name == "b2":
                await _new_card(fake, group, {int(events[0]["id"])})
            else:  # the job has run in this process too (and posted nothing more)
                await fake.wait_for(lambda p=proc: "series job: posted 0 events" in p.log(), timeout=T)
                # Nothing is left to post (stopped from the third), but the second is still to come:
                # the series is listed, saying so, without buttons to edit or stop it.
                second = int(max(events, key=lambda e: str(e["starts_at"]))["id"])
                listing = await _say(fake, stf, "/series", contains="Nothing left to post")
                assert f"(#{second}) can be changed or cancelled on its card" in (listing.text or ""), listing.text
                assert "no recurring events running" in (listing.text or "")
                assert not any(str(b.get("callback_data", "")).startswith(("d:pick:e", "d:pick:s"))
                               for b in listing.inline_buttons)
        finally:
            await proc.stop()
    events = await _events(db)
    assert [e["slots"] for e in events] == [3, 5], [tuple(e) for e in events]
    assert from_db(events[1]["starts_at"]).astimezone(TZ) == first + timedelta(days=7)
    # Weeks later, nothing from the stop date on was posted.
    proc = await _bot(fake, path, tmp_path, first + timedelta(days=20), "b4")
    try:
        listing = await _say(fake, stf, "/series", contains="no recurring events running")
        assert listing is not None
    finally:
        await proc.stop()
    events = await _events(db)
    assert all(from_db(e["starts_at"]).astimezone(TZ).date() < stop for e in events)
    assert len(events) == 2
    posted = await db.fetchval("SELECT COUNT(*) FROM series_occurrences WHERE task_id IS NOT NULL")
    assert posted == 2
    assert isinstance(stop, date)
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    await db.close()


async def test_edit_from_today_reaches_posted_events_not_started_never_finished_ones(fake: FakeTelegram,
                                                                                      tmp_path: Path) -> None:
    now = datetime.now(UTC)
    stf = fake.add_user("Staff", language_code="en")
    zh_stf = fake.add_user("Zhang", language_code="zh-hans")
    vol = fake.add_user("Vol", language_code="en")
    group = fake.add_group("Vols", creator=stf, members=[vol, zh_stf])
    await fake.add_bot_to_group(group, added_by=stf, admin=True)
    for u in (stf, zh_stf, vol):
        await fake.send_text(u, None, "/help")
    path = str(tmp_path / "s.db")
    db = await open_database(path)
    cid = await make_community(db, now, group_chat_id=group.id, language="en", timezone="Asia/Shanghai")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en) VALUES (?, 'other', '其他', 'Other')",
                           (cid,))
    await make_member(db, now, cid, tg_user_id=stf.id, staff=True, volunteer=True, language="en")
    await make_member(db, now, cid, tg_user_id=zh_stf.id, staff=True, language="zh")
    vol_id = await make_member(db, now, cid, tg_user_id=vol.id, volunteer=True, language="en")
    local = now.astimezone(TZ)
    first = (local + timedelta(days=(5 - local.weekday()) % 7 or 7)).replace(hour=9, minute=0, second=0, microsecond=0)
    proc = await _bot(fake, path, tmp_path, None, "b1")
    try:
        await _publish_weekly(fake, stf, first)
        await _series_action(fake, stf, "a", "14", "now posted 14 days before it starts")
        await fake.wait_for(lambda: len(_sync_events(path)) == 2, timeout=T)
        a, b = (int(e) for e in _sync_events(path))
        card_a, card_b = await _card(fake, group, a), await _card(fake, group, b)
        for card, ev in ((card_a, a), (card_b, b)):  # the volunteer takes a place on both
            q = await fake.press_button(vol, card, f"cl:{ev}")
            await fake.wait_callback_answer(q, timeout=T)
        await completion.close_event(db, task_id=a, tg_user_id=stf.id, now=datetime.now(UTC))  # A is over
        ledger = [tuple(r) for r in await db.fetchall("SELECT member_id, delta, task_id FROM ledger")]
        assert ledger == [(vol_id, 2, a)]

        # Volunteers cannot edit a series; staff get a polite answer to a bad value, and a confirm step.
        await _say(fake, vol, "/series", contains="only community staff")
        listing = await _say(fake, stf, "/series", button="d:pick:e")
        data = next(str(x["callback_data"]) for x in listing.inline_buttons
                    if str(x.get("callback_data", "")).startswith("d:pick:e"))
        msg = await _press(fake, stf, listing, data, button="d:field:")
        await _press(fake, stf, msg, "d:field:points", contains="from 0 to 100")
        await _say(fake, stf, "101", contains="Please give a whole number from 0 to 100.")
        await _say(fake, stf, "5", button="d:from:")
        msg = await _say(fake, stf, "2020-01-01", button="d:from:", contains="That day has already passed")
        confirm = await _press(fake, stf, msg, "d:from:today", button="d:confirm:", contains="the points 2 → 5")
        assert f"#{b} takes it too" in (confirm.text or "") and f"#{a} stays as it is" in (confirm.text or ""), \
            confirm.text
        mark = _mark(fake, stf)
        for _ in range(2):  # a double tap
            q = await fake.press_button(stf, confirm, "d:confirm:yes")
            await fake.wait_callback_answer(q, timeout=T)
        said = await _next(fake, stf, mark, contains="Done.")
        assert "the points 2 → 5" in (said.text or "")
        await fake.wait_for(lambda: "Points: 5" in (card_b.text or ""), timeout=T)  # B's card redrawn
        await fake.wait_for_message(vol, lambda m: f"Staff changed task #{b}" in str(m.text or ""), timeout=T)
        zh = await _say(fake, zh_stf, "/series", button="d:pick:e")
        assert "✏ 修改 #" in str(zh.inline_buttons)
    finally:
        await proc.stop()
    rows = {int(r[0]): int(r[1]) for r in await db.fetchall("SELECT id, points FROM tasks WHERE kind = 'event'")}
    assert rows == {a: 2, b: 5}  # the finished event keeps its points; the other takes the new ones
    assert "Points: 2" in (card_a.text or "")
    assert [tuple(r) for r in await db.fetchall("SELECT member_id, delta, task_id FROM ledger")] == ledger
    told = await db.fetchval("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%Staff changed task%'")
    assert told == 1  # the double tap told nobody twice
    assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action = 'series.edit'") == 1
    assert await db.fetchval("SELECT points FROM event_series") == 5  # the events still to post, too
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    await db.close()


def _sync_events(path: str) -> list[int]:
    import sqlite3
    con = sqlite3.connect(path)
    try:
        return [int(r[0]) for r in con.execute("SELECT id FROM tasks WHERE kind = 'event' ORDER BY starts_at")]
    finally:
        con.close()


async def test_a_series_that_ends_during_an_edit_is_said_plainly(fake: FakeTelegram, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    stf = fake.add_user("Staff", language_code="en")
    group = fake.add_group("Vols", creator=stf, members=[])
    await fake.add_bot_to_group(group, added_by=stf, admin=True)
    await fake.send_text(stf, None, "/help")
    path = str(tmp_path / "s.db")
    db = await open_database(path)
    cid = await make_community(db, now, group_chat_id=group.id, language="en", timezone="Asia/Shanghai")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en) VALUES (?, 'other', '其他', 'Other')",
                           (cid,))
    staff_id = await make_member(db, now, cid, tg_user_id=stf.id, staff=True, volunteer=True, language="en")
    local = now.astimezone(TZ)
    first = (local + timedelta(days=(5 - local.weekday()) % 7 or 7)).replace(hour=9, minute=0, second=0, microsecond=0)
    proc = await _bot(fake, path, tmp_path, None, "b1")
    try:
        await _publish_weekly(fake, stf, first)
        listing = await _say(fake, stf, "/series", button="d:pick:e")
        data = next(str(x["callback_data"]) for x in listing.inline_buttons
                    if str(x.get("callback_data", "")).startswith("d:pick:e"))
        msg = await _press(fake, stf, listing, data, button="d:field:")
        await _press(fake, stf, msg, "d:field:title", contains="Please type")
        # Meanwhile another staff member stops the series from its next event: nothing is left to post.
        s = await series.load(db, int(data[len("d:pick:e"):].partition("~")[0]))  # without the dialog's mark
        assert s is not None and s.next_day is not None
        await series.stop_from(db, datetime.now(UTC), staff_id, s.id, date.fromisoformat(s.next_day))
        said = await _say(fake, stf, "Park clean-up", contains="no longer exists or has ended")
        assert "None" not in (said.text or ""), said.text
        assert not any(str(b.get("callback_data", "")).startswith("d:") for b in said.inline_buttons), said.text
    finally:
        await proc.stop()
    assert await db.fetchval("SELECT title FROM event_series") == "Saturday clean-up"
    assert fake.errors == [], [(c.method, c.description) for c in fake.errors]
    await db.close()
