"""Several instances on one database: this process's name, and the leases of the timed jobs.

Every process has a name unique among the running ones: ``BOT_INSTANCE_NAME``, or its host and
process id (``web1:4242``). The inbox claims updates under it, and the outbox marks the rows it
sends with it. Its own lease ``instance:<name>`` (storage/leases.py, holder a random token) is its
heartbeat: a second process started under a name a live one uses is refused, and once an
instance's lease has run out (it died: ``BOT_JOB_LEASE_TTL``), or at once when it ran on this
machine and its process is gone, any instance takes back the updates it was handling.

The timed jobs run where their lease is held, one instance at a time (``JOBS``): ``outbox``, the
outbox drain and the group cards, which spend one Telegram budget (a group's 20 messages a
minute are shared by cards and notices by priority in one process: bot/jobs/outbox_drain.py), and
``sweeps``, everything that only writes rows on a timer (reminders, digests, expiry, waiting lists,
housekeeping, series, vouchers). The ``LeaseKeeper`` takes or renews them every
``BOT_JOB_LEASE_RENEW`` seconds with the one compare-and-set statement of storage/leases.py; a job
runs a tick only while its lease is held and its last renewal is younger than the lease (a process
frozen past it does nothing until it has renewed). Another instance takes a job over once its lease
has expired, at once when the holder's process on this machine is gone, and at its next renewal
after a clean stop (the leases are given up). Taking the outbox over puts the rows the previous
sender left ``sending`` back to ``pending``: each is sent at most once more. Times are real UTC.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from storage import inbox as inbox_store
from storage import leases
from storage.db import Database, SyncConnection
from storage.timeutil import to_db

if TYPE_CHECKING:
    from bot.context import LinliApp

log = logging.getLogger(__name__)

OUTBOX = "outbox"
SWEEPS = "sweeps"
JOBS = (OUTBOX, SWEEPS)
PREFIX = "instance:"
INBOX_LEASE = timedelta(minutes=5)   # bot/inbox.py LEASE: a row's lease, renewed with the instance's


@dataclass(frozen=True)
class Instance:
    """This process among those sharing the database."""

    name: str
    host: str
    pid: int
    token: str = field(default_factory=lambda: secrets.token_hex(8))

    def gone(self, other: leases.Lease) -> bool:
        """``other``'s holder ran on this machine and its process no longer exists (or had this pid)."""
        if other.host != self.host:
            return False
        if other.pid == self.pid:
            return other.holder not in (self.token, self.name)
        return no_such_process(other.pid)


def no_such_process(pid: int) -> bool:
    """No process with this id exists on this machine (one of another user's exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:   # it exists (another user's process)
        return False
    return False


def identify(settings: Settings) -> Instance:
    host, pid = socket.gethostname() or "linli", os.getpid()
    return Instance(settings.instance_name or f"{host}:{pid}", host, pid)


class NameTaken(RuntimeError):
    """Another live process runs under this instance's name."""

    def __init__(self, other: leases.Lease) -> None:
        super().__init__(f"another Linli process runs as instance {other.name[len(PREFIX):]!r} (host {other.host},"
                         f" pid {other.pid}): give each process its own BOT_INSTANCE_NAME")


@dataclass
class LeaseKeeper:
    """Takes and renews this instance's leases; ``holds(job)`` says whether a job's tick may run."""

    instance: Instance
    ttl: timedelta
    renew: float
    held: set[str] = field(default_factory=set)
    on_take: dict[str, Callable[[Database], Awaitable[None]]] = field(default_factory=dict)
    on_lost: Callable[[], None] | None = None
    valid_until: float = 0.0          # monotonic: the leases held are ours until then at least
    others: int = 0                   # other instances running, at the last renewal
    # The inbox's times (``lease_until``, ``not_before``) are the bot's clock, which a demo shifts;
    # the leases' are real UTC.
    inbox_now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    stopped: bool = False

    @property
    def lease_name(self) -> str:
        return PREFIX + self.instance.name

    def holds(self, job: str) -> bool:
        return not self.stopped and job in self.held and time.monotonic() < self.valid_until

    async def _take(self, db: Database, name: str, holder: str, now: datetime) -> leases.Lease:
        me = self.instance
        got = await leases.take(db, name, holder, me.host, me.pid, now, self.ttl)
        if got.holder != holder and me.gone(got):
            got = await leases.take(db, name, holder, me.host, me.pid, now, self.ttl, dead=got.holder)
        return got

    async def claim_name(self, db: Database) -> None:
        """Take (or renew) this instance's own lease; ``NameTaken`` if a live process has the name."""
        got = await self._take(db, self.lease_name, self.instance.token, datetime.now(UTC))
        if got.holder != self.instance.token:
            raise NameTaken(got)

    async def tick(self, db: Database) -> None:
        """Renew this instance's lease and take or renew each job's; take back a stopped one's work."""
        if self.stopped:
            return
        started, now = time.monotonic(), datetime.now(UTC)
        try:
            await self.claim_name(db)
        except NameTaken as exc:
            log.error("%s; this one stops", exc)
            self.stopped, self.held = True, set()
            if self.on_lost is not None:
                self.on_lost()
            return
        for job in JOBS:
            await self._job(db, job, now)
        self.valid_until = started + self.ttl.total_seconds()
        lease = to_db(self.inbox_now() + INBOX_LEASE)
        await db.write(lambda conn: inbox_store.renew(conn, self.instance.name, lease))
        await self.reap(db, now)

    async def _job(self, db: Database, job: str, now: datetime) -> None:
        got = await self._take(db, job, self.instance.name, now)
        if got.holder != self.instance.name:
            if job in self.held:
                log.warning("instance %s (host %s, pid %s) took over the %s job", got.holder, got.host, got.pid, job)
                self.held.discard(job)
            return
        if job not in self.held:
            self.held.add(job)
            log.info("this instance (%s) runs the %s job", self.instance.name, job)
            hook = self.on_take.get(job)
            if hook is not None:
                await hook(db)

    async def reap(self, db: Database, now: datetime) -> None:
        """Instances whose lease ran out (or whose process on this machine is gone): the updates
        they were handling wait again, for any instance; their lease row goes. Counts the others."""
        others = 0
        for lease in await leases.every(db):
            if not lease.name.startswith(PREFIX) or lease.holder == self.instance.token:
                continue
            if lease.expires_at > now and not self.instance.gone(lease):
                others += 1
                continue
            name, stamp = lease.name[len(PREFIX):], to_db(self.inbox_now())

            def take_back(conn: SyncConnection, lease: leases.Lease = lease, name: str = name, stamp: str = stamp) -> int:
                return inbox_store.take_back(conn, name, stamp) if leases.drop_sync(conn, lease) else -1

            back = await db.write(take_back)
            if back >= 0:
                log.info("instance %s (host %s, pid %s) stopped; %d updates it was handling wait for any instance",
                         name, lease.host, lease.pid, back)
        self.others = others

    async def release(self, db: Database) -> None:
        """A clean stop (the jobs have stopped): give every lease up, and the updates not handled."""
        if self.stopped and not self.held:
            return
        self.stopped, held, self.held = True, self.held, set()
        me, stamp = self.instance, to_db(self.inbox_now())

        def give_up(conn: SyncConnection) -> None:
            for job in held:
                leases.release_sync(conn, job, me.name)
            leases.release_sync(conn, self.lease_name, me.token)
            inbox_store.take_back(conn, me.name, stamp)

        await db.write(give_up)


