"""The outbox drain with a stub bot and a frozen clock: retries, 429, 403, quiet hours, crash recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from telegram.error import Forbidden, NetworkError, RetryAfter

import bot.jobs.sweeps  # noqa: F401  (registers the renderers and the unreachable hook)
from bot.clock import FrozenClock
from bot.jobs.outbox_drain import OutboxSender, Pacer, reset_in_flight
from storage.db import Database
from storage.outbox import enqueue
from storage.timeutil import to_db
from tests.both import only_sqlite
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task


class StubBot:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.fail: list[Exception] = []

    async def send_message(self, chat_id: int, text: str, reply_markup: Any = None) -> Any:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append((chat_id, text))
        return SimpleNamespace(message_id=len(self.sent))


def _ctx(db: Database, clock: FrozenClock, bot: StubBot) -> Any:
    settings = SimpleNamespace(timezone="Asia/Shanghai", default_language="zh")
    return SimpleNamespace(db=db, bot=bot, settings=settings, now=clock.now,
                           runtime=SimpleNamespace(bot_username="linli_test_bot"))


async def _queue(db: Database, now: datetime, chat_id: int, member_id: int | None = None, kind: str = "text",
                 key: str | None = None, **payload: Any) -> None:
    async with db.transaction() as conn:
        await enqueue(conn, chat_id=chat_id, member_id=member_id, kind=kind, now=now, dedupe_key=key,
                      payload=payload or {"message": "Hello"})


async def _claimed_by_777(db: Database, now: datetime) -> tuple[int, int]:
    """A resident's request (phone 13912345678) claimed by a volunteer whose chat is 777, the
    details message queued for them; (volunteer, task)."""
    from bot.services import tasks

    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True, tg_user_id=501, phone="13912345678", started_bot=1)
    vol = await make_member(db, now, cid, volunteer=True, tg_user_id=777, started_bot=1)
    tid = await make_task(db, now, cid, res, requester_id=res)
    await tasks.claim(db, now, vol, tid)
    return vol, tid


async def _state(db: Database) -> list[tuple[str, int]]:
    return [(r["state"], r["attempts"]) for r in await db.fetchall("SELECT state, attempts FROM outbox ORDER BY id")]


@pytest.fixture
def day() -> FrozenClock:
    return FrozenClock(datetime(2026, 5, 4, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai


async def test_sends_once_and_dedupe_key_blocks_a_second_row(db: Database, day: FrozenClock) -> None:
    bot = StubBot()
    await _queue(db, day.now(), 111, key="k")
    await _queue(db, day.now(), 111, key="k")
    sender = OutboxSender(rate=1000)
    assert await sender.drain(_ctx(db, day, bot)) == 1
    assert await sender.drain(_ctx(db, day, bot)) == 0
    assert [c for c, _ in bot.sent] == [111]
    assert await _state(db) == [("sent", 1)]


async def test_429_waits_retry_after_without_using_an_attempt(db: Database, day: FrozenClock) -> None:
    bot = StubBot()
    bot.fail = [RetryAfter(2)]
    await _queue(db, day.now(), 111)
    sender = OutboxSender(rate=1000)
    ctx = _ctx(db, day, bot)
    await sender.drain(ctx)
    assert bot.sent == [] and await _state(db) == [("pending", 0)]
    day.advance(seconds=1)
    await sender.drain(ctx)
    assert bot.sent == []
    day.advance(seconds=2)
    await sender.drain(ctx)
    assert len(bot.sent) == 1 and await _state(db) == [("sent", 1)]


async def test_network_errors_back_off_then_fail(db: Database, day: FrozenClock) -> None:
    bot = StubBot()
    bot.fail = [NetworkError("boom"), NetworkError("boom")]
    await _queue(db, day.now(), 111)
    sender = OutboxSender(rate=1000)
    ctx = _ctx(db, day, bot)
    await sender.drain(ctx)
    row = await db.fetchone("SELECT * FROM outbox")
    assert row is not None and row["state"] == "pending" and row["attempts"] == 1
    await sender.drain(ctx)  # not due yet
    assert (await _state(db)) == [("pending", 1)]
    day.advance(seconds=2)
    await sender.drain(ctx)
    day.advance(seconds=4)
    await sender.drain(ctx)
    assert len(bot.sent) == 1 and await _state(db) == [("sent", 3)]
    bot.fail = [NetworkError("down")] * 20
    await _queue(db, day.now(), 222)
    for _ in range(12):
        day.advance(seconds=400)
        await sender.drain(ctx)
    assert (await _state(db))[1][0] == "failed"


async def test_403_marks_unreachable_and_tells_staff_about_claimed_task(db: Database, day: FrozenClock) -> None:
    now = day.now()
    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    res = await make_member(db, now, cid, resident=True)
    vol = await make_member(db, now, cid, volunteer=True, tg_user_id=777)
    tid = await make_task(db, now, cid, res, requester_id=res)
    await make_claim(db, now, tid, vol)
    await _queue(db, now, 777, member_id=vol)
    bot = StubBot()
    bot.fail = [Forbidden("Forbidden: bot was blocked by the user")]
    sender = OutboxSender(rate=1000)
    await sender.drain(_ctx(db, day, bot))
    assert await db.fetchval("SELECT reachable FROM members WHERE id = ?", (vol,)) == 0
    rows = await db.fetchall("SELECT * FROM outbox WHERE kind = 'volunteer_unreachable_staff'")
    assert [r["member_id"] for r in rows] == [staff]
    # The staff message is sent, in the staff member's language, naming the task.
    await sender.drain(_ctx(db, day, bot))
    assert len(bot.sent) == 1 and f"#{tid}" in bot.sent[0][1]
    # A second refusal for the same member does not tell staff again.
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET reachable = 1 WHERE id = ?", (vol,))
    await _queue(db, now, 777, member_id=vol)
    bot.fail = [Forbidden("Forbidden: bot was blocked by the user")]
    await sender.drain(_ctx(db, day, bot))
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'volunteer_unreachable_staff'") == 1


async def test_quiet_hours_defer_digests_but_not_reminders_for_tonight(db: Database) -> None:
    night = FrozenClock(datetime(2026, 5, 4, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    now = night.now()
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True)
    vol = await make_member(db, now, cid, volunteer=True, tg_user_id=888)
    tid = await make_task(db, now, cid, res, requester_id=res, starts_at=to_db(now + timedelta(minutes=30)))
    await make_claim(db, now, tid, vol)
    await _queue(db, now, 888, member_id=vol, kind="digest_volunteer", today=[], matching=[], balance=3,
                 tz="Asia/Shanghai")
    await _queue(db, now, 888, member_id=vol, kind="task_reminder", task_id=tid, which="soon")
    bot = StubBot()
    sender = OutboxSender(rate=1000)
    await sender.drain(_ctx(db, night, bot))
    assert len(bot.sent) == 1  # the reminder about tonight's task
    row = await db.fetchone("SELECT * FROM outbox WHERE kind = 'digest_volunteer'")
    assert row is not None and row["state"] == "pending" and row["not_before"].startswith("2026-05-04T23:00")
    assert row["attempts"] == 0  # waiting for the morning is not a failed try
    night.set(datetime(2026, 5, 4, 23, 0, tzinfo=UTC))  # 07:00 local
    await sender.drain(_ctx(db, night, bot))
    assert len(bot.sent) == 2


async def test_crash_between_send_and_mark_sends_at_most_one_duplicate(db: Database, day: FrozenClock) -> None:
    await _queue(db, day.now(), 111)
    # The process died after marking the row "sending" (and perhaps after the call reached Telegram).
    async with db.transaction() as conn:
        await conn.execute("UPDATE outbox SET state = 'sending', attempts = 1")
    assert await reset_in_flight(db) == 1
    bot = StubBot()
    sender = OutboxSender(rate=1000)
    await sender.drain(_ctx(db, day, bot))
    await sender.drain(_ctx(db, day, bot))
    assert len(bot.sent) == 1 and await _state(db) == [("sent", 2)]


async def test_pacer_respects_rate_and_pause() -> None:
    import time


    pacer = Pacer(rate=50, burst=1)
    start = time.monotonic()
    for _ in range(11):
        await pacer.take()
    assert time.monotonic() - start >= 0.18
    pacer.pause(0.3)
    start = time.monotonic()
    await pacer.take()
    assert time.monotonic() - start >= 0.28


async def test_details_are_not_sent_to_one_who_withdrew_first(db: Database, day: FrozenClock) -> None:
    """A claim queues the resident's contact for the volunteer; if they withdraw before it goes out
    (a backlog, a restart), it never goes out; a later claim's details do."""
    import bot.conversations.dispatch  # the dispatch renderers
    from bot.services import tasks

    vol, tid = await _claimed_by_777(db, day.now())
    await tasks.withdraw(db, day.now(), vol, tid)
    bot = StubBot()
    sender = OutboxSender(rate=1000)
    await sender.drain(_ctx(db, day, bot))
    assert not [text for chat, text in bot.sent if chat == 777], bot.sent
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'task_details_removed' AND state = 'sent'"
                             " AND last_error = 'dropped by renderer'") == 1  # nothing to edit
    await tasks.claim(db, day.advance(seconds=1), vol, tid)
    await sender.drain(_ctx(db, day, bot))
    assert [c for c, text in bot.sent if c == 777 and "13912345678" in text] == [777]


