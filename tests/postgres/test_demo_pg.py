"""``linli demo --database postgresql://…``: the whole story on PostgreSQL, through the real command
(the bot process, its two starts and the demo's own looks at the database all on the server), told
word for word as on SQLite. The
demo writes a community, people and points: it refuses a database that already holds tables, in one
line, and changes nothing there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.pg import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def _linli(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.timeout(900)
def test_the_demo_tells_its_story_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The same story as on its own SQLite file (both told at once; times aside, word for word)."""
    from tests.devkit.test_demo import normalise

    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    on_sqlite = subprocess.Popen([sys.executable, "-m", "bot", "demo", "--lang", "en", "--quiet"], env=env,
                                 cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = _linli(["demo", "--lang", "en", "--quiet", "--database", pg_url], tmp_path, timeout=800)
        sqlite_out, sqlite_err = on_sqlite.communicate(timeout=800)
    finally:
        if on_sqlite.poll() is None:
            on_sqlite.kill()
            on_sqlite.wait()
    assert done.returncode == 0, done.stderr[-4000:]
    assert on_sqlite.returncode == 0, sqlite_err[-4000:]
    assert normalise(done.stdout) == normalise(sqlite_out)
    for piece in ("Grandma Guo", "/publish", "/closeevent", "Boss Chen", "/stats", "/report"):
        assert piece in done.stdout, piece
    assert PASSWORD not in done.stdout + done.stderr

    async def look() -> tuple[list[str], int, int]:
        conn = await asyncpg.connect(pg_url)
        try:
            names = [r[0] for r in await conn.fetch("SELECT name FROM communities")]
            vouchers = await conn.fetchval("SELECT COUNT(*) FROM vouchers WHERE state = 'used'")
            unsent = await conn.fetchval("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')"
                                         " AND not_before <= (SELECT MAX(created_at) FROM outbox)")
            return names, int(vouchers), int(unsent)
        finally:
            await conn.close()

    import asyncio

    names, vouchers, unsent = asyncio.run(look())
    assert names == ["Sunny Garden Community"] and vouchers == 1 and unsent == 0


def test_the_demo_refuses_a_database_that_is_not_empty(pg_url: str, tmp_path: Path) -> None:
    async def one_table() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("CREATE TABLE keep_me (x int)")
        finally:
            await conn.close()

    import asyncio

    asyncio.run(one_table())
    done = _linli(["demo", "--database", pg_url], tmp_path, timeout=120)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "--database" in line and "empty" in line, line
    assert PASSWORD not in done.stdout + done.stderr and "Traceback" not in line


def test_the_demo_takes_only_a_postgresql_url(tmp_path: Path) -> None:
    done = _linli(["demo", "--database", "sqlite:///x.db"], tmp_path, timeout=120)
    assert done.returncode == 2 and "postgresql://" in done.stderr and "Traceback" not in done.stderr
