"""Three instances, one PostgreSQL, one nginx (issue 18's acceptance): three real bot processes in
webhook mode behind the real nginx (deploy/nginx-linli.conf balancing over the three), on one
throwaway PostgreSQL database. Registration, a request, its claim, Done and Yes, the point, a
reward redeemed with it, each dialog going on whichever instance nginx hands each message to
(round robin: consecutive updates land on different instances), and the daily digest sent exactly
once per member with all three running. Skips, saying why, without PostgreSQL or nginx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.devkit.harness import BotProcess, message_text, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import ledger
from storage.db import open_database
from tests.e2e.people import ask_for_help, register
from tests.e2e.test_rewards import _redeem_button
from tests.e2e.test_several_instances import LEASES, MORNING, SECRET, SEEDED, _seed
from tests.nginx import Nginx, free_port, nginx_binary, render

T = 30
ADDRESS = "Building 3, Room 201"


@asynccontextmanager
async def _instances(fake: FakeTelegram, tmp_path: Path, env: dict[str, str], count: int = 3
                     ) -> AsyncIterator[list[BotProcess]]:
    """nginx on a loopback port balancing over ``count`` bots in webhook mode (as in
    tests/e2e/test_several_instances.py, with three upstream servers)."""
    binary = nginx_binary()
    front, ports = free_port(), [free_port() for _ in range(count)]
    server = Nginx(binary, render(tmp_path / "nginx", listen=front, upstreams=ports), front)
    procs = [BotProcess(fake, str(tmp_path / "unused.db"), log_path=str(tmp_path / f"bot{i}.log"),
                        env={"BOT_WEBHOOK_URL": f"http://127.0.0.1:{front}/telegram", "BOT_WEBHOOK_SECRET": SECRET,
                             "BOT_WEBHOOK_LISTEN": f"127.0.0.1:{port}", **LEASES, **env})
             for i, port in enumerate(ports)]
    try:
        for proc in procs:
            await proc.start()
        await server.start()   # only now: an update posted to a bot not yet listening would idle it in nginx
        yield procs
    finally:
        for proc in procs:
            await proc.stop()
        server.stop()


def _has(prefix: str) -> Any:
    return lambda m: any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


async def _help_and_earn(fake: FakeTelegram, group: Any, resident: Any, ming: Any) -> int:
    """The resident asks, Li Ming claims, marks it done, the resident confirms: the task's id."""
    await ask_for_help(fake, resident, "Please buy rice and eggs")
    card = await fake.wait_for_message(group, lambda m: "rice" in message_text(m) and _has("cl:")(m),
                                       timeout=T, after_id=0)
    data = next(str(b["callback_data"]) for b in card.inline_buttons if str(b["callback_data"]).startswith("cl:"))
    tid = int(data.split(":")[1])
    await fake.press_button(ming, card, data)
    details = await fake.wait_for_message(ming, _has(f"done:{tid}"), timeout=T, after_id=0)
    await fake.press_button(ming, details, f"done:{tid}")
    skip = await fake.wait_for_message(ming, _has("d:note:skip"), timeout=T, after_id=details.message_id)
    await fake.press_button(ming, skip, "d:note:skip")
    question = await fake.wait_for_message(resident, _has(f"cf:{tid}:y"), timeout=T, after_id=0)
    await fake.press_button(resident, question, f"cf:{tid}:y")
    await fake.press_button(resident, question, f"cf:{tid}:y")  # a double tap, perhaps on another instance
    return tid


async def _redeem(fake: FakeTelegram, staff: Any, ming: Any, url: str) -> None:
    """Staff add a one-point reward; Li Ming redeems it with the point just earned."""
    await fake.send_text(staff, None, "/rewards add goods 1 5 Eggs")
    await fake.wait_for_message(staff, lambda m: "Eggs" in (m.text or ""), timeout=T)
    db = await open_database(url, migrate=False)
    try:
        rid = int(await db.fetchval("SELECT id FROM rewards WHERE name_en = 'Eggs'"))
    finally:
        await db.close()
    confirm = await _redeem_button(fake, ming, rid)
    data = next(str(b["callback_data"]) for b in confirm.inline_buttons if str(b["callback_data"]).startswith("rw:c:"))
    await fake.press_button(ming, confirm, data)
    await fake.press_button(ming, confirm, data)  # a double tap
    await fake.wait_for_message(ming, lambda m: bool(m.caption), timeout=T)