async def test_a_failing_voice_note_does_not_resend_or_lose_the_text(db: Database, day: FrozenClock) -> None:
    """Found by a review: when the voice after a details text failed, the row was retried (the text,
    with the phone number, went out twice) or marked failed without the text's id (never scrubbed)."""
    from bot.renderers import Rendered, renderer

    @renderer("test_text_and_voice")
    async def _r(rc: Any, p: dict[str, Any]) -> Rendered:
        return Rendered(text="Details: 13912345678", voice="VOICE-FILE-ID")

    class VoiceFails(StubBot):
        async def send_voice(self, chat_id: int, voice: str) -> Any:
            raise RetryAfter(3)

    bot = VoiceFails()
    await _queue(db, day.now(), 111, kind="test_text_and_voice", key="tv")
    sender = OutboxSender(rate=1000)
    await sender.drain(_ctx(db, day, bot))
    day.advance(seconds=10)
    await sender.drain(_ctx(db, day, bot))
    assert bot.sent == [(111, "Details: 13912345678")]
    row = await db.fetchone("SELECT state, message_id FROM outbox WHERE dedupe_key = 'tv'")
    assert (row["state"], row["message_id"]) == ("sent", 1)


async def test_claim_details_overtake_a_digest_broadcast(db: Database, day: FrozenClock) -> None:
    """Found by an audit: claim details and digests both had priority 0, so a volunteer who claimed at
    digest time waited behind 2,000 digests for the address. Now the details go out in the very next
    batch: at most the batch already in flight (a quarter of a second's sends: 7 at the default 28
    messages/s) is sent between the claim and its details, however long the broadcast."""
    import bot.conversations.dispatch  # the dispatch renderers
    from bot.jobs.outbox_drain import BATCH
    from bot.services import digest, tasks

    now = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai: digest time
    clock = FrozenClock(now)
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, resident=True, tg_user_id=501, phone="13912345678")
    tid = await make_task(db, now, cid, res, requester_id=res, title="Buy rice", category="shopping")
    async with db.transaction() as conn:  # 2,000 volunteers whose digest lists that task
        await conn.executemany(
            "INSERT INTO members (tg_user_id, community_id, language, display_name, is_volunteer, skills,"
            " registered_at, started_bot, created_at, updated_at) VALUES (?, ?, 'zh', ?, 1, '[\"shopping\"]', ?, 1, ?, ?)",
            [(900_000 + i, cid, f"V{i}", to_db(now), to_db(now), to_db(now)) for i in range(2000)])
    vol = await make_member(db, now, cid, volunteer=True, tg_user_id=777, digest_enabled=0)
    assert await digest.sweep_digests(db, now) == 2001  # and the group's

    class Recorder(StubBot):
        claimed_at: int | None = None

        async def send_message(self, chat_id: int, text: str, reply_markup: Any = None) -> Any:
            msg = await super().send_message(chat_id, text, reply_markup)
            if len(self.sent) == 45 and self.claimed_at is None:  # mid-broadcast, a batch in flight
                await tasks.claim(db, clock.now(), vol, tid)
                self.claimed_at = len(self.sent)
            return msg

    bot = Recorder()
    sender = OutboxSender(rate=28)
    sender.pacer = Pacer(10_000)  # the default batch size, without waiting for the pace
    await sender.drain(_ctx(db, clock, bot), limit=4 * BATCH)
    assert bot.claimed_at is not None
    details = [i for i, (chat, _) in enumerate(bot.sent, 1) if chat == 777]
    assert len(details) == 1, bot.sent[-5:]
    sent_between = details[0] - 1 - bot.claimed_at
    assert sender.batch == 7
    assert 0 <= sent_between <= sender.batch, sent_between


