"""A storm of forged button presses against the real bot process (what a modified Telegram app can
send: any data, on any message it sees, including other people's and other chats' messages).

Pressers: members of the group who never registered, volunteers, residents, and staff of another
community. Payloads: every callback prefix the bot knows with valid ids of other people's objects
(tasks, cases, vouchers, rewards, members, message ids), garbage, oversized numbers. Targets: every
message the bot put in the group (cards, the pinned welcome, replies), other people's private
messages with buttons, the presser's own private messages (with data that is not on them), and
inline messages (no message at all). Presses that are exactly a button of a message the presser may
use (a real Claim on a card, their own buttons) are not forged and are left out.

Afterwards: no traceback in the bot's log, every press answered, no group message edited or
posted, nothing sent or edited anywhere, claims and vouchers unchanged, ledger sums = balances.
It runs under ``-m soak``: 5,000 presses (1,500 with LINLI_SOAK_SCALE=short, as in .ci/run).
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.devkit import scenario
from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram, StoredMessage
from bot.services import ledger, rewards
from storage.db import Database, open_database
from storage.timeutil import to_db
from tests.conftest import ADMIN_ID

T = 20
BATCH = 150  # presses in flight at once (each must be answered within the stand-in's 15 s window)


def _datas(m: StoredMessage) -> set[str]:
    return {str(b["callback_data"]) for b in m.inline_buttons if "callback_data" in b}


def _payloads(ids: dict[str, list[int]], message_ids: list[int]) -> list[str]:
    t, c, v, r, m = ids["tasks"], ids["cases"], ids["vouchers"], ids["rewards"], ids["members"]
    big = ["99999999999999999999", "9223372036854775808", "-1", "0", "²", "①", "１２", "1e9", "0x10", ""]
    out: list[str] = []
    for n in [*t, *big]:
        out += [f"ci:{n}", f"rl:{n}", f"st:uc:{n}", f"lb:month:people:{n}"]
        out += [f"cl:{n}", f"dt:{n}", f"wd:{n}", f"rc:{n}", f"rc:{n}:y", f"ap:{n}", f"rj:{n}", f"ed:{n}",
                f"done:{n}", f"cf:{n}:y", f"cf:{n}:n", f"cf:{n}:p", f"cs:{n}", f"tp:{n}"]
    for n in [*c, *big[:3]]:
        out += [f"cs:{n}:c", f"cs:{n}:x", f"cs:{n}:h"]
    for n in [*v, *big[:3]]:
        out += [f"rw:show:{n}", f"rw:x:{n}", f"rw:xx:{n}", f"rw:u:{n}"]
    for n in [*r, *big[:3]]:
        out += [f"rw:r:{n}", f"rw:tog:{n}", f"rw:c:{n}:ff00ff00:-", f"rw:d:{n}:20990101", f"rw:c:{n}:aa:2099010110"]
    for n in [*m, *message_ids[:5], *big[:3]]:
        out += [f"d:org:{n}", f"d:community:{n}", f"d:area:{n}", f"d:att:{n}", f"ph:{n}"]
    out += ["rcn:0", "rcn:", "lg:zh", "lg:en", "lg:fr", "lg:", "lg:zh:en", "lb:month:people", "lb:all:org",
            "lb:x:y", "lb:", "ph:-1", "st:dg", "st:an", "st:lb", "st:dg:0", "st:an:0", "st:lb:1", "st:px:1", "st:px:0", "st:uc:1", "an:y", "an:n",
            "lb:month:people:h", "lb:all:people:s", "rl:0", "rl:50", "d:photo:-remove", "d:item:withdraw", "st:h:99", "st:h:²", "st:q:off", "st:",
            "d:consent:yes", "d:confirm:yes", "d:confirm:submit", "d:lang:en", "d:skills:-done", "d:",
            "rw:", "rw:show", "cl", "cl:", ":", "::::", "x" * 64, "长" * 21, "\u202e", "null", "cl:1 OR 1=1",
            "<b>x</b>", "admin:grant", "nothing:here"]
    return out


async def _objects(db: Database, now: datetime, volunteer_ids: list[int], community_id: int) -> None:
    """A reward and a voucher (owned by a volunteer): the supermarket's ids to forge."""
    reward = await rewards.create_reward(db, community_id=community_id, name_zh="大米", name_en="Rice", kind="goods",
                                         cost=1, now=now)
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=volunteer_ids[0], amount=3, reason="task_completed",
                            key=f"test:storm:{volunteer_ids[0]}", now=now)
    await rewards.redeem(db, member_id=volunteer_ids[0], reward_id=reward, now=now, request_key="storm:1")


