"""A task whose card the running bot has posted: the set-up of the reliability tests that press
a card across a restart or a crash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.devkit.sandbox import FakeTelegram
from bot.devkit.sandbox.state import Chat, StoredMessage, User
from bot.services import tasks
from storage.db import Database
from tests.e2e.people import community_with_group
from tests.factories import make_member


@dataclass
class Posted:
    group: Chat
    volunteer: User
    task_id: int
    card: StoredMessage


async def posted_task(fake: FakeTelegram, db: Database, now: datetime) -> Posted:
    """An English community with its group, a resident (Gran) who asked for bread and a volunteer
    (Vic) who has started the bot; returns once the bot has posted the task's card."""
    group, cid = await community_with_group(fake, db, now, title="Volunteers", creator="Staff", language="en")
    resident, volunteer = fake.add_user("Gran", language_code="en"), fake.add_user("Vic", language_code="en")
    fake.private_chat(volunteer, create=True)
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO categories (community_id, code, name_zh, name_en, default_points)"
                           " VALUES (?, 'shopping', '跑腿', 'Errands', 1)", (cid,))
    rid = await make_member(db, now, cid, tg_user_id=resident.id, resident=True, language="en", name="Gran")
    await make_member(db, now, cid, tg_user_id=volunteer.id, volunteer=True, language="en", name="Vic", started_bot=1)
    tid = await tasks.create_task(db, now, rid, tasks.NewTask(category="shopping", description="Bread"))
    card = await fake.wait_for_message(group, lambda m: any(
        b.get("callback_data") == f"cl:{tid}" for b in m.inline_buttons), timeout=30, after_id=0)
    return Posted(group, volunteer, tid, card)