async def test_next_batch_is_read_from_the_pending_index_without_sorting(db: Database) -> None:
    """The backlog is never sorted: the batch comes in index order (priority, due time, id)."""
    only_sqlite(db, "SQLite's query plan")
    from storage.outbox import LEVELS, NEXT_BATCH

    plan = [r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + NEXT_BATCH, {"now": "2026-05-04", "n": 30})]
    reads = [step for step in plan if "outbox" in step]
    assert reads == ["SEARCH outbox USING INDEX outbox_pending_next (priority=? AND not_before<?)"] * len(LEVELS), plan
    assert not [step for step in plan if "TEMP B-TREE" in step], plan


async def test_priority_comes_from_the_kind_then_due_time_then_id(db: Database, day: FrozenClock) -> None:
    import importlib

    from bot.app import FEATURES
    from bot.renderers import RENDERERS
    from storage.outbox import BULK, FIRST, LEVELS, NOTICE, PRIORITY, priority_of

    for name in [*FEATURES, "bot.jobs.cards"]:  # every module that registers a renderer
        importlib.import_module(name)
    assert set(PRIORITY) <= set(RENDERERS), set(PRIORITY) - set(RENDERERS)  # no misspelt kind
    assert set(PRIORITY.values()) | {priority_of("any other kind")} <= set(LEVELS)
    assert priority_of("task_claimed_volunteer") == FIRST
    assert priority_of("task_reminder") == priority_of("text") == NOTICE
    assert priority_of("digest_volunteer") == priority_of("honour_group") == BULK
    now = day.now()
    await _queue(db, now, 1, kind="digest_volunteer", key="digest")
    await _queue(db, now, 2, key="notice-later")
    async with db.transaction() as conn:
        await enqueue(conn, chat_id=3, kind="text", now=now - timedelta(minutes=1), payload={"message": "Hi"},
                      dedupe_key="notice-earlier")
        await enqueue(conn, chat_id=4, kind="text", now=now, not_before=now + timedelta(minutes=1),
                      payload={"message": "Hi"}, dedupe_key="notice-not-yet")
    await _queue(db, now, 5, kind="task_claimed_volunteer", key="details", task_id=1)
    from storage.outbox import next_batch

    rows = await next_batch(db, now, 30)
    assert [r.dedupe_key for r in rows] == ["details", "notice-earlier", "notice-later", "digest"]


