"""The timed jobs' takeover on PostgreSQL, as tests/e2e/test_several_instances.py checks it on SQLite:
two real bot processes in webhook mode behind the real nginx on ONE PostgreSQL database. The
instance holding the outbox hangs (SIGSTOP: its process exists, so only the lease's expiry frees
the jobs): the other takes them over and the broadcast completes, a duplicate only for a row that was
on its way; the hung one, woken, sees its jobs taken; a clean stop of the new holder hands them back
at the next renewal. Leases are shortened (BOT_JOB_LEASE_TTL / _RENEW); every wait is for progress,
never a fixed time. (The poller's takeover on PostgreSQL: tests/e2e/test_one_poller.py.)"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from storage.db import Database, open_database
from storage.outbox import enqueue
from tests.factories import make_community, make_member
from tests.postgres.test_storm_three import SEEDED, _holders, _instances, _names, _wait

T = 15


async def _name(db: Database, proc: BotProcess) -> str:
    assert proc.proc is not None
    return (await _names(db))[proc.proc.pid]


async def _only_holder(db: Database, name: str) -> bool:
    return {h for h, _ in (await _holders(db)).values()} == {name}


@pytest.mark.timeout(900)  # waits bounded by the stand-in's patience, on a loaded machine
async def test_a_hung_sender_loses_the_jobs_on_expiry_and_a_clean_stop_hands_them_over(
        fake: FakeTelegram, tmp_path: Path, pg_url: str) -> None:
    users = [fake.add_user(f"U{i}", language_code="en") for i in range(40)]
    for u in users:
        fake.private_chat(u, create=True)
    db = await open_database(pg_url)   # migrated here: the bots find the schema up to date
    try:
        async with _instances(fake, tmp_path, pg_url, n=2, env={"BOT_SEND_RATE": "10"}) as procs:
            cid = await make_community(db, SEEDED)
            ids = [await make_member(db, SEEDED, cid, tg_user_id=u.id, language="en", volunteer=True) for u in users]
            async with db.transaction() as conn:
                for u, mid in zip(users, ids, strict=True):
                    await enqueue(conn, chat_id=u.id, member_id=mid, kind="text", now=SEEDED,
                                  payload={"message": "Your balance: {n} points.", "params": {"n": mid}},
                                  dedupe_key=f"broadcast:{mid}")

            def received() -> list[int]:
                return [len(fake.bot_messages(fake.private_chat(u))) for u in users]

            await fake.wait_for(lambda: sum(received()) >= 10, timeout=T)
            holder = (await _holders(db))["outbox"][0]
            names = {await _name(db, p): p for p in procs}
            hung = names[holder]
            other_name = next(n for n in names if n != holder)
            assert hung.proc is not None
            hung.proc.send_signal(signal.SIGSTOP)   # alive (its pid exists): only the lease's expiry frees the jobs
            in_flight = await db.fetchval("SELECT COUNT(*) FROM outbox WHERE state = 'sending' AND sending_by = :h",
                                          {"h": holder})
            try:
                hung_at = time.monotonic()
                await _wait("the jobs on the other instance", lambda: _only_holder(db, other_name), T * fake.patience)
                print(f"the jobs moved {time.monotonic() - hung_at:.1f} s after the holder hung (PostgreSQL)")
                await fake.wait_for(lambda: min(received()) >= 1, timeout=60)
            finally:
                hung.proc.send_signal(signal.SIGCONT)
            await fake.wait_for(lambda: "took over the outbox job" in hung.log(), timeout=T)
            await settle(fake, quiet=1.0)
            assert max(received()) <= 2 and sum(received()) - len(users) <= in_flight   # only what was on its way
            assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'") == 0
            # a clean stop of the new holder: the one that hung, awake, takes the jobs at its next renewal
            await names[other_name].stop()
            stopped = time.monotonic()
            await _wait("the jobs back on the first instance", lambda: _only_holder(db, holder), T * fake.patience)
            print(f"the jobs moved {time.monotonic() - stopped:.1f} s after a clean stop (PostgreSQL)")
            late = fake.add_user("Late", language_code="en")
            fake.private_chat(late, create=True)
            await fake.send_text(late, None, "/myid")
            assert f"Your Telegram user id is {late.id}." in str((await fake.wait_for_message(late, timeout=T)).text)
    finally:
        await db.close()
    assert fake.errors == []
