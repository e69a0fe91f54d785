"""Three real bot processes in webhook mode behind the real nginx, on ONE PostgreSQL database:

- a claim storm (taps on a 20-place event spread over the three by nginx): exactly 20 active
  claims, every tap answered (one answerCallbackQuery each), nothing over the places;
- the same storm with one instance SIGKILLed in the middle: no update lost (each tap answered, or
  stored by the killed one and handled by a survivor: no unhandled inbox row at the end), 20 claims;
- the instance holding the outbox lease SIGKILLed during a broadcast: it completes, each member gets
  it once (a duplicate only for a row that was 'sending' at the kill), the jobs move to a survivor.

The latency distribution (tap queued by the stand-in -> its answer recorded) and the 429s the
stand-in gave are printed, not asserted. The long forms (500 taps, 1,000 members) carry the
``soak`` marker; the short forms run by default. Every wait is for progress, never a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.devkit.harness import TOKEN, BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import Database, open_database
from storage.outbox import enqueue
from storage.timeutil import to_db
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task
from tests.nginx import Nginx, free_port, nginx_binary, render

SLOTS = 20
SECRET = "a-long-random-secret_123"
LEASES = {"BOT_JOB_LEASE_TTL": "3", "BOT_JOB_LEASE_RENEW": "0.5"}
WAIT = 120.0
SEEDED = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def _instances(fake: FakeTelegram, tmp_path: Path, pg_url: str, n: int = 3,
                     env: dict[str, str] | None = None) -> AsyncIterator[list[BotProcess]]:
    """nginx on a loopback port balancing over ``n`` bots in webhook mode on the database ``pg_url``."""
    binary = nginx_binary()
    front, ports = free_port(), [free_port() for _ in range(n)]
    server = Nginx(binary, render(tmp_path / "nginx", listen=front, upstreams=ports), front)
    procs = [BotProcess(fake, str(tmp_path / "unused.db"), log_path=str(tmp_path / f"bot{i}.log"),
                        env={"DATABASE_URL": pg_url, "BOT_WEBHOOK_URL": f"http://127.0.0.1:{front}/telegram",
                             "BOT_WEBHOOK_SECRET": SECRET, "BOT_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
                             **LEASES, **(env or {})})
             for i, port in enumerate(ports)]
    try:
        for proc in procs:
            await proc.start()
        await server.start()   # only now: an update posted to a bot not listening yet is kept out of rotation
        yield procs
    finally:
        for proc in procs:
            await proc.stop()
        server.stop()


async def _wait(what: str, check: Callable[[], Any], timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _holders(db: Database) -> dict[str, tuple[str, int]]:
    """Job lease -> (instance name, pid)."""
    rows = await db.fetchall("SELECT name, holder, pid FROM leases")
    return {str(r[0]): (str(r[1]), int(r[2])) for r in rows if not str(r[0]).startswith("instance:")}


async def _names(db: Database) -> dict[int, str]:
    """pid -> instance name of every running instance."""
    rows = await db.fetchall("SELECT name, pid FROM leases")
    return {int(r[1]): str(r[0])[len("instance:"):] for r in rows if str(r[0]).startswith("instance:")}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def _429s(fake: FakeTelegram) -> int:
    return sum(1 for e in fake.errors if e.error_code == 429)


async def _seed_storm(fake: FakeTelegram, pg_url: str, taps: int) -> tuple[list[Any], Any, int]:
    """A community with ``taps`` volunteers and a 20-place event whose card is in the group:
    (volunteers, card, task id). The database is migrated here (the bots find it up to date)."""
    bot_user = fake.users[int(TOKEN.split(":")[0])]
    group = fake.add_group("Storm volunteers", members=[bot_user])
    users = [fake.add_user(f"V{i}", language_code="en") for i in range(taps)]
    for u in users:
        fake.private_chat(u, create=True)
        fake.add_member(group, u, announce=False)
    db = await open_database(pg_url)
    try:
        cid = await make_community(db, SEEDED, group_chat_id=group.id, digest_time="08:00")
        staff = await make_member(db, SEEDED, cid, staff=True, language="en", digest_enabled=0)
        for u in users:
            await make_member(db, SEEDED, cid, tg_user_id=u.id, volunteer=True, language="en", digest_enabled=0)
        now = datetime.now(UTC)
        tid = await make_task(db, now, cid, staff, kind="event", slots=SLOTS, category="other",
                              title="Clean the river bank", starts_at=to_db(now + timedelta(days=2)))
        await fake.call_api(None, "sendMessage", {
            "chat_id": group.id, "text": f"Task {tid}",
            "reply_markup": {"inline_keyboard": [[{"text": "Claim", "callback_data": f"cl:{tid}"}]]}})
        card = group.messages[-1]
        async with db.transaction() as conn:
            await conn.execute("UPDATE tasks SET group_chat_id = :g, group_message_id = :m WHERE id = :t",
                               {"g": group.id, "m": card.message_id, "t": tid})
    finally:
        await db.close()
    return users, card, tid


async def _storm(fake: FakeTelegram, tmp_path: Path, pg_url: str, taps: int, kill: bool) -> None:
    users, card, tid = await _seed_storm(fake, pg_url, taps)
    db = await open_database(pg_url, migrate=False)
    try:
        async with _instances(fake, tmp_path, pg_url, env={"BOT_SWEEP_INTERVAL": "3600"}) as procs:
            await settle(fake, quiet=0.5, timeout=60)     # the start-up's own work (the card drawn) first
            ids: list[str] = []
            victim: BotProcess | None = None
            for i, user in enumerate(users):
                ids.append(await fake.press_raw_callback(user, card, f"cl:{tid}"))
                if kill and victim is None and i + 1 == taps // 2:
                    victim = await _kill_one(db, fake, procs, ids)
            await _wait("every tap stored and handled", lambda: _done(db, fake, ids))
            await settle(fake, quiet=1.0, timeout=WAIT)
            answered = [q for q in ids if fake.callbacks[q].answered]
            assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t AND state = 'active'",
                                     {"t": tid}) == SLOTS
            assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t AND state <> 'withdrawn'",
                                     {"t": tid}) == SLOTS
            assert await db.fetchval("SELECT COUNT(*) FROM inbox WHERE status <> 'handled'") == 0
            owners = {str(r[0]) for r in await db.fetchall("SELECT DISTINCT owner FROM inbox WHERE status = 'handled'")}
            for proc in procs:
                if proc is not victim:
                    assert "Traceback" not in proc.log(), proc.log()[-3000:]
    finally:
        await db.close()
    answers = [c for c in fake.calls if c.method == "answerCallbackQuery"]
    per_query: dict[str, int] = {}
    for c in answers:
        if c.ok:
            q = str(c.params.get("callback_query_id"))
            per_query[q] = per_query.get(q, 0) + 1
    assert all(n == 1 for n in per_query.values())            # never answered twice
    if not kill:
        assert len(answered) == taps                           # every tap answered
        assert len(owners) == 3, owners                        # spread over the three
    at = {str(c.params.get("callback_query_id")): c.time for c in answers if c.ok}
    lat = [at[q] - fake.callbacks[q].wall_time for q in ids if q in at]
    print(f"storm of {taps} taps on {SLOTS} places over 3 instances{' (one killed)' if kill else ''}:"
          f" answered {len(answered)} of {taps}, handled by {len(owners)} instances;"
          f" p50 {_percentile(lat, 50) * 1000:.0f} ms, p90 {_percentile(lat, 90) * 1000:.0f} ms,"
          f" p99 {_percentile(lat, 99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms; 429s: {_429s(fake)};"
          f" refused: {sorted({(e.method, e.description) for e in fake.errors if e.error_code != 429})}")
    unexpected = [e for e in fake.errors if e.error_code != 429 and "query is too old" not in (e.description or "")
                  and "message is not modified" not in (e.description or "")]
    assert unexpected == [], [(e.method, e.description) for e in unexpected]


async def _kill_one(db: Database, fake: FakeTelegram, procs: list[BotProcess], ids: list[str]) -> BotProcess:
    """Once each instance has handled taps of the storm (so nginx sends to all three), SIGKILL one
    of them while the rest of the first half is still on its way; say what it held."""
    await _wait("each instance handling taps", lambda: _owners_at_least(db, 3))
    names = await _names(db)
    victim = procs[1]
    assert victim.proc is not None
    name = names[victim.proc.pid]
    await victim.kill()
    working = await db.fetchval("SELECT COUNT(*) FROM inbox WHERE status = 'working' AND owner = :o", {"o": name})
    answered = sum(1 for q in ids if fake.callbacks[q].answered)
    print(f"killed {name} after {len(ids)} taps sent, {answered} answered; it held {working} taps being handled")
    return victim


async def _owners_at_least(db: Database, n: int) -> bool:
    rows = await db.fetchall("SELECT DISTINCT owner FROM inbox WHERE status = 'handled'")
    return len(rows) >= n


async def _done(db: Database, fake: FakeTelegram, ids: list[str]) -> bool:
    """Every tap answered, or stored and handled (a killed instance's rows taken back by a survivor)."""
    if fake.bot.pending:
        return False
    stored = await db.fetchval("SELECT COUNT(*) FROM inbox")
    open_rows = await db.fetchval("SELECT COUNT(*) FROM inbox WHERE status <> 'handled'")
    unanswered = sum(1 for q in ids if not fake.callbacks[q].answered)
    return bool(open_rows == 0 and stored >= len(ids) - unanswered and unanswered <= stored)


async def test_claim_storm_over_three_instances_short(fake: FakeTelegram, tmp_path: Path, pg_url: str) -> None:
    await _storm(fake, tmp_path, pg_url, taps=150, kill=False)


async def test_claim_storm_with_an_instance_killed_short(fake: FakeTelegram, tmp_path: Path, pg_url: str) -> None:
    await _storm(fake, tmp_path, pg_url, taps=150, kill=True)


@pytest.mark.soak
@pytest.mark.timeout(1800)
async def test_claim_storm_of_500_over_three_instances(fake: FakeTelegram, tmp_path: Path, pg_url: str) -> None:
    await _storm(fake, tmp_path, pg_url, taps=500, kill=False)


@pytest.mark.soak
@pytest.mark.timeout(1800)
async def test_claim_storm_of_500_with_an_instance_killed(fake: FakeTelegram, tmp_path: Path, pg_url: str) -> None:
    await _storm(fake, tmp_path, pg_url, taps=500, kill=True)


async def _broadcast(fake: FakeTelegram, tmp_path: Path, pg_url: str, members: int) -> None:
    users = [fake.add_user(f"U{i}", language_code="en") for i in range(members)]
    for u in users:
        fake.private_chat(u, create=True)
    db = await open_database(pg_url)
    try:
        async with _instances(fake, tmp_path, pg_url) as procs:
            cid = await make_community(db, SEEDED)
            ids = [await make_member(db, SEEDED, cid, tg_user_id=u.id, language="en", volunteer=True) for u in users]
            async with db.transaction() as conn:       # a broadcast queued while the three run
                for u, mid in zip(users, ids, strict=True):
                    await enqueue(conn, chat_id=u.id, member_id=mid, kind="text", now=SEEDED,
                                  payload={"message": "Your balance: {n} points.", "params": {"n": mid}},
                                  dedupe_key=f"broadcast:{mid}")

            def received() -> list[int]:
                return [len(fake.bot_messages(fake.private_chat(u))) for u in users]

            await _wait("the broadcast under way", lambda: sum(received()) >= members // 5)
            sender = (await _holders(db))["outbox"][0]
            names = await _names(db)
            victim = next(p for p in procs if p.proc is not None and names.get(p.proc.pid) == sender)
            await victim.kill()
            killed = time.monotonic()
            in_flight = await db.fetchval("SELECT COUNT(*) FROM outbox WHERE state = 'sending' AND sending_by = :s",
                                          {"s": sender})
            assert sum(received()) < members, "killed too late to test anything"
            await _wait("the jobs on a survivor",
                        lambda: _moved(db, sender), timeout=60)
            moved = time.monotonic() - killed
            await _wait("the broadcast complete", lambda: min(received()) >= 1, timeout=600)
            await settle(fake, quiet=1.0, timeout=WAIT)
            assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'") == 0
            survivors = {names[p.proc.pid] for p in procs if p is not victim and p.proc is not None}
            assert {h for h, _ in (await _holders(db)).values()} <= survivors
    finally:
        await db.close()
    counts = received()
    duplicates = sum(counts) - members
    print(f"broadcast to {members} members over 3 instances: the outbox moved {moved:.1f} s after its holder"
          f" was killed; {in_flight} rows were on their way, {duplicates} sent twice; 429s: {_429s(fake)}")
    assert min(counts) == 1 and max(counts) <= 2
    assert duplicates <= in_flight                             # a duplicate only for a row on its way
    assert [e for e in fake.errors if e.error_code != 429] == []


async def _moved(db: Database, sender: str) -> bool:
    holders = await _holders(db)
    return bool(holders) and all(h != sender for h, _ in holders.values())


async def test_outbox_holder_killed_mid_broadcast_short(fake: FakeTelegram, tmp_path: Path, pg_url: str) -> None:
    await _broadcast(fake, tmp_path, pg_url, members=150)


@pytest.mark.soak
@pytest.mark.timeout(1800)
async def test_outbox_holder_killed_mid_broadcast_of_1000(fake: FakeTelegram, tmp_path: Path, pg_url: str) -> None:
    await _broadcast(fake, tmp_path, pg_url, members=1000)