class Editor(StubBot):
    """Also edits and deletes (what a ``forget`` row asks for); ``fail`` applies to edits too."""

    def __init__(self) -> None:
        super().__init__()
        self.edits: list[tuple[int, int, str]] = []
        self.deleted: list[tuple[int, int]] = []

    async def edit_message_text(self, text: str, chat_id: int, message_id: int, reply_markup: Any = None) -> Any:
        if self.fail:
            raise self.fail.pop(0)
        self.edits.append((chat_id, message_id, text))
        return SimpleNamespace(message_id=message_id)

    async def delete_message(self, chat_id: int, message_id: int) -> bool:
        self.deleted.append((chat_id, message_id))
        return True


async def test_a_forget_row_leaves_once_sent_or_failed_for_good(db: Database, day: FrozenClock) -> None:
    """/deleteme keeps only the rows that cut down what the leaver's chat shows of others (chat id
    and message ids); each goes as soon as it is sent or refused for good, so no row names them."""
    from telegram.error import BadRequest

    now = day.now()
    cid = await make_community(db, now)
    await make_member(db, now, cid, staff=True)
    res = await make_member(db, now, cid, resident=True)
    vol = await make_member(db, now, cid, volunteer=True, tg_user_id=777, started_bot=1)
    tid = await make_task(db, now, cid, res, requester_id=res)
    await make_claim(db, now, tid, vol)  # a held claim: a 403 for an ordinary message would tell staff

    async def forget(key: str) -> None:
        await _queue(db, day.now(), 777, member_id=vol, kind="forget", key=key, message_id=5, voice_message_id=6)

    bot = Editor()
    sender = OutboxSender(rate=1000)
    await forget("f1")
    await sender.drain(_ctx(db, day, bot))
    assert bot.edits == [(777, 5, "您已退出邻里，这条消息里的个人信息已经删掉了。")] and bot.deleted == [(777, 6)]
    assert await db.fetchval("SELECT COUNT(*) FROM outbox") == 0
    # A passing network failure: it waits (and still knows where to go), then goes out and leaves.
    await forget("f2")
    bot.fail = [NetworkError("timed out")]
    await sender.drain(_ctx(db, day, bot))
    assert [tuple(r) for r in await db.fetchall("SELECT chat_id, state FROM outbox")] == [(777, "pending")]
    day.advance(seconds=10)
    await sender.drain(_ctx(db, day, bot))
    assert await db.fetchval("SELECT COUNT(*) FROM outbox") == 0 and len(bot.edits) == 2
    # Refused for good (the message is gone, or the bot is blocked): it leaves too, and a blocked bot
    # is not reported to staff (the leaver holds no task any more).
    for error in (BadRequest("Message to edit not found"), Forbidden("Forbidden: bot was blocked by the user")):
        await forget(f"f3{error}")
        bot.fail = [error]
        await sender.drain(_ctx(db, day, bot))
        assert await db.fetchval("SELECT COUNT(*) FROM outbox") == 0
    assert await db.fetchval("SELECT reachable FROM members WHERE id = ?", (vol,)) == 1


