"""One builder for the Application: defaults, rate limiter, database lifecycle, handlers, jobs."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
from datetime import timedelta
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    LinkPreviewOptions,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults

from bot.clock import Clock
from bot.config import Settings
from bot.context import LinliContext, Runtime
from bot.i18n import translator
from bot.models import N_
from bot.ratelimit import ChatRateLimiter
from bot.request import AiohttpRequest
from bot.updates import PerPersonUpdateProcessor
from storage.db import open_database
from storage.timeutil import to_db

log = logging.getLogger(__name__)

# Each feature module has ``register(app)``; they are registered in this order. ``bot.buttons``
# checks every button press before any handler sees it (and answers any press left unanswered after
# them all). Command handlers come first; ``bot.conversations.core`` registers the private-chat
# router (menu buttons, then the running dialog, then a polite fallback) last, so it only sees what
# nobody else took.
FEATURES = [
    "bot.buttons",
    "bot.dialogs",
    "bot.conversations.members",
    "bot.conversations.request_flow",
    "bot.conversations.requests",
    "bot.conversations.completion",
    "bot.conversations.rewards",
    "bot.conversations.reports",
    "bot.conversations.settings",
    "bot.jobs.outbox",
    "bot.jobs.sweeps",
    "bot.conversations.core",
]

# (command, description message id); private chats. Group chats get GROUP_COMMANDS.
PRIVATE_COMMANDS = [
    ("start", N_("Start or edit your registration")),
    ("request", N_("Ask for help")),
    ("publish", N_("Publish a task (staff)")),
    ("tasks", N_("Open tasks you can help with")),
    ("mytasks", N_("Your tasks")),
    ("points", N_("Your points")),
    ("rewards", N_("Points supermarket")),
    ("vouchers", N_("Your vouchers")),
    ("profile", N_("Your profile")),
    ("language", N_("中文 / English")),
    ("settings", N_("Reminders and digest")),
    ("help", N_("What I can do")),
    ("cancel", N_("Stop what you are doing")),
]
GROUP_COMMANDS = [
    ("setup", N_("Make this group a community's volunteer group")),
    ("help", N_("What I can do")),
]


class LinliApplication(Application):  # type: ignore[type-arg]
    """Ignores an update it has already handled (Telegram redelivers after a crash).

    Handled updates are remembered in memory at once and written to the database in small
    batches (one write transaction for many updates instead of one each), so the bookkeeping
    does not compete with claims for the single writer. A crash before a batch is written means
    those updates may be handled again after a restart; every service is idempotent for that.
    """

    _recent: dict[str, None]
    _unsaved: list[tuple[str, str]]
    _flusher: asyncio.Task[None] | None
    _old_max: int

    async def process_update(self, update: object) -> None:
        if not isinstance(update, Update):
            await super().process_update(update)
            return
        if not hasattr(self, "_recent"):
            self._recent, self._unsaved, self._flusher = {}, [], None
        runtime: Runtime = self.bot_data["runtime"]
        db = runtime.db
        key = _update_key(update)
        if key in self._recent or (
            db is not None and await self._may_be_old(db, update.update_id)
            and await db.fetchval("SELECT 1 FROM processed_updates WHERE update_key = ?", (key,))
        ):
            log.info("update %s was delivered again; ignored", update.update_id)
            return
        self._recent[key] = None  # also stops a copy arriving while this one is being handled
        if len(self._recent) > 20_000:
            for old in list(self._recent)[:10_000]:
                del self._recent[old]
        await super().process_update(update)
        self._unsaved.append((key, to_db(runtime.clock.now())))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())

    async def _may_be_old(self, db: Any, update_id: int) -> bool:
        """Could an earlier run have handled this update? Telegram numbers updates in increasing
        order, so one above the highest id recorded before this run started is new: no need to
        look it up. (Lower ids, e.g. from a Bot API server that started counting again, are.)"""
        if not hasattr(self, "_old_max"):
            top = await db.fetchval("SELECT MAX(CAST(substr(update_key, 1, instr(update_key, ':') - 1) AS INTEGER))"
                                    " FROM processed_updates")
            self._old_max = -1 if top is None else int(top)
        return update_id <= self._old_max

    async def _flush_soon(self) -> None:
        await asyncio.sleep(0.2)
        await self.flush_processed()

    async def flush_processed(self) -> None:
        runtime: Runtime = self.bot_data["runtime"]
        db = runtime.db
        batch, self._unsaved = getattr(self, "_unsaved", []), []
        if db is None or not batch:
            return
        try:
            now = runtime.clock.now()
            async with db.transaction() as conn:
                await conn.executemany(
                    "INSERT OR IGNORE INTO processed_updates (update_key, processed_at) VALUES (?, ?)", batch
                )
                if len(batch) > 0 and hash(batch[0][0]) % 50 == 0:  # now and then, forget updates older than a week
                    await conn.execute(
                        "DELETE FROM processed_updates WHERE processed_at < ?", (to_db(now - timedelta(days=7)),)
                    )
        except Exception:  # never let bookkeeping break handling
            log.exception("could not record %d handled updates", len(batch))


def _update_key(update: Update) -> str:
    """The update id plus a hash of what it carries: a redelivery has both the same.

    Button presses and messages (nearly every update) are fingerprinted from the fields that
    identify them; serialising the whole update cost about 8% of the bot's time under load.
    """
    q, m = update.callback_query, update.message
    if q is not None:
        parts: tuple[object, ...] = ("cb", q.id, q.data, q.from_user.id if q.from_user else None,
                                     q.message.chat.id if q.message else None,
                                     q.message.message_id if q.message else None, q.inline_message_id)
    elif m is not None:
        media = m.effective_attachment
        parts = ("msg", m.chat.id, m.message_id, m.date.timestamp() if m.date else None,
                 m.from_user.id if m.from_user else None, m.text, m.caption,
                 getattr(media, "file_unique_id", None) if media is not None and not isinstance(media, tuple) else None,
                 m.contact.phone_number if m.contact else None)
    else:
        parts = ("other", json.dumps(update.to_dict(), sort_keys=True, ensure_ascii=False, default=str))
    body = json.dumps(parts, ensure_ascii=False, default=str)
    return f"{update.update_id}:{hashlib.sha1(body.encode()).hexdigest()[:16]}"


def build_application(settings: Settings, clock: Clock | None = None) -> Application:  # type: ignore[type-arg]
    runtime = Runtime(settings=settings, clock=clock or settings.make_clock())

    async def post_init(app: Application) -> None:  # type: ignore[type-arg]
        runtime.db = await open_database(settings.database_url)
        from bot.jobs.outbox import reset_in_flight

        back = await reset_in_flight(runtime.db)
        if back:
            log.info("%d outbox messages were in flight at the last stop; sending them again", back)
        me = await app.bot.get_me()
        runtime.bot_username = me.username or ""
        await _set_commands(app)
        log.info("Linli is running as @%s", runtime.bot_username)

    async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
        if isinstance(app, LinliApplication):
            flusher = getattr(app, "_flusher", None)
            if flusher is not None and not flusher.done():
                try:
                    await flusher  # at most 0.2 s, then it writes its batch
                except Exception:
                    log.debug("the last batch of handled updates could not be written", exc_info=True)
            await app.flush_processed()
        if runtime.db is not None:
            await runtime.db.close()
            runtime.db = None

    builder: ApplicationBuilder = (  # type: ignore[type-arg]
        ApplicationBuilder()
        .application_class(LinliApplication)
        .token(settings.token())
        .base_url(settings.bot_api_url)
        .base_file_url(settings.file_url)
        .defaults(Defaults(parse_mode="HTML", tzinfo=settings.tz, link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .rate_limiter(ChatRateLimiter() if settings.flood_control else ChatRateLimiter.unthrottled())
        .context_types(ContextTypes(context=LinliContext))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .concurrent_updates(PerPersonUpdateProcessor(64))
        # aiohttp instead of httpx: several times less CPU per Bot API call (bot/request.py).
        .request(AiohttpRequest(connection_pool_size=64, connect_timeout=10, read_timeout=15, write_timeout=15))
        .get_updates_request(AiohttpRequest(connection_pool_size=1, connect_timeout=10, read_timeout=40))
    )
    app = builder.build()
    app.bot_data["runtime"] = runtime
    for name in FEATURES:
        importlib.import_module(name).register(app)
    app.add_error_handler(_on_error)
    return app


async def _set_commands(app: Application) -> None:  # type: ignore[type-arg]
    try:
        for lang in ("zh", "en", None):
            t = translator(lang or app.bot_data["runtime"].settings.default_language)
            private = [BotCommand(c, t(d)) for c, d in PRIVATE_COMMANDS]
            group = [BotCommand(c, t(d)) for c, d in GROUP_COMMANDS]
            await app.bot.set_my_commands(private, scope=BotCommandScopeAllPrivateChats(), language_code=lang)
            await app.bot.set_my_commands(group, scope=BotCommandScopeAllGroupChats(), language_code=lang)
    except TelegramError as exc:
        log.warning("could not register the command list: %s", exc)


async def _on_error(update: object, ctx: Any) -> None:
    """Log the error; tell the person, in their language, that something went wrong."""
    log.error("error while handling an update", exc_info=ctx.error)
    if not isinstance(update, Update):
        return
    try:
        from bot.ui import answer, tr_for

        t = await tr_for(update, ctx)
        text = t("Sorry, something went wrong on our side. Please try again in a moment.")
        if update.callback_query is not None:
            await answer(update.callback_query, text, alert=True)
        elif update.effective_chat is not None and update.effective_chat.type == "private":
            await update.effective_chat.send_message(text)
    except Exception:
        log.debug("could not tell the user about the error", exc_info=True)
