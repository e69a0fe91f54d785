"""The outbox drain's storage: typed due rows, outcomes, holds, merged rows, chats that move, and
the demo kit's read-only looks (storage/outbox.py, storage/cards.py, storage/readonly.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from storage import cards as card_store
from storage import outbox as outbox_store
from storage import readonly
from storage.db import Database, DatabaseError
from storage.outbox import OutboxRow, enqueue
from storage.timeutil import to_db
from tests.both import only_sqlite
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task


async def _queue(db: Database, now: datetime, chat_id: int, key: str, kind: str = "text", **kw: object) -> None:
    async with db.transaction() as conn:
        await enqueue(conn, chat_id=chat_id, kind=kind, now=now, payload={"message": key}, dedupe_key=key, **kw)  # type: ignore[arg-type]


async def _state(db: Database, key: str) -> tuple[object, ...]:
    row = await db.fetchone("SELECT state, attempts, last_error, not_before, chat_id FROM outbox WHERE dedupe_key = ?",
                            (key,))
    assert row is not None
    return tuple(row)


async def test_due_rows_come_typed_and_only_when_due(db: Database, now: datetime) -> None:
    await _queue(db, now, 7, "now")
    await _queue(db, now, 7, "later", not_before=now + timedelta(minutes=5))
    rows = await outbox_store.next_batch(db, now, 10)
    assert [(r.dedupe_key, r.chat_id, r.state, r.attempts, r.merged) for r in rows] == [("now", 7, "pending", 0, ())]
    assert isinstance(rows[0], OutboxRow) and rows[0].payload == '{"message": "now"}'
    assert [r.dedupe_key for r in await outbox_store.next_batch(db, now + timedelta(minutes=5), 10)] == ["now", "later"]


async def test_an_attempt_is_counted_when_sending_and_given_back_on_a_retry_that_asks(db: Database,
                                                                                       now: datetime) -> None:
    await _queue(db, now, 7, "a")
    (row,) = await outbox_store.next_batch(db, now, 1)
    await db.write(lambda conn: outbox_store.mark_sending(conn, row.id))
    assert (await _state(db, "a"))[:2] == ("sending", 1)
    later = now + timedelta(seconds=30)
    async with db.transaction() as conn:
        await outbox_store.retry_at(conn, row.id, when=later, error="429", give_back=True)
    assert await _state(db, "a") == ("pending", 0, "429", to_db(later), 7)
    await db.write(lambda conn: outbox_store.mark_sending(conn, row.id))
    assert await outbox_store.reset_in_flight(db, me="here", lease="outbox", now=now) == 1  # marked by nobody named
    assert (await _state(db, "a"))[:2] == ("pending", 1)


async def test_merged_rows_share_the_outcome_of_the_row_they_went_with(db: Database, now: datetime) -> None:
    for key in ("lead", "m1", "m2"):
        await _queue(db, now, -5, key, kind="honour_group")
    lead, *rest = await outbox_store.next_batch(db, now, 10)
    others = await outbox_store.due_of_kind(db, kind="honour_group", chat_id=-5, after=lead, now=now, limit=10)
    assert [i for i, _ in others] == [r.id for r in rest]
    async with db.transaction() as conn:
        await outbox_store.hold(conn, [lead.id, *(i for i, _ in others)], now + timedelta(seconds=1), "held")
    assert [r.dedupe_key for r in await outbox_store.next_batch(db, now, 10)] == []
    async with db.transaction() as conn:
        assert await outbox_store.settle(conn, lead.id, state="sent", error=None, message_id=3, voice_message_id=None,
                                         now=now)
        await outbox_store.settle_merged(conn, [i for i, _ in others], into=lead.id, state="sent", now=now)
    assert (await _state(db, "m2"))[:3] == ("sent", 0, f"merged into {lead.id}")
    async with db.transaction() as conn:
        await outbox_store.delete(conn, lead.id)
        assert not await outbox_store.settle(conn, lead.id, state="sent", error=None, message_id=3,
                                             voice_message_id=None, now=now)


async def test_rows_follow_a_group_that_became_a_supergroup(db: Database, now: datetime) -> None:
    await _queue(db, now, -5, "waiting")
    await _queue(db, now, -5, "refused")
    rows = {r.dedupe_key: r for r in await outbox_store.next_batch(db, now, 10)}
    await db.write(lambda conn: outbox_store.mark_sending(conn, rows["refused"].id))
    async with db.transaction() as conn:
        await outbox_store.follow_chat(conn, -5, -1005)
        await outbox_store.resend_to(conn, rows["refused"].id, -1005)
    assert await _state(db, "waiting") == ("pending", 0, None, to_db(now), -1005)
    assert await _state(db, "refused") == ("pending", 0, None, to_db(now), -1005)


async def test_the_demo_kit_sees_what_is_left_to_do_on_a_read_only_connection(db: Database, now: datetime,
                                                                               tmp_path: Path) -> None:
    only_sqlite(db, "the demo kit reads the SQLite file read-only")
    cid = await make_community(db, now, group_chat_id=-100)
    staff = await make_member(db, now, cid, staff=True)
    await _queue(db, now, 7, "due")
    tid = await make_task(db, now, cid, staff)
    with readonly.open_readonly(db.path) as con:
        assert outbox_store.count_due(con, now) == 1 and card_store.count_to_draw(con) == 1
        assert readonly.last_id(con, "tasks") == tid and readonly.last_id(con, "rewards") is None
        assert readonly.digest_readers(con) == 1
        assert readonly.applied_migrations(con) == {int(v) for (v,) in await db.fetchall(
            "SELECT version FROM schema_migrations")}
        assert outbox_store.sent_messages(con) == {}
    with pytest.raises(DatabaseError):
        with readonly.open_readonly(tmp_path / "none" / "x.db"):
            pass


async def test_a_batchs_recipients_and_groups_come_in_one_read_with_quiet_hours_zone_and_language(db: Database,
                                                                                now: datetime) -> None:
    cid = await make_community(db, now, timezone="Europe/Berlin")
    started = await make_member(db, now, cid, language="en", started_bot=1, quiet_start="21:00", quiet_end="06:30")
    silent = await make_member(db, now, None, started_bot=0)
    english = await make_community(db, now, group_chat_id=-4242, language="en")
    people, groups = await outbox_store.recipients(db, {started, silent, 999_999}, "Asia/Shanghai", {-4242, -77})
    assert people == {
        started: outbox_store.Recipient(True, "en", "21:00", "06:30", "Europe/Berlin"),
        silent: outbox_store.Recipient(False, "zh", "22:00", "07:00", "Asia/Shanghai"),
    }
    assert groups == {-4242: "en"} and english
    assert await outbox_store.recipients(db, set(), "Asia/Shanghai") == ({}, {})
    assert await outbox_store.recipients(db, set(), "Asia/Shanghai", {-4242}) == ({}, {-4242: "en"})


async def test_rows_sent_together_are_settled_together_and_rows_gone_meanwhile_are_named(db: Database,
                                                                                         now: datetime) -> None:
    for key in ("a", "b", "gone"):
        await _queue(db, now, 7, key)
    a, b, gone = await outbox_store.next_batch(db, now, 10)
    await db.write(lambda conn: outbox_store.mark_sending(conn, [a.id, b.id, gone.id]))
    assert [(await _state(db, k))[:2] for k in ("a", "b", "gone")] == [("sending", 1)] * 3
    async with db.transaction() as conn:
        await outbox_store.delete(conn, gone.id)
    later = now + timedelta(seconds=2)
    missing = await db.write(lambda conn: outbox_store.settle_sent(conn, [(a.id, 11, None), (b.id, 12, 13),
                                                                         (gone.id, 14, None)], later))
    assert missing == [gone.id]
    rows = await db.fetchall("SELECT state, message_id, voice_message_id, sent_at FROM outbox ORDER BY id")
    assert [tuple(r) for r in rows] == [("sent", 11, None, to_db(later)), ("sent", 12, 13, to_db(later))]
