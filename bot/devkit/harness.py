"""Run the real bot process (``python -m bot run``) against a Telegram stand-in.

Used by ``linli demo`` and by the end-to-end tests: the bot is a separate process talking HTTP
to the stand-in exactly as it would talk to Telegram, so what passes here passes for real.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from bot.devkit.sandbox import FakeTelegram
from storage.pg import is_postgres_url

TOKEN = "123456:TEST-token-for-the-local-stand-in"
FAST_ENV = {
    "BOT_OUTBOX_INTERVAL": "0.1",
    "BOT_SWEEP_INTERVAL": "0.5",
    "BOT_LOG_LEVEL": "INFO",
}


class BotProcess:
    """One bot process; ``start()`` waits until it is polling, ``stop()``/``kill()`` end it.
    ``database``: an SQLite file's path, or a ``postgresql://`` URL."""

    def __init__(
        self,
        server: FakeTelegram,
        database: str,
        *,
        admins: tuple[int, ...] = (),
        env: Mapping[str, str] | None = None,
        log_path: str | None = None,
    ) -> None:
        self.server = server
        self.database = database
        self.admins = admins
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = log_path or tempfile.mktemp(prefix="linli-bot-", suffix=".log")
        self._log: IO[bytes] | None = None

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") and k != "DATABASE_URL"}
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.update(FAST_ENV)
        env.update(
            {
                "BOT_TOKEN": TOKEN,
                "BOT_API_URL": self.server.base_url,
                "BOT_API_FILE_URL": self.server.base_file_url,
                "DATABASE_URL": self.database if is_postgres_url(self.database) else f"sqlite:///{self.database}",
                "BOT_ADMIN_IDS": ",".join(str(a) for a in self.admins),
            }
        )
        env.update(self.extra_env)
        return env

    async def start(self, timeout: float | None = None, *, ready: str = "Application started") -> None:
        """Wait for polling to start (or for ``ready`` in the log); fails at once if the process dies.

        The wait is long on purpose (30 s × the stand-in's patience, 3 minutes by default): on a
        busy two-core machine a cold start (imports, migrations) can take tens of seconds, and a
        healthy start returns as soon as polling begins."""
        timeout = timeout if timeout is not None else 30.0 * self.server.patience
        start_offset = Path(self.log_path).stat().st_size if Path(self.log_path).exists() else 0
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=self.environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while ready not in self.log()[start_offset:]:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bot exited with {self.proc.returncode}:\n{self.log()}")
            if loop.time() > deadline:
                raise RuntimeError(f"the bot did not log {ready!r} within {timeout}s:\n{self.log()}")
            await asyncio.sleep(0.05)

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    async def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM and wait (up to 15 s × patience, then SIGKILL): the bot finishes its current
        update and closes the database."""
        return await self._end(signal.SIGTERM, timeout if timeout is not None else 15.0 * self.server.patience)

    async def kill(self) -> int | None:
        """SIGKILL: a crash at an arbitrary moment."""
        return await self._end(signal.SIGKILL, 10.0)

    async def _end(self, sig: int, timeout: float) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while self.proc.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


async def settle(server: FakeTelegram, quiet: float = 0.6, timeout: float = 15.0) -> None:
    """Wait until the bot has taken every update sent to it and then sent nothing for ``quiet``
    seconds (all queued messages are out).

    The quiet time starts only once the bot has fetched every pending update and answered every
    button press still answerable: on a loaded machine a bot may take seconds even to fetch an
    update, and a quiet spell before that would say nothing. So a negative check ("nothing was
    sent") costs ``quiet`` after the bot caught up, never more; ``timeout`` (× patience) only
    bounds a bot that keeps sending.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout * server.patience
    last = -1
    quiet_since = loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        count = len([c for c in server.calls if c.method != "getUpdates"])
        if count != last or _busy(server, loop.time()):
            last = count
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= quiet:
            return


def _busy(server: FakeTelegram, now: float) -> bool:
    """The bot still has updates to fetch, or button presses to answer (that Telegram would still accept)."""
    # Only a bot that is polling (its long polls last 10 s) is waited for.
    if any(bot.pending and bot.last_poll is not None and now - bot.last_poll < 30 for bot in server.bots.values()):
        return True
    return any(not record.answered_event.is_set() and now - record.created < server.callback_timeout
               for record in server.callbacks.values())


def message_text(message: Any) -> str:
    return str(message.get("text") or message.get("caption") or "")