async def _credit_last_week(url: str, tg_user_id: int) -> None:
    db = await open_database(url, migrate=False)
    try:
        mid = int(await db.fetchval("SELECT id FROM members WHERE tg_user_id = :u", {"u": tg_user_id}))
        async with db.transaction() as conn:
            await ledger.credit(conn, member_id=mid, amount=2, reason="task", key="seed:week", now=SEEDED)
    finally:
        await db.close()


async def test_three_instances_one_postgresql_one_nginx(fake: FakeTelegram, tmp_path: Path, pg_url: str) -> None:
    staff, resident, vols, group = await _seed(fake, pg_url, volunteers=5)
    await _credit_last_week(pg_url, vols[0].id)   # so the group digest has a top volunteer to show
    async with _instances(fake, tmp_path, {"DATABASE_URL": pg_url, "BOT_CLOCK_START": MORNING}) as procs:
        for user in vols:                        # the 08:00 digest, due as the bots start
            await fake.wait_for_message(user, timeout=T)
        ming = fake.add_user("Li Ming", language_code="en")
        await register(fake, ming, role="volunteer", phone=False)
        fake.add_member(group, ming, announce=False)
        tid = await _help_and_earn(fake, group, resident, ming)
        await fake.wait_for_message(ming, lambda m: "+1" in (m.text or ""), timeout=T)   # the thanks
        await fake.send_text(ming, None, "/points")
        points = await fake.wait_for_message(ming, lambda m: "Your points" in (m.text or ""), timeout=T)
        assert "Your points: 1\n" in (points.text or ""), points.text
        await settle(fake, quiet=1.0)
        db = await open_database(pg_url, migrate=False)
        try:
            assert await db.fetchval("SELECT balance FROM members WHERE tg_user_id = :u", {"u": ming.id}) == 1
        finally:
            await db.close()
        await _redeem(fake, staff, ming, pg_url)
        await settle(fake, quiet=1.0)

        db = await open_database(pg_url, migrate=False)
        try:
            mid = await db.fetchval("SELECT id FROM members WHERE tg_user_id = :u", {"u": ming.id})
            assert await db.fetchval("SELECT state FROM tasks WHERE id = :t", {"t": tid}) == "completed"
            assert await db.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t", {"t": tid}) == 1
            assert await db.fetchval("SELECT COUNT(*) FROM ledger WHERE task_id = :t", {"t": tid}) == 1
            assert await db.fetchval("SELECT COUNT(*) FROM vouchers WHERE member_id = :m", {"m": mid}) == 1
            assert await db.fetchval("SELECT balance FROM members WHERE id = :m", {"m": mid}) == 0
            assert await db.fetchval("SELECT COUNT(*) FROM inbox WHERE status <> 'handled'") == 0
            handled = {str(r[0]): int(r[1]) for r in await db.fetchall(
                "SELECT owner, COUNT(*) FROM inbox WHERE status = 'handled' GROUP BY owner")}
            dialog = {str(r[0]): int(r[1]) for r in await db.fetchall(
                "SELECT owner, COUNT(*) FROM inbox WHERE user_id = :u AND status = 'handled' GROUP BY owner",
                {"u": ming.id})}
            senders = {str(r[0]) for r in await db.fetchall(
                "SELECT DISTINCT sending_by FROM outbox WHERE state = 'sent'")}
        finally:
            await db.close()
        print(f"updates handled by instance: {handled}; Li Ming's by {dialog}")
        assert len(handled) == 3, handled        # every instance handled updates
        assert len(dialog) >= 2, dialog          # Li Ming's dialogs went on across instances
        assert len(senders) == 1, senders        # one instance sent every queued message
        for proc in procs:
            assert "Traceback" not in proc.log(), proc.log()
    for user in vols:                            # the digest exactly once per member
        digests = [m for m in fake.bot_messages(fake.private_chat(user)) if "Carry the shopping" in message_text(m)]
        assert len(digests) == 1, [message_text(m) for m in digests]
    group_digests = [m for m in fake.bot_messages(group) if "Daily digest" in message_text(m) or "每日简报" in message_text(m)]
    assert len(group_digests) == 1, [message_text(m) for m in group_digests]   # and once per community
    shown = " ".join(message_text(m) for m in fake.bot_messages(group))
    assert ADDRESS not in shown
    # Direct replies of every instance share Telegram's limits in the database (bot/budget.py): no 429.
    assert fake.errors == []
