"""Group honours: gathered into one message within Telegram's limit; held while cards wait."""

from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import bot.conversations.completion  # noqa: F401  (registers the honour renderers)
from bot.i18n import translator
from bot.jobs import outbox_drain
from bot.renderers import RENDERERS, RenderContext
from storage.db import Database
from storage.outbox import OutboxRow, enqueue, next_batch
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task


async def test_two_hundred_honours_are_one_message_within_4096_characters(db: Database, now: datetime) -> None:
    cid = await make_community(db, now)
    ids = [await make_member(db, now, cid, volunteer=True, name=f"{'长' * 40}{i}") for i in range(200)]
    quiet = await make_member(db, now, cid, volunteer=True, name="Private Person", announce_consent=0)
    rc = RenderContext(db, translator("zh"), "zh", -100, None, "linli_bot")
    items = [{"code": "first_task", "member_id": m} for m in [*ids, quiet]]
    rendered = await RENDERERS["honour_group"].render(rc, {"items": items})
    assert rendered is not None
    text = rendered.text
    assert len(text) <= 4096 and text.startswith("🎉 今天的荣誉：") and "完成第一个任务" in text
    assert f"{'长' * 40}0" in text and "Private Person" not in text
    shown = sum(f"{'长' * 40}{i}、" in text or f"{'长' * 40}{i}：" in text for i in range(200))
    assert f"……还有 {200 - shown} 人" in text and 0 < shown < 200


def _due(chat_id: int, *, priority: int) -> OutboxRow:
    """An outbox row to a group, due now (what ``_held_back`` looks at: the chat and the priority)."""
    return OutboxRow(id=1, dedupe_key=None, chat_id=chat_id, member_id=None, kind="text", payload="{}",
                     priority=priority, not_before="", state="pending", attempts=0, last_error=None,
                     message_id=None, voice_message_id=None, created_at="", sent_at=None)


async def test_due_honours_of_a_group_travel_as_one_row(db: Database, now: datetime) -> None:
    cid = await make_community(db, now, group_chat_id=-555)
    members = [await make_member(db, now, cid, volunteer=True) for _ in range(5)]
    async with db.transaction() as conn:
        for m in members:
            await enqueue(conn, chat_id=-555, kind="honour_group", now=now,
                          payload={"code": "first_task", "member_id": m}, dedupe_key=f"h{m}")
    rows = await next_batch(db, now, 2)
    ctx: Any = SimpleNamespace(db=db)
    batch = await outbox_drain._coalesce(ctx, rows, now)
    assert len(batch) == 1 and len(batch[0].merged) == 4
    assert [i["member_id"] for i in json.loads(batch[0].payload)["items"]] == members


async def test_honours_wait_while_the_group_has_a_card_to_post(db: Database, now: datetime) -> None:
    cid = await make_community(db, now, group_chat_id=-556)
    staff = await make_member(db, now, cid, staff=True)
    ctx: Any = SimpleNamespace(db=db, bot=None)
    honour, notice = _due(-556, priority=0), _due(-556, priority=10)
    assert not await outbox_drain._held_back(ctx, honour)
    tid = await make_task(db, now, cid, staff)   # published, no card yet
    assert await outbox_drain._held_back(ctx, honour)
    assert not await outbox_drain._held_back(ctx, notice)   # staff notices only mind the budget
    async with db.transaction() as conn:
        await conn.execute("UPDATE tasks SET group_chat_id = -556, group_message_id = 9,"
                           " card_rendered = card_version WHERE id = ?", (tid,))
    assert not await outbox_drain._held_back(ctx, honour)


async def test_the_group_budget_is_left_to_cards_first(db: Database, now: datetime) -> None:
    """One budget per group (the rate limiter's window): honours stop with CARD_RESERVE messages
    left, staff notices with NOTICE_RESERVE; cards may use the rest."""
    import time

    from bot.ratelimit import ChatRateLimiter, group_room

    limiter = ChatRateLimiter()
    ctx: Any = SimpleNamespace(db=db, bot=SimpleNamespace(rate_limiter=limiter))
    honour, notice = _due(-557, priority=0), _due(-557, priority=10)
    window = limiter._window(-557)
    window.stamps.extend([time.monotonic()] * (window.limit - outbox_drain.CARD_RESERVE - 1))
    assert not await outbox_drain._held_back(ctx, honour)
    window.stamps.append(time.monotonic())
    assert await outbox_drain._held_back(ctx, honour) and not await outbox_drain._held_back(ctx, notice)
    window.stamps.extend([time.monotonic()] * (outbox_drain.CARD_RESERVE - outbox_drain.NOTICE_RESERVE))
    assert await outbox_drain._held_back(ctx, notice)
    assert group_room(ctx.bot, -557) == outbox_drain.NOTICE_RESERVE > 0   # what cards still have
