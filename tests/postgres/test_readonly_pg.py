"""The demo kit's read-only looks at a PostgreSQL database (storage/readonly_pg.py) when the
connection is lost (the server killed it, or restarted): the look fails with the read error a look
at an SQLite file gives (``storage.readonly.ReadError``), which the demo's waits take as "not yet",
and the next look connects again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storage import readonly
from storage.db import DatabaseError
from storage.readonly_pg import close_all
from tests.pg import Unavailable, start_server


async def _kill_readers(url: str) -> int:
    """End every other connection to the database (as a server restart or an administrator does)."""
    import asyncpg

    name = url.rpartition("/")[2]
    admin = await asyncpg.connect(url.rpartition("/")[0] + "/postgres")
    try:
        return int(await admin.fetchval(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1"
            " AND pid <> pg_backend_pid()", name))
    finally:
        await admin.close()


def test_a_lost_connection_is_a_read_error_and_the_next_look_connects_again(pg_url: str) -> None:
    try:
        with readonly.open_readonly(pg_url) as con:
            assert con.execute("SELECT 1").fetchone()[0] == 1
        assert asyncio.run(_kill_readers(pg_url)) == 1
        for _ in range(2):  # whatever the driver says first (the server's notice, or a closed connection)
            with pytest.raises(readonly.ReadError, match="lost the connection"):
                with readonly.open_readonly(pg_url) as con:
                    con.execute("SELECT 1")
            assert asyncio.run(_kill_readers(pg_url)) == 0   # nothing left open
            with readonly.open_readonly(pg_url) as con:
                assert con.execute("SELECT 2").fetchone()[0] == 2
            assert asyncio.run(_kill_readers(pg_url)) == 1
    finally:
        close_all()


def test_a_server_stopped_and_started_again(tmp_path: Path) -> None:
    """A server of its own, stopped under a look and started again: the look is a read error, a look
    while it is down cannot open the database (``DatabaseError``, as for a missing SQLite file), and
    once it is back a look works."""
    try:
        server = start_server()
    except Unavailable as exc:
        pytest.skip(str(exc))
    url = server.url()
    try:
        with readonly.open_readonly(url) as con:
            assert con.execute("SELECT 1").fetchone()[0] == 1
        server._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(server.data))
        with pytest.raises(readonly.ReadError, match="lost the connection"):
            with readonly.open_readonly(url) as con:
                con.execute("SELECT 1")
        with pytest.raises(DatabaseError, match="cannot open the database"):
            with readonly.open_readonly(url) as con:
                con.execute("SELECT 1")
        server.start(same_port=True)
        with readonly.open_readonly(url) as con:
            assert con.execute("SELECT 3").fetchone()[0] == 3
    finally:
        close_all()
        server.stop()
