"""The inbox's storage (storage/inbox.py): redeliveries, claiming in lane order, set-aside rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage import inbox as inbox_store
from storage.db import Database
from storage.inbox import InboxRow, SetAside
from storage.timeutil import to_db


def _update(update_id: int, lane: str, payload: str = "{}", digest: str = "d") -> dict[str, object]:
    return {"update_id": update_id, "user_id": 1, "lane": lane, "digest": digest, "payload": payload,
            "received_at": "2026-05-04T08:00:00.000000Z"}


async def test_a_redelivery_is_ignored_and_a_reused_id_replaces_a_handled_row(db: Database, now: datetime) -> None:
    stamp, lease = to_db(now), to_db(now + timedelta(minutes=5))
    await db.write(lambda conn: inbox_store.store(conn, [_update(1, "p:1", '{"a": 1}')]))
    await db.write(lambda conn: inbox_store.store(conn, [_update(1, "p:1", '{"a": 2}', digest="e")]))  # still waiting
    rows = await db.write(lambda conn: inbox_store.claim(conn, owner="me", now=stamp, lease_until=lease, limit=10))
    assert rows == [InboxRow(1, "p:1", '{"a": 1}', 0, "2026-05-04T08:00:00.000000Z", False)]
    await db.write(lambda conn: inbox_store.mark_handled(conn, [(stamp, 1, "me")]))
    assert (await inbox_store.counts(db))["handled"] == 1
    await db.write(lambda conn: inbox_store.store(conn, [_update(1, "p:1", '{"a": 3}', digest="f")]))
    assert (await inbox_store.counts(db))["waiting"] == 1


async def test_rows_taken_back_after_a_stop_fail_are_set_aside_and_put_back(db: Database, now: datetime) -> None:
    stamp, lease = to_db(now), to_db(now + timedelta(minutes=5))
    await db.write(lambda conn: inbox_store.store(conn, [_update(1, "p:1"), _update(2, "p:1"), _update(3, "p:2")]))
    claimed = await db.write(lambda conn: inbox_store.claim(conn, owner="me", now=stamp, lease_until=lease, limit=10))
    assert sorted(r.update_id for r in claimed) == [1, 2, 3]
    assert await db.write(lambda conn: inbox_store.take_back(conn, "me", stamp)) == 3
    later = to_db(now + timedelta(seconds=1))
    # taken back: claimable again at once, marked as maybe handled already
    again = await db.write(lambda conn: inbox_store.claim(conn, owner="me", now=later, lease_until=lease, limit=10))
    assert {r.update_id: r.again for r in again} == {1: True, 2: True, 3: True}
    await db.write(lambda conn: inbox_store.record_failure(conn, update_id=1, owner="me", error="boom", attempts=1,
                                                           lease_until=lease))
    assert (await inbox_store.counts(db))["failed"] == 1
    await db.write(lambda conn: inbox_store.set_aside(conn, update_id=1, error="boom", attempts=4))
    assert await inbox_store.set_aside_rows(db) == [SetAside(1, "p:1", 4, "boom", "2026-05-04T08:00:00.000000Z")]
    assert await inbox_store.retry_set_aside(db, 2) == 0
    assert await inbox_store.retry_set_aside(db, 1) == 1
    assert await inbox_store.set_aside_rows(db) == []
