"""A press on a group card reads the card, the presser and their claim in one go
(storage.cards.pressed), and the handler uses that read instead of reading again; nothing of it
outlives the update, so an erased or changed member is seen at their next press."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from bot.i18n import translator
from bot.jobs import cards
from bot.models import TaskFull
from bot.services import members as member_svc
from bot.services import tasks as task_svc
from bot.ui import member_of
from storage import cards as card_store
from storage.db import Database
from storage.tasks import ClaimGlance
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task

GROUP = -100


def _count_round_trips(db: Database, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    trips: Counter[str] = Counter()
    for name in ("fetchone", "fetchall", "read", "read_here", "write"):
        real = getattr(db, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            trips[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(db, name, counted)
    return trips


async def _event(db: Database, now: datetime, slots: int = 2) -> tuple[int, int, int]:
    cid = await make_community(db, now, group_chat_id=GROUP, language="en")
    staff = await make_member(db, now, cid, staff=True, volunteer=True)
    vol = await make_member(db, now, cid, volunteer=True, tg_user_id=801)
    tid = await make_task(db, now, cid, staff, kind="event", slots=slots, group_chat_id=GROUP,
                          group_message_id=5, card_version=1, card_rendered=1, card_hash="drawn")
    return tid, vol, staff


async def test_a_press_reads_the_card_the_presser_and_their_claim_in_one_round_trip(
        db: Database, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    tid, vol, _ = await _event(db, now)
    trips = _count_round_trips(db, monkeypatch)
    seen = await card_store.pressed(db, GROUP, 5, 801)
    assert trips == Counter(read_here=1)
    assert seen.card is not None and seen.card["id"] == tid and seen.card["taken"] == 0
    assert seen.member is not None and seen.member.id == vol
    assert seen.glance == ClaimGlance("open", "event", None)

    # The claim goes straight to the writer with that glance, and the next press sees it.
    trips.clear()
    await task_svc.claim(db, now, vol, tid, glance=seen.glance)
    assert trips == Counter(write=1)
    again = await card_store.pressed(db, GROUP, 5, 801)
    assert again.glance == ClaimGlance("open", "event", "active") and again.card["taken"] == 1

    # Not a card; an unknown presser: no glance.
    nothing = await card_store.pressed(db, GROUP, 6, 801)
    assert (nothing.card, nothing.glance) == (None, None) and nothing.member is not None
    stranger = await card_store.pressed(db, GROUP, 5, 999)
    assert (stranger.member, stranger.glance) == (None, None) and stranger.card is not None


async def test_a_press_is_two_statements_the_card_then_the_presser_with_their_claim(
        db: Database, now: datetime) -> None:
    """On PostgreSQL each statement is a round trip to the server: a refused tap in a claim storm
    (the event full) costs the card's and the presser's, and no third for their claim."""
    from tests.services.test_claim_statements import Counted

    tid, vol, _ = await _event(db, now)
    counted = Counted(db)
    with counted.fresh():
        seen = await card_store.pressed(counted, GROUP, 5, 801)  # type: ignore[arg-type]
    assert len(counted.statements) == 2, counted.statements
    assert seen.glance == ClaimGlance("open", "event", None) and seen.member is not None
    await task_svc.claim(db, now, vol, tid, glance=seen.glance)
    with counted.fresh():
        seen = await card_store.pressed(counted, GROUP, 5, 801)  # type: ignore[arg-type]
    assert len(counted.statements) == 2, counted.statements
    assert seen.glance == ClaimGlance("open", "event", "active")
    assert seen.member is not None and seen.member.id == vol and not seen.member.is_merchant
    assert seen.card is not None and tuple(seen.card) == tuple(await card_store.card_of(db, tid))  # type: ignore[arg-type]


async def test_a_glance_that_shows_no_place_refuses_without_the_writer(
        db: Database, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    tid, vol, _ = await _event(db, now)
    trips = _count_round_trips(db, monkeypatch)
    with pytest.raises(TaskFull):
        await task_svc.claim(db, now, vol, tid, glance=ClaimGlance("full", "event", None))
    assert trips == Counter()
    assert await db.fetchval("SELECT COUNT(*) FROM claims") == 0


async def test_a_member_changed_or_erased_is_seen_at_their_next_press(db: Database, now: datetime) -> None:
    _, vol, _ = await _event(db, now)
    first = await card_store.pressed(db, GROUP, 5, 801)
    assert first.member is not None and first.member.is_volunteer
    await db.write(lambda conn: conn.execute("UPDATE members SET is_volunteer = 0 WHERE id = :id", {"id": vol}))
    changed = await card_store.pressed(db, GROUP, 5, 801)
    assert changed.member is not None and not changed.member.is_volunteer
    await member_svc.erase(db, tg_user_id=801, now=now)
    erased = await card_store.pressed(db, GROUP, 5, 801)
    assert (erased.member, erased.glance) == (None, None)


async def test_the_member_read_with_the_update_serves_its_first_handler_only(db: Database, now: datetime) -> None:
    cid = await make_community(db, now, group_chat_id=GROUP, language="en")
    vol = await make_member(db, now, cid, volunteer=True, tg_user_id=801)
    _, member = await member_svc.note_private_chat(db, 801)
    assert member is not None and member.id == vol and member.started_bot and member.reachable
    ctx: Any = SimpleNamespace(db=db, seen_member=(801, member))
    await member_svc.erase(db, tg_user_id=801, now=now)
    assert await member_of(ctx, 801) is member  # this update's own read
    assert await member_of(ctx, 801) is None    # later ones read afresh: erased
    ctx.seen_member = (802, member)
    assert await member_of(ctx, 801) is None    # someone else's read never stands in
    assert (await member_svc.note_private_chat(db, 801))[1] is None  # an erased member is no member


async def test_a_card_row_that_changed_is_drawn_again_before_comparing(
        db: Database, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cards, "_shown", {})  # what this process drew is kept by task id: one database's
    monkeypatch.setattr(cards, "_should", {})
    tid, _, _ = await _event(db, now)
    ctx: Any = SimpleNamespace(db=db, settings=SimpleNamespace(default_language="en"))
    row = await card_store.at_message(db, GROUP, 5)
    text, markup = cards.render_card(translator("en"), row, 0)
    plain = cards._plain(text)
    assert await cards.check_shown(ctx, row, plain, markup) == tid
    assert await cards.check_shown(ctx, row, plain, markup) == tid  # the same row: the same drawing
    assert await db.fetchval("SELECT card_version - card_rendered FROM tasks WHERE id = :id", {"id": tid}) == 0
    # What the card shows changed (here without a new card version): the press shows the old drawing.
    await db.write(lambda conn: conn.execute("UPDATE tasks SET points = 9 WHERE id = :id", {"id": tid}))
    changed = await card_store.at_message(db, GROUP, 5)
    assert await cards.check_shown(ctx, changed, plain, markup) == tid
    assert await db.fetchval("SELECT card_version - card_rendered FROM tasks WHERE id = :id", {"id": tid}) == 1
