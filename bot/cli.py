"""The ``linli`` command: run, demo, migrate, backup, doctor."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging
from storage.db import DatabaseError, open_database


def _fail(message: str, code: int = 2) -> int:
    print(f"linli: {message}", file=sys.stderr)
    return code


async def _check_database(settings: Settings) -> None:
    db = await open_database(settings.database_url)
    await db.close()


async def _check_api(settings: Settings, token: str) -> str | None:
    """Ask the Bot API who we are, once, before starting: a clear line instead of a traceback."""
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError, TelegramError
    from telegram.request import HTTPXRequest

    bot = Bot(token, base_url=settings.bot_api_url, base_file_url=settings.file_url,
              request=HTTPXRequest(connect_timeout=10, read_timeout=15))
    try:
        await bot.initialize()
    except InvalidToken:
        return "BOT_TOKEN was refused by the Bot API (check the token from @BotFather)"
    except NetworkError as exc:
        return f"BOT_API_URL: cannot reach the Bot API at {settings.bot_api_url} ({exc.message})"
    except TelegramError as exc:
        return f"the Bot API refused getMe: {exc.message}"
    finally:
        try:
            await bot.shutdown()
        except Exception:
            pass
    return None


def cmd_run(settings: Settings) -> int:
    from telegram import Update
    from telegram.error import InvalidToken, NetworkError, TelegramError

    from bot.app import build_application

    token = settings.token()  # ConfigError when missing
    try:
        asyncio.run(_check_database(settings))
    except DatabaseError as exc:
        return _fail(f"DATABASE_URL: {exc}".replace("DATABASE_URL: DATABASE_URL", "DATABASE_URL"))
    problem = asyncio.run(_check_api(settings, token))
    if problem:
        return _fail(problem)
    setup_logging(settings.log_level, token)
    app = build_application(settings)
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
            )
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
    except InvalidToken:
        return _fail("BOT_TOKEN was refused by the Bot API (check the token from @BotFather)")
    except NetworkError as exc:
        return _fail(f"BOT_API_URL: cannot reach the Bot API ({exc.message})")
    except TelegramError as exc:
        return _fail(f"the Bot API refused to start the bot: {exc.message}")
    return 0


def cmd_migrate(settings: Settings) -> int:
    async def go() -> int:
        db = await open_database(settings.database_url)
        version = await db.schema_version()
        await db.close()
        return version

    try:
        version = asyncio.run(go())
    except DatabaseError as exc:
        return _fail(f"DATABASE_URL: {exc}".replace("DATABASE_URL: DATABASE_URL", "DATABASE_URL"))
    print(f"database is at schema version {version}")
    return 0


def cmd_backup(settings: Settings, target: str) -> int:
    async def go() -> None:
        db = await open_database(settings.database_url, migrate=False)
        try:
            await db.backup(target)
        finally:
            await db.close()

    try:
        asyncio.run(go())
    except (DatabaseError, OSError) as exc:
        return _fail(f"backup failed: {exc}")
    print(f"backup written to {target}")
    return 0


def cmd_doctor(settings: Settings) -> int:
    from telegram import Bot
    from telegram.error import TelegramError

    ok = True
    print("configuration: ok")
    try:
        asyncio.run(_check_database(settings))
        print("database: ok")
    except DatabaseError as exc:
        print(f"database: FAILED ({exc})")
        ok = False
    try:
        token = settings.token()
    except ConfigError as exc:
        print(f"telegram: FAILED ({exc})")
        return 1

    async def me() -> str:
        async with Bot(token, base_url=settings.bot_api_url, base_file_url=settings.file_url) as bot:
            return bot.username

    try:
        print(f"telegram: ok (@{asyncio.run(me())})")
    except TelegramError as exc:
        print(f"telegram: FAILED ({exc.message})")
        ok = False
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linli", description="Linli (邻里) volunteer-points bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (long polling, or a webhook when BOT_WEBHOOK_URL is set)")
    demo = sub.add_parser("demo", help="play a scripted story against a local Telegram stand-in (no token needed)")
    demo.add_argument("--quiet", action="store_true", help="print only the transcript")
    sub.add_parser("migrate", help="create or upgrade the database")
    backup = sub.add_parser("backup", help="copy the database safely while the bot runs")
    backup.add_argument("path")
    sub.add_parser("doctor", help="check configuration, database and the Bot API")
    report = sub.add_parser("report", help="print the staff report for a period (and write charts with --out)")
    report.add_argument("period", nargs="?", default="month", help="week, month, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD")
    report.add_argument("--community", type=int, default=None, help="community id (default: all)")
    report.add_argument("--out", default=None, help="directory for the chart PNGs")
    report.add_argument("--lang", choices=("zh", "en"), default="zh")
    export = sub.add_parser("export", help="write CSV files and one XLSX workbook for a period")
    export.add_argument("period", nargs="?", default="month", help="week, month, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD")
    export.add_argument("--community", type=int, default=None, help="community id (default: all)")
    export.add_argument("--out", default=".", help="directory for the files")
    export.add_argument("--phones", action="store_true", help="include members' phone numbers")
    inbox = sub.add_parser("inbox", help="updates waiting, failed and set aside; --retry puts set-aside ones back")
    inbox.add_argument("--retry", nargs="?", const="all", default=None, metavar="UPDATE_ID")
    args = parser.parse_args(argv)
    command = args.command or "run"

    if command == "demo":
        from bot.demo import run_demo

        return run_demo(quiet=args.quiet)
    try:
        settings = load_settings()
        if command == "run":
            return cmd_run(settings)
        if command == "migrate":
            return cmd_migrate(settings)
        if command == "backup":
            return cmd_backup(settings, args.path)
        if command == "doctor":
            return cmd_doctor(settings)
        if command == "report":
            from bot.reports.cli import cmd_report

            return cmd_report(settings, args.period, args.community, args.out, args.lang)
        if command == "export":
            from bot.reports.cli import cmd_export

            return cmd_export(settings, args.period, args.community, args.out, args.phones)
        if command == "inbox":
            from bot.inbox_cli import cmd_inbox

            return cmd_inbox(settings, args.retry)
    except ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    parser.print_help()
    return 2
