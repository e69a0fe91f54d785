"""The durable inbox: nothing Telegram delivered is lost, whatever moment the process dies.

python-telegram-bot's Updater confirms updates to Telegram (the next ``getUpdates`` carries
``offset = last + 1``, or the webhook answers 200) as soon as it has put them in its queue; an
update held only in memory was gone after a crash. Here the Application's update queue is an
``InboxQueue``: an update put in it is committed to the ``inbox`` table first.

- Long polling: ``put`` only buffers; the getUpdates request (``InboxPollRequest``) commits the
  buffer before it asks for the next batch, so the offset that confirms a batch is sent only
  after the batch is in the database. If the database cannot take it, the request fails and
  python-telegram-bot retries it with the old offset.
- Webhook: ``put`` commits before it returns (concurrent requests share one commit), and the
  webhook answers 200 only then; an error answers 500 and Telegram delivers again.

``Inbox.run`` handles what is in the table: it claims unfinished rows with one guarded
``UPDATE ... RETURNING`` (status, owner and a lease; nothing in it assumes a single process), in
update order, and never a row behind another instance's unfinished row of the same lane. Lanes
are a person's button presses and a person's messages (``bot.updates.lane``): concurrent across
lanes, in order within one. A row is marked handled once the handlers have returned (their
effects are committed by then); marks are written in small batches. A crash before the mark
means the update is handled again after the restart: handlers are idempotent.

A failing update is tried ``MAX_ATTEMPTS`` times in all (with back-off, its lane waiting), then
set aside with its error; the lane goes on. (A process killed while handling a row does not count
as an attempt: a kill says nothing about the update, and rows queued behind it were not tried.)
``linli inbox`` shows the counts and puts set-aside rows back.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from telegram import Bot, Update
from telegram.error import NetworkError
from telegram.request import RequestData

from bot.http_client import AiohttpRequest
from bot.updates import lane
from storage import inbox as inbox_store
from storage.db import Database
from storage.inbox import InboxRow
from storage.timeutil import from_db, to_db

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
BACKOFF_S = (0.5, 2.0, 5.0)      # waits before the 2nd, 3rd and 4th attempt
LEASE = timedelta(minutes=5)     # another instance may take over a claimed row after this
MARK_EVERY_S = 0.05              # handled marks are written this often (one transaction)
CLAIM_BATCH = 200
MAX_IN_FLIGHT = 2000
POLL_S = 1.0                     # look for rows others left (expired leases, retried rows)
LATE_ANSWER_S = 14.0             # Telegram refuses answerCallbackQuery after about 15 s

# When the update being handled reached the inbox (seconds since the epoch): a button's answer
# after LATE_ANSWER_S cannot be shown any more and goes out as a message (bot.ui.answer).
ARRIVED: contextvars.ContextVar[float | None] = contextvars.ContextVar("inbox_arrived", default=None)
# True while handling an update a stopped process may have handled (and answered) already.
AGAIN: contextvars.ContextVar[bool] = contextvars.ContextVar("inbox_again", default=False)


def answer_is_late(now: float) -> bool:
    arrived = ARRIVED.get()
    return arrived is not None and now - arrived > LATE_ANSWER_S


def handled_before() -> bool:
    """Could this update have been handled (its button answered) by a process that then died?"""
    return AGAIN.get()


def default_owner() -> str:
    """The name rows are claimed under when none is given (tests, tools). The bot gives its instance's
    name (bot/instance.py: BOT_INSTANCE_NAME, or host:pid), unique among the running processes: a
    restart under the same name takes back its own unfinished rows at once, and a stopped instance's
    rows are taken back by the others (their lease renewed while the instance lives)."""
    return socket.gethostname() or "linli"


def lane_key(update: Update) -> str:
    key = lane(update)
    return f"{key[0]}:{key[1]}" if key is not None else f"u:{update.update_id}"


def _compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _record(update: Update, received_at: str, raw: str | None = None) -> dict[str, Any]:
    """The inbox row of an update. ``raw``: the update as Telegram sent it (long polling keeps it),
    stored as it is; otherwise python-telegram-bot's ``to_dict`` (a walk over every object of the
    update, about as costly as parsing it) is stored. Digests of the two forms differ: the raw
    one starts with ``r``, and a redelivery is recognised only against a digest of its own form
    (storage/inbox.py), so an update handled before an upgrade is not handled again after it."""
    if raw is not None:
        payload, digest = raw, "r" + hashlib.sha1(raw.encode()).hexdigest()[:15]
    else:
        payload = _compact(update.to_dict())
        digest = hashlib.sha1(payload.encode()).hexdigest()[:16]
    user = update.effective_user
    return {"update_id": update.update_id, "user_id": user.id if user is not None else None,
            "lane": lane_key(update), "digest": digest, "payload": payload, "received_at": received_at}


class Inbox:
    """Stores updates and handles them from the table. ``process(update, final)`` runs the
    handlers and returns the error they raised (``final``: no retry follows)."""

    def __init__(
        self,
        db: Database,
        process: Callable[[Update, bool], Awaitable[BaseException | None]],
        *,
        bot: Bot | None = None,
        now: Callable[[], datetime],
        owner: str | None = None,
        concurrency: int = 64,
    ) -> None:
        self.db = db
        self.process = process
        self.bot = bot
        self.now = now
        self.owner = owner or default_owner()
        self._parsed: dict[int, Update] = {}        # updates this process stored: no parsing again
        self._wake = asyncio.Event()
        self._working = asyncio.Semaphore(concurrency)
        self._lanes: dict[str, asyncio.Lock] = {}
        self._lane_users: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handled: list[tuple[str, int, str]] = []
        self._marker: asyncio.Task[None] | None = None
        self._stopping = False
        # Other instances share the table (bot/instance.py says so): a lane's next row another one
        # stored waits for this instance's handled mark, so each mark looks for rows at once.
        self.shared = False

    # -- storing -------------------------------------------------------------------------
    async def store(self, updates: Sequence[Update], raw: Mapping[int, str] | None = None) -> None:
        """Commit these updates to the inbox (one transaction); redeliveries are ignored. ``raw``:
        the JSON Telegram sent for some of them, by update id (see ``_record``)."""
        if not updates:
            return
        received = to_db(self.now())
        texts = raw or {}
        rows = [_record(u, received, texts.get(u.update_id)) for u in updates]
        await self.db.write(lambda conn: inbox_store.store(conn, rows))
        if len(self._parsed) > 20_000:  # redelivered copies of handled updates are never taken out
            self._parsed.clear()
        for u in updates:
            self._parsed[u.update_id] = u
        self._wake.set()

    # -- handling ------------------------------------------------------------------------
    async def recover(self) -> int:
        """Rows this instance had claimed when it stopped are waiting again (handled in order);
        ``not_before`` set says they may have been handled already."""
        now, owner = to_db(self.now()), self.owner
        return await self.db.write(lambda conn: inbox_store.take_back(conn, owner, now))

    async def claim(self, limit: int = CLAIM_BATCH) -> list[InboxRow]:
        now = self.now()
        owner, stamp, lease = self.owner, to_db(now), to_db(now + LEASE)
        rows = await self.db.write(
            lambda conn: inbox_store.claim(conn, owner=owner, now=stamp, lease_until=lease, limit=limit))
        rows.sort(key=lambda r: r.update_id)
        return rows

    async def run(self) -> None:
        """Claim and handle until ``stop()``; rows are handled in update order per lane."""
        await self.recover()
        while not self._stopping:
            self._wake.clear()
            try:
                rows = await self.claim() if len(self._tasks) < MAX_IN_FLIGHT else []
            except Exception:
                log.exception("could not claim rows from the inbox")
                rows = []
            for row in rows:
                task = asyncio.create_task(self._run_row(row))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(rows) == CLAIM_BATCH and len(self._tasks) < MAX_IN_FLIGHT:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, let the updates being handled finish (up to ``timeout``), write the marks."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
        await self.flush_marks()

    async def _run_row(self, row: InboxRow) -> None:
        lock = self._lanes.setdefault(row.lane, asyncio.Lock())
        self._lane_users[row.lane] = self._lane_users.get(row.lane, 0) + 1
        try:
            async with lock, self._working:
                await self._handle(row)
        finally:
            self._lane_users[row.lane] -= 1
            if self._lane_users[row.lane] == 0:
                del self._lane_users[row.lane]
                self._lanes.pop(row.lane, None)

    async def _handle(self, row: InboxRow) -> None:
        update = self._parsed.pop(row.update_id, None)
        try:
            if update is None:
                update = Update.de_json(json.loads(row.payload), self.bot)
        except Exception as exc:
            await self._set_aside(row.update_id, f"unreadable: {exc!r}")
            return
        # In real seconds since the epoch (the bot's clock may be shifted, as in the demo).
        arrived = time.time() - (self.now() - from_db(row.received_at)).total_seconds()
        attempt = row.attempts + 1
        while True:
            token, again = ARRIVED.set(arrived), AGAIN.set(row.again or attempt > 1)
            try:
                error = await self.process(update, attempt >= MAX_ATTEMPTS)
            except Exception as exc:  # process() reports errors; this is only a safety net
                error = exc
            finally:
                ARRIVED.reset(token)
                AGAIN.reset(again)
            if error is None:
                self._mark(row.update_id)
                return
            text = f"{type(error).__name__}: {error}"[:1000]
            if attempt >= MAX_ATTEMPTS:
                log.error("update %s set aside after %d attempts: %s", row.update_id, attempt, text)
                await self._set_aside(row.update_id, text, attempt)
                return
            delay = BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)]
            log.warning("update %s failed (attempt %d of %d; again in %.1f s): %s",
                        row.update_id, attempt, MAX_ATTEMPTS, delay, text)
            await self._record_failure(row.update_id, text, attempt)
            attempt += 1
            await asyncio.sleep(delay)

    def _mark(self, update_id: int) -> None:
        self._handled.append((to_db(self.now()), update_id, self.owner))
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark_soon())

    async def _mark_soon(self) -> None:
        # Until nothing is left: marks added while a batch was being written wait for no one else.
        while self._handled:
            await asyncio.sleep(MARK_EVERY_S)
            if not await self.flush_marks():
                await asyncio.sleep(1.0)

    async def flush_marks(self) -> bool:
        """Write the handled marks; False if they could not be written (kept for the next try)."""
        batch, self._handled = self._handled, []
        if not batch:
            return True
        try:
            await self.db.write(lambda conn: inbox_store.mark_handled(conn, batch))
        except Exception:
            self._handled[:0] = batch  # tried again with the next batch
            log.exception("could not mark %d updates handled", len(batch))
            return False
        if self.shared:
            self._wake.set()
        return True

    async def _record_failure(self, update_id: int, error: str, attempts: int) -> None:
        lease, owner = to_db(self.now() + LEASE), self.owner
        with contextlib.suppress(Exception):
            await self.db.write(lambda conn: inbox_store.record_failure(
                conn, update_id=update_id, owner=owner, error=error, attempts=attempts, lease_until=lease))

    async def _set_aside(self, update_id: int, error: str, attempts: int = 1) -> None:
        try:
            await self.db.write(lambda conn: inbox_store.set_aside(conn, update_id=update_id, error=error,
                                                                   attempts=attempts))
        except Exception:
            log.exception("could not set update %s aside", update_id)


# -- the Application's side ----------------------------------------------------------------

class InboxQueue(asyncio.Queue):  # type: ignore[type-arg]
    """python-telegram-bot's update queue, storing updates in the inbox instead of handing them on.

    Anything that is not an ``Update`` (the Application's stop signal) passes through as before.
    ``deferred`` (long polling): ``put`` only buffers and ``flush`` is called by the getUpdates
    request; otherwise (webhook) ``put`` returns once the update is committed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inbox: Inbox | None = None
        self.deferred = False
        self._buffer: list[Update] = []
        self._flushing = asyncio.Lock()
        self.raw: dict[int, str] = {}  # update id -> the JSON Telegram sent (InboxPollRequest)

    async def put(self, item: Any) -> None:
        if not isinstance(item, Update):
            await super().put(item)
            return
        self._buffer.append(item)
        if not self.deferred:
            await self.flush()

    async def flush(self) -> None:
        """Commit everything buffered. Whoever holds the lock commits what others added before it
        was taken; taking the lock ourselves afterwards means our own update is committed."""
        async with self._flushing:
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            if self.inbox is None:
                self._buffer[:0] = batch
                raise RuntimeError("the inbox is not open yet")
            raw = {u.update_id: self.raw[u.update_id] for u in batch if u.update_id in self.raw}
            try:
                await self.inbox.store(batch, raw)
            except BaseException:
                self._buffer[:0] = batch
                raise
            for update_id in raw:
                del self.raw[update_id]


class InboxPollRequest(AiohttpRequest):
    """The getUpdates request: commits the updates fetched so far before it asks for more (the
    request's offset confirms them to Telegram)."""

    def __init__(self, queue: InboxQueue, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._queue = queue
        self._asked: tuple[Any, int] = (None, 0)  # the offset last asked for, and how many updates came

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            await self._queue.flush()
        except Exception as exc:
            raise NetworkError(f"updates not stored in the inbox yet ({exc}); asking again") from exc
        status, payload = await super().do_request(url, method, request_data, *args, **kwargs)
        if status == 200:
            offset = request_data.parameters.get("offset") if request_data is not None else None
            # The same offset again after updates came: python-telegram-bot could not read one of them
            # (it asks again at once, for ever). This time each unreadable one is reduced to its id.
            again = self._asked[1] > 0 and self._asked[0] == offset
            self._asked = (offset, self._keep_raw(payload))
            if again:
                payload = _readable(payload)
        return status, payload

    def _keep_raw(self, payload: bytes) -> int:
        """Keep each update's JSON as Telegram sent it, for the inbox row (no ``to_dict`` walk);
        returns how many came."""
        raw = self._queue.raw
        if len(raw) > 10_000:  # updates python-telegram-bot never queued: nothing waits for them
            raw.clear()
        try:
            result = json.loads(payload.decode("utf-8", "replace")).get("result")
        except (ValueError, AttributeError):
            return 0  # python-telegram-bot reports it
        items = result if isinstance(result, list) else []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("update_id"), int):
                raw[item["update_id"]] = _compact(item)
        return len(items)


_WARNED: dict[Any, None] = {}  # the ids of unreadable updates logged already (read_update)


def read_update(data: dict[str, Any], bot: Bot | None) -> tuple[Update, bool]:
    """One update as Telegram sent it (an object; Telegram's always carry an ``update_id``), read by
    python-telegram-bot, and True. One it cannot read (a shape a newer or older Bot API sent) is
    reduced to its id, and False: it is stored and handled as an empty update (no handler acts on
    it), so Telegram is told it arrived and the updates after it go on; its redelivery has the same
    id and is recognised as ever. The one home of this rule, for long polling (``_readable``) and
    the webhook (bot/webhook.py). Logged once at WARNING, with the id, the kind of update and the
    error's type: never the content (residents' names, phones and addresses)."""
    try:
        return Update.de_json(data, bot), True
    except Exception as exc:
        update_id = data.get("update_id")
        if update_id not in _WARNED:  # a redelivery (its 200 lost on the way) is not logged again
            if len(_WARNED) > 1000:
                _WARNED.clear()
            _WARNED[update_id] = None
            kind = ",".join(sorted(str(k)[:40] for k in data if k != "update_id")[:5]) or "nothing"
            log.warning("update %s cannot be read (%s in its %s): it is handled as an empty update",
                        update_id, type(exc).__name__, kind)
        return Update.de_json({"update_id": update_id}, bot), False


def _readable(payload: bytes) -> bytes:
    """A getUpdates answer with each update python-telegram-bot cannot read reduced to its id: it is
    handled as nothing (its inbox row keeps what Telegram sent), and the updates after it go on."""
    try:
        body = json.loads(payload.decode("utf-8", "replace"))
        result = body.get("result")
    except (ValueError, AttributeError):
        return payload
    if not isinstance(result, list):
        return payload
    for i, item in enumerate(result):
        if not isinstance(item, dict):
            log.warning("an update in getUpdates' answer is not an object: it is handled as an empty update")
            result[i] = {"update_id": None}
        elif not read_update(item, None)[1]:
            result[i] = {"update_id": item.get("update_id")}
    return json.dumps(body).encode()
