"""storage/leases.py: the lease is a compare-and-set; it is taken when free, expired or already
the caller's, and never from a holder whose lease still runs; only its holder gives it up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import leases
from storage.db import Database

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


async def test_taken_renewed_refused_while_held_and_taken_over_once_expired(db: Database) -> None:
    first = await leases.take(db, "poll", "aaa", "host-a", 11, NOW, TTL)
    assert (first.holder, first.host, first.pid, first.expires_at) == ("aaa", "host-a", 11, NOW + TTL)
    # another process while it runs: refused, told who holds it
    other = await leases.take(db, "poll", "bbb", "host-b", 22, NOW + timedelta(seconds=29), TTL)
    assert (other.holder, other.host, other.pid) == ("aaa", "host-a", 11)
    # renewed by its holder: runs on, taken_at unchanged
    renewed = await leases.take(db, "poll", "aaa", "host-a", 11, NOW + timedelta(seconds=10), TTL)
    assert renewed.expires_at == NOW + timedelta(seconds=40) and renewed.taken_at == NOW
    assert (await leases.take(db, "poll", "bbb", "host-b", 22, NOW + timedelta(seconds=39), TTL)).holder == "aaa"
    # expired: the other takes it over, and the old holder can no longer renew it
    later = NOW + timedelta(seconds=40)
    taken = await leases.take(db, "poll", "bbb", "host-b", 22, later, TTL)
    assert (taken.holder, taken.taken_at, taken.expires_at) == ("bbb", later, later + TTL)
    assert (await leases.take(db, "poll", "aaa", "host-a", 11, later, TTL)).holder == "bbb"
    # another name is another lease
    assert (await leases.take(db, "other", "aaa", "host-a", 11, later, TTL)).holder == "aaa"


async def test_only_the_holder_gives_it_up(db: Database) -> None:
    await leases.take(db, "poll", "aaa", "host-a", 11, NOW, TTL)
    assert not await leases.release(db, "poll", "bbb")
    assert (await leases.holder_of(db, "poll")) is not None
    assert await leases.release(db, "poll", "aaa")
    assert await leases.holder_of(db, "poll") is None
    assert (await leases.take(db, "poll", "bbb", "host-b", 22, NOW + timedelta(seconds=1), TTL)).holder == "bbb"


async def test_a_holder_known_to_be_gone_is_replaced_before_its_lease_runs_out(db: Database) -> None:
    await leases.take(db, "poll", "aaa", "host-a", 11, NOW, TTL)
    soon = NOW + timedelta(seconds=1)
    assert (await leases.take(db, "poll", "bbb", "host-a", 22, soon, TTL, dead="zzz")).holder == "aaa"
    assert (await leases.take(db, "poll", "bbb", "host-a", 22, soon, TTL, dead="aaa")).holder == "bbb"
