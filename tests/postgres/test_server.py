"""The throwaway server itself: it answers, and each test gets a database of its own."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.pg import PgServer


async def test_a_fresh_database_answers_over_tcp_with_the_password(pg_server: PgServer, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == pg_url.rsplit("/", 1)[1]
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await conn.close()


async def test_a_wrong_password_is_refused(pg_server: PgServer) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(pg_server.url().replace(":linli-Test-pw-7@", ":wrong@"))


def test_a_server_left_by_a_killed_run_is_stopped_by_the_next(pg_server: PgServer) -> None:
    import subprocess
    import sys

    from tests.pg import reap_orphans

    # A test run that starts a server and is killed before it can stop it.
    child = subprocess.run([sys.executable, "-c", "import os, sys; sys.path.insert(0, '.');"
                            "from tests.pg import start_server; s = start_server(); print(s.root); os._exit(0)"],
                           capture_output=True, text=True, timeout=120, check=True)
    left = Path(child.stdout.strip())
    assert (left / "data" / "postmaster.pid").exists()
    assert left in reap_orphans(pg_server.bindir, pg_server.as_user)
    assert not left.exists()
    assert pg_server.root.exists()  # this run's own server is left alone


def test_without_postgresql_the_reason_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.pg

    monkeypatch.setattr(tests.pg.shutil, "which", lambda name: None)
    monkeypatch.setattr(tests.pg.glob, "glob", lambda pattern: [])
    with pytest.raises(tests.pg.Unavailable, match="install Debian's postgresql package"):
        tests.pg.find_binaries()
