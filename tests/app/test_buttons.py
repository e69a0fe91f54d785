"""The button rule (bot/buttons.py) on its own: which presses may go on to a handler."""

from __future__ import annotations

import re
from typing import Any

import pytest
from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.buttons import BUTTONS, NOT_YOURS, OUT_OF_DATE, verdict

BOT = {"id": 1, "is_bot": True, "first_name": "Linli", "username": "linli_test_bot"}
ALICE = {"id": 700, "is_bot": False, "first_name": "Alice"}
BOB = {"id": 701, "is_bot": False, "first_name": "Bob"}
GROUP = {"id": -100, "type": "supergroup", "title": "Volunteers"}


def _press(data: str | None, *, chat: dict[str, Any], buttons: list[str], presser: dict[str, Any] = ALICE,
           inline: bool = False) -> Update:
    query: dict[str, Any] = {"id": "1", "from": presser, "chat_instance": "5"}
    if data is not None:
        query["data"] = data
    if inline:
        query["inline_message_id"] = "AAE"
    else:
        query["message"] = {"message_id": 9, "date": 0 if chat.get("gone") else 1, "chat": chat, "from": BOT,
                            "text": "x", "reply_markup": {"inline_keyboard": [[{"text": b, "callback_data": b}
                                                                                for b in buttons]]}}
    return Update.de_json({"update_id": 1, "callback_query": query}, None)


def _private(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "type": "private", "first_name": user["first_name"]}


@pytest.mark.parametrize(("data", "buttons", "chat", "presser", "why"), [
    ("lg:en", ["lg:zh", "lg:en"], _private(ALICE), ALICE, None),           # her own button
    ("lg:fr", ["lg:zh", "lg:en"], _private(ALICE), ALICE, OUT_OF_DATE),    # data on no button
    ("lg:", ["lg:zh", "lg:en"], _private(ALICE), ALICE, OUT_OF_DATE),
    ("cf:3:y", ["cf:3:y"], _private(ALICE), BOB, NOT_YOURS),               # someone else's message
    ("zz:1", ["zz:1"], _private(ALICE), ALICE, OUT_OF_DATE),               # a prefix the bot does not make
    ("cl:3", ["cl:3", "dt:3"], GROUP, BOB, None),                          # Claim on a card (the card is checked later)
    ("rcn:0", ["cl:3", "dt:3"], GROUP, BOB, OUT_OF_DATE),                  # not on the card
    ("lb:week:people", ["lb:week:people"], GROUP, BOB, NOT_YOURS),         # a private button on a group message
    ("rcn:0", ["rcn:0"], GROUP, BOB, NOT_YOURS),
    ("d:org:1", ["d:org:1"], GROUP, BOB, NOT_YOURS),
    ("dt:3", ["dt:3"], _private(ALICE), ALICE, NOT_YOURS),                 # Details only on the group card
])
def test_verdict(data: str, buttons: list[str], chat: dict[str, Any], presser: dict[str, Any], why: str | None) -> None:
    assert verdict(_press(data, chat=chat, buttons=buttons, presser=presser)) == why


def test_inline_messages_and_presses_without_data_are_refused() -> None:
    assert verdict(_press("cl:3", chat=GROUP, buttons=[], inline=True)) == NOT_YOURS
    assert verdict(_press(None, chat=GROUP, buttons=["cl:3"])) == NOT_YOURS
    assert verdict(_press("cl:3", chat={**GROUP, "gone": True}, buttons=["cl:3"])) == NOT_YOURS


def test_every_handled_prefix_has_a_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler for a prefix with no rule would never be reached (and a rule nobody handles is stale)."""
    from bot.app import build_application
    from bot.config import load_settings

    monkeypatch.setenv("BOT_TOKEN", "123456:TEST")
    app = build_application(load_settings())
    handled: set[str] = set()
    for handlers in app.handlers.values():
        for handler in handlers:
            pattern = getattr(handler, "pattern", None)
            if isinstance(handler, CallbackQueryHandler) and isinstance(pattern, re.Pattern):
                found = re.match(r"\^\(?([a-z|]+)\)?:", pattern.pattern)
                if found:
                    handled |= set(found.group(1).split("|"))
    assert handled == set(BUTTONS)


async def test_a_card_shown_other_than_it_should_be_is_marked_for_the_card_job(db: Any, now: Any) -> None:
    from types import SimpleNamespace

    from bot.i18n import translator
    from bot.jobs import cards
    from storage import cards as card_store
    from tests.factories import make_community, make_member
    from tests.factories_tasks import make_task

    cid = await make_community(db, now, group_chat_id=-100, language="en")
    mid = await make_member(db, now, cid, resident=True)
    tid = await make_task(db, now, cid, mid, requester_id=mid, description="Carry rice", group_chat_id=-100,
                          group_message_id=5, card_version=2, card_rendered=2, card_hash="drawn")
    ctx: Any = SimpleNamespace(db=db, settings=SimpleNamespace(default_language="en"))
    row = await card_store.card_of(db, tid)
    html_text, markup = cards.render_card(translator("en"), row, 0)
    plain = cards._plain(html_text)
    assert "<b>" not in plain and "Carry rice" in plain

    async def state() -> tuple[Any, ...]:
        return tuple(await db.fetchone("SELECT card_version, card_rendered, card_hash FROM tasks WHERE id = ?", (tid,)))

    async def check(message_id: int, text: str, buttons: Any) -> int | None:
        return await cards.check_shown(ctx, await card_store.at_message(db, -100, message_id), text, buttons)

    assert await check(6, "anything", None) is None  # not a card
    assert await check(5, plain, markup) == tid     # as it should be: left alone
    assert await state() == (2, 2, "drawn")
    assert await check(5, "Good: the request stays as it is.", None) == tid
    assert await state() == (2, 1, None)                                   # the card job redraws it
    rows = await card_store.to_draw(db)
    assert [r["id"] for r in rows] == [tid]


async def test_the_upgrade_redraws_every_card_that_can_still_be_claimed(db: Any, now: Any) -> None:
    from storage.migrate import apply_migrations
    from tests.factories import make_community, make_member
    from tests.factories_tasks import make_task

    cid = await make_community(db, now, group_chat_id=-100)
    mid = await make_member(db, now, cid, resident=True)
    drawn = {"group_chat_id": -100, "card_version": 3, "card_rendered": 3, "card_hash": "h"}
    open_task = await make_task(db, now, cid, mid, group_message_id=5, **drawn)
    done_task = await make_task(db, now, cid, mid, group_message_id=6, state="completed", **drawn)
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM schema_migrations WHERE version = 93")
    assert await apply_migrations(db.writer) == [93]
    got = {r["id"]: (r["card_rendered"], r["card_hash"]) for r in await db.fetchall("SELECT * FROM tasks")}
    assert got == {open_task: (2, None), done_task: (3, "h")}