def leased(job: str, callback: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Coroutine[Any, Any, None]]:
    """``callback`` as a timed job that runs its tick only where the ``job`` lease is held."""

    async def tick(ctx: Any) -> None:
        keeper = ctx.bot_data.get("leases")
        if isinstance(keeper, LeaseKeeper) and not keeper.holds(job):
            return
        await callback(ctx)

    tick.__name__ = getattr(callback, "__name__", job)
    return tick


# A timed job runs one tick at a time, and a late tick runs once (not once per interval it missed).
ONE_AT_A_TIME: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}


def run_leased(app: LinliApp, job: str, callback: Callable[[Any], Awaitable[None]], *, interval: float,
               first: float, name: str, data: object = None) -> None:
    """Run ``callback`` every ``interval`` seconds where the ``job`` lease is held, one tick at a time."""
    assert app.job_queue is not None
    app.job_queue.run_repeating(leased(job, callback), interval=interval, first=first, name=name, data=data,
                                job_kwargs=dict(ONE_AT_A_TIME))


@dataclass
class Passes:
    """A leased job whose whole pass is due every ``interval`` seconds, ticking every ``step`` (the
    interval cut into equal steps of at most ``retry`` seconds): a tick that completed no pass (its
    lease was not held at that moment, renewed too late on a loaded machine, or the pass failed) is
    tried again a step later, not a whole interval later (an hour in ``linli demo``)."""

    interval: float
    step: float
    started: float | None = None   # monotonic: when the last pass that completed began

    @classmethod
    def of(cls, interval: float, retry: float) -> Passes:
        return cls(interval, interval / max(1, math.ceil(interval / retry - 1e-9)))

    def due(self, at: float) -> bool:
        # half a step of slack: a tick that fires a moment early still counts as the interval's
        return self.started is None or at - self.started >= self.interval - self.step / 2

    def ticking(self, callback: Callable[[Any], Awaitable[bool]]) -> Callable[[Any], Coroutine[Any, Any, None]]:
        """``callback`` (True: its pass completed) run on the ticks when a pass is due."""

        async def tick(ctx: Any) -> None:
            at = time.monotonic()
            if self.due(at) and await callback(ctx):
                self.started = at

        tick.__name__ = getattr(callback, "__name__", "tick")
        return tick


def run_passes(app: LinliApp, job: str, callback: Callable[[Any], Awaitable[bool]], *, interval: float,
               retry: float, first: float, name: str, data: object = None) -> Passes:
    """``run_leased`` for a job whose pass must not wait a whole interval when a tick completed none
    (``Passes``): ``callback`` returns whether its pass completed."""
    passes = Passes.of(interval, retry)
    run_leased(app, job, passes.ticking(callback), interval=passes.step, first=first, name=name, data=data)
    return passes


def keeper_for(settings: Settings, instance: Instance) -> LeaseKeeper:
    return LeaseKeeper(instance, timedelta(seconds=settings.job_lease_ttl), settings.job_lease_renew)


def described(every: list[leases.Lease], now: datetime) -> list[str]:
    """``linli doctor``'s lines: which instance holds which job, and the instances running."""
    lines = []
    for lease in every:
        until = lease.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        state = f"renewed to {until}" if lease.expires_at > now else f"EXPIRED at {until}"
        if lease.name.startswith(PREFIX):
            lines.append(f"instance {lease.name[len(PREFIX):]}: host {lease.host}, pid {lease.pid} ({state})")
        elif lease.name in JOBS:
            lines.append(f"{lease.name} job: instance {lease.holder} (host {lease.host}, pid {lease.pid}, {state})")
    return lines
