"""The public group card: local time, the category's name, nothing private."""

from __future__ import annotations

from typing import Any

from bot.i18n import translator
from bot.jobs.cards import render_card


def _task(**over: object) -> dict[str, object]:
    task: dict[str, object] = {
        "id": 7, "title": None, "category": "shopping", "category_zh": "买菜/跑腿", "category_en": "Shopping/errands",
        "description": "Call me on 13812345678", "voice_file_id": None, "area_name": "Building 3",
        "when_kind": "at", "starts_at": "2026-05-04T01:30:00.000000Z", "community_tz": "Asia/Shanghai",
        "slots": 20, "points": 2, "state": "open", "address": "Flat 301", "proxy_name": "Grandma Wang",
    }
    task.update(over)
    return task


def test_card_shows_local_time_category_name_and_masks_phones() -> None:
    text, markup = render_card(translator("en"), _task(), 3)
    assert "05-04 09:30" in text  # 01:30 UTC is 09:30 in Shanghai
    assert "Shopping/errands" in text
    assert "13812345678" not in text and "Flat 301" not in text and "Grandma" not in text
    assert "3/20" in text
    assert markup is not None and markup.inline_keyboard[0][0].callback_data == "cl:7"
    zh, _ = render_card(translator("zh"), _task(), 3)
    assert "买菜/跑腿" in zh and "求助" in zh


def test_closed_card_has_no_claim_button() -> None:
    _, markup = render_card(translator("en"), _task(state="completed"), 20)
    assert markup is None


def test_long_description_is_cut_before_escaping_and_phones_are_masked_whatever_the_separators() -> None:
    import re

    text, _ = render_card(translator("en"), _task(description="x" * 497 + "<<<<<<"), 1)
    assert "xxx&lt;&lt;&lt;" in text and not re.search(r"&[a-z]*(?![a-z;])", text)  # no entity cut in half
    for phone in ("139/1234/5678", "139.1234.5678", "(010) 6123-4567", "139，1234，5678", "１３９１２３４５６７８"):
        card, _ = render_card(translator("en"), _task(description=f"Rice please, phone {phone} thanks"), 1)
        digits = re.sub(r"\D", "", phone)
        assert digits not in re.sub(r"\D", "", card.split("Rice please")[1].split("thanks")[0]), card


def test_names_and_addresses_typed_into_the_description_are_masked_on_the_card() -> None:
    task = _task(description="I am Zhou Lan at building 7  room 1203, please buy rice. Grandma Wang says hi",
                 requester_name="Zhou Lan", requester_address="Building 7 Room 1203", address=None)
    text, _ = render_card(translator("en"), task, 0)
    assert "Zhou Lan" not in text and "1203" not in text and "Grandma Wang" not in text, text
    assert "please buy rice" in text
    zh, _ = render_card(translator("zh"), _task(description="我是周兰，住7号楼1203室，请帮我买米",
                                                  requester_name="周兰", requester_address="7号楼1203室"), 0)
    assert "周兰" not in zh and "1203" not in zh and "请帮我买米" in zh


def test_the_numbers_of_the_address_typed_in_another_form_are_masked() -> None:
    """Found by an exploratory review: "请到3号楼301来" went to the group for a resident registered
    at "3号楼 2单元 301". Her address's numbers are masked where they stand for it; other numbers stay."""
    task = _task(description="请到3号楼301来。买2斤包子，10点前", requester_name="王奶奶",
                 requester_address="3号楼 2单元 301", address=None)
    zh, _ = render_card(translator("zh"), task, 0)
    assert "301" not in zh and "3号楼" not in zh and "买2斤包子" in zh and "10点前" in zh, zh
    en, _ = render_card(translator("en"), _task(description="Building 3 unit 2 room ３０１, buy 3 kg of rice",
                                                 requester_address="3号楼 2单元 301", address=None), 0)
    said = en.splitlines()[2]  # the description (the card's area line names the listed area, which is public)
    assert "301" not in said and "３０１" not in said and "Building 3" not in said and "buy 3 kg of rice" in said, en


