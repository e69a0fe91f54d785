"""The ``linli`` command: run, demo, migrate, backup, doctor, report, export.

Every failure ends in one line on stderr that names the problem and what to do, and a non-zero
exit code; no traceback, and never the token (``bot.logs.protect_output`` guards every line).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from bot import cli_pg, poll_lease
from bot.config import DEFAULT_API_URL, ConfigError, Settings, load_settings
from bot.instance import Instance, NameTaken, described, identify, keeper_for
from bot.logs import add_secret, protect_output, setup_logging
from storage.db import DatabaseError, DriverError, open_database, sqlite_path_from_url
from storage.pg import is_postgres_url

TOKEN_REFUSED = "BOT_TOKEN was refused by the Bot API: copy the token again from @BotFather"


def _token_refused(settings: Settings) -> str:
    where = "" if settings.bot_api_url == DEFAULT_API_URL else f" at {settings.bot_api_url} (check BOT_API_URL too)"
    return TOKEN_REFUSED.replace(": copy", f"{where}: copy")


def _fail(message: str, code: int = 2) -> int:
    print(f"linli: {message}", file=sys.stderr)
    return code


def _db_problem(exc: DatabaseError) -> str:
    text = str(exc)
    text = text if text.startswith("DATABASE_URL") else f"DATABASE_URL: {text}"
    return f"{text} (check DATABASE_URL, and that its folder exists or can be created and is writable)"


def shown_database(url: str) -> str:
    """Where the database is, for people: an SQLite file's absolute path, any other URL without its password."""
    try:
        path = sqlite_path_from_url(url)
    except DatabaseError:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rpartition("@")[2]
        user = quote(parts.username or "", safe="")
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
    return path if path == ":memory:" else str(Path(path).expanduser().resolve())


def database_file(settings: Settings) -> Path | None:
    """The database file named by DATABASE_URL, or None for an in-memory database."""
    path = sqlite_path_from_url(settings.database_url)
    return None if path == ":memory:" else Path(path).expanduser().resolve()


def _missing_database(settings: Settings) -> str | None:
    """A line for the operator when DATABASE_URL names a file (or a PostgreSQL schema) that does not exist yet."""
    if is_postgres_url(settings.database_url):
        return cli_pg.missing_schema(settings.database_url)
    path = database_file(settings)
    if path is not None and not path.exists():
        return f"no database at {path} (DATABASE_URL): create it with `linli migrate`"
    return None


async def _check_database(settings: Settings, instance: Instance | None = None) -> None:
    db = await open_database(settings.database_url)
    try:
        if instance is not None:
            await keeper_for(settings, instance).claim_name(db)
    finally:
        await db.close()


async def _get_me(settings: Settings, token: str) -> tuple[str | None, str]:
    """(problem, bot username): one call to getMe, every failure turned into a line without the token."""
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, TelegramError
    from telegram.request import HTTPXRequest

    bot = Bot(token, base_url=settings.bot_api_url, base_file_url=settings.file_url,
              request=HTTPXRequest(connect_timeout=10, read_timeout=15))
    try:
        await bot.initialize()
        return None, bot.username
    except InvalidToken:
        return _token_refused(settings), ""
    except NetworkError as exc:
        return (f"BOT_API_URL: cannot reach the Bot API at {settings.bot_api_url} ({exc.message}): "
                "check the network and BOT_API_URL"), ""
    except TelegramError as exc:
        return f"the Bot API refused getMe ({exc.message}): check BOT_TOKEN and BOT_API_URL", ""
    finally:
        try:
            await bot.shutdown()
        except Exception:
            pass


