"""Several instances on one database (bot/instance.py): each timed job's lease is held by one
instance; another takes it over once it has expired, at once when the holder's process on this
machine is gone or gave it up; taking the outbox over runs its hook; a stopped instance's inbox rows
wait for any instance; a long-running instance keeps its rows; two live processes cannot share a name.
On both databases (tests/both.py: PostgreSQL under the ``postgres`` marker)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import load_settings
from bot.instance import JOBS, OUTBOX, SWEEPS, Instance, LeaseKeeper, NameTaken, identify, leased
from storage import inbox as inbox_store
from storage import leases
from storage.db import Database
from storage.timeutil import from_db, to_db
from tests.both import both_db, pg_server

__all__ = ["both_db", "pg_server"]

TTL = timedelta(seconds=30)


def _keeper(name: str, host: str, pid: int) -> LeaseKeeper:
    return LeaseKeeper(Instance(name, host, pid), TTL, 10.0)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def _expire(db: Database, name: str) -> None:
    past = to_db(datetime.now(UTC) - timedelta(seconds=1))
    async with db.transaction() as conn:
        await conn.execute("UPDATE leases SET expires_at = :t WHERE name = :n", {"t": past, "n": name})


async def _working(db: Database, update_id: int, owner: str, lease_until: datetime) -> None:
    row = {"update_id": update_id, "user_id": 1, "lane": f"m:{update_id}", "digest": "d", "payload": "{}",
           "received_at": to_db(datetime.now(UTC))}
    await db.write(lambda conn: inbox_store.store(conn, [row]))
    async with db.transaction() as conn:
        await conn.execute("UPDATE inbox SET status = 'working', owner = :o, lease_until = :l WHERE update_id = :u",
                           {"o": owner, "l": to_db(lease_until), "u": update_id})


async def _inbox(db: Database, update_id: int) -> tuple[str, str | None]:
    row = await db.fetchone("SELECT status, owner FROM inbox WHERE update_id = :u", {"u": update_id})
    assert row is not None
    return str(row[0]), row[1]


async def test_each_job_runs_on_one_instance_and_moves_when_its_lease_expires(db: Database) -> None:
    a, b = _keeper("web1:11", "web1", 11), _keeper("web2:22", "web2", 22)
    taken: list[str] = []

    async def outbox_taken(_: Database) -> None:
        taken.append("b")

    b.on_take[OUTBOX] = outbox_taken
    await a.tick(db)
    await b.tick(db)
    assert all(a.holds(job) for job in JOBS) and not any(b.holds(job) for job in JOBS)
    await a.tick(db)                                     # renewing changes nothing
    await b.tick(db)
    assert a.held == set(JOBS) and b.held == set() and taken == []
    await _expire(db, OUTBOX)                            # web1 stopped renewing the outbox (frozen, or gone)
    await b.tick(db)
    assert b.holds(OUTBOX) and not b.holds(SWEEPS) and taken == ["b"]
    await a.tick(db)                                     # web1 wakes: the outbox is not its job any more
    assert not a.holds(OUTBOX) and a.holds(SWEEPS)
    assert (await leases.holder_of(db, OUTBOX)) is not None
    holder = await leases.holder_of(db, OUTBOX)
    assert holder is not None and (holder.holder, holder.host, holder.pid) == ("web2:22", "web2", 22)


async def test_a_clean_stop_hands_every_job_over_at_the_next_renewal(db: Database) -> None:
    a, b = _keeper("web1:11", "web1", 11), _keeper("web2:22", "web2", 22)
    await a.tick(db)
    await _working(db, 1, "web1:11", datetime.now(UTC) + timedelta(minutes=5))
    await a.release(db)
    assert not any(a.holds(job) for job in JOBS)
    assert await _inbox(db, 1) == ("waiting", None)      # what it had not handled waits for anyone
    await b.tick(db)
    assert all(b.holds(job) for job in JOBS)
    assert [lease.name for lease in await leases.every(db)] == [_instance_lease("web2:22"), OUTBOX, SWEEPS]


def _instance_lease(name: str) -> str:
    return "instance:" + name


async def test_a_holder_on_this_machine_whose_process_is_gone_loses_everything_at_once(db: Database) -> None:
    dead = _dead_pid()
    a, b = _keeper(f"here:{dead}", "here", dead), _keeper("here:1", "here", 1)
    await a.tick(db)                                     # then killed: its leases run for 30 s more
    await _working(db, 5, a.instance.name, datetime.now(UTC) + timedelta(minutes=5))
    await b.tick(db)
    assert all(b.holds(job) for job in JOBS)
    assert await _inbox(db, 5) == ("waiting", None)
    assert _instance_lease(a.instance.name) not in [lease.name for lease in await leases.every(db)]


async def test_another_hosts_instance_is_reaped_only_once_its_lease_has_run_out(db: Database) -> None:
    a, b = _keeper("web1:11", "web1", 11), _keeper("web2:22", "web2", 22)
    await a.tick(db)
    await _working(db, 7, "web1:11", datetime.now(UTC) + timedelta(minutes=5))
    await b.tick(db)
    assert await _inbox(db, 7) == ("working", "web1:11")
    await _expire(db, _instance_lease("web1:11"))
    await b.tick(db)
    assert await _inbox(db, 7) == ("waiting", None)


async def test_a_long_handler_keeps_its_inbox_row_while_its_instance_lives(db: Database) -> None:
    a = _keeper("web1:11", "web1", 11)
    soon = datetime.now(UTC) + timedelta(seconds=5)
    await _working(db, 9, "web1:11", soon)
    await a.tick(db)
    row = await db.fetchone("SELECT lease_until FROM inbox WHERE update_id = 9")
    assert row is not None and from_db(str(row[0])) > soon + timedelta(minutes=4)


async def test_two_live_processes_cannot_share_a_name(db: Database) -> None:
    first, second = _keeper("web1", "host-a", 11), _keeper("web1", "host-b", 22)
    await first.claim_name(db)
    with pytest.raises(NameTaken, match=r"instance 'web1' .*host host-a, pid 11.*BOT_INSTANCE_NAME"):
        await second.claim_name(db)
    stopped: list[bool] = []
    second.on_lost = lambda: stopped.append(True)
    await second.tick(db)                                # while running: it stops rather than share
    assert stopped == [True] and not second.held
    # a restart under the same name on the same machine (the old process is gone) takes it at once
    dead = _dead_pid()
    old, new = _keeper("web2", "host-a", dead), _keeper("web2", "host-a", 33)
    await old.tick(db)
    await new.claim_name(db)
    assert all(not new.holds(job) for job in JOBS)
    await new.tick(db)
    assert all(new.holds(job) for job in JOBS)          # the same name: the jobs are its own


def test_the_default_name_is_unique_per_process() -> None:
    me = identify(load_settings(BOT_INSTANCE_NAME=""))
    assert me.name == f"{me.host}:{me.pid}"
    assert identify(load_settings(BOT_INSTANCE_NAME="web1:8443")).name == "web1:8443"


async def test_a_leased_tick_runs_only_where_the_lease_is_held(db: Database) -> None:
    a = _keeper("web1:11", "web1", 11)
    ran: list[str] = []

    async def job(_: object) -> None:
        ran.append("ran")

    class Ctx:
        bot_data = {"leases": a}

    await leased(SWEEPS, job)(Ctx())
    assert ran == []
    await a.tick(db)
    await leased(SWEEPS, job)(Ctx())
    assert ran == ["ran"]
    a.valid_until = 0.0                                  # not renewed within the lease (frozen): no tick
    await leased(SWEEPS, job)(Ctx())
    assert ran == ["ran"]


async def test_the_inbox_times_follow_the_bots_clock_not_the_leases(db: Database) -> None:
    # a demo's clock runs years behind real time: the rows' lease and their not-before follow it
    shown = datetime(2020, 1, 1, 9, 0, tzinfo=UTC)
    a, b = _keeper("web1:11", "web1", 11), _keeper("web2:22", "web2", 22)
    a.inbox_now = b.inbox_now = lambda: shown
    await _working(db, 3, "web1:11", shown)
    await a.tick(db)
    row = await db.fetchone("SELECT lease_until FROM inbox WHERE update_id = 3")
    assert row is not None and from_db(str(row[0])) == shown + timedelta(minutes=5)
    await _expire(db, "instance:web1:11")
    await b.tick(db)
    row = await db.fetchone("SELECT status, not_before FROM inbox WHERE update_id = 3")
    assert row is not None and (row[0], from_db(str(row[1]))) == ("waiting", shown)   # claimable at once
