"""Old outbox rows and reminder keys are forgotten after 90 days; pending messages never are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.services import housekeeping
from storage.db import Database
from storage.timeutil import to_db

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


async def _outbox(db: Database, key: str, state: str, age_days: int) -> None:
    at = to_db(NOW - timedelta(days=age_days))
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO outbox (dedupe_key, chat_id, kind, not_before, state, created_at)"
                           " VALUES (?, 1, 'text', ?, ?, ?)", (key, at, state, at))


async def test_prune_keeps_what_matters(db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(housekeeping, "BATCH", 3)  # several batches
    for i in range(7):
        await _outbox(db, f"old-sent-{i}", "sent", 120)
    await _outbox(db, "old-failed", "failed", 100)
    await _outbox(db, "old-pending", "pending", 120)      # never sent yet: kept
    await _outbox(db, "old-sending", "sending", 120)      # in flight: kept
    await _outbox(db, "recent-sent", "sent", 10)
    async with db.transaction() as conn:
        for i, age in enumerate((200, 91, 89, 1)):
            await conn.execute("INSERT INTO sent_notifications (key, created_at) VALUES (?, ?)",
                               (f"remind:{i}", to_db(NOW - timedelta(days=age))))
    out = await housekeeping.prune(db, NOW)
    assert out == {"outbox": 8, "sent_notifications": 2, "inbox": 0}
    keys = {r[0] for r in await db.fetchall("SELECT dedupe_key FROM outbox")}
    assert keys == {"old-pending", "old-sending", "recent-sent"}
    assert {r[0] for r in await db.fetchall("SELECT key FROM sent_notifications")} == {"remind:2", "remind:3"}
    # Once a day: a second pass the same day does nothing, the next day runs again.
    await _outbox(db, "old-sent-again", "sent", 120)
    assert await housekeeping.prune(db, NOW + timedelta(hours=1)) == {}
    assert (await housekeeping.prune(db, NOW + timedelta(days=1)))["outbox"] == 1


async def test_records_of_messages_handlers_showed_are_pruned_like_sent_ones(db: Database) -> None:
    """The rows recording a handler's messages that name people (storage.outbox.SHOWN) do not pile up:
    the daily prune deletes them after ``KEEP_DAYS`` with the outbox's sent rows."""
    from bot.services import erasure

    await erasure.record_shown(db, chat_id=42, message_id=1, about=[7], now=NOW - timedelta(days=120))
    await erasure.record_shown(db, chat_id=42, message_id=2, about=[7], now=NOW - timedelta(days=3))
    assert (await housekeeping.prune(db, NOW))["outbox"] == 1
    assert [r[0] for r in await db.fetchall("SELECT message_id FROM outbox WHERE kind = 'shown'")] == [2]
