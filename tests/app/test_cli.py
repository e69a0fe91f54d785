"""The ``linli`` command's failure paths: one line naming the problem and what to do, a non-zero exit,
no traceback, and never the token, whatever fails (issue: a CLI without rough edges)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.logs import RedactingFormatter, RedactToken, add_secret, redact

ROOT = Path(__file__).resolve().parents[2]
# Unique text, and deliberately too short after the colon for the generic token pattern: only the
# configured secret itself can redact it.
SECRET = "4242:Zq9UniqueSecretTok"
SECRET_TAIL = SECRET.split(":")[1]
OFFLINE = "http://127.0.0.1:9/bot"  # nothing listens on the discard port


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def assert_clean(self) -> None:
        assert SECRET not in self.text and SECRET_TAIL not in self.text, self.text
        assert "Traceback" not in self.text and "Exception in thread" not in self.text, self.text


async def linli(args: list[str], cwd: Path, **env: str) -> Result:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") and k != "DATABASE_URL"}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=clean, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def one_line_failure(result: Result, *needles: str) -> str:
    assert result.code != 0, result.text
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    result.assert_clean()
    return lines[0]


def migrated(tmp_path: Path) -> str:
    path = tmp_path / "data" / "linli.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    import storage.db

    async def go() -> None:
        db = await storage.db.open_database(str(path))
        await db.close()

    asyncio.run(go())
    return f"sqlite:///{path}"


# -- doctor ------------------------------------------------------------------------------------

async def test_doctor_with_a_refused_token_names_the_database_and_hides_the_token(
        fake: FakeTelegram, tmp_path: Path) -> None:
    url = await asyncio.to_thread(migrated, tmp_path)
    result = await linli(["doctor"], tmp_path, BOT_TOKEN=SECRET, BOT_API_URL=fake.base_url, DATABASE_URL=url)
    assert result.code == 1
    result.assert_clean()
    assert f"database: ok ({tmp_path / 'data' / 'linli.db'}, schema version" in result.out
    assert f"telegram: FAILED (BOT_TOKEN was refused by the Bot API at {fake.base_url} (check BOT_API_URL too):" \
           " copy the token again from @BotFather)" in result.out


async def test_doctor_in_an_empty_folder_creates_nothing(fake: FakeTelegram, tmp_path: Path) -> None:
    from bot.devkit.harness import TOKEN

    result = await linli(["doctor"], tmp_path, BOT_TOKEN=TOKEN, BOT_API_URL=fake.base_url)
    assert result.code == 1
    assert f"database: MISSING ({tmp_path / 'data' / 'linli.db'}): create it with `linli migrate`" in result.out
    assert "telegram: ok (@linli_test_bot" in result.out
    assert list(tmp_path.iterdir()) == []


async def test_doctor_says_when_migrations_are_due(fake: FakeTelegram, tmp_path: Path) -> None:
    from bot.devkit.harness import TOKEN

    url = await asyncio.to_thread(migrated, tmp_path)
    with sqlite3.connect(tmp_path / "data" / "linli.db") as con:
        con.execute("DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)")
    result = await linli(["doctor"], tmp_path, BOT_TOKEN=TOKEN, BOT_API_URL=fake.base_url, DATABASE_URL=url)
    assert result.code == 1
    assert "database: OUT OF DATE (" in result.out and "run `linli migrate`" in result.out


# -- backup and migrate ---------------------------------------------------------------------------

async def test_backup_to_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    url = await asyncio.to_thread(migrated, tmp_path)
    line = one_line_failure(await linli(["backup", "/proc/linli-backup.db"], tmp_path, DATABASE_URL=url, BOT_TOKEN=SECRET),
                            "cannot write the backup to /proc/linli-backup.db", "choose a folder you can write to")
    assert line.startswith("linli: ")
    one_line_failure(await linli(["backup", str(tmp_path)], tmp_path, DATABASE_URL=url), "is a folder")


async def test_backup_without_a_database_fails_and_creates_nothing(tmp_path: Path) -> None:
    result = await linli(["backup", str(tmp_path / "copy.db")], tmp_path, BOT_TOKEN=SECRET)
    one_line_failure(result, "nothing to back up", str(tmp_path / "data" / "linli.db"), "linli migrate")
    assert list(tmp_path.iterdir()) == []


async def test_migrate_with_an_unopenable_path_is_one_line(tmp_path: Path) -> None:
    for url in ("sqlite:////proc/linli.db", f"sqlite:///{tmp_path}"):
        one_line_failure(await linli(["migrate"], tmp_path, DATABASE_URL=url, BOT_TOKEN=SECRET),
                         "DATABASE_URL", "cannot open the database", "check DATABASE_URL")


async def test_migrate_names_the_database(tmp_path: Path) -> None:
    result = await linli(["migrate"], tmp_path)
    assert result.code == 0, result.err
    assert f"database {tmp_path / 'data' / 'linli.db'} is at schema version" in result.out


# -- the token -------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "doctor"])
async def test_a_malformed_token_is_blamed_on_the_token_before_any_network(tmp_path: Path, command: str) -> None:
    for bad in ("notatoken", "123456:has space", "12:ab/cd"):
        result = await linli([command], tmp_path, BOT_TOKEN=bad, BOT_API_URL=OFFLINE)
        assert result.code != 0
        assert "BOT_TOKEN is not a bot token" in result.text and "@BotFather" in result.text, result.text
        assert "BOT_API_URL" not in result.text
        assert bad not in result.text


async def test_the_token_never_appears_whatever_fails(fake: FakeTelegram, tmp_path: Path) -> None:
    """Every command and every failure we can provoke, with a token whose text is unique."""
    url = await asyncio.to_thread(migrated, tmp_path)
    env = {"BOT_TOKEN": SECRET, "DATABASE_URL": url}
    runs = [
        (["run"], {"BOT_API_URL": fake.base_url}),          # refused by the Bot API
        (["run"], {"BOT_API_URL": OFFLINE}),                # unreachable
        (["run"], {"BOT_API_URL": "http://127.0.0.1:9/bot", "BOT_TIMEZONE": "Mars/Olympus"}),  # bad setting
        (["run"], {"BOT_API_URL": fake.base_url, "DATABASE_URL": "sqlite:////proc/x.db"}),   # bad database
        (["run"], {"BOT_API_URL": f"{fake.url}/nothing-here/bot"}),  # wrong URL: 404 and not JSON
        (["doctor"], {"BOT_API_URL": fake.base_url}),
        (["doctor"], {"BOT_API_URL": OFFLINE}),
        (["doctor"], {"BOT_API_URL": f"{fake.url}/nothing-here/bot"}),  # wrong URL: 404
        (["migrate"], {}),
        (["backup", "/proc/x.db"], {}),
        (["backup", str(tmp_path / "b.db")], {}),
        (["report", "2026-05"], {}),
        (["report", "nonsense"], {}),
        (["export", "2026-05", "--out", str(tmp_path / "x")], {}),
        (["export", "2026-05", "--out", "/proc/x"], {}),
    ]
    for args, extra in runs:
        result = await linli(args, tmp_path, **{**env, **extra})
        result.assert_clean()
        if args[0] in ("run", "migrate", "backup") or (result.code != 0 and args[0] != "doctor"):
            assert len(result.err.strip().splitlines()) == (1 if result.code else 0), (args, extra, result.err)


async def _start_with_the_secret(fake: FakeTelegram, tmp_path: Path) -> BotProcess:
    """The bot running with SECRET as its token, logging everything (DEBUG) to bot.log."""
    fake.add_bot(token=SECRET, username="unique_bot", first_name="Unique")
    proc = BotProcess(fake, str(tmp_path / "bot.db"), env={"BOT_TOKEN": SECRET, "BOT_LOG_LEVEL": "DEBUG"},
                      log_path=str(tmp_path / "bot.log"))
    await proc.start()
    return proc


async def test_the_token_stays_out_of_the_running_bots_log(fake: FakeTelegram, tmp_path: Path) -> None:
    """PTB logs a refused token mid-run with a traceback whose text contains it."""
    proc = await _start_with_the_secret(fake, tmp_path)
    try:
        del fake.bots[SECRET]  # the token is revoked while the bot runs: every call now gets 401
        # The bot does not linger without updates: it stops, with one line saying why.
        await fake.wait_for(lambda: not proc.running, timeout=120)
        assert proc.proc is not None and proc.proc.returncode == 2
    finally:
        await proc.stop()
    log = proc.log()
    assert log.rstrip().endswith("BOT_TOKEN was refused by the Bot API at " + fake.base_url +
                                 " (check BOT_API_URL too): copy the token again from @BotFather"), log[-2000:]
    assert SECRET not in log and SECRET_TAIL not in log, log[-3000:]


def test_redaction_covers_tracebacks_and_encoded_forms() -> None:
    add_secret(SECRET)
    assert SECRET_TAIL not in redact(f"GET /bot{SECRET}/getMe and /bot4242%3A{SECRET_TAIL}/x")
    try:
        raise RuntimeError(f"The token `{SECRET}` was rejected by the server.")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "polling failed for %s", (SECRET,), sys.exc_info())
    RedactToken().filter(record)
    line = RedactingFormatter().format(record)
    assert SECRET_TAIL not in line and "was rejected" in line


async def test_the_token_stays_out_of_the_log_when_the_api_goes_away(fake: FakeTelegram, tmp_path: Path) -> None:
    """Network errors while running (the Bot API unreachable) are logged without the token."""
    proc = await _start_with_the_secret(fake, tmp_path)
    try:
        await fake.stop()   # connections refused from now on
        await fake.wait_for(lambda: "telegram.error.NetworkError" in proc.log(), timeout=60)
    finally:
        await proc.stop()
    log = proc.log()
    assert "/bot<token>" in log  # PTB logs its API URL (token included) at DEBUG
    assert SECRET not in log and SECRET_TAIL not in log, log[-3000:]


@pytest.mark.parametrize("command", [["report", "2026-05"], ["export", "2026-05"]])
async def test_report_and_export_need_an_existing_database(tmp_path: Path, command: list[str]) -> None:
    one_line_failure(await linli(command, tmp_path), "no database at", "linli migrate")
    assert list(tmp_path.iterdir()) == []


# -- export -----------------------------------------------------------------------------------------

async def test_export_without_out_writes_a_named_folder_and_says_where(tmp_path: Path) -> None:
    url = await asyncio.to_thread(migrated, tmp_path)
    result = await linli(["export", "2026-05"], tmp_path, DATABASE_URL=url)
    assert result.code == 0, result.err
    folder = tmp_path / "linli-export-2026-05"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "linli-export-2026-05"]
    assert f"to {folder}" in result.out
    assert len(list(folder.iterdir())) >= 2


def test_a_database_url_is_shown_without_its_password(tmp_path: Path) -> None:
    from bot.cli import shown_database

    assert shown_database("postgresql://linli:pa55word@db.example:5432/linli") == \
        "postgresql://linli:***@db.example:5432/linli"
    assert shown_database(f"sqlite:///{tmp_path}/x.db") == f"{tmp_path}/x.db"
    assert shown_database("sqlite:///data/linli.db") == str(Path("data/linli.db").resolve())
