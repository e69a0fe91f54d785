"""Drain the outbox through the bot, paced under Telegram's limits.

A row goes pending → sending → sent. It is marked ``sending`` just before the call (once the
pacer lets it go) and ``sent`` as soon as the call returns (rows that finish together share one
write), so a crash in between sends it at most once more: after a crash, the messages sent again are
the ones that were on their way at that moment (rows left ``sending`` return to ``pending`` at
start-up; at most a batch, sent concurrently). Transient errors (network, 5xx, 429) are retried with back-off; a 403 marks the member
unreachable; other refusals fail the row with the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.context import LinliApp, LinliContext
from bot.fit import CAPTION_LIMIT, MESSAGE_LIMIT, fit
from bot.http_client import edit_text, send_text
from bot.i18n import translator
from bot.instance import run_leased
from bot.ratelimit import group_room
from bot.renderers import RENDERERS, UNREACHABLE_HOOKS, RenderContext, Rendered
from storage import communities as community_store
from storage import members as member_store
from storage import outbox as outbox_store
from storage import tasks as task_store
from storage.db import Connection, Database, SyncConnection
from storage.outbox import BULK, FIRST, FORGET, FORGETTABLE, OutboxRow, Recipient, enqueue, enqueue_sync
from storage.timeutil import to_db

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE = "outbox"  # the lease of the instance that sends (this job and the cards: one Telegram budget)
BATCH = 30  # the most rows read (and sent concurrently) at once
MAX_ATTEMPTS = 8

# A group's budget (about 20 messages a minute, bot.ratelimit.group_room) is spent by priority:
# cards and their edits first (the card job may use all of it), then staff notices (they leave
# NOTICE_RESERVE to cards), then honours and summaries (they leave CARD_RESERVE, and wait while the
# group has a card to post or edit). A row held back waits HOLD_S and gives no attempt away.
CARD_RESERVE = 6
NOTICE_RESERVE = 3
HOLD_S = 1.0
# Kinds whose due rows for one chat go out as one message: the first row read carries the payloads
# of the others ({"items": [...]}; its renderer accepts both) and they share its fate.
COALESCED = frozenset({"honour_group"})
COALESCE_MAX = 200

class Pacer:
    """A token bucket: at most ``rate`` sends a second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 2)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.blocked_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Telegram said 429: nobody sends until ``seconds`` have passed, then start with an empty bucket."""
        self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)
        self.tokens = 0

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self.blocked_until:
                    await asyncio.sleep(self.blocked_until - now)
                    self.stamp = time.monotonic()
                    continue
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


async def reset_in_flight(db: Database, me: str = "", *, mine: bool = True) -> int:
    """Rows a stopped sender left in ``sending`` go back to ``pending`` (each sent at most once more):
    at start-up (``mine``: this instance's own too, a restart) and when this instance ``me`` takes
    the outbox lease over. Rows of an instance that still holds the outbox lease stay as they are."""
    return await outbox_store.reset_in_flight(db, me=me, lease=LEASE, now=datetime.now(UTC), mine=mine)


def _in_quiet_hours(local: datetime, start: str, end: str) -> datetime | None:
    """If ``local`` is inside quiet hours [start, end), the local moment they end; else None."""
    sh, sm = (int(x) for x in start.split(":"))
    eh, em = (int(x) for x in end.split(":"))
    start_t = local.replace(hour=sh, minute=sm, second=0, microsecond=0)
    end_t = local.replace(hour=eh, minute=em, second=0, microsecond=0)
    if start_t == end_t:
        return None
    if start_t < end_t:
        return end_t if start_t <= local < end_t else None
    # Crosses midnight, e.g. 22:00 → 07:00.
    if local >= start_t:
        return end_t + timedelta(days=1)
    if local < end_t:
        return end_t
    return None


async def quiet_until(db: Database, member_id: int | None, now: datetime, default_tz: str) -> datetime | None:
    """When the member's quiet hours end, if they are in them now."""
    if member_id is None:
        return None
    quiet = await member_store.quiet_hours(db, member_id, default_tz)
    if quiet is None:
        return None
    return _quiet_end(now, quiet.start, quiet.end, quiet.tz)


def _quiet_end(now: datetime, start: str, end: str, tz: str) -> datetime | None:
    from zoneinfo import ZoneInfo

    until = _in_quiet_hours(now.astimezone(ZoneInfo(tz)), start, end)
    return None if until is None else until.astimezone(now.tzinfo)


class OutboxSender:
    """Sends due rows. One instance per application; ``drain()`` is called by the job."""

    def __init__(self, rate: float, name: str | None = None) -> None:
        self.pacer = Pacer(rate)
        # A batch is sent whole before the next is chosen, so a message that matters more (a claim's
        # details) waits for the batch in flight: about a quarter of a second's sends at most.
        self.batch = max(4, min(BATCH, round(rate / 4)))
        self._running = asyncio.Lock()
        self._forgotten = 0  # forget rows deleted since the last checkpoint
        # Rows marked ``sending`` (just before their call) and ``sent`` (just after it) in shared
        # writes: the rows the pacer lets go, or whose calls return, at the same moment share one.
        # Rows marked by the last writes, until their callers look (a row no longer pending is not).
        self._marked: set[int] = set()
        self._marks: _Together[int] = _Together(lambda ctx, ids: _write_marks(ctx, ids, name, self._marked))
        self._settles: _Together[tuple[OutboxRow, int | None, int | None]] = _Together(_write_settles)
        self.holding: Callable[[], bool] = lambda: True   # still this instance's job (bot/instance.py)

    async def drain(self, ctx: LinliContext, limit: int = 2000) -> int:
        """Send what is due now; returns how many rows were handled."""
        if self._running.locked():
            return 0
        async with self._running:
            handled = 0
            while handled < limit and self.holding():
                now = ctx.now()
                rows = await outbox_store.next_batch(ctx.db, now, self.batch)
                if not rows:
                    break
                batch = await _coalesce(ctx, rows, now)
                # The recipients of the whole batch in one read, and the rows sent settled in one
                # write after it: a message costs one read and two writes less than row by row.
                people, groups = await outbox_store.recipients(
                    ctx.db, {r.member_id for r in batch if r.member_id is not None}, ctx.settings.timezone,
                    {r.chat_id for r in batch if r.member_id is None and r.chat_id < 0})
                await asyncio.gather(*(self._send_one(ctx, r, people.get(r.member_id or 0), groups.get(r.chat_id))
                                       for r in batch))
                handled += len(rows)
            if self._forgotten:
                # The last rows that named someone erased are gone: no copy stays in the file
                # (as erasure itself ends, bot.services.members.erase).
                self._forgotten = 0
                await ctx.db.checkpoint()
            return handled

    async def _send_one(self, ctx: LinliContext, row: OutboxRow, who: Recipient | None,
                        group_language: str | None) -> None:
        now = ctx.now()
        if await _held_back(ctx, row):
            await _hold(ctx, row, now + timedelta(seconds=HOLD_S))
            return
        payload = json.loads(row.payload)
        rendered = await self._render(ctx, row, payload, now, who, group_language)
        if rendered is None:
            return
        await self.pacer.take()
        # Marked just before the call, not with the whole batch (which waits on the pacer): after a
        # crash only the rows that were really on their way to Telegram are sent again. Not sent if
        # the outbox lease was lost while it waited, or another sender took the row meanwhile.
        if not self.holding():
            return
        await self._marks.add(ctx, row.id)
        if row.id not in self._marked:
            return
        self._marked.discard(row.id)
        try:
            message_id, voice = await self._deliver(ctx, row.chat_id, rendered)
        except TelegramError as exc:
            await self._refused(ctx, row, payload, now, exc)
        else:
            if row.kind == FORGET or row.merged or rendered.on_sent is not None:
                await self._finish(ctx, row, "sent", message_id=message_id, voice_message_id=voice, rendered=rendered)
            else:
                # Settled now, not with the batch: a crash then sends again only what was on its way.
                await self._settles.add(ctx, (row, message_id, voice))

    async def _render(self, ctx: LinliContext, row: OutboxRow, payload: dict[str, Any],
                      now: datetime, who: Recipient | None, group_language: str | None) -> Rendered | None:
        """The message to send now, or None once the row is dealt with (failed, put off, dropped).
        ``who``: the member it goes to; ``group_language``: the language of the group it goes to."""
        kind = RENDERERS.get(row.kind)
        if kind is None:
            await self._finish(ctx, row, "failed", error=f"no renderer for {row.kind}")
            return None
        if kind.deferrable and who is not None:
            until = _quiet_end(now, who.quiet_start, who.quiet_end, who.tz)
            if until is not None:
                await self._retry_at(ctx, row, until, "quiet hours")  # before the call: no attempt was taken
                return None
        if row.member_id is not None and (who is None or not who.started_bot):
            # Telegram would answer 403: the person never opened a private chat with the bot.
            await self._unreachable(ctx, row, payload, "never started the bot")
            return None
        lang: str = ctx.settings.default_language
        if who is not None:
            lang = who.language or lang
        elif row.chat_id < 0:
            lang = group_language or lang
        rctx = RenderContext(ctx.db, translator(lang), lang, row.chat_id, row.member_id, ctx.runtime.bot_username,
                             now=now, default_tz=ctx.settings.timezone)
        try:
            rendered = await kind.render(rctx, payload)
        except Exception as exc:  # a renderer bug must not stop the outbox
            log.exception("rendering outbox row %s (%s) failed", row.id, row.kind)
            await self._finish(ctx, row, "failed", error=f"render: {exc!r}"[:500])
            return None
        if rendered is None:
            await self._finish(ctx, row, "sent", error="dropped by renderer")
            return None
        # Whatever a renderer built, it goes out as one message that Telegram takes (bot.fit).
        caption = rendered.photo is not None or rendered.document is not None
        rendered.text = fit(rendered.text, rctx.t, CAPTION_LIMIT if caption else MESSAGE_LIMIT)
        return rendered

    async def _refused(self, ctx: LinliContext, row: OutboxRow, payload: dict[str, Any], now: datetime,
                       exc: TelegramError) -> None:
        """Telegram did not take it: wait, give up on the person, follow the group, or try again later."""
        if isinstance(exc, RetryAfter):
            delay = exc.retry_after if isinstance(exc.retry_after, int | float) else exc.retry_after.total_seconds()
            self.pacer.pause(float(delay))
            log.info("outbox row %s: flood control, retrying in %ss", row.id, delay)
            await self._retry_at(ctx, row, now + timedelta(seconds=float(delay) + 0.5), str(exc), count_attempt=False)  # a 429 gives the attempt back
        elif isinstance(exc, Forbidden):
            await self._unreachable(ctx, row, payload, str(exc))
        elif isinstance(exc, ChatMigrated):
            await self._migrated(ctx, row, exc.new_chat_id)
        elif isinstance(exc, BadRequest):
            text = str(exc).lower()
            if "not modified" in text:
                await self._finish(ctx, row, "sent", error="not modified")
            elif "chat not found" in text or "user not found" in text:
                await self._unreachable(ctx, row, payload, str(exc))
            else:
                log.warning("outbox row %s (%s) refused: %s", row.id, row.kind, exc)
                await self._finish(ctx, row, "failed", error=str(exc))
        elif row.attempts >= MAX_ATTEMPTS:
            await self._finish(ctx, row, "failed", error=str(exc))
        else:
            await self._retry_at(ctx, row, now + timedelta(seconds=min(2 ** row.attempts, 300)), str(exc))

    async def _edit(self, ctx: LinliContext, chat_id: int, r: Rendered) -> int | None:
        """Edit an earlier message (and delete the ones listed with it); returns its id if edited.
        ``delete_only``: delete them, edit nothing (a refusal is the row's, as a failed edit's is)."""
        bot = ctx.bot
        if r.delete_only:
            for old in r.delete_message_ids:
                await bot.delete_message(chat_id, old)
            return None
        assert r.edit_message_id is not None
        try:
            if r.edit_caption:
                await bot.edit_message_caption(chat_id=chat_id, message_id=r.edit_message_id, caption=r.text)
                edited: int | None = r.edit_message_id
            else:
                edited = await edit_text(bot, chat_id, r.edit_message_id, r.text, r.reply_markup)
        finally:
            # Best effort, even if the edit failed (e.g. the reader deleted that message); Telegram
            # lets a bot delete its messages for about two days only.
            for old in r.delete_message_ids:
                try:
                    await bot.delete_message(chat_id, old)
                except TelegramError as exc:
                    log.info("could not delete message %s in %s: %s", old, chat_id, exc)
        return edited

    async def _deliver(self, ctx: LinliContext, chat_id: int, r: Rendered) -> tuple[int | None, int | None]:
        """Send (or edit) it; returns the message's id, and the voice note's sent after a text, if any."""
        bot = ctx.bot
        if r.edit_message_id is not None or r.delete_only:
            return await self._edit(ctx, chat_id, r), None
        voice_id: int | None = None
        if r.photo is not None:
            msg_id = (await bot.send_photo(chat_id, r.photo, caption=r.text or None, reply_markup=r.reply_markup)).message_id
        elif r.document is not None:
            name, content = r.document
            msg_id = (await bot.send_document(chat_id, content, filename=name, caption=r.text or None,
                                              reply_markup=r.reply_markup)).message_id
        elif r.voice is not None:
            if r.text:
                # The text (with the buttons) is the message later edits are about; the voice follows it.
                # Once the text is out the row counts as sent: a failing voice must not send the text
                # twice (on a retry) or lose its id (the later scrub needs it).
                msg_id = await send_text(bot, chat_id, r.text, r.reply_markup)
                try:
                    await self.pacer.take()
                    voice_id = (await bot.send_voice(chat_id, r.voice)).message_id
                except TelegramError as exc:
                    log.warning("voice note after message %s in %s not sent: %s", msg_id, chat_id, exc)
            else:
                msg_id = (await bot.send_voice(chat_id, r.voice)).message_id
        else:
            msg_id = await send_text(bot, chat_id, r.text, r.reply_markup)
        if r.pin:
            try:
                await bot.pin_chat_message(chat_id, msg_id, disable_notification=True)
            except TelegramError as exc:
                log.info("could not pin message in %s: %s", chat_id, exc)
        return msg_id, voice_id

    async def _finish(
        self,
        ctx: LinliContext,
        row: OutboxRow,
        state: str,
        *,
        error: str | None = None,
        message_id: int | None = None,
        voice_message_id: int | None = None,
        rendered: Rendered | None = None,
    ) -> None:
        now = ctx.now()
        async with ctx.db.transaction() as conn:
            if row.kind == FORGET:
                # Erasure kept this row (the leaver's Telegram id) only until it went out: gone now.
                await outbox_store.delete(conn, row.id)
                self._forgotten += 1
                forgot = json.loads(row.payload)
                if forgot.get("media"):  # a file: deleted, or its caption cut down, once is all there is
                    await outbox_store.file_forgotten(conn, forgot.get("outbox_id"))
                return
            kept = await outbox_store.settle(conn, row.id, state=state, error=error, message_id=message_id,
                                             voice_message_id=voice_message_id, now=now)
            if row.merged and state in ("sent", "failed"):
                await outbox_store.settle_merged(conn, row.merged, into=row.id, state=state, now=now)
            if (not kept and state == "sent" and message_id is not None and row.kind in FORGETTABLE
                    and row.member_id is not None):
                # Its reader was erased while it was on its way (the row went with their data): what
                # it carries of someone else is cut down at once, like the rest of their chat.
                await enqueue(conn, chat_id=row.chat_id, member_id=row.member_id, kind=FORGET,
                              now=now, dedupe_key=f"forget:{row.id}",
                              payload=_forget_at_once(row, message_id, voice_message_id, now))
                return
            if rendered is not None and rendered.on_sent is not None and message_id is not None:
                await rendered.on_sent(conn, message_id)

    async def _retry_at(self, ctx: LinliContext, row: OutboxRow, when: datetime, error: str, count_attempt: bool = True) -> None:
        """Back to pending at ``when``; ``count_attempt=False`` gives back the attempt taken when the
        row was marked sending (only for a row that was on its way: a 429)."""
        async with ctx.db.transaction() as conn:
            await outbox_store.retry_at(conn, row.id, when=when, error=error, give_back=not count_attempt)

    async def _unreachable(self, ctx: LinliContext, row: OutboxRow, payload: dict[str, Any], error: str) -> None:
        now = ctx.now()
        if row.kind == FORGET:
            await self._finish(ctx, row, "failed", error=error)  # deletes it: nothing more to do for a leaver
            return
        async with ctx.db.transaction() as conn:
            await outbox_store.fail(conn, row.id, error)
            member_id = row.member_id
            if member_id is not None:
                await member_store.mark_unreachable(conn, member_id, now)
                for hook in UNREACHABLE_HOOKS:
                    await hook(conn, member_id, row.kind, payload, now)
            elif row.chat_id < 0:
                log.warning("the bot cannot write to group %s: %s", row.chat_id, error)

    async def _migrated(self, ctx: LinliContext, row: OutboxRow, new_chat_id: int) -> None:
        """The group became a supergroup: move the community and retry there at once."""
        async with ctx.db.transaction() as conn:
            await migrate_chat(conn, row.chat_id, new_chat_id)
            await outbox_store.resend_to(conn, row.id, new_chat_id)


async def migrate_chat(conn: Connection, old_chat_id: int, new_chat_id: int) -> None:
    """Every place that stores a group chat id follows the group to its new supergroup id."""
    await community_store.move_group(conn, old_chat_id, new_chat_id)
    await task_store.move_group(conn, old_chat_id, new_chat_id)
    await outbox_store.follow_chat(conn, old_chat_id, new_chat_id)


async def _coalesce(ctx: LinliContext, rows: list[OutboxRow], now: datetime) -> list[OutboxRow]:
    """One row per chat of a COALESCED kind, carrying the payloads of every other due row of that
    kind and chat (read or not in this batch): honours of one sweep become one group message."""
    batch: list[OutboxRow] = []
    leads: dict[tuple[str, int], int] = {}   # where the lead row of a kind and chat is in the batch
    for row in rows:
        if row.kind in COALESCED:
            key = (row.kind, row.chat_id)
            if key in leads:
                continue
            leads[key] = len(batch)
        batch.append(row)
    for (kind, chat_id), at in leads.items():
        row = batch[at]
        others = await outbox_store.due_of_kind(ctx.db, kind=kind, chat_id=chat_id, after=row, now=now,
                                                limit=COALESCE_MAX)
        if others:
            payload = json.dumps({"items": [json.loads(row.payload)] + [json.loads(p) for _, p in others]},
                                 ensure_ascii=False)
            batch[at] = replace(row, payload=payload, merged=tuple(i for i, _ in others))
    return batch


async def _held_back(ctx: LinliContext, row: OutboxRow) -> bool:
    """Whether a message to a group waits so that cards go first (see CARD_RESERVE)."""
    chat_id, priority = row.chat_id, row.priority
    if chat_id >= 0 or priority >= FIRST:
        return False
    room = group_room(ctx.bot, chat_id)
    if priority > BULK:
        return room is not None and room <= NOTICE_RESERVE
    if room is not None and room <= CARD_RESERVE:
        return True
    from bot.jobs.cards import cards_waiting

    return await cards_waiting(ctx, chat_id)


async def _hold(ctx: LinliContext, row: OutboxRow, until: datetime) -> None:
    """Put a held row (and the rows merged into it) off until ``until``; no attempt is counted."""
    async with ctx.db.transaction() as conn:
        await outbox_store.hold(conn, [row.id, *row.merged], until, "held: cards first")


class _Together(Generic[T]):
    """Items written together: whoever takes the lock writes what others added before it was taken,
    so items added at the same moment share one write. Each caller returns only once its own item
    is written; a failed write fails its caller and puts the other items back for the next."""

    def __init__(self, write: Callable[[LinliContext, list[T]], Awaitable[None]]) -> None:
        self._write = write
        self._items: list[tuple[object, T]] = []
        self._lock = asyncio.Lock()

    async def add(self, ctx: LinliContext, item: T) -> None:
        token = object()
        self._items.append((token, item))
        async with self._lock:
            items, self._items = self._items, []
            if not items:
                return  # written by the caller before us
            try:
                await self._write(ctx, [i for _, i in items])
            except BaseException:
                self._items[:0] = [(t, i) for t, i in items if t is not token]
                raise


async def _write_marks(ctx: LinliContext, ids: list[int], by: str | None = None,
                       marked: set[int] | None = None) -> None:
    """Mark the rows ``sending`` by the instance named ``by`` (see ``reset_in_flight``); those still
    pending, and so marked, are added to ``marked``."""
    done = await ctx.db.write(lambda conn: outbox_store.mark_sending(conn, ids, by))
    if marked is not None:
        marked.update(done)


def _forget_at_once(row: OutboxRow, message_id: int, voice_message_id: int | None, now: datetime) -> dict[str, Any]:
    """The payload of the forget row for a message whose reader was erased while it was on its way
    (as storage.outbox.QUEUE_FORGET writes them): a file (a volunteer's photo) is deleted, not edited."""
    media = bool(json.loads(row.payload or "{}").get("media"))
    return {"outbox_id": row.id, "message_id": message_id, "voice_message_id": voice_message_id, "media": media,
            "sent_at": to_db(now), "why": "left"}


async def _write_settles(ctx: LinliContext, done: list[tuple[OutboxRow, int | None, int | None]]) -> None:
    """Mark plain rows ``sent`` (``_finish``'s common case, one write for all of them)."""
    now = ctx.now()

    def settle(conn: SyncConnection) -> None:
        gone = set(outbox_store.settle_sent(conn, [(r.id, m, v) for r, m, v in done], now))
        for row, message_id, voice_message_id in done:
            if (row.id in gone and message_id is not None and row.kind in FORGETTABLE
                    and row.member_id is not None):
                # As in _finish: its reader was erased while it was on its way.
                enqueue_sync(conn, chat_id=row.chat_id, member_id=row.member_id, kind=FORGET, now=now,
                             dedupe_key=f"forget:{row.id}",
                             payload=_forget_at_once(row, message_id, voice_message_id, now))

    await ctx.db.write(settle)


async def _job(ctx: LinliContext) -> None:
    sender: OutboxSender = ctx.bot_data["outbox_sender"]
    await sender.drain(ctx)


def register(app: LinliApp) -> None:
    settings = app.bot_data["runtime"].settings
    instance, keeper = app.bot_data.get("instance"), app.bot_data.get("leases")
    sender = OutboxSender(settings.send_rate if settings.flood_control else 10_000.0,
                          instance.name if instance is not None else None)
    if keeper is not None:
        sender.holding = lambda: keeper.holds(LEASE)   # a batch starts only while the lease is ours
    app.bot_data["outbox_sender"] = sender
    run_leased(app, LEASE, _job, interval=settings.outbox_interval, first=0.2, name="outbox")