def cmd_run(settings: Settings) -> int:
    from telegram import Update
    from telegram.error import InvalidToken, NetworkError, TelegramError

    from bot.app import build_application

    token = settings.token()  # ConfigError when missing or malformed
    setup_logging("CRITICAL", token)  # the checks below end in one line of their own
    instance = identify(settings)
    problem = _start_problem(settings, token, instance)
    if problem:
        return _fail(problem)
    lease = _polling_turn(settings)
    setup_logging(settings.log_level, token)
    app = build_application(settings, instance=instance)
    _stop_when_polling_dies(app)
    if lease is not None:
        poll_lease.keep(app, lease, lambda: app.bot_data["runtime"].db)
    try:
        if settings.webhook_url:
            host, _, port = settings.webhook_listen.rpartition(":")
            app.run_webhook(
                listen=host,
                port=int(port),
                url_path="telegram",
                webhook_url=settings.webhook_url,
                secret_token=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
                allowed_updates=Update.ALL_TYPES,
                close_loop=False,
            )
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False, close_loop=False)
    except InvalidToken:
        return _fail(_finish(app, _token_refused(settings)))
    except NetworkError as exc:
        return _fail(_finish(app, f"BOT_API_URL: cannot reach the Bot API ({exc.message}): check the network and BOT_API_URL"))
    except TelegramError as exc:
        return _fail(_finish(app, f"the Bot API refused to start the bot ({exc.message}): check BOT_TOKEN and BOT_API_URL"))
    _finish(app, "", cleanly=True)
    if lease is not None:
        asyncio.run(poll_lease.give_up(settings, lease))
        if lease.lost:
            return _fail("another Linli instance took over long polling while this one was not responding;"
                         " this one stopped (only one instance may poll a database)", 3)
    return 0


def _polling_turn(settings: Settings) -> poll_lease.PollLease | None:
    """In polling mode, wait for this process's turn to poll (bot/poll_lease.py); None for a webhook."""
    if settings.webhook_url:
        return None
    lease = poll_lease.for_settings(settings)
    try:
        asyncio.run(poll_lease.wait_for_turn(settings, lease))
    except KeyboardInterrupt:   # Ctrl-C while standing by: nothing to clean up
        raise SystemExit(130) from None
    return lease


def _start_problem(settings: Settings, token: str, instance: Instance) -> str | None:
    """What stops ``linli run`` before it starts, in one line: the database, the instance name
    (another live process uses it: bot/instance.py), the token, the webhook's handler (bot/webhook.py)."""
    try:
        asyncio.run(_check_database(settings, instance))
    except DatabaseError as exc:
        return _db_problem(exc)
    except NameTaken as exc:
        return str(exc)
    return asyncio.run(_get_me(settings, token))[0] or _install_webhook(settings)


def _install_webhook(settings: Settings) -> str | None:
    """In webhook mode, the bot's own answer to each POST (bot/webhook.py); a line if it cannot be had."""
    if not settings.webhook_url:
        return None
    from bot import webhook

    try:
        webhook.install()
    except RuntimeError as exc:
        return str(exc)
    return None


def _stop_when_polling_dies(app: Any) -> None:
    """python-telegram-bot ends its polling loop for good on a refused token (revoked while the bot
    runs) but leaves the application running without updates: stop it, so the process exits with
    one line and a service manager can tell (and restart it)."""
    if app.job_queue is None or app.updater is None:
        return

    async def watch(_: Any) -> None:
        task = getattr(app.updater, "_Updater__polling_task", None)
        if task is not None and task.done() and app.running:
            app.stop_running()

    app.job_queue.run_repeating(watch, interval=1.0, first=1.0, name="polling-watchdog")


def _finish(app: Any, message: str, *, cleanly: bool = False) -> str:
    """Complete the shut-down python-telegram-bot skips when polling died (a token revoked while
    running): its ``Updater.stop()`` re-raises the polling error before the application is stopped
    and the database closed, and the database's threads then keep the process alive for ever."""
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        return message
    if not loop.is_closed() and not cleanly:
        for step in ("stop", "shutdown", "post_shutdown"):
            try:
                if step == "stop" and app.running:
                    loop.run_until_complete(app.stop())
                elif step == "shutdown":
                    loop.run_until_complete(app.shutdown())
                elif step == "post_shutdown" and app.post_shutdown:
                    loop.run_until_complete(app.post_shutdown(app))
            except Exception:
                logging.getLogger(__name__).debug("shutting down after %s", step, exc_info=True)
    if not loop.is_closed():
        loop.close()
    return message