async def _snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in ("claims", "ledger", "vouchers", "rewards", "organisations", "cases"):
        out[table] = [tuple(r) for r in await db.fetchall(f"SELECT * FROM {table} ORDER BY id")]
    out["members"] = [tuple(r) for r in await db.fetchall(
        "SELECT id, balance, is_staff, organisation_id, language FROM members ORDER BY id")]
    out["tasks"] = [tuple(r) for r in await db.fetchall("SELECT id, state, slots, card_version FROM tasks ORDER BY id")]
    return out


async def _no_digests_today(db: Database) -> None:
    """Today's (and tomorrow's) digests count as decided: the storm must be the only thing going on."""
    now = datetime.now(UTC)
    keys = []
    for c in await db.fetchall("SELECT id, timezone FROM communities"):
        local = now.astimezone(ZoneInfo(c["timezone"] or "Asia/Shanghai")).date()
        for day in (local, local + timedelta(days=1)):
            keys.append(f"digest:group:{c['id']}:{day.isoformat()}")
            for m in await db.fetchall("SELECT id FROM members WHERE community_id = ?", (c["id"],)):
                keys += [f"digest:staff:{m['id']}:{day.isoformat()}", f"digest:vol:{m['id']}:{day.isoformat()}"]
    async with db.transaction() as conn:
        await conn.executemany("INSERT OR IGNORE INTO sent_notifications (key, created_at) VALUES (?, ?)",
                               [(k, to_db(now)) for k in keys])


async def _quiet(fake: FakeTelegram, db: Database) -> None:
    """Every card drawn as it should be and every queued message sent."""
    async def done() -> bool:
        busy = await db.fetchval(
            "SELECT (SELECT COUNT(*) FROM tasks WHERE card_version > card_rendered"
            " OR (group_message_id IS NULL AND state IN ('open', 'full')))"
            " + (SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending'))")
        return busy == 0
    for _ in range(300):
        if await done():
            break
        await asyncio.sleep(0.2)
    await settle(fake, quiet=1.5, timeout=60)