async def test_card_job_skips_edits_that_change_nothing_and_retries_failed_ones(db: Any, now: Any) -> None:
    """Found by an exploratory review: a problem report re-edited the card with the same text and
    Telegram answered "message is not modified"; and an edit refused while the bot was out of the
    group was never tried again."""
    from types import SimpleNamespace

    from telegram.error import Forbidden

    from bot.jobs import cards
    from tests.factories import make_community, make_member
    from tests.factories_tasks import make_task

    class Bot:
        def __init__(self) -> None:
            self.edits: list[str] = []
            self.refuse = False

        async def edit_message_text(self, text: str, **_: Any) -> None:
            if self.refuse:
                raise Forbidden("Forbidden: bot is not a member of the group chat")
            self.edits.append(text)

    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    tid = await make_task(db, now, cid, staff, title="Buy buns")
    group = await db.fetchval("SELECT group_chat_id FROM communities WHERE id = ?", (cid,))

    async def bump(title: str | None = None) -> None:
        async with db.transaction() as conn:
            await conn.execute("UPDATE tasks SET card_version = card_version + 1, title = COALESCE(?, title),"
                               " group_chat_id = ?, group_message_id = 7 WHERE id = ?", (title, group, tid))
        cards._last_edit.clear()

    bot = Bot()
    ctx = SimpleNamespace(db=db, bot=bot, settings=SimpleNamespace(default_language="en"))
    await bump()
    await cards.refresh_cards(ctx)  # type: ignore[arg-type]
    await bump()  # e.g. a problem report: nothing on the card changes
    await cards.refresh_cards(ctx)  # type: ignore[arg-type]
    assert len(bot.edits) == 1
    bot.refuse = True
    await bump("Buy buns and milk")
    await cards.refresh_cards(ctx)  # type: ignore[arg-type]
    bot.refuse = False
    await cards.refresh_cards(ctx)  # nothing new asked for: no retry loop
    assert len(bot.edits) == 1
    await bump()  # the bot is back in the group (communities.reactivate bumps the version)
    await cards.refresh_cards(ctx)  # type: ignore[arg-type]
    assert len(bot.edits) == 2 and "Buy buns and milk" in bot.edits[-1]


async def test_card_job_reads_only_cards_to_post_or_edit_from_an_index(db: Any, now: Any) -> None:
    """Found by an audit: every 3 s the job scanned every task ever made (36 ms at 100,000 tasks).
    It now reads a partial index holding only the cards to post or edit."""
    from tests.both import only_sqlite

    only_sqlite(db, "SQLite's query plan")
    from storage import cards as card_store
    from tests.factories import make_community, make_member
    from tests.factories_tasks import make_task

    cid = await make_community(db, now)
    no_group = await make_community(db, now, no_group=True)  # the bot was removed from its group
    staff = await make_member(db, now, cid, staff=True)
    to_post = await make_task(db, now, cid, staff)
    await make_task(db, now, no_group, staff)                                       # nowhere to post it
    to_edit = await make_task(db, now, cid, staff, group_message_id=7, card_version=3, card_rendered=2)
    await make_task(db, now, cid, staff, group_message_id=8, card_version=3, card_rendered=3)  # up to date
    await make_task(db, now, cid, staff, group_message_id=0, card_version=3, card_rendered=2)  # given up
    await make_task(db, now, cid, staff, state="completed")                          # closed before posting
    closed = await make_task(db, now, no_group, staff, group_message_id=9, card_version=2, card_rendered=1,
                             state="completed")                                   # posted earlier: edited
    assert [r["id"] for r in await card_store.to_draw(db)] == [to_post, to_edit, closed]
    plan = " | ".join(r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + card_store.TO_DRAW))
    assert "SCAN t USING INDEX tasks_card_todo" in plan, plan
