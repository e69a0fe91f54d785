"""One builder for the Application: defaults, rate limiter, database lifecycle, handlers, jobs."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import importlib
import logging
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    LinkPreviewOptions,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults, JobQueue

from bot import codes
from bot.budget import SharedBudget
from bot.clock import Clock
from bot.config import Settings
from bot.context import LinliContext, Runtime
from bot.http_client import AiohttpRequest
from bot.i18n import translator
from bot.inbox import Inbox, InboxPollRequest, InboxQueue
from bot.instance import ONE_AT_A_TIME, OUTBOX, Instance, LeaseKeeper, identify, keeper_for
from bot.models import N_
from bot.ratelimit import ChatRateLimiter
from storage.db import Database, open_database

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
    "bot.conversations.dispatch",
    "bot.conversations.waitlist",
    "bot.conversations.completion",
    "bot.conversations.checkin",
    "bot.conversations.rewards",
    "bot.conversations.reward_admin",
    "bot.conversations.report_commands",
    "bot.conversations.settings",
    "bot.conversations.reliability",
    "bot.conversations.roster",
    "bot.jobs.outbox_drain",
    "bot.jobs.sweeps",
    "bot.jobs.series",
    "bot.conversations.series",
    "bot.conversations.core",
]

# (command, description message id); private chats. Group chats get GROUP_COMMANDS.
PRIVATE_COMMANDS = [
    ("start", N_("Start or edit your registration")),
    ("request", N_("Ask for help")),
    ("publish", N_("Publish a task (staff)")),
    ("series", N_("Recurring events (staff)")),
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


# (errors seen, no retry follows) for the update being handled from the inbox: see process_error.
_HANDLING: contextvars.ContextVar[tuple[list[BaseException], bool] | None] = contextvars.ContextVar(
    "linli_handling", default=None)


class LinliApplication(Application):  # type: ignore[type-arg]
    """Updates come from the durable inbox (bot/inbox.py), which also recognises a redelivered one.

    ``handle_from_inbox`` runs the handlers and returns the error one of them raised, so the inbox
    can try the update again; the person hears "something went wrong" only when no retry follows.
    """

    async def handle_from_inbox(self, update: Update, final: bool) -> BaseException | None:
        errors: list[BaseException] = []
        token = _HANDLING.set((errors, final))
        try:
            await self.process_update(update)
        except Exception as exc:
            errors.append(exc)
        finally:
            _HANDLING.reset(token)
        return errors[0] if errors else None

    async def process_error(self, update: object | None, error: Exception, job: Any = None,
                            coroutine: Any = None) -> bool:
        state = _HANDLING.get()
        if state is not None and job is None and isinstance(update, Update):
            errors, final = state
            errors.append(error)
            if not final:
                log.info("update %s failed, will be tried again: %r", update.update_id, error)
                return True  # no more handler groups this time: the whole update is tried again
        return await super().process_error(update, error, job, coroutine)


class LinliJobQueue(JobQueue):  # type: ignore[type-arg]
    """python-telegram-bot's job queue, stopped without cutting a tick short.

    Its ``stop`` waits for the ticks running at that moment, then shuts the scheduler down, which
    cancels whatever started meanwhile: a tick that fell due while it waited was cut mid-run, or
    cancelled before its first step (APScheduler then logs "Error running job" with a traceback).
    Here the scheduler is paused first, so no tick starts once stopping has begun, and every tick
    already started (however late) finishes before the shut-down."""

    async def stop(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.pause()
        pending = self._executor._pending_futures
        while wait and pending:
            await asyncio.gather(*list(pending), return_exceptions=True)
        await super().stop(wait)


def freeze_start_up_heap() -> None:
    """What start-up loaded (modules, classes, catalogues, python-telegram-bot's and aiohttp's
    objects: several hundred thousand) lives as long as the process: moved out of the collector's
    reach, a full collection then walks only what was made since. Without it each full collection
    walked them all, a pause of 80–160 ms on the event loop (measured in a claim storm's first
    second, pinned to one busy core): every update waiting meanwhile waits that long."""
    gc.collect()
    gc.freeze()


async def open_runtime_database(settings: Settings) -> Database:
    """The running bot's database, with its pool sized by DATABASE_POOL_SIZE (PostgreSQL)."""
    return await open_database(settings.database_url, pool_size=settings.database_pool_size)


