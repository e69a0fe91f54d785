"""Two bot processes in webhook mode behind the real nginx (deploy/nginx-linli.conf balancing over
both), on ONE SQLite file (bot/instance.py): updates reach and are handled by both, a dialog goes on
whichever instance gets each message, each timed job runs on one of them (the daily digest is sent
once per member, a card is posted and redrawn once), and when the instance holding the jobs is
killed (-9) the other takes them over: nothing is lost, and nothing is sent twice beyond the rows
the killed one had on their way. Leases are shortened (BOT_JOB_LEASE_TTL / _RENEW); every wait is
for progress, never a fixed time."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.devkit.harness import BotProcess, message_text, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services.communities import DEFAULT_CATEGORIES
from storage import communities as community_store
from storage.db import open_database
from storage.outbox import enqueue
from tests.e2e.people import ask_for_help
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task
from tests.nginx import Nginx, free_port, nginx_binary, render

T = 15
SECRET = "a-long-random-secret_123"
LEASES = {"BOT_JOB_LEASE_TTL": "3", "BOT_JOB_LEASE_RENEW": "0.5"}
# 08:30 in Shanghai: the community's 08:00 digest is due as the bots start.
MORNING = "2026-05-04T08:30:00+08:00"
SEEDED = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def _two_instances(fake: FakeTelegram, tmp_path: Path, path: str,
                         env: dict[str, str] | None = None) -> AsyncIterator[list[BotProcess]]:
    """nginx on a loopback port balancing over two bots in webhook mode on the database ``path``."""
    binary = nginx_binary()
    front, ports = free_port(), [free_port(), free_port()]
    server = Nginx(binary, render(tmp_path / "nginx", listen=front, upstreams=ports), front)
    procs = [BotProcess(fake, path, log_path=str(tmp_path / f"bot{i}.log"),
                        env={"BOT_WEBHOOK_URL": f"http://127.0.0.1:{front}/telegram", "BOT_WEBHOOK_SECRET": SECRET,
                             "BOT_WEBHOOK_LISTEN": f"127.0.0.1:{port}", **LEASES, **(env or {})})
             for i, port in enumerate(ports)]
    try:
        for proc in procs:
            await proc.start()
        # nginx only now: an update posted to a bot not listening yet would keep that bot out of
        # nginx's rotation for its fail_timeout (the stand-in retries a post nginx could not pass)
        await server.start()
        yield procs
    finally:
        for proc in procs:
            await proc.stop()
        server.stop()


def _read(path: str, sql: str) -> list[tuple[Any, ...]]:
    """A look at the bots' database beside them (as `linli doctor` does)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return list(conn.execute(sql).fetchall())


def _holders(path: str) -> dict[str, tuple[str, int]]:
    """Job lease -> (instance name, pid)."""
    return {str(n): (str(h), int(p)) for n, h, p in _read(path, "SELECT name, holder, pid FROM leases")
            if not str(n).startswith("instance:")}


def _name(proc: BotProcess) -> str:
    assert proc.proc is not None
    return next(str(n)[len("instance:"):] for n, p in _read(proc.database, "SELECT name, pid FROM leases")
                if str(n).startswith("instance:") and int(p) == proc.proc.pid)


def _cards(fake: FakeTelegram, group: Any) -> list[Any]:
    return [m for m in fake.bot_messages(group)
            if any(str(b.get("callback_data", "")).startswith("cl:") for b in m.inline_buttons)]


async def _seed(fake: FakeTelegram, path: str, volunteers: int) -> tuple[Any, Any, list[Any], Any]:
    """A community (digest at 08:00, Shanghai) with staff, a resident and ``volunteers`` volunteers
    whose skill matches an open request (so each has a digest to receive); (staff, resident, volunteers, group)."""
    staff = fake.add_user("Staff", language_code="en")
    resident = fake.add_user("Zhou", language_code="en")
    vols = [fake.add_user(f"Vol{i}", language_code="en") for i in range(volunteers)]
    group = fake.add_group("Volunteers", creator=staff, members=[resident, *vols])
    await fake.add_bot_to_group(group, added_by=staff, admin=True)
    for user in (staff, resident, *vols):
        fake.private_chat(user, create=True)
    db = await open_database(path)
    try:
        cid = await make_community(db, SEEDED, group_chat_id=group.id, timezone="Asia/Shanghai", digest_time="08:00")
        async with db.transaction() as conn:
            await community_store.add_categories(conn, cid, DEFAULT_CATEGORIES)
        staff_id = await make_member(db, SEEDED, cid, tg_user_id=staff.id, staff=True, language="en",
                                     digest_enabled=0)
        await make_member(db, SEEDED, cid, tg_user_id=resident.id, resident=True, language="en",
                          address="Building 3, Room 201")
        for user in vols:
            await make_member(db, SEEDED, cid, tg_user_id=user.id, volunteer=True, language="en",
                              skills='["shopping"]', quiet_start="00:00", quiet_end="00:00")
        await make_task(db, SEEDED, cid, staff_id, title="Carry the shopping upstairs",
                        published_at="2999-01-01T00:00:00.000000Z")
    finally:
        await db.close()
    await settle(fake)
    return staff, resident, vols, group


