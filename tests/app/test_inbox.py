"""The durable inbox (bot/inbox.py): storing, claiming in order per lane, retries, set-aside, pruning."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from telegram import Update

from bot import inbox as inbox_mod
from bot.clock import FrozenClock
from bot.inbox import Inbox, InboxPollRequest, InboxQueue
from bot.services.housekeeping import prune
from storage.db import Database
from storage.inbox import counts, retry_set_aside
from storage.timeutil import to_db
from tests.both import both_db, pg_server  # noqa: F401  (the db fixture: SQLite, and PostgreSQL under the postgres marker)


def _press(update_id: int, user_id: int, data: str = "x") -> Update:
    return Update.de_json({"update_id": update_id, "callback_query": {
        "id": str(update_id), "from": {"id": user_id, "is_bot": False, "first_name": "P"},
        "chat_instance": "1", "data": data}}, None)


def _text(update_id: int, user_id: int, text: str) -> Update:
    return Update.de_json({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000, "text": text,
        "chat": {"id": user_id, "type": "private", "first_name": "P"},
        "from": {"id": user_id, "is_bot": False, "first_name": "P"}}}, None)


class Recorder:
    def __init__(self, fail: dict[int, int] | None = None, slow: float = 0.0) -> None:
        self.seen: list[int] = []
        self.finals: list[tuple[int, bool]] = []
        self.fail = dict(fail or {})   # update_id -> how many times it fails (99: always)
        self.slow = slow

    async def __call__(self, update: Update, final: bool) -> BaseException | None:
        self.seen.append(update.update_id)
        self.finals.append((update.update_id, final))
        if self.slow:
            await asyncio.sleep(self.slow)
        if self.fail.get(update.update_id, 0) > 0:
            self.fail[update.update_id] -= 1
            return RuntimeError(f"boom {update.update_id}")
        return None


async def _drain(db: Database, ib: Inbox, timeout: float = 20.0) -> None:
    runner = asyncio.create_task(ib.run())
    try:
        for _ in range(int(timeout / 0.05)):
            await asyncio.sleep(0.05)
            await ib.flush_marks()
            c = await counts(db)
            if c["waiting"] == 0:
                break
    finally:
        await ib.stop()
        runner.cancel()


async def test_a_redelivered_update_is_stored_once(db: Database, clock: FrozenClock) -> None:
    ib = Inbox(db, Recorder(), now=clock.now, owner="a")
    await ib.store([_press(1, 10), _press(2, 10)])
    await ib.store([_press(1, 10)])  # Telegram delivers it again
    assert await db.fetchval("SELECT COUNT(*) FROM inbox") == 2
    row = await db.fetchone("SELECT user_id, lane, status, payload FROM inbox WHERE update_id = 1")
    assert row is not None and row["user_id"] == 10 and row["lane"] == "cb:10" and row["status"] == "waiting"
    assert '"data":"x"' in row["payload"]


async def test_the_same_id_with_other_content_replaces_only_a_handled_row(db: Database, clock: FrozenClock) -> None:
    rec = Recorder()
    ib = Inbox(db, rec, now=clock.now, owner="a")
    await ib.store([_press(1, 10, "old")])
    await _drain(db, ib)
    await ib.store([_press(1, 11, "new")])  # numbering started again: a new update
    row = await db.fetchone("SELECT user_id, status FROM inbox WHERE update_id = 1")
    assert row is not None and row["user_id"] == 11 and row["status"] == "waiting"


async def test_everything_is_handled_once_in_order_per_lane(db: Database, clock: FrozenClock) -> None:
    rec = Recorder(slow=0.01)
    ib = Inbox(db, rec, now=clock.now, owner="a")
    updates = []
    for i in range(1, 61):
        user = 100 + i % 3
        updates.append(_press(i, user) if i % 2 else _text(i, user, f"t{i}"))
    await ib.store(updates)
    await _drain(db, ib)
    assert sorted(rec.seen) == list(range(1, 61))
    assert len(rec.seen) == 60
    for user in (100, 101, 102):
        for kind in (1, 0):
            lane = [i for i in rec.seen if 100 + i % 3 == user and i % 2 == kind]
            assert lane == sorted(lane)
    assert await db.fetchval("SELECT COUNT(*) FROM inbox WHERE status = 'handled' AND handled_at IS NOT NULL"
                             " AND payload = ''") == 60


async def test_a_lane_waits_behind_another_instances_unfinished_row(db: Database, clock: FrozenClock) -> None:
    other = Inbox(db, Recorder(), now=clock.now, owner="other")
    await other.store([_press(1, 10), _press(3, 20)])
    taken = await other.claim(limit=1)  # the other instance is handling update 1 of lane cb:10
    assert [r.update_id for r in taken] == [1]
    mine = Inbox(db, Recorder(), now=clock.now, owner="me")
    await mine.store([_press(2, 10)])
    assert [r.update_id for r in await mine.claim()] == [3]  # not 2: it is behind 1
    clock.advance(seconds=inbox_mod.LEASE.total_seconds() + 1)  # the other instance is gone
    assert {1, 2} <= {r.update_id for r in await mine.claim()}


async def test_a_restarted_instance_takes_back_its_unfinished_rows(db: Database, clock: FrozenClock) -> None:
    first = Inbox(db, Recorder(), now=clock.now, owner="host")
    await first.store([_press(1, 10), _press(2, 10)])
    assert len(await first.claim()) == 2  # ... and the process is killed
    rec = Recorder()
    again = Inbox(db, rec, now=clock.now, owner="host")
    await _drain(db, again)
    assert rec.seen == [1, 2]


async def test_a_poison_update_is_retried_then_set_aside_and_the_lane_goes_on(
        db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_mod, "BACKOFF_S", (0.01, 0.02, 0.03))
    rec = Recorder(fail={1: 99, 3: 1})
    ib = Inbox(db, rec, now=clock.now, owner="a")
    await ib.store([_press(1, 10), _press(2, 10), _press(3, 11)])
    await _drain(db, ib)
    assert rec.seen.count(1) == inbox_mod.MAX_ATTEMPTS
    assert [f for u, f in rec.finals if u == 1] == [False] * (inbox_mod.MAX_ATTEMPTS - 1) + [True]
    assert rec.seen.index(2) > max(i for i, u in enumerate(rec.seen) if u == 1)  # in order, after it
    assert rec.seen.count(3) == 2  # failed once, then handled
    row = await db.fetchone("SELECT status, attempts, error FROM inbox WHERE update_id = 1")
    assert row is not None and row["status"] == "set_aside" and row["attempts"] == inbox_mod.MAX_ATTEMPTS
    assert "boom 1" in row["error"]
    assert await db.fetchval("SELECT status FROM inbox WHERE update_id = 2") == "handled"
    assert await db.fetchval("SELECT status FROM inbox WHERE update_id = 3") == "handled"
    assert (await counts(db))["set_aside"] == 1
    # Put back by hand (linli inbox --retry): handled this time.
    assert await retry_set_aside(db) == 1
    rec.fail[1] = 0
    await _drain(db, ib := Inbox(db, rec, now=clock.now, owner="a"))
    assert await db.fetchval("SELECT status FROM inbox WHERE update_id = 1") == "handled"


async def test_webhook_puts_commit_before_returning_and_polling_puts_wait_for_the_request(
        db: Database, clock: FrozenClock) -> None:
    queue = InboxQueue()
    queue.inbox = Inbox(db, Recorder(), now=clock.now, owner="a")
    await queue.put(_press(1, 10))
    assert await db.fetchval("SELECT COUNT(*) FROM inbox") == 1
    queue.deferred = True
    await queue.put(_press(2, 10))
    assert await db.fetchval("SELECT COUNT(*) FROM inbox") == 1
    await queue.flush()  # what the next getUpdates does before it confirms the offset
    assert await db.fetchval("SELECT COUNT(*) FROM inbox") == 2
    sentinel: Any = object()
    await queue.put(sentinel)  # the Application's stop signal passes through
    assert queue.get_nowait() is sentinel


def _get_updates_answer(*updates: dict[str, Any]) -> bytes:
    return json.dumps({"ok": True, "result": list(updates)}).encode()


_CARD_PRESS = {"update_id": 7, "callback_query": {
    "id": "7", "from": {"id": 10, "is_bot": False, "first_name": "P"}, "chat_instance": "1", "data": "cl:3",
    "message": {"message_id": 5, "date": 1_700_000_000, "text": "Card", "chat": {"id": -100, "type": "supergroup"},
                "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
                "reply_markup": {"inline_keyboard": [[{"text": "Claim", "callback_data": "cl:3"}]]}},
    "field_from_a_newer_api": {"kept": True}}}


async def test_long_polling_stores_each_update_as_telegram_sent_it(
        db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The getUpdates request keeps the JSON it received; the inbox row is that JSON, not
    python-telegram-bot's re-serialisation of the parsed objects (which walks every object)."""
    from bot.http_client import AiohttpRequest

    async def telegram(self: Any, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        return 200, _get_updates_answer(_CARD_PRESS)

    monkeypatch.setattr(AiohttpRequest, "do_request", telegram)
    queue = InboxQueue()
    queue.inbox = Inbox(db, Recorder(), now=clock.now, owner="a")
    queue.deferred = True
    request = InboxPollRequest(queue)
    _, body = await request.do_request("https://api/getUpdates", "POST")
    await queue.put(Update.de_json(json.loads(body)["result"][0], None))

    def walk(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the update was serialised again")

    monkeypatch.setattr(Update, "to_dict", walk)
    await queue.flush()  # the next getUpdates commits the batch
    row = await db.fetchone("SELECT payload, digest FROM inbox WHERE update_id = 7")
    assert row is not None and json.loads(row["payload"]) == _CARD_PRESS
    assert row["digest"].startswith("r") and queue.raw == {}


async def test_an_update_handled_before_the_upgrade_is_not_handled_again_when_redelivered(
        db: Database, clock: FrozenClock) -> None:
    """Handled under the former digest (python-telegram-bot's to_dict), then delivered again after a
    crash and an upgrade with the JSON Telegram sent: a redelivery, not a new update."""
    rec = Recorder()
    ib = Inbox(db, rec, now=clock.now, owner="a")
    update = Update.de_json(_CARD_PRESS, None)
    await ib.store([update])
    await _drain(db, ib)
    raw = json.dumps(_CARD_PRESS, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    await ib.store([update], {7: raw})
    await _drain(db, ib)
    assert rec.seen == [7]
    assert await db.fetchval("SELECT status FROM inbox WHERE update_id = 7") == "handled"


async def test_a_failed_commit_keeps_the_updates_for_the_next_try(db: Database, clock: FrozenClock) -> None:
    queue = InboxQueue()
    queue.inbox = Inbox(db, Recorder(), now=clock.now, owner="a")
    queue.deferred = True
    await queue.put(_press(1, 10))
    real = queue.inbox.store

    async def broken(updates: Any, raw: Any = None) -> None:
        raise RuntimeError("database is locked")

    queue.inbox.store = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await queue.flush()
    queue.inbox.store = real  # type: ignore[method-assign]
    await queue.flush()
    assert await db.fetchval("SELECT COUNT(*) FROM inbox") == 1


async def test_handled_rows_are_pruned_after_a_week(db: Database, clock: FrozenClock, now: datetime) -> None:
    ib = Inbox(db, Recorder(fail={3: 99}), now=clock.now, owner="a")
    await ib.store([_press(1, 10), _press(2, 11), _press(3, 12), _press(4, 13)])
    async with db.transaction() as conn:
        await conn.execute("UPDATE inbox SET status = 'handled', handled_at = ? WHERE update_id IN (1, 2)",
                           (to_db(now - timedelta(days=8)),))
        await conn.execute("UPDATE inbox SET status = 'set_aside' WHERE update_id = 3")
    assert (await prune(db, now))["inbox"] == 2
    assert [r[0] for r in await db.fetchall("SELECT update_id FROM inbox ORDER BY update_id")] == [3, 4]


def test_linli_inbox_shows_counts_and_puts_set_aside_updates_back(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main
    from storage.db import open_database

    path = tmp_path / "cli.db"

    async def seed() -> None:
        d = await open_database(str(path))
        ib = Inbox(d, Recorder(), now=FrozenClock().now, owner="a")
        await ib.store([_press(1, 10), _press(2, 11), _press(3, 12)])
        async with d.transaction() as conn:
            await conn.execute("UPDATE inbox SET status = 'set_aside', attempts = 4, error = 'KeyError: x'"
                               " WHERE update_id IN (1, 2)")
        await d.close()

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    assert main(["inbox"]) == 0
    out = capsys.readouterr().out
    assert "waiting: 1" in out and "set aside: 2" in out and "KeyError: x" in out
    assert main(["inbox", "--retry", "2"]) == 0
    assert "1 set-aside update(s) put back" in capsys.readouterr().out
    assert main(["inbox", "--retry"]) == 0
    out = capsys.readouterr().out
    assert "1 set-aside update(s) put back" in out and "waiting: 3" in out and "set aside: 0" in out
    assert main(["inbox", "--retry", "x"]) == 2


async def test_the_webhook_answers_200_only_after_the_commit_and_500_without_a_database(
        db: Database, clock: FrozenClock) -> None:
    import json
    import socket

    import aiohttp
    from telegram import Bot
    from telegram.ext._utils.webhookhandler import WebhookServer

    from bot.webhook import InboxWebhookApp

    queue = InboxQueue()
    queue.inbox = Inbox(db, Recorder(), now=clock.now, owner="a")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = WebhookServer("127.0.0.1", port, InboxWebhookApp("/telegram", Bot("1:x"), queue), None, None)
    ready = asyncio.Event()
    await server.serve_forever(ready=ready)
    await ready.wait()
    body = json.dumps(_press(7, 10).to_dict())
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/telegram", data=body,
                                 headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 200
            assert await db.fetchval("SELECT COUNT(*) FROM inbox WHERE update_id = 7") == 1
            await db.close()  # the database is gone: Telegram must be told to deliver again
            async with http.post(f"http://127.0.0.1:{port}/telegram", data=body.replace('"update_id": 7', '"update_id": 8'),
                                 headers={"Content-Type": "application/json"}) as resp:
                assert resp.status >= 500
    finally:
        await server.shutdown()


async def test_a_mark_made_while_a_batch_is_written_is_written_too(db: Database, clock: FrozenClock) -> None:
    """No later activity is needed: the last update handled before a quiet spell is marked."""
    rec = Recorder()
    ib = Inbox(db, rec, now=clock.now, owner="a")
    await ib.store([_press(1, 10), _press(2, 11)])
    await ib.claim()
    real_write = db.write
    started = asyncio.Event()

    async def slow_write(fn: Any) -> Any:
        started.set()
        await asyncio.sleep(0.2)
        return await real_write(fn)

    db.write = slow_write  # type: ignore[method-assign]
    ib._mark(1)
    await started.wait()          # the first batch is being written ...
    ib._mark(2)                   # ... when the second update is handled; then all is quiet
    for _ in range(100):
        await asyncio.sleep(0.05)
        if await db.fetchval("SELECT COUNT(*) FROM inbox WHERE status = 'handled'") == 2:
            break
    db.write = real_write  # type: ignore[method-assign]
    assert await db.fetchval("SELECT COUNT(*) FROM inbox WHERE status = 'handled'") == 2