async def test_details_erased_on_their_way_out_are_cut_down_after_all(db: Database, day: FrozenClock) -> None:
    """A claim's details were being sent when their reader erased themselves: the row went with
    their data, so without a record the message (the resident's contact) would stay in their chat."""
    import bot.conversations.dispatch  # the dispatch renderers
    from bot.services import members

    vol, _tid = await _claimed_by_777(db, day.now())

    class ErasedMeanwhile(Editor):
        async def send_message(self, chat_id: int, text: str, reply_markup: Any = None) -> Any:
            if chat_id == 777:
                assert await members.erase(db, tg_user_id=777, now=day.now())
            return await super().send_message(chat_id, text, reply_markup)

    bot = ErasedMeanwhile()
    sender = OutboxSender(rate=1000)
    await sender.drain(_ctx(db, day, bot))
    sent = [n for n, (chat, text) in enumerate(bot.sent, 1) if chat == 777 and "13912345678" in text]
    assert len(sent) == 1
    await sender.drain(_ctx(db, day, bot))
    assert [(chat, message) for chat, message, _text in bot.edits if chat == 777] == [(777, sent[0])]
    # The resident hears the volunteer cannot come, naming nobody. Her "who is coming" was sent (then it
    # is corrected and deleted) or, rendered after the erasure, dropped: the batch sends concurrently,
    # so either order happens.
    resident = [(n, text) for n, (chat, text) in enumerate(bot.sent, 1) if chat != 777]
    told = [text for chat, _message, text in bot.edits if chat != 777] + [t for _n, t in resident if "志愿者临时来不了了" in t]
    assert told and all("志愿者临时来不了了" in text for text in told), (told, resident)
    coming = [n for n, text in resident if "会来帮您" in text]
    assert all((bot.sent[n - 1][0], n) in bot.deleted for n in coming), (coming, bot.deleted)
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE chat_id = 777 OR member_id = ?", (vol,)) == 0


async def test_a_photo_erased_on_its_way_out_is_deleted_not_edited(db: Database, day: FrozenClock) -> None:
    """A volunteer's photo after Done was being sent to the resident when she erased herself: the photo
    (his picture, in her chat) is deleted at once; a photo has no text, so an edit would be refused."""
    import bot.conversations.completion
    import bot.conversations.dispatch  # the renderers
    from bot.services import completion, members

    _vol, tid = await _claimed_by_777(db, day.now())
    await OutboxSender(rate=1000).drain(_ctx(db, day, Editor()))  # the details, who is coming
    await completion.mark_done(db, task_id=tid, tg_user_id=777, now=day.now())
    await completion.add_done_note(db, task_id=tid, tg_user_id=777, now=day.now(), photo_file_id="AgACphoto1")

    class ErasedMeanwhile(Editor):
        async def send_photo(self, chat_id: int, photo: Any, caption: str | None = None,
                             reply_markup: Any = None) -> Any:
            assert await members.erase(db, tg_user_id=501, now=day.now())
            self.sent.append((chat_id, f"photo {photo}"))
            return SimpleNamespace(message_id=len(self.sent))

    bot = ErasedMeanwhile()
    sender = OutboxSender(rate=1000)
    await sender.drain(_ctx(db, day, bot))
    [photo] = [n for n, (chat, text) in enumerate(bot.sent, 1) if chat == 501 and text == "photo AgACphoto1"]
    await sender.drain(_ctx(db, day, bot))
    assert (501, photo) in bot.deleted and not [e for e in bot.edits if e[:2] == (501, photo)]
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE chat_id = 501") == 0


