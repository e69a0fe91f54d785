"""Crash loop: the real bot process is SIGKILLed at random moments while people use it.

Afterwards nothing is lost or doubled: every confirmed task is credited exactly once per
volunteer, balances equal ledger sums, no task has more claims than places, and every queued
message was delivered (twice only if it was on its way at a kill). It runs under the soak marker
(`-m soak`; LINLI_SOAK_SCALE=short, as in .ci/run, keeps it brief).
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks
from storage.db import open_database
from tests.reliability.world import crowd, undelivered_due_sql


def _button(message: Any, prefix: str, suffix: str = "") -> str | None:
    for b in message.inline_buttons:
        data = str(b.get("callback_data", ""))
        if data.startswith(prefix) and data.endswith(suffix):
            return data
    return None


async def _run(fake: FakeTelegram, tmp_path: Path, n_tasks: int, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    # New cards share the group's 20-messages-a-minute budget (the bot posts about 10 a minute),
    # so the last card of a big batch appears minutes after the first.
    wait = 40 + n_tasks * 7
    path = str(tmp_path / "crash.db")
    now = datetime.now(UTC)
    db = await open_database(path)
    people = await crowd(fake, db, now, residents=4, volunteers=4)
    group, residents, volunteers, resident_ids = people.group, people.residents, people.volunteers, people.resident_ids
    for person in residents + volunteers:
        await fake.send_text(person, None, "/help")  # opens the private chat, as a real user would
    proc = BotProcess(fake, path, log_path=str(tmp_path / "crash.log"))
    await proc.start()

    stop = asyncio.Event()
    resendable = 0  # messages that may go out twice: those on their way at each kill (or one)

    async def killer() -> None:
        nonlocal resendable
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            await proc.kill()
            resendable += max(1, await db.fetchval("SELECT COUNT(*) FROM outbox WHERE state = 'sending'"))
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            await proc.start()
        stop.set()

    async def wait_msg(user: Any, pred: Any) -> Any:
        return await fake.wait_for_message(user, pred, timeout=wait, after_id=0)

    async def one_task(i: int) -> None:
        r = i % len(residents)
        v = volunteers[i % len(volunteers)]
        task_id = await tasks.create_task(db, datetime.now(UTC), resident_ids[r], tasks.NewTask(
            category="shopping", description=f"Task number {i}", submit_key=f"crash:{i}"))
        card = await fake.wait_for_message(group, lambda m: _button(m, f"cl:{task_id}") is not None, timeout=wait, after_id=0)
        await fake.press_button(v, card, f"cl:{task_id}")
        details = await wait_msg(v, lambda m: _button(m, f"done:{task_id}") is not None)
        await fake.press_button(v, details, f"done:{task_id}")
        question = await wait_msg(residents[r], lambda m: _button(m, f"cf:{task_id}:", ":y") is not None)
        await fake.press_button(residents[r], question, f"cf:{task_id}:y")

    kill_task = asyncio.create_task(killer())
    sem = asyncio.Semaphore(4)

    async def bounded(i: int) -> None:
        async with sem:
            await one_task(i)

    try:
        await asyncio.gather(*(bounded(i) for i in range(n_tasks)))
        await kill_task
        # Presses made while the bot was down are handled after the restart; wait for completion.
        for _ in range(100 + n_tasks * 10):
            done = await db.fetchval("SELECT COUNT(*) FROM tasks WHERE state = 'completed'")
            pending = await db.fetchval(undelivered_due_sql())
            if done == n_tasks and pending == 0:
                break
            await asyncio.sleep(0.3)
        await settle(fake, quiet=1.0)
        assert await db.fetchval("SELECT COUNT(*) FROM tasks WHERE state = 'completed'") == n_tasks, proc.log()[-3000:]
        # Exactly one credit per (task, volunteer); balances equal ledger sums and are never negative.
        assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE reason LIKE 'task%'") == n_tasks
        assert await db.fetchval(
            "SELECT COUNT(*) FROM (SELECT task_id, member_id FROM ledger GROUP BY task_id, member_id HAVING COUNT(*) > 1)"
        ) == 0
        assert await db.fetchval(
            "SELECT COUNT(*) FROM members m WHERE m.balance != (SELECT COALESCE(SUM(delta), 0) FROM ledger l WHERE l.member_id = m.id)"
        ) == 0
        assert await db.fetchval("SELECT SUM(balance) FROM members") == n_tasks
        assert await db.fetchval(
            "SELECT COUNT(*) FROM tasks t WHERE (SELECT COUNT(*) FROM claims c WHERE c.task_id = t.id"
            " AND c.state != 'withdrawn') > t.slots"
        ) == 0
        # Every queued message was delivered; a message went out twice only if it was on its way
        # (``sending``) when the process was killed (or one per kill, for an answer sent directly).
        assert await db.fetchval(undelivered_due_sql()) == 0
        sent = [c for c in fake.calls if c.ok and c.method in ("sendMessage", "sendVoice", "sendPhoto")]
        texts: dict[tuple[Any, str], int] = {}
        for c in sent:
            key = (c.params.get("chat_id"), str(c.params.get("text", "")))
            texts[key] = texts.get(key, 0) + 1
        duplicates = sum(n - 1 for (chat, text), n in texts.items() if "Task number" in text and n > 1)
        assert duplicates <= resendable, (duplicates, resendable)
        # A restarted process no longer remembers how much it sent a moment ago, so a 429 (retried)
        # or a callback answered too late after a kill is expected; anything else is a bug.
        unexpected = [c for c in fake.errors if c.error_code != 429 and "query is too old" not in (c.description or "")]
        assert unexpected == [], [(c.method, c.description) for c in unexpected]
    finally:
        stop.set()
        if not kill_task.done():
            kill_task.cancel()
        await proc.stop()
        await db.close()


@pytest.mark.soak
@pytest.mark.timeout(3600)  # the short form takes 1-2 minutes beside the other soak tests; the full one far longer
async def test_crash_loop_soak(fake: FakeTelegram, tmp_path: Path) -> None:
    short = os.environ.get("LINLI_SOAK_SCALE") == "short"
    await _run(fake, tmp_path, n_tasks=16 if short else 200, kills=5 if short else 20, seed=2)
