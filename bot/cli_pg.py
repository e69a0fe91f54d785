"""The ``linli`` commands that differ on a PostgreSQL ``DATABASE_URL`` (issue 18).

``migrate`` (Alembic), ``migrate-data`` (copy an SQLite database in), ``doctor`` and ``backup``
(pg_dump) are here; ``run``, ``inbox``, ``report`` and ``export`` go through the storage layer as on
SQLite (storage/db_pg.py). The password never appears in what is printed (it is replaced by *** and
registered with bot.logs, which removes it from every line written).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from bot.logs import add_secret
from storage import pg

if TYPE_CHECKING:
    from bot.config import Settings

def protect(url: str) -> None:
    """Keep the URL's password out of everything printed from now on."""
    password = urlsplit(url).password
    if password:
        add_secret(password)
        add_secret(unquote(password))


def _fail(message: str, code: int = 2) -> int:
    from bot.cli import _fail as fail

    return fail(message, code)


def _reason(exc: BaseException) -> str:
    """The root cause of a database failure in a few words (never the URL)."""
    root: BaseException = exc
    while True:
        nxt = getattr(root, "orig", None) or root.__cause__
        if nxt is None or nxt is root:
            break
        root = nxt
    text = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
    return text


def cmd_migrate(url: str) -> int:
    shown = pg.shown_url(url)
    try:
        before, after = asyncio.run(pg.upgrade(url))
    except Exception as exc:
        return _fail(f"cannot migrate {shown} ({_reason(exc)}): check DATABASE_URL, that the database exists "
                     "and that its user may create tables")
    if before == after:
        print(f"database {shown} is at schema revision {after} (PostgreSQL): nothing to do")
    else:
        print(f"database {shown}: schema revision {before or 'none'} -> {after} (PostgreSQL, Alembic)")
    return 0


def database_line(url: str) -> tuple[bool, str]:
    """doctor's database line: read-only (server version, schema revision)."""
    shown = pg.shown_url(url)
    try:
        info = asyncio.run(pg.server_info(url))
    except Exception as exc:
        return False, f"FAILED ({shown}: {_reason(exc)}): check DATABASE_URL and that the server is running"
    head = pg.head_revision()
    where = f"{shown}, PostgreSQL {info.version}"
    if info.revision is None:
        return False, f"EMPTY ({where}, not a Linli database yet): create it with `linli migrate`"
    if info.revision != head:
        return False, f"OUT OF DATE ({where}, schema revision {info.revision}, expected {head}): run `linli migrate`"
    return True, f"ok ({where}, schema revision {info.revision})"


def missing_schema(url: str) -> str | None:
    """A line for the operator when the database has no Linli schema yet (or cannot be reached)."""
    try:
        info = asyncio.run(pg.server_info(url))
    except Exception as exc:
        return f"cannot reach {pg.shown_url(url)} ({_reason(exc)}): check DATABASE_URL and that the server is running"
    if info.revision is None:
        return f"no Linli database at {pg.shown_url(url)} (DATABASE_URL): create it with `linli migrate`"
    return None


def cmd_doctor(settings: Settings) -> int:
    from bot.cli import doctor_telegram

    print("configuration: ok")
    db_ok, line = database_line(settings.database_url)
    print(f"database: {line}")
    if db_ok and not settings.webhook_url:
        print(f"polling: {_polling(settings.database_url)}")
    if db_ok:
        for lease in _leases(settings.database_url):
            print(f"lease: {lease}")
    return 0 if doctor_telegram(settings) and db_ok else 1


def _polling(url: str) -> str:
    """Which instance long-polls the database (the lease; nothing is changed)."""
    from datetime import UTC, datetime

    from bot import poll_lease
    from storage.db import open_database
    from storage.leases import holder_sync

    async def look() -> str:
        db = await open_database(url, migrate=False)
        try:
            lease = await db.write(lambda conn: holder_sync(conn, poll_lease.NAME))
        finally:
            await db.close()
        return poll_lease.described(lease, datetime.now(UTC))

    return asyncio.run(look())