def cmd_migrate(settings: Settings) -> int:
    async def go() -> int:
        db = await open_database(settings.database_url)
        try:
            return await db.schema_version()
        finally:
            await db.close()

    try:
        version = asyncio.run(go())
    except DatabaseError as exc:
        return _fail(_db_problem(exc))
    print(f"database {shown_database(settings.database_url)} is at schema version {version}")
    return 0


def cmd_backup(settings: Settings, target: str) -> int:
    missing = _missing_database(settings)
    if missing:
        return _fail(f"nothing to back up: {missing}")
    source = database_file(settings)
    dest = Path(target).expanduser().resolve()
    if source is not None and dest == source:
        return _fail(f"the backup must not overwrite the database itself ({dest}): choose another path")
    if dest.is_dir():
        return _fail(f"{dest} is a folder: give the backup a file name, e.g. {dest / 'linli-backup.db'}")

    async def go() -> None:
        db = await open_database(settings.database_url, migrate=False)
        try:
            await db.backup(str(dest))
        finally:
            await db.close()

    try:
        asyncio.run(go())
    except (DatabaseError, OSError, DriverError) as exc:
        cause = exc.__cause__ or exc
        reason = getattr(cause, "strerror", None) or str(cause)
        return _fail(f"cannot write the backup to {dest} ({reason}): choose a folder you can write to")
    print(f"backup written to {dest}")
    return 0


def _doctor_database(settings: Settings) -> tuple[bool, str]:
    """Read-only look at the database: never creates or changes it."""
    from storage.migrate import load_migrations
    from storage.readonly import ReadError, applied_migrations, open_readonly

    shown = shown_database(settings.database_url)
    path = database_file(settings)
    if path is None:
        return True, f"in memory ({shown}): nothing is kept between runs"
    if not path.exists():
        return False, f"MISSING ({shown}): create it with `linli migrate`"
    try:
        with open_readonly(path) as con:
            applied = applied_migrations(con)
    except (DatabaseError, ReadError) as exc:
        return False, f"FAILED ({shown}: {exc}): check DATABASE_URL and the file's permissions"
    pending = [m.version for m in load_migrations() if m.version not in applied]
    if not applied:
        return False, f"EMPTY ({shown}, not a Linli database yet): create it with `linli migrate`"
    if pending:
        return False, f"OUT OF DATE ({shown}, {len(pending)} migration(s) to apply): run `linli migrate`"
    return True, f"ok ({shown}, schema version {max(applied)})"


def _doctor_polling(settings: Settings) -> str:
    """Which instance long-polls the database (the lease; read-only)."""
    from datetime import UTC, datetime

    from storage.leases import holder_sync
    from storage.readonly import open_readonly

    path = database_file(settings)
    if path is None:
        return poll_lease.described(None, datetime.now(UTC))
    with open_readonly(path) as con:
        return poll_lease.described(holder_sync(con, poll_lease.NAME), datetime.now(UTC))


def _doctor_leases(settings: Settings) -> list[str]:
    """Which instance runs which timed job, and the instances running (the leases; read-only)."""
    from datetime import UTC, datetime

    from storage.leases import every_sync
    from storage.readonly import open_readonly

    path = database_file(settings)
    if path is None:
        return []
    with open_readonly(path) as con:
        every = every_sync(con)   # (only asked of a database whose schema is current)
    return described(every, datetime.now(UTC)) or ["nobody (no instance has run the timed jobs on this database)"]


def cmd_doctor(settings: Settings) -> int:
    print("configuration: ok")
    db_ok, line = _doctor_database(settings)
    print(f"database: {line}")
    if db_ok and not settings.webhook_url:
        print(f"polling: {_doctor_polling(settings)}")
    if db_ok:
        for lease in _doctor_leases(settings):
            print(f"lease: {lease}")
    return 0 if doctor_telegram(settings) and db_ok else 1


