"""The set-ups of the reliability tests: a task whose card the running bot has posted (pressed
across a restart), and residents and volunteers enrolled in a community (the crash runs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.devkit.sandbox import FakeTelegram
from bot.devkit.sandbox.state import Chat, StoredMessage, User
from bot.services import tasks
from storage.db import Database
from tests.e2e.people import community_with_group
from tests.factories import make_category, make_member


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
    await make_category(db, cid)
    rid = await make_member(db, now, cid, tg_user_id=resident.id, resident=True, language="en", name="Gran")
    await make_member(db, now, cid, tg_user_id=volunteer.id, volunteer=True, language="en", name="Vic", started_bot=1)
    tid = await tasks.create_task(db, now, rid, tasks.NewTask(category="shopping", description="Bread"))
    card = await fake.wait_for_message(group, lambda m: any(
        b.get("callback_data") == f"cl:{tid}" for b in m.inline_buttons), timeout=30, after_id=0)
    return Posted(group, volunteer, tid, card)


async def enrol(db: Database, now: datetime, community_id: int, residents: Sequence[User],
                volunteers: Sequence[User]) -> list[int]:
    """Residents (with a phone and an address) and volunteers registered in the community, which
    gets the errands category; returns the residents' member ids."""
    await make_category(db, community_id)
    resident_ids = [await make_member(db, now, community_id, tg_user_id=u.id, resident=True, language="en",
                                      name=u.first_name, phone="+8613800000000", address="Flat 1") for u in residents]
    for u in volunteers:
        await make_member(db, now, community_id, tg_user_id=u.id, volunteer=True, language="en", name=u.first_name)
    return resident_ids