def build_application(settings: Settings, clock: Clock | None = None,
                      instance: Instance | None = None) -> Application:  # type: ignore[type-arg]
    runtime = Runtime(settings=settings, clock=clock or settings.make_clock())
    instance = instance or identify(settings)
    keeper = keeper_for(settings, instance)
    keeper.inbox_now = runtime.clock.now
    codes.use_seed(settings.random_seed)
    queue = InboxQueue()
    queue.deferred = not settings.webhook_url  # long polling: committed before the next getUpdates
    tasks: list[asyncio.Task[None]] = []

    async def post_init(app: Application) -> None:  # type: ignore[type-arg]
        runtime.db = await open_runtime_database(settings)
        assert isinstance(app, LinliApplication)
        await _start_instance(app, runtime.db, keeper)
        inbox = Inbox(runtime.db, app.handle_from_inbox, bot=app.bot, now=runtime.clock.now, owner=instance.name)
        queue.inbox = inbox
        app.bot_data["inbox"] = inbox
        inbox.shared = keeper.others > 0
        tasks.append(asyncio.create_task(_run_inbox(app, inbox)))
        me = await app.bot.get_me()
        runtime.bot_username = me.username or ""
        await _set_commands(app)
        log.info("Linli is running as @%s", runtime.bot_username)
        freeze_start_up_heap()

    async def post_stop(app: Application) -> None:  # type: ignore[type-arg]
        inbox = app.bot_data.get("inbox")
        if isinstance(inbox, Inbox):
            await inbox.stop()  # the updates being handled finish; the handled marks are written
        if runtime.db is not None:
            await keeper.release(runtime.db)  # the jobs have stopped: another instance takes them at once
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
        await post_stop(app)  # (already done if the application was started)
        if runtime.db is not None:
            await runtime.db.close()
            runtime.db = None

    builder = _builder(settings, queue).post_init(post_init).post_stop(post_stop).post_shutdown(post_shutdown)
    app = builder.build()
    app.bot_data["runtime"] = runtime
    app.bot_data["instance"] = instance
    app.bot_data["leases"] = keeper
    for name in FEATURES:
        importlib.import_module(name).register(app)
    app.add_error_handler(_on_error)
    return app


def _builder(settings: Settings, queue: InboxQueue) -> ApplicationBuilder:  # type: ignore[type-arg]
    """Telegram's side of the application: defaults, pacing, HTTP clients, and the inbox as its queue."""
    return (
        ApplicationBuilder()
        .application_class(LinliApplication)
        .token(settings.token())
        .base_url(settings.bot_api_url)
        .base_file_url(settings.file_url)
        .defaults(Defaults(parse_mode="HTML", tzinfo=settings.tz, link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .rate_limiter(ChatRateLimiter() if settings.flood_control else ChatRateLimiter.unthrottled())
        .context_types(ContextTypes(context=LinliContext))
        .job_queue(LinliJobQueue())
        .update_queue(queue)
        # aiohttp instead of httpx: several times less CPU per Bot API call (bot/http_client.py).
        .request(AiohttpRequest(connection_pool_size=64, connect_timeout=10, read_timeout=15, write_timeout=15))
        .get_updates_request(InboxPollRequest(queue, connection_pool_size=1, connect_timeout=10, read_timeout=40))
    )


async def _start_instance(app: Application, db: Database, keeper: LeaseKeeper) -> None:  # type: ignore[type-arg]
    """Take this instance's name and the jobs' leases that are free; put back what a stopped sender
    left in flight (bot/instance.py); renew the leases from the job queue."""
    from bot.jobs.outbox_drain import reset_in_flight

    me = keeper.instance.name

    async def outbox_taken(db: Database) -> None:
        back = await reset_in_flight(db, me, mine=False)
        if back:
            log.info("%d outbox messages were on their way when their sender stopped; sending them again", back)

    keeper.on_take[OUTBOX] = outbox_taken
    keeper.on_lost = app.stop_running
    await keeper.claim_name(db)   # NameTaken: another live process has this name
    back = await reset_in_flight(db, me)
    if back:
        log.info("%d outbox messages were in flight at the last stop; sending them again", back)
    await keeper.tick(db)
    _share_budget(app, db, keeper)

    async def renew(_: Any) -> None:
        runtime, inbox = app.bot_data["runtime"], app.bot_data.get("inbox")
        if runtime.db is not None:
            await keeper.tick(runtime.db)
            _share_budget(app, runtime.db, keeper)
        if isinstance(inbox, Inbox):
            inbox.shared = keeper.others > 0

    assert app.job_queue is not None
    app.job_queue.run_repeating(renew, interval=keeper.renew, first=keeper.renew, name="leases",
                                job_kwargs=dict(ONE_AT_A_TIME))


def _share_budget(app: Application, db: Database, keeper: LeaseKeeper) -> None:  # type: ignore[type-arg]
    """Telegram's limits kept in the database (bot/budget.py) while other instances are live; with
    this one alone, its own pacing, and only its messages to groups counted there (no database call
    on the way to a private chat)."""
    limiter = app.bot.rate_limiter
    if not isinstance(limiter, ChatRateLimiter) or not app.bot_data["runtime"].settings.flood_control:
        return
    budget = limiter.budget
    if not isinstance(budget, SharedBudget) or budget.db is not db:
        budget = limiter.budget = SharedBudget(db, shared=False)
    shared = keeper.others > 0
    if shared != budget.shared:
        log.info("other instances are live: Telegram's limits are kept together, in the database" if shared else
                 "this instance runs alone: Telegram's limits are kept by its own pacing (groups counted in the database)")
    budget.shared = shared


async def _run_inbox(app: Application, inbox: Inbox) -> None:  # type: ignore[type-arg]
    """Handle the inbox once the application runs (handlers may rely on it running)."""
    while not app.running:
        await asyncio.sleep(0.05)
    try:
        await inbox.run()
    except Exception:
        log.exception("the inbox stopped")
        raise


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
