"""Staff's /series list (bot/services/series.py ``listing``, bot/conversations/series.py ``describe``):
the two halves of a series split by an edit from a later day are listed side by side and named as one
series; a series with nothing left to post is still listed while its events posted are to come."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from bot.conversations.series import describe
from bot.i18n import translator
from bot.services import series
from storage.db import Database
from tests.services.test_series import TZ, _saturday_series, _setup


async def test_the_halves_of_a_split_series_are_listed_as_one_series(db: Database, now: datetime) -> None:
    _, staff = await _setup(db, now)
    other = await series.create_series(db, now, staff, _saturday_series(now, weeks=3))
    eight = _saturday_series(now)
    sid = await series.create_series(db, now, staff, replace(eight, template=replace(eight.template, submit_key="s:2")))
    await series.post_due(db, now)
    s = await series.load(db, sid)
    assert s is not None and s.next_day is not None
    split_day = date.fromisoformat(s.next_day) + timedelta(days=14)
    plan = await series.edit_from(db, now, staff, sid, "slots", "5", split_day)
    assert plan.split and plan.continued_as is not None
    new = plan.continued_as

    cid = s.community_id
    listed = await series.listing(db, cid, now)
    assert [one.series.id for one in listed] == [sid, new, other]  # the halves side by side, newest first
    first, second = listed[0], listed[1]
    assert [c.id for c in first.goes_on_as] == [new] and first.split_from is None
    assert second.split_from == sid and second.goes_on_as == ()

    t = translator("en")
    said = describe(t, first.series, first)
    last = (split_day - timedelta(days=1)).isoformat()
    assert f"to {last}." in said and f"Changed from {split_day} on: from then it goes on as #{new}." in said
    assert "Stopped" not in said, said
    said = describe(t, second.series, second)
    assert f"The same series as #{sid}, changed from {split_day} on." in said
    zh = describe(translator("zh"), second.series, second)
    assert f"#{sid}" in zh and "same series" not in zh, zh


async def test_a_series_with_nothing_left_to_post_is_listed_while_its_events_are_to_come(
        db: Database, now: datetime) -> None:
    _, staff = await _setup(db, now)
    sid = await series.create_series(db, now, staff, _saturday_series(now, weeks=1))
    await series.post_due(db, now)
    s = await series.load(db, sid)
    assert s is not None and s.next_day is None   # its only event is posted: nothing left to post
    event = await db.fetchval("SELECT task_id FROM series_occurrences WHERE series_id = ?", (sid,))

    listed = await series.listing(db, s.community_id, now)
    assert [(one.series.id, one.posted_ahead) for one in listed] == [(sid, (event,))]
    said = describe(translator("en"), s, listed[0])
    assert "Nothing left to post" in said and f"(#{event}) can be changed or cancelled on its card" in said
    zh = describe(translator("zh"), s, listed[0])
    assert f"#{event}" in zh and "Nothing left" not in zh, zh

    # Once its event has started, or was cancelled, nothing is left to see or stop: not listed.
    start = datetime.fromisoformat(s.first_day + "T" + s.start_time).replace(tzinfo=TZ)
    assert await series.listing(db, s.community_id, start - timedelta(minutes=1)) != []
    assert await series.listing(db, s.community_id, start) == []
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET state = 'cancelled' WHERE id = ?", (event,))
    assert await series.listing(db, s.community_id, now) == []