async def test_rows_let_go_together_are_marked_in_one_write_and_a_failed_write_fails_only_its_own_row(
        db: Database) -> None:
    only_sqlite(db, "a TEMP trigger in SQLite's syntax")
    import asyncio

    from bot.jobs.outbox_drain import _Together, _write_marks
    from storage import outbox as outbox_store

    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    for key in ("a", "x", "y"):
        await _queue(db, now, 7, key=key)
    a, x, y = await outbox_store.next_batch(db, now, 10)
    # The database refuses to mark x: the write that carries x fails.
    await db.writer.execute(f"CREATE TEMP TRIGGER refuse_x BEFORE UPDATE OF state ON outbox WHEN NEW.id = {x.id}"
                            " BEGIN SELECT RAISE(ABORT, 'refused'); END")
    marks: _Together[int] = _Together(_write_marks)
    ctx = SimpleNamespace(db=db)
    # a's write is under way while x and y arrive: x writes both, fails, and y is written on its own.
    results = await asyncio.gather(*(marks.add(ctx, r.id) for r in (a, x, y)), return_exceptions=True)
    assert results[0] is None and results[2] is None and "refused" in str(results[1])
    states = await db.fetchall("SELECT dedupe_key, state, attempts FROM outbox ORDER BY id")
    assert [tuple(r) for r in states] == [("a", "sending", 1), ("x", "pending", 0), ("y", "sending", 1)]


async def test_a_message_is_settled_sent_as_soon_as_its_call_returns_not_with_its_batch(
        db: Database, day: FrozenClock) -> None:
    """A crash resends only what was on its way: while one message of a batch is still in its call,
    the others that came back are already ``sent`` (not left ``sending`` until the batch ends)."""
    import asyncio

    release = asyncio.Event()
    called = asyncio.Event()

    class SlowForOne(StubBot):
        async def send_message(self, chat_id: int, text: str, reply_markup: Any = None) -> Any:
            if chat_id == 9:
                called.set()
                await release.wait()
            return await super().send_message(chat_id, text, reply_markup)

    for chat in (7, 8, 9, 10):
        await _queue(db, day.now(), chat, key=f"k{chat}")
    bot = SlowForOne()
    drain = asyncio.create_task(OutboxSender(rate=1000).drain(_ctx(db, day, bot)))

    async def settled() -> list[tuple[int, str]]:
        rows = await db.fetchall("SELECT chat_id, state FROM outbox ORDER BY chat_id")
        return [(r["chat_id"], r["state"]) for r in rows]

    await called.wait()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while await settled() != [(7, "sent"), (8, "sent"), (9, "sending"), (10, "sent")]:
        assert loop.time() < deadline, await settled()
        await asyncio.sleep(0.01)
    release.set()
    assert await drain == 4
    assert await settled() == [(7, "sent"), (8, "sent"), (9, "sent"), (10, "sent")]


async def test_a_rendered_text_too_long_for_one_message_is_fitted(db: Database, day: FrozenClock) -> None:
    """Whatever a renderer builds goes out as one message Telegram takes: whole lines, the marker in the
    recipient's language (here the default, Chinese)."""
    from bot.devkit.sandbox.html import parse_html

    bot = StubBot()
    await _queue(db, day.now(), 111, message="\n".join(f"{i}. 李 &amp; 王 &lt;3号楼&gt;" for i in range(800)))
    assert await OutboxSender(rate=1000).drain(_ctx(db, day, bot)) == 1
    shown = parse_html(bot.sent[0][1])[0]
    assert len(shown.encode("utf-16-le")) // 2 <= 4096
    *kept, marker = shown.split("\n")
    assert kept[-1] == f"{len(kept) - 1}. 李 & 王 <3号楼>" and marker == f"…（还有 {800 - len(kept)} 行）"
