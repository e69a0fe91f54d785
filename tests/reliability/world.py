"""The set-ups of the reliability tests: a task whose card the running bot has posted (pressed
across a restart), and the crash runs' crowd of residents and volunteers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.devkit.sandbox import FakeTelegram
from bot.devkit.sandbox.state import Chat, StoredMessage, User
from bot.services import tasks
from storage.db import Database
from storage.timeutil import to_db
from tests.e2e.people import community_with_group
from tests.factories import make_category, make_community, make_member


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



@dataclass
class Crowd:
    group: Chat
    community_id: int
    residents: list[User]
    volunteers: list[User]
    resident_ids: list[int]


async def crowd(fake: FakeTelegram, db: Database, now: datetime, *, residents: int, volunteers: int) -> Crowd:
    """The crash runs' community: a group the bot is in, and residents (with a phone and an
    address) and volunteers registered, the errands category set up. Their private chats are not
    opened: each run opens them its own way."""
    staff = fake.add_user("Staff", language_code="en")
    group = fake.add_group("Crash volunteers", creator=staff)
    await fake.add_bot_to_group(group, added_by=staff, admin=True)
    people = ([fake.add_user(f"Resident{i}", language_code="en") for i in range(residents)],
              [fake.add_user(f"Volunteer{i}", language_code="en") for i in range(volunteers)])
    cid = await make_community(db, now, group_chat_id=group.id, language="en")
    await make_category(db, cid)
    resident_ids = [await make_member(db, now, cid, tg_user_id=u.id, resident=True, language="en", name=u.first_name,
                                      phone="+8613800000000", address="Flat 1") for u in people[0]]
    for u in people[1]:
        await make_member(db, now, cid, tg_user_id=u.id, volunteer=True, language="en", name=u.first_name)
    return Crowd(group, cid, *people, resident_ids)


def undelivered_due_sql() -> str:
    """Outbox rows not yet delivered that are due now: a message held for the morning (quiet hours,
    22:00-07:00 where the community is: an honour, a digest) waits on purpose, so a run at night in
    Shanghai (from 14:00 UTC) must not count it as lost. Built anew at each call (the time moves on)."""
    return ("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')"
            f" AND (not_before IS NULL OR not_before <= '{to_db(datetime.now(UTC))}')")
