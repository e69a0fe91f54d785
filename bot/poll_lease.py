"""Long polling is one process's job: a lease in the database (storage/leases.py) says whose.

``linli run`` in polling mode takes the lease before it polls. If another process holds it, this
one prints one line saying so (where the other runs) and stands by, trying again every renewal
interval; it takes over once the lease has expired (the poller died: ``BOT_POLL_LEASE_TTL``, 30 s)
or was given up (the poller stopped cleanly: at the next try), or at once when the poller ran
on this machine and its process is gone (a crash and a restart by systemd need not wait). Standing by rather than exiting:
under systemd an exit would only be restarted every few seconds, filling the journal, and a process
standing by is a spare that resumes polling by itself. The poller renews every
``BOT_POLL_LEASE_RENEW`` seconds; if a renewal finds the lease taken (this process was frozen longer
than the lease lasts), it stops polling at once rather than fight over ``getUpdates``.
Times are the machine's real UTC time (a demo's shifted clock is the bot's, not the lease's).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import Settings
from bot.instance import no_such_process
from storage import leases
from storage.db import Database, open_database

log = logging.getLogger(__name__)
NAME = "poll"


@dataclass
class PollLease:
    """This process's claim to long polling."""

    ttl: timedelta
    renew: float
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    holder: str = field(default_factory=lambda: secrets.token_hex(8))
    lost: bool = False

    async def take(self, db: Database, dead: str | None = None) -> leases.Lease:
        return await leases.take(db, NAME, self.holder, self.host, self.pid, datetime.now(UTC), self.ttl, dead)

    def gone(self, other: leases.Lease) -> bool:
        """The other holder ran on this machine and its process no longer exists."""
        return other.host == self.host and other.pid != self.pid and no_such_process(other.pid)


def for_settings(settings: Settings) -> PollLease:
    return PollLease(timedelta(seconds=settings.poll_lease_ttl), settings.poll_lease_renew)


def standing_by(other: leases.Lease) -> str:
    until = other.expires_at.strftime("%H:%M:%S UTC")
    return (f"linli: another Linli instance is polling this database (host {other.host}, pid {other.pid});"
            f" this one stands by and takes over if it stops (its lease runs to {until})")


async def wait_for_turn(settings: Settings, lease: PollLease) -> None:
    """Return once this process holds the lease; until then stand by, saying so once."""
    db = await open_database(settings.database_url)
    told: str | None = None
    try:
        while True:
            now = await lease.take(db)
            if now.holder != lease.holder and lease.gone(now):
                now = await lease.take(db, dead=now.holder)
            if now.holder == lease.holder:
                if told is not None:
                    print(f"linli: taking over long polling (the other instance, {told}, stopped)",
                          file=sys.stderr, flush=True)
                return
            if told is None:
                print(standing_by(now), file=sys.stderr, flush=True)
                told = f"host {now.host}, pid {now.pid}"
            await asyncio.sleep(lease.renew)
    finally:
        await db.close()


def keep(app: Any, lease: PollLease, db_of: Any) -> None:
    """Renew the lease from the application's job queue; stop polling if it was lost."""

    async def renew(_: Any) -> None:
        db = db_of()
        if db is None:   # starting or stopping
            return
        now = await lease.take(db)
        if now.holder != lease.holder and not lease.lost:
            lease.lost = True
            log.error("another Linli instance (host %s, pid %s) took over long polling: this one stops",
                      now.host, now.pid)
            app.stop_running()

    app.job_queue.run_repeating(renew, interval=lease.renew, first=lease.renew, name="poll-lease")


async def give_up(settings: Settings, lease: PollLease) -> None:
    """A clean stop: free the lease so a process standing by need not wait for it to expire."""
    db = await open_database(settings.database_url, migrate=False)
    try:
        await leases.release(db, NAME, lease.holder)
    finally:
        await db.close()


def described(lease: leases.Lease | None, now: datetime) -> str:
    """``linli doctor``'s line about long polling."""
    if lease is None:
        return "nobody (no instance has polled this database)"
    until = lease.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if lease.expires_at <= now:
        return f"nobody now (the last poller, host {lease.host}, pid {lease.pid}, stopped renewing at {until})"
    return f"host {lease.host}, pid {lease.pid} (lease renewed to {until}; other instances stand by)"