def doctor_telegram(settings: Settings) -> bool:
    """Print the doctor's telegram line (the token and whether the Bot API knows it); True when ok."""
    try:
        token = settings.token()
    except ConfigError as exc:
        print(f"telegram: FAILED ({exc})")
        return False
    problem, username = asyncio.run(_get_me(settings, token))
    if problem:
        print(f"telegram: FAILED ({problem})")
        return False
    print(f"telegram: ok (@{username} at {settings.bot_api_url})")
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linli", description="Linli (邻里) volunteer-points bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (long polling, or a webhook when BOT_WEBHOOK_URL is set)")
    demo = sub.add_parser("demo", help="play a scripted story against a local Telegram stand-in (no token needed)")
    demo.add_argument("--quiet", action="store_true", help="print only the transcript")
    demo.add_argument("--lang", choices=("zh", "en"), default="zh", help="the story's language (default: zh)")
    demo.add_argument("--out", default=None, metavar="DIR", help="also write index.html, transcript.txt and the pictures here")
    demo.add_argument("--database", default=None, metavar="URL",
                      help="play on this empty PostgreSQL database (postgresql://…) instead of a throw-away SQLite file")
    sub.add_parser("migrate", help="create or upgrade the database")
    cli_pg.add_parser(sub)
    backup = sub.add_parser("backup", help="copy the database safely while the bot runs")
    backup.add_argument("path")
    sub.add_parser("doctor", help="check configuration, database and the Bot API (changes nothing)")
    report = sub.add_parser("report", help="print the staff report for a period (and write charts with --out)")
    report.add_argument("period", nargs="?", default="month", help="week, month, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD")
    report.add_argument("--community", type=int, default=None, help="community id (default: all)")
    report.add_argument("--out", default=None, help="directory for the chart PNGs")
    report.add_argument("--lang", choices=("zh", "en"), default="zh")
    export = sub.add_parser("export", help="write CSV files and one XLSX workbook for a period")
    export.add_argument("period", nargs="?", default="month", help="week, month, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD")
    export.add_argument("--community", type=int, default=None, help="community id (default: all)")
    export.add_argument("--out", default=None, help="directory for the files (default: ./linli-export-PERIOD)")
    export.add_argument("--phones", action="store_true", help="include members' phone numbers")
    inbox = sub.add_parser("inbox", help="updates waiting, failed and set aside; --retry puts set-aside ones back")
    inbox.add_argument("--retry", nargs="?", const="all", default=None, metavar="UPDATE_ID")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    protect_output()
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "run"

    if command == "demo":
        from bot.devkit.demo import run_demo

        return run_demo(quiet=args.quiet, lang=args.lang, out=args.out, database=args.database)
    if command == "migrate-data":
        return cli_pg.cmd_migrate_data(args.source, args.target)
    add_secret(os.environ.get("BOT_TOKEN", "").strip())
    try:
        settings = load_settings()
        if settings.bot_token is not None:  # also when it came from .env
            add_secret(settings.bot_token.get_secret_value().strip())
        if command != "run":
            # The other commands report problems in their own one line; libraries stay quiet
            # (python-telegram-bot logs a refused call with a traceback) unless asked for DEBUG.
            setup_logging("DEBUG" if settings.log_level.upper() == "DEBUG" else "CRITICAL")
        result = _command(command, args, settings)
    except ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    if result is None:
        parser.print_help()
        return 2
    return result


def _command(command: str, args: argparse.Namespace, settings: Settings) -> int | None:
    """Run a command that needs the settings; None if there is no such command."""
    if is_postgres_url(settings.database_url) and (done := cli_pg.command(command, args, settings)) is not None:
        return done  # migrate, doctor and backup differ there
    if command == "run":
        return cmd_run(settings)
    if command == "migrate":
        return cmd_migrate(settings)
    if command == "backup":
        return cmd_backup(settings, args.path)
    if command == "doctor":
        return cmd_doctor(settings)
    if command in ("report", "export") and (missing := _missing_database(settings)):
        return _fail(missing)  # a report of an empty database it just created would mislead
    if command == "report":
        from bot.report_files.cli import cmd_report

        return cmd_report(settings, args.period, args.community, args.out, args.lang)
    if command == "export":
        from bot.report_files.cli import cmd_export

        return cmd_export(settings, args.period, args.community, args.out, args.phones)
    if command == "inbox":
        from bot.inbox_cli import cmd_inbox

        return cmd_inbox(settings, args.retry)
    return None