def _leases(url: str) -> list[str]:
    """Which instance runs which timed job, and the instances running (bot/instance.py; read-only)."""
    from datetime import UTC, datetime

    from bot.instance import described

    return (described(asyncio.run(pg.every_lease(url)), datetime.now(UTC))
            or ["nobody (no instance has run the timed jobs on this database)"])


def dump_command(url: str, target: str) -> tuple[list[str], dict[str, str]]:
    """The pg_dump call (custom format, restore with pg_restore) and its environment (the password)."""
    where = pg.Target.parse(url)
    command = ["pg_dump", "--format=custom", f"--file={target}", f"--host={where.host}", f"--port={where.port}",
               f"--username={where.user}", "--no-password", where.database]
    env = {"PGPASSWORD": where.password} if where.password is not None else {}
    return command, env


def cmd_backup(url: str, target: str) -> int:
    dest = Path(target).expanduser().resolve()
    if dest.is_dir():
        return _fail(f"{dest} is a folder: give the backup a file name, e.g. {dest / 'linli-backup.dump'}")
    command, env = dump_command(url, str(dest))
    binary = shutil.which("pg_dump")
    if binary is None:
        password = " PGPASSWORD=<the password>" if env else ""
        return _fail(f"pg_dump was not found (Debian: apt install postgresql-client); back up with:{password} "
                     f"{' '.join(command)}")
    done = subprocess.run([binary, *command[1:]], env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        return _fail(f"pg_dump failed ({lines[-1].removeprefix('pg_dump: ').removeprefix('error: ')}): "
                     f"check DATABASE_URL and that {dest.parent} is writable")
    print(f"backup written to {dest} (pg_dump, custom format: restore it with pg_restore)")
    return 0


def cmd_migrate_data(source: str, target: str) -> int:
    from storage.copy import CopyRefused, copy_to_postgres
    from storage.db import DatabaseError, sqlite_path_from_url

    protect(target)
    try:
        path = sqlite_path_from_url(source)
    except DatabaseError:
        return _fail("--from must be an sqlite:/// URL, e.g. --from sqlite:///data/linli.db")
    if path == ":memory:" or not Path(path).expanduser().exists():
        return _fail(f"--from: no SQLite database at {Path(path).expanduser().resolve()}")
    if not pg.is_postgres_url(target):
        return _fail("--to must be a postgresql:// URL, e.g. --to postgresql://linli:PASSWORD@localhost/linli")
    shown = pg.shown_url(target)
    try:
        report = asyncio.run(copy_to_postgres(path, target))
    except CopyRefused as exc:
        return _fail(f"nothing copied: {exc}")
    except Exception as exc:
        return _fail(f"nothing copied to {shown} ({_reason(exc)}): check --to and that the server is running")
    print(f"copied {Path(path).expanduser().resolve()} -> {shown} (schema revision {report.revision}), in one transaction")
    width = max(len(t) for t, _ in report.counts)
    for table, rows in report.counts:
        print(f"  {table:<{width}}  {rows:>9,}")
    print(f"checked: rows per table equal in {len(report.counts)} tables; {report.balances:,} balances equal "
          f"their ledger sums; {report.totals:,} running totals equal the ledger's sums")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    copy = sub.add_parser("migrate-data", help="copy an SQLite database into an empty, migrated PostgreSQL database")
    copy.add_argument("--from", dest="source", required=True, metavar="sqlite:///PATH")
    copy.add_argument("--to", dest="target", required=True, metavar="postgresql://USER:PASSWORD@HOST/DB")


def command(name: str, args: argparse.Namespace, settings: Settings) -> int | None:
    """A command with DATABASE_URL on PostgreSQL (None: the same as on SQLite, through the storage layer)."""
    url = settings.database_url
    protect(url)
    if name == "migrate":
        return cmd_migrate(url)
    if name == "doctor":
        return cmd_doctor(settings)
    if name == "backup":
        return cmd_backup(url, args.path)
    return None  # run, inbox, report, export: through the storage layer, as on SQLite
