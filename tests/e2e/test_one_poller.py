"""Only one process long-polls a database (bot/poll_lease.py): a second ``linli run`` on the same
SQLite file says, in one line, which instance polls and stands by. It takes over when the poller
is killed (-9: on this machine at once, its process being gone), when it stops cleanly (at the next
try), and when it hangs (SIGSTOP: once its lease expires); the hung one, woken, finds its lease
taken and stops with a clear line instead of polling too. Lease times are shortened
(BOT_POLL_LEASE_TTL / _RENEW); every wait is for progress, never a fixed time. Each test runs on
an SQLite file and (marker ``postgres``) on a fresh PostgreSQL database (tests/both.py)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from tests.both import drop_database, fresh_database
from tests.pg import PgServer
from tests.postgres.conftest import pg_server

__all__ = ["pg_server"]

LEASE = {"BOT_POLL_LEASE_TTL": "3", "BOT_POLL_LEASE_RENEW": "0.5"}
SAYS = "another Linli instance is polling this database"
T = 15


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where the processes keep their data: an SQLite file's path, or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "bot.db")
        return
    server: PgServer = request.getfixturevalue("pg_server")
    url = await fresh_database(server)
    try:
        yield url
    finally:
        await drop_database(server, url)


def _pair(fake: FakeTelegram, tmp_path: Path, database: str) -> tuple[BotProcess, BotProcess]:
    return (BotProcess(fake, database, env=LEASE, log_path=str(tmp_path / "first.log")),
            BotProcess(fake, database, env=LEASE, log_path=str(tmp_path / "second.log")))


async def _myid_answered(fake: FakeTelegram, name: str) -> None:
    user = fake.add_user(name, language_code="en")
    await fake.send_text(user, None, "/myid")
    reply = await fake.wait_for_message(user, timeout=T)
    assert f"Your Telegram user id is {user.id}." in str(reply.text)


async def _takes_over(second: BotProcess, fake: FakeTelegram) -> float:
    """Wait (for progress, bounded by the stand-in's patience) until the second polls; seconds it took."""
    started = time.monotonic()
    await fake.wait_for(lambda: "Application started" in second.log(), timeout=60)
    return time.monotonic() - started


async def test_a_second_instance_stands_by_and_takes_over_when_the_poller_is_killed(
        fake: FakeTelegram, tmp_path: Path, database: str) -> None:
    first, second = _pair(fake, tmp_path, database)
    try:
        await first.start()
        assert first.proc is not None
        pid = first.proc.pid
        await second.start(ready=SAYS)
        line = next(x for x in second.log().splitlines() if SAYS in x)
        assert f"pid {pid})" in line and "stands by" in line, line
        await _myid_answered(fake, "Ann")            # the first polls; the second only waits
        assert "Application started" not in second.log() and "getUpdates" not in second.log()
        assert second.log().count(SAYS) == 1
        doctor = subprocess.run([sys.executable, "-m", "bot", "doctor"], env=second.environment(), capture_output=True,
                                text=True, timeout=120, cwd=tmp_path)
        assert f"polling: host {socket.gethostname()}, pid {pid} (lease renewed to" in doctor.stdout, doctor.stdout

        await first.kill()
        took = await _takes_over(second, fake)
        assert "taking over long polling" in second.log()
        print(f"the second instance took over {took:.1f} s after the kill (lease {LEASE['BOT_POLL_LEASE_TTL']} s)")
        await _myid_answered(fake, "Bo")
        assert second.running
    finally:
        await second.stop()
        await first.stop()


async def test_a_clean_stop_hands_polling_over_at_the_next_try(fake: FakeTelegram, tmp_path: Path, database: str) -> None:
    first, second = _pair(fake, tmp_path, database)
    try:
        await first.start()
        await second.start(ready=SAYS)
        assert await first.stop() == 0               # gives the lease up
        await _takes_over(second, fake)
        await _myid_answered(fake, "Cy")
        # a third process now stands by behind the second
        third = BotProcess(fake, second.database, env=LEASE, log_path=str(tmp_path / "third.log"))
        try:
            await third.start(ready=SAYS)
            assert second.proc is not None and f"pid {second.proc.pid})" in third.log()
        finally:
            await third.stop()
    finally:
        await second.stop()
        await first.stop()


@pytest.mark.timeout(900)  # a few waits bounded by the stand-in's patience, on a loaded machine
async def test_a_hung_poller_loses_its_lease_on_expiry_and_stops_when_it_wakes(fake: FakeTelegram, tmp_path: Path, database: str) -> None:
    first, second = _pair(fake, tmp_path, database)
    try:
        await first.start()
        await second.start(ready=SAYS)
        assert first.proc is not None
        first.proc.send_signal(signal.SIGSTOP)       # alive (its pid exists) but silent: only expiry frees the lease
        took = await _takes_over(second, fake)
        print(f"the second instance took over {took:.1f} s after the first hung (lease {LEASE['BOT_POLL_LEASE_TTL']} s)")
        await _myid_answered(fake, "Di")
        first.proc.send_signal(signal.SIGCONT)
        proc, other = first.proc, second.proc
        assert other is not None
        # One of the two stops: the woken first (the usual case). Only if the second missed its own
        # renewals for a whole lease (a machine so loaded it starved the second) may the first have
        # found the lease expired and taken it back; then the second must be the one that stops.
        await fake.wait_for(lambda: proc.poll() is not None or other.poll() is not None, timeout=40)
        stopped, polling = (first, second) if proc.poll() is not None else (second, first)
        assert stopped.proc is not None and stopped.proc.returncode == 3, stopped.log()[-2000:]
        assert "another Linli instance took over long polling" in stopped.log()
        if stopped is second:
            print("the second starved past its lease: the woken first took polling back, the second stopped")
        await _myid_answered(fake, "Ed")             # the one left polls on
        assert polling.running and not stopped.running
    finally:
        await second.stop()
        await first.stop()
