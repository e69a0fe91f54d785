"""A group card that cannot be posted never holds the group's honours (bot/jobs/cards.py; honours
wait while the group has a card to post: bot/jobs/outbox_drain.py ``_held_back``). A group that
refuses for good (the bot removed, no right to send, the chat gone) has the card given up at once,
said in the log once and to the community's staff; a group that became a supergroup is followed
and the card posted there; a card that cannot even be drawn is given up and the other cards go on."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from telegram.error import BadRequest, ChatMigrated, Forbidden

from bot.i18n import translator
from bot.jobs import cards, outbox_drain
from bot.renderers import RENDERERS, RenderContext
from storage.db import Database
from storage.outbox import OutboxRow
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task


class _Bot:
    """A group that refuses, or has moved to a supergroup; every other chat takes the card."""

    def __init__(self, refuse: dict[int, Exception]) -> None:
        self.refuse = refuse
        self.sent: list[tuple[int, str]] = []

    async def send_message(self, chat_id: int, text: str, **_: Any) -> Any:
        if chat_id in self.refuse:
            raise self.refuse[chat_id]
        self.sent.append((chat_id, text))
        return SimpleNamespace(message_id=100 + len(self.sent))


def _honour(chat_id: int) -> OutboxRow:
    return OutboxRow(id=1, dedupe_key=None, chat_id=chat_id, member_id=None, kind="honour_group", payload="{}",
                     priority=0, not_before="", state="pending", attempts=0, last_error=None,
                     message_id=None, voice_message_id=None, created_at="", sent_at=None)


def _ctx(db: Database, bot: _Bot, now: datetime) -> Any:
    return SimpleNamespace(db=db, bot=bot, settings=SimpleNamespace(default_language="en"), now=lambda: now)


async def _staff_told(db: Database, lang: str = "en") -> list[str]:
    """What the staff read (the outbox's text rows, rendered in ``lang``)."""
    rows = await db.fetchall("SELECT payload FROM outbox WHERE kind = 'text' ORDER BY id")
    rc = RenderContext(db, translator(lang), lang, 7001, None, "linli_bot")
    said = [await RENDERERS["text"].render(rc, json.loads(r[0])) for r in rows]
    return [one.text for one in said if one is not None]


@pytest.mark.parametrize("refusal", [Forbidden("Forbidden: bot was kicked from the group chat"),
                                     BadRequest("Bad Request: not enough rights to send text messages to the chat"),
                                     BadRequest("Bad Request: chat not found")])
async def test_a_group_that_refuses_for_good_has_the_card_given_up_and_staff_told(
        db: Database, now: datetime, refusal: Exception, caplog: pytest.LogCaptureFixture) -> None:
    cid = await make_community(db, now, group_chat_id=-700)
    staff = await make_member(db, now, cid, staff=True, tg_user_id=7001)
    first = await make_task(db, now, cid, staff, title="Buy buns")
    second = await make_task(db, now, cid, staff, title="Carry rice")
    bot = _Bot({-700: refusal})
    ctx = _ctx(db, bot, now)
    assert await outbox_drain._held_back(ctx, _honour(-700))      # cards first
    with caplog.at_level(logging.WARNING, logger="bot.jobs.cards"):
        for _ in range(3):
            await cards.refresh_cards(ctx)
    assert not await outbox_drain._held_back(ctx, _honour(-700))  # the honours go (or fail) on their own
    assert [r[0] for r in await db.fetchall("SELECT group_message_id FROM tasks WHERE id IN (?, ?)",
                                            (first, second))] == [0, 0]
    assert len([r for r in caplog.records if "cannot be posted" in r.getMessage()]) == 2  # once each
    told = await _staff_told(db)
    assert len(told) == 1 and f"task #{first} in the volunteer group of Sunny Lane" in told[0], told
    zh = (await _staff_told(db, "zh"))[0]   # staff once (a day) for that group, not once a card
    assert f"#{first}" in zh and "Linli could not" not in zh, zh


async def test_a_group_that_became_a_supergroup_is_followed(db: Database, now: datetime) -> None:
    cid = await make_community(db, now, group_chat_id=-701)
    staff = await make_member(db, now, cid, staff=True)
    tid = await make_task(db, now, cid, staff, title="Buy buns")
    bot = _Bot({-701: ChatMigrated(-100701)})
    ctx = _ctx(db, bot, now)
    await cards.refresh_cards(ctx)
    await cards.refresh_cards(ctx)
    assert [c for c, _ in bot.sent] == [-100701]
    assert await db.fetchval("SELECT group_chat_id FROM communities WHERE id = ?", (cid,)) == -100701
    assert tuple(await db.fetchone("SELECT group_chat_id, group_message_id FROM tasks WHERE id = ?", (tid,))) \
        == (-100701, 101)
    assert not await outbox_drain._held_back(ctx, _honour(-100701))
    assert not await outbox_drain._held_back(ctx, _honour(-701))


async def test_a_card_that_cannot_be_drawn_is_given_up_and_the_others_go_on(
        db: Database, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = await make_community(db, now, group_chat_id=-702)
    staff = await make_member(db, now, cid, staff=True)
    bad = await make_task(db, now, cid, staff, title="Broken")
    good = await make_task(db, now, cid, staff, title="Buy buns")
    drawn = cards.render_card

    def render(t: Any, task: Any, taken: int) -> Any:
        if task["id"] == bad:
            raise ValueError("a row the card cannot show")
        return drawn(t, task, taken)

    monkeypatch.setattr(cards, "render_card", render)
    bot = _Bot({})
    ctx = _ctx(db, bot, now)
    await cards.refresh_cards(ctx)
    assert len(bot.sent) == 1 and "Buy buns" in bot.sent[0][1]
    assert await db.fetchval("SELECT group_message_id FROM tasks WHERE id = ?", (bad,)) == 0
    assert await db.fetchval("SELECT group_message_id FROM tasks WHERE id = ?", (good,)) == 101
    assert not await outbox_drain._held_back(ctx, _honour(-702))


async def test_a_card_refused_for_its_own_text_is_given_up_without_sending_staff_to_the_group(
        db: Database, now: datetime, caplog: pytest.LogCaptureFixture) -> None:
    """A 400 about the card itself (its HTML, say) is Linli's fault: given up and logged as an error, and
    staff are not asked to check the group, which is fine."""
    cid = await make_community(db, now, group_chat_id=-710)
    staff = await make_member(db, now, cid, staff=True, tg_user_id=7002)
    task = await make_task(db, now, cid, staff, title="Buy buns")
    bot = _Bot({-710: BadRequest("Bad Request: can't parse entities: unsupported start tag \"x\" at byte offset 3")})
    ctx = _ctx(db, bot, now)
    with caplog.at_level(logging.WARNING, logger="bot.jobs.cards"):
        for _ in range(2):
            await cards.refresh_cards(ctx)
    assert (await db.fetchone("SELECT group_message_id FROM tasks WHERE id = ?", (task,)))[0] == 0
    assert not await outbox_drain._held_back(ctx, _honour(-710))
    assert [r.levelname for r in caplog.records if "refused for what it says" in r.getMessage()] == ["ERROR"]
    assert await _staff_told(db) == []