async def test_two_instances_share_the_updates_and_run_each_job_once(fake: FakeTelegram, tmp_path: Path) -> None:
    path = str(tmp_path / "bot.db")
    _, resident, vols, group = await _seed(fake, path, volunteers=4)
    async with _two_instances(fake, tmp_path, path, env={"BOT_CLOCK_START": MORNING}) as (first, second):
        names = {_name(first), _name(second)}
        assert len(names) == 2                                     # host:pid: one name per process
        # the daily digest: once per volunteer, whichever instance swept
        for user in vols:
            await fake.wait_for_message(user, timeout=T)
        # updates through nginx reach both; a dialog goes on whichever instance gets each message
        people = [fake.add_user(f"P{i}", language_code="en") for i in range(8)]
        for user in people:
            await fake.send_text(user, None, "/myid")
        for user in people:
            assert f"Your Telegram user id is {user.id}." in str((await fake.wait_for_message(user, timeout=T)).text)
        await ask_for_help(fake, resident, "Please buy rice and eggs")
        card = await fake.wait_for_message(group, lambda m: "rice" in message_text(m) and bool(_cards(fake, group)),
                                           timeout=T, after_id=0)
        data = next(str(b["callback_data"]) for b in card.inline_buttons if str(b["callback_data"]).startswith("cl:"))
        query = await fake.press_raw_callback(vols[0], card, data)
        assert "You have claimed" in str((await fake.wait_callback_answer(query, timeout=T)).get("text"))
        await fake.wait_for(lambda: "cl:" not in str(card.inline_buttons), timeout=T)   # the card redrawn
        await settle(fake, quiet=1.0)

        holders = _holders(path)
        assert set(holders) == {"outbox", "sweeps"} and {h for h, _ in holders.values()} <= names
        handled = dict(_read(path, "SELECT owner, COUNT(*) FROM inbox WHERE status = 'handled' GROUP BY owner"))
        assert set(handled) == names, handled                      # both instances handled updates
        senders = {str(s) for (s,) in _read(path, "SELECT DISTINCT sending_by FROM outbox WHERE state = 'sent'")}
        assert senders == {holders["outbox"][0]}                   # one instance sent every message
        series_ran = [p for p in (first, second) if "series job:" in p.log()]
        assert len(series_ran) == 1                                # the sweeps ran on one instance only
        doctor = subprocess.run([sys.executable, "-m", "bot", "doctor"], env=second.environment(),
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
        for job, (holder, pid) in holders.items():
            assert f"lease: {job} job: instance {holder} (host " in doctor.stdout and f"pid {pid}," in doctor.stdout
        for name in names:
            assert f"lease: instance {name}: host " in doctor.stdout, doctor.stdout

        # the instance holding the outbox is killed: the other takes every job over
        victim, survivor = (first, second) if holders["outbox"][0] == _name(first) else (second, first)
        survivor_name = _name(survivor)
        await victim.kill()
        await fake.wait_for(lambda: set(_holders(path).values()) == {(survivor_name, survivor.proc.pid)}  # type: ignore[union-attr]
                            , timeout=T)
        later = [fake.add_user(f"Q{i}", language_code="en") for i in range(4)]
        for user in later:
            await fake.send_text(user, None, "/myid")
        for user in later:
            assert f"Your Telegram user id is {user.id}." in str((await fake.wait_for_message(user, timeout=T)).text)
        await ask_for_help(fake, resident, "Please post a letter")
        await fake.wait_for(lambda: any("letter" in message_text(m) for m in _cards(fake, group)), timeout=T)
        await settle(fake, quiet=1.0)

    # exactly once each: the digests, the replies, the cards, the claim's details
    for user in vols:
        digests = [m for m in fake.bot_messages(fake.private_chat(user)) if "Carry the shopping" in message_text(m)]
        assert len(digests) == 1, [message_text(m) for m in digests]
    for user in people + later:
        assert len(fake.bot_messages(fake.private_chat(user))) == 1
    assert len([m for m in fake.bot_messages(group) if "rice" in message_text(m)]) == 1   # (claimed: no Claim button)
    assert len([m for m in fake.bot_messages(group) if "letter" in message_text(m)]) == 1
    details = [m for m in fake.bot_messages(fake.private_chat(vols[0])) if "rice" in message_text(m)]
    assert len(details) == 1
    assert _read(path, "SELECT COUNT(*) FROM inbox WHERE status <> 'handled'") == [(0,)]
    assert fake.errors == []


async def test_the_sender_killed_mid_broadcast_the_other_finishes_it(fake: FakeTelegram, tmp_path: Path) -> None:
    path = str(tmp_path / "bot.db")
    users = [fake.add_user(f"U{i}", language_code="en") for i in range(80)]
    for u in users:
        fake.private_chat(u, create=True)
    async with _two_instances(fake, tmp_path, path, env={"BOT_SEND_RATE": "10"}) as procs:
        db = await open_database(path)     # a broadcast queued while both run
        try:
            cid = await make_community(db, SEEDED)
            ids = [await make_member(db, SEEDED, cid, tg_user_id=u.id, language="en", volunteer=True) for u in users]
            async with db.transaction() as conn:
                for u, mid in zip(users, ids, strict=True):
                    await enqueue(conn, chat_id=u.id, member_id=mid, kind="text", now=SEEDED,
                                  payload={"message": "Your balance: {n} points.", "params": {"n": mid}},
                                  dedupe_key=f"broadcast:{mid}")
        finally:
            await db.close()

        def received() -> list[int]:
            return [len(fake.bot_messages(fake.private_chat(u))) for u in users]

        await fake.wait_for(lambda: sum(received()) >= 15, timeout=T)
        sender = _holders(path)["outbox"][0]
        victim = next(p for p in procs if _name(p) == sender)
        survivor = next(p for p in procs if p is not victim)
        await victim.kill()
        killed = time.monotonic()
        in_flight = _read(path, f"SELECT COUNT(*) FROM outbox WHERE state = 'sending' AND sending_by = '{sender}'")[0][0]
        assert sum(received()) < len(users), "killed too late to test anything"
        await fake.wait_for(lambda: _holders(path)["outbox"][0] != sender, timeout=T)
        print(f"the outbox moved {time.monotonic() - killed:.1f} s after the kill"
              f" (renewal {LEASES['BOT_JOB_LEASE_RENEW']} s); {in_flight} rows were on their way")
        await fake.wait_for(lambda: min(received()) >= 1, timeout=60)
        await settle(fake, quiet=1.0)
        assert _holders(path)["outbox"][0] == _name(survivor)
    counts = received()
    assert min(counts) == 1 and max(counts) <= 2
    assert sum(counts) - len(users) <= in_flight                   # a duplicate only for a row on its way
    assert _read(path, "SELECT COUNT(*) FROM outbox WHERE state <> 'sent'") == [(0,)]
    assert fake.errors == []


async def test_a_hung_sender_loses_the_jobs_on_expiry_and_a_clean_stop_hands_them_over(
        fake: FakeTelegram, tmp_path: Path) -> None:
    path = str(tmp_path / "bot.db")
    users = [fake.add_user(f"U{i}", language_code="en") for i in range(40)]
    for u in users:
        fake.private_chat(u, create=True)
    async with _two_instances(fake, tmp_path, path, env={"BOT_SEND_RATE": "10"}) as procs:
        db = await open_database(path)
        try:
            cid = await make_community(db, SEEDED)
            ids = [await make_member(db, SEEDED, cid, tg_user_id=u.id, language="en", volunteer=True) for u in users]
            async with db.transaction() as conn:
                for u, mid in zip(users, ids, strict=True):
                    await enqueue(conn, chat_id=u.id, member_id=mid, kind="text", now=SEEDED,
                                  payload={"message": "Your balance: {n} points.", "params": {"n": mid}},
                                  dedupe_key=f"broadcast:{mid}")
        finally:
            await db.close()

        def received() -> list[int]:
            return [len(fake.bot_messages(fake.private_chat(u))) for u in users]

        await fake.wait_for(lambda: sum(received()) >= 10, timeout=T)
        holder = _holders(path)["outbox"][0]
        hung = next(p for p in procs if _name(p) == holder)
        other = next(p for p in procs if p is not hung)
        other_name = _name(other)
        assert hung.proc is not None
        hung.proc.send_signal(signal.SIGSTOP)      # alive (its pid exists): only the lease's expiry frees the jobs
        in_flight = _read(path, f"SELECT COUNT(*) FROM outbox WHERE state = 'sending' AND sending_by = '{holder}'")[0][0]
        try:
            hung_at = time.monotonic()
            await fake.wait_for(lambda: {h for h, _ in _holders(path).values()} == {other_name}, timeout=T)
            print(f"the jobs moved {time.monotonic() - hung_at:.1f} s after the holder hung"
                  f" (lease {LEASES['BOT_JOB_LEASE_TTL']} s)")
            await fake.wait_for(lambda: min(received()) >= 1, timeout=60)
        finally:
            hung.proc.send_signal(signal.SIGCONT)
        await fake.wait_for(lambda: "took over the outbox job" in hung.log(), timeout=T)
        await settle(fake, quiet=1.0)
        assert max(received()) <= 2 and sum(received()) - len(users) <= in_flight   # only what was on its way
        # a clean stop of the holder: the hung one, awake, takes the jobs at its next renewal
        await other.stop()
        stopped = time.monotonic()
        await fake.wait_for(lambda: {h for h, _ in _holders(path).values()} == {holder}, timeout=T)
        print(f"the jobs moved {time.monotonic() - stopped:.1f} s after a clean stop")
        late = fake.add_user("Late", language_code="en")
        await fake.send_text(late, None, "/myid")
        assert f"Your Telegram user id is {late.id}." in str((await fake.wait_for_message(late, timeout=T)).text)
    assert fake.errors == []