async def _storm(fake: FakeTelegram, proc: BotProcess, presses: int, seed: int) -> None:
    rnd = random.Random(seed)
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    residents = [fake.add_user(f"Resident{i}", language_code="zh-hans" if i else "en") for i in range(2)]
    volunteers = [fake.add_user(f"Volunteer{i}", language_code="en" if i else "zh-hans") for i in range(3)]
    unregistered = [fake.add_user(f"Visitor{i}", language_code="en") for i in range(2)]
    other_staff = fake.add_user("OtherStaff", language_code="en")
    group = await scenario.setup_community(fake, admin, name="Sunshine Garden")
    other_group = await scenario.setup_community(fake, admin, title="Moon volunteers", name="Moon Court")
    for person in residents:
        await scenario.register(fake, person, role="resident", community="Sunshine Garden")
    for person in volunteers:
        await scenario.register(fake, person, role="volunteer", community="Sunshine Garden")
    await scenario.register(fake, other_staff, role="both", community="Moon Court")
    await scenario.make_staff(fake, admin, other_staff, other_group)
    for person in [*residents, *volunteers, *unregistered, other_staff]:
        if person.id not in group.members:
            fake.add_member(group, person, announce=False)
    for person in unregistered:
        await fake.send_text(person, group, "/help")
        await fake.send_text(person, None, "/start")
    await scenario.ask_for_help(fake, residents[0], "Please carry my rice upstairs")
    await scenario.ask_for_help(fake, residents[1], "Buy medicine, call 13912345678")
    db = await open_database(proc.database, migrate=False)
    try:
        task_ids = [int(r["id"]) for r in await db.fetchall("SELECT id FROM tasks ORDER BY id")]
        cards = [await fake.wait_for_message(group, lambda m, t=t: f"cl:{t}" in _datas(m), timeout=T, after_id=0)
                 for t in task_ids]
        # A real claim: the volunteer gets the details (Done, Withdraw, Contact staff), the resident a Cancel.
        q = await fake.press_button(volunteers[0], cards[0], f"cl:{task_ids[0]}")
        await fake.wait_callback_answer(q, timeout=T)
        await fake.wait_for_message(volunteers[0], lambda m: f"done:{task_ids[0]}" in _datas(m), timeout=T, after_id=0)
        await fake.wait_for_message(residents[0], lambda m: f"rc:{task_ids[0]}" in _datas(m), timeout=T, after_id=0)
        vol_ids = [int(r["id"]) for r in await db.fetchall(
            "SELECT id FROM members WHERE is_volunteer = 1 AND is_staff = 0 ORDER BY id")]
        cid = int(await db.fetchval("SELECT id FROM communities WHERE name = 'Sunshine Garden'"))
        await _objects(db, datetime.now(UTC), vol_ids, cid)
        for person in (volunteers[0], volunteers[1]):  # private messages with buttons to forge on
            for command in ("/vouchers", "/points", "/language", "/settings", "/tasks", "/rewards"):
                await fake.send_text(person, None, command)
        await fake.send_text(residents[0], None, "/mytasks")
        await _no_digests_today(db)
        await _quiet(fake, db)
        ids = {
            "tasks": task_ids,
            "cases": [1, 2],
            "vouchers": [int(r["id"]) for r in await db.fetchall("SELECT id FROM vouchers")],
            "rewards": [int(r["id"]) for r in await db.fetchall("SELECT id FROM rewards")],
            "members": [int(r["id"]) for r in await db.fetchall("SELECT id FROM members")],
        }
        group_msgs = [m for g in (group, other_group) for m in fake.bot_messages(g)]
        private_msgs = [m for chat in fake.private_chats.values() for m in fake.bot_messages(chat) if m.inline_buttons]
        payloads = _payloads(ids, [m.message_id for m in group_msgs])
        pressers = [*unregistered, *volunteers, *residents, other_staff]
        targets = group_msgs + private_msgs

        def forged(presser: Any, target: StoredMessage, data: str) -> bool:
            own_private = target.chat.type == "private" and target.chat.id == presser.id
            if target.chat.type != "private" and data in _datas(target):
                return False  # a real Claim or Details on the card: not forged
            return not (own_private and data in _datas(target))

        plan: list[tuple[Any, StoredMessage | None, str]] = []
        while len(plan) < presses:
            presser = rnd.choice(pressers)
            if rnd.random() < 0.02:
                plan.append((presser, None, rnd.choice(payloads)))  # an inline message
                continue
            target = rnd.choice(targets)
            pool = sorted(_datas(target)) if rnd.random() < 0.15 and _datas(target) else payloads
            data = rnd.choice(pool)
            if forged(presser, target, data):
                plan.append((presser, target, data))

        before = await _snapshot(db)
        shown = {(m.chat.id, m.message_id): (m.text, str(m.data.get("reply_markup")), len(m.edits), m.deleted)
                 for g in (group, other_group) for m in fake.messages(g)}
        calls_before = len(fake.calls)
        queries: list[tuple[str, str]] = []
        for start in range(0, len(plan), BATCH):
            batch = []
            for presser, target, data in plan[start:start + BATCH]:
                if target is None:
                    qid = await fake.inject_callback(presser, data, inline_message_id=f"inline{rnd.randrange(10**6)}")
                else:
                    qid = await fake.press_raw_callback(presser, target, data)
                batch.append((qid, data))
            for qid, _data in batch:
                try:
                    await fake.wait_callback_answer(qid, timeout=T)
                except TimeoutError:
                    pass  # counted below
            queries += batch
        await settle(fake, quiet=2.0, timeout=60)

        unanswered = [data for qid, data in queries if fake.callback_answer(qid) is None]
        assert unanswered == [], f"{len(unanswered)} unanswered, e.g. {unanswered[:10]}"
        log = proc.log()
        assert "Traceback" not in log and "error while handling" not in log, log[-4000:]
        after_shown = {(m.chat.id, m.message_id): (m.text, str(m.data.get("reply_markup")), len(m.edits), m.deleted)
                       for g in (group, other_group) for m in fake.messages(g)}
        assert after_shown == shown, "group messages were posted or changed by forged presses"
        sent = [c for c in fake.calls[calls_before:] if c.method != "answerCallbackQuery" and c.method != "getUpdates"
                and not c.method.startswith("get")]
        assert sent == [], [(c.method, c.params.get("chat_id"), str(c.params.get("text"))[:80]) for c in sent[:10]]
        assert fake.errors == [], [(c.method, c.description) for c in fake.errors[:10]]
        assert await _snapshot(db) == before
        assert await db.fetchval(
            "SELECT COUNT(*) FROM members m WHERE m.balance != (SELECT COALESCE(SUM(delta), 0) FROM ledger l"
            " WHERE l.member_id = m.id)") == 0
        assert len(queries) >= presses
    finally:
        await db.close()


@pytest.mark.soak
@pytest.mark.timeout(1800)
async def test_forged_press_storm_soak(fake: FakeTelegram, bot_process: BotProcess) -> None:
    short = os.environ.get("LINLI_SOAK_SCALE") == "short"
    await _storm(fake, bot_process, presses=1500 if short else 5000, seed=2)
