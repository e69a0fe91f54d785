"""Staff manage the points supermarket with buttons and plain questions, through the real bot process:
add a reward with a photo, change its cost, restock and withdraw it; residents and volunteers see the
photo in the supermarket; bad answers change nothing; nobody but staff reaches the dialog."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import ledger, rewards
from storage.db import Database, open_database
from tests.factories import make_community, make_member

T = 10


def _last_id(fake: FakeTelegram, user: Any) -> int:
    return max((m.message_id for m in fake.bot_messages(fake.private_chat(user, create=True))), default=0)


def _body(message: Any) -> str:
    return str(message.text or message.caption or "")


async def _said(fake: FakeTelegram, user: Any, words: str, after: int) -> Any:
    """The bot's next message (after message ``after``) to ``user`` that says ``words``, read as shown."""
    return await fake.wait_for_message(user, lambda m: words in _body(m), timeout=T, after_id=after)


async def _press(fake: FakeTelegram, user: Any, data: str, expect: str) -> Any:
    """Press the button with ``data`` on the newest message that carries it; the question that follows
    (the same message edited, or a new one) once it says ``expect``."""
    chat = fake.private_chat(user)
    holder = next(m for m in reversed(fake.bot_messages(chat)) if m.carries(data))
    await fake.press_button(user, holder, data)

    def shown() -> Any:
        for m in reversed(fake.bot_messages(chat)):
            if m.message_id >= holder.message_id and expect in _body(m):
                return m
        return None

    return await fake.wait_for(shown, timeout=T)


async def _type(fake: FakeTelegram, user: Any, text: str, expect: str) -> Any:
    after = _last_id(fake, user)
    await fake.send_text(user, None, text)
    return await _said(fake, user, expect, after)


async def _members(db: Database, fake: FakeTelegram, staff_lang: str) -> tuple[int, Any, Any, int]:
    """A community, a staff member (``staff_lang``) and an English-speaking volunteer with 100 points:
    (community id, staff user, volunteer user, volunteer member id)."""
    now = dt.datetime.now(dt.UTC)
    cid = await make_community(db, now)
    staff_u = fake.add_user("Grid", language_code=staff_lang)
    await make_member(db, now, cid, tg_user_id=staff_u.id, language=staff_lang, staff=True)
    vol_u = fake.add_user("Wang", language_code="en")
    vol = await make_member(db, now, cid, tg_user_id=vol_u.id, language="en", volunteer=True)
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=vol, amount=100, reason="task", key=f"seed:{vol}", now=now)
    return cid, staff_u, vol_u, vol


@pytest.mark.unpaced  # the dialog, not pacing
async def test_staff_add_a_reward_with_a_photo_and_a_volunteer_redeems_it(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        _cid, staff_u, vol_u, vol = await _members(db, fake, "zh")
        # the staff menu has the button (in Chinese)
        await fake.send_text(staff_u, None, "/cancel")
        menu = await fake.wait_for_message(staff_u, lambda m: bool(m.keyboard_buttons), timeout=T)
        assert "🏷 管理奖品" in [b["text"] for b in menu.keyboard_buttons]
        await fake.press_reply_button(staff_u, None, "🏷 管理奖品")
        await _said(fake, staff_u, "还没有奖品", 0)
        await _press(fake, staff_u, "d:list:-add", "奖品叫什么名字")
        await _type(fake, staff_u, "硒茶九折券", "英文名叫什么")
        await _type(fake, staff_u, "Selenium tea 10% off", "哪一类奖品")
        await _press(fake, staff_u, "d:kind:goods", "兑换要多少积分")
        for bad in ("abc", "-3", "²", "0", "100001"):  # answered politely, and asked again
            await _type(fake, staff_u, bad, "抱歉，这不是 1 到 100000 之间的整数。")
        await _type(fake, staff_u, "３０", "一共有多少件")  # full-width digits are a number
        await _type(fake, staff_u, "5", "请发一张奖品的照片")
        after = _last_id(fake, staff_u)
        await fake.send_photo(staff_u, None, b"\xff\xd8\xff\xe0tea-photo")
        summary = await _said(fake, staff_u, "请核对新奖品", after)
        assert "硒茶九折券 / Selenium tea 10% off" in _body(summary) and "照片：有" in _body(summary), _body(summary)
        assert await db.fetchval("SELECT COUNT(*) FROM rewards") == 0  # nothing saved before the summary
        await _press(fake, staff_u, "d:confirm:save", "添加好了")
        row = await db.fetchone("SELECT name_zh, name_en, kind, cost, stock, active, photo_file_id FROM rewards")
        assert row is not None and tuple(row)[:6] == ("硒茶九折券", "Selenium tea 10% off", "goods", 30, 5, 1)
        assert row["photo_file_id"]
        rid = await db.fetchval("SELECT id FROM rewards")

        # the volunteer sees it with its photo in the supermarket and redeems it
        await fake.send_text(vol_u, None, "🎁 Points supermarket")
        listing = await fake.wait_for_message(vol_u, lambda m: any(
            b.get("callback_data") == f"rw:r:{rid}" for b in m.inline_buttons), timeout=T)
        await fake.press_button(vol_u, listing, f"rw:r:{rid}")
        shown = await fake.wait_for_message(vol_u, lambda m: "photo" in m.data, timeout=T,
                                            after_id=listing.message_id - 1)
        assert "Selenium tea 10% off" in _body(shown) and "Redeem it for 30 points?" in _body(shown), _body(shown)
        assert fake.file_bytes(shown.data["photo"][-1]["file_id"]) == b"\xff\xd8\xff\xe0tea-photo"
        yes = next(b["callback_data"] for b in shown.inline_buttons if b["callback_data"].startswith("rw:c:"))
        await fake.press_button(vol_u, shown, yes)
        await fake.wait_for_message(vol_u, lambda m: "Voucher: Selenium tea 10% off" in _body(m), timeout=T)
        assert await db.fetchval("SELECT balance FROM members WHERE id = ?", (vol,)) == 70
        assert await db.fetchval("SELECT stock FROM rewards WHERE id = ?", (rid,)) == 4
        await settle(fake, quiet=0.3)
        assert fake.errors == [] and "Traceback" not in bot_process.log()
    finally:
        await db.close()


@pytest.mark.unpaced  # the dialog, not pacing
async def test_staff_change_the_cost_restock_and_withdraw(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        _cid, staff_u, vol_u, vol = await _members(db, fake, "en")
        # the one-line command stays, and answers in plain words (no raw "中文 / English" echo)
        added = await _type(fake, staff_u, "/rewards add goods 20 2 硒茶九折券 / Selenium tea 10% off",
                            "is in the points supermarket now")
        assert "“Selenium tea 10% off” is in the points supermarket now: 20 points, 2 in stock." in _body(added)
        assert "硒茶九折券 / Selenium" not in _body(added)
        rid = int(await db.fetchval("SELECT id FROM rewards"))
        voucher = await rewards.redeem(db, member_id=vol, reward_id=rid, now=dt.datetime.now(dt.UTC))

        await _type(fake, staff_u, "🏷 Manage rewards", "Rewards in the points supermarket")
        await _press(fake, staff_u, f"d:list:{rid}", "What would you like to change?")
        await _press(fake, staff_u, "d:item:cost", "How many points does it cost?")
        for bad in ("abc", "-3", "²", "12 points"):
            await _type(fake, staff_u, bad, "Sorry, that is not a whole number from 1 to 100000.")
        assert await db.fetchval("SELECT cost FROM rewards WHERE id = ?", (rid,)) == 20  # nothing changed
        await _type(fake, staff_u, "25", "✅ Saved.")
        assert await db.fetchval("SELECT cost FROM rewards WHERE id = ?", (rid,)) == 25

        await _press(fake, staff_u, "d:item:restock", "How many more came in?")
        await _type(fake, staff_u, "0", "Sorry, that is not a whole number from 1 to 1000000.")
        await _type(fake, staff_u, "3", "✅ Restocked: 4 in stock now.")  # one of the two was redeemed
        assert await db.fetchval("SELECT stock FROM rewards WHERE id = ?", (rid,)) == 4

        await _press(fake, staff_u, "d:item:photo", "Please send a photo")
        await _type(fake, staff_u, "here it is", "Please send a photo (with the 📎 button")
        after = _last_id(fake, staff_u)
        await fake.send_photo(staff_u, None)
        await _said(fake, staff_u, "✅ Photo saved.", after)
        await _press(fake, staff_u, "d:item:photo", "a new one replaces it")
        await _press(fake, staff_u, "d:photo:-remove", "✅ The photo is removed.")
        assert await db.fetchval("SELECT photo_file_id FROM rewards WHERE id = ?", (rid,)) is None

        await _press(fake, staff_u, "d:item:withdraw", "Withdraw “Selenium tea 10% off”")
        await _press(fake, staff_u, "d:withdraw:no", "What would you like to change?")
        assert await db.fetchval("SELECT active FROM rewards WHERE id = ?", (rid,)) == 1
        await _press(fake, staff_u, "d:item:withdraw", "Withdraw “Selenium tea 10% off”")
        await _press(fake, staff_u, "d:withdraw:yes", "✅ Withdrawn.")
        assert await db.fetchval("SELECT active FROM rewards WHERE id = ?", (rid,)) == 0
        await _press(fake, staff_u, "d:list:-cancel", "Closed.")

        # gone from the supermarket; the voucher issued before is still good at the counter
        await _type(fake, vol_u, "/rewards", "nothing on offer")
        await _type(fake, staff_u, f"/verify {voucher.code}", "is valid")
        await settle(fake, quiet=0.3)
        assert fake.errors == [] and "Traceback" not in bot_process.log()
    finally:
        await db.close()


async def test_only_staff_reach_the_dialog_and_its_buttons(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = dt.datetime.now(dt.UTC)
        cid, staff_u, vol_u, _vol = await _members(db, fake, "en")
        rid = await rewards.create_reward(db, community_id=cid, name_zh="大米", name_en="Rice", kind="goods",
                                          cost=10, stock=3, now=now)
        other = await make_community(db, now)
        other_u = fake.add_user("Elsewhere", language_code="en")
        await make_member(db, now, other, tg_user_id=other_u.id, language="en", staff=True)

        # a volunteer typing the button's words, or the command, is refused and no dialog opens
        await _type(fake, vol_u, "🏷 Manage rewards", "not allowed")
        await _type(fake, vol_u, "/rewards manage", "not allowed")
        assert await db.fetchval("SELECT COUNT(*) FROM dialogs") == 0
        # a forged dialog button (on a message of their own chat that carries it) changes nothing
        forged = {"message_id": 1, "date": int(now.timestamp()), "chat": {"id": vol_u.id, "type": "private"},
                  "from": {"id": fake.bot.id, "is_bot": True, "first_name": "Linli"}, "text": "x",
                  "reply_markup": {"inline_keyboard": [[{"text": "x", "callback_data": f"d:list:{rid}"}]]}}
        q = await fake.inject_callback(vol_u, f"d:list:{rid}", message=forged)
        assert "out of date" in ((await fake.wait_callback_answer(q, timeout=T)).get("text") or "")

        # staff of another community cannot open this community's reward, even by a forged button
        await _type(fake, other_u, "🏷 Manage rewards", "There are no rewards yet.")
        listing = next(m for m in reversed(fake.bot_messages(fake.private_chat(other_u))) if m.inline_buttons)
        # (forged as from this very dialog: with the mark its own buttons carry)
        mark = str(listing.inline_buttons[0]["callback_data"]).rpartition("~")[2]
        await fake.press_raw_callback(other_u, listing, f"d:list:{rid}~{mark}")
        q = await fake.inject_callback(other_u, f"d:list:{rid}~{mark}", message={
            **forged, "message_id": listing.message_id, "chat": {"id": other_u.id, "type": "private"},
            "reply_markup": {"inline_keyboard": [[{"text": "x", "callback_data": f"d:list:{rid}~{mark}"}]]}})
        await fake.wait_callback_answer(q, timeout=T)
        await _said(fake, other_u, "could not find", 0)
        assert await db.fetchval("SELECT step FROM dialogs WHERE tg_user_id = ?", (other_u.id,)) == "list"

        # staff who lose the role mid-dialog are stopped at their next answer
        await _type(fake, staff_u, "🏷 Manage rewards", "Rewards in the points supermarket")
        await _press(fake, staff_u, f"d:list:{rid}", "What would you like to change?")
        await _press(fake, staff_u, "d:item:cost", "How many points does it cost?")
        async with db.transaction() as conn:
            await conn.execute("UPDATE members SET is_staff = 0 WHERE tg_user_id = ?", (staff_u.id,))
        await _type(fake, staff_u, "99", "not allowed")
        assert await db.fetchval("SELECT cost FROM rewards WHERE id = ?", (rid,)) == 10
        assert await db.fetchval("SELECT COUNT(*) FROM dialogs WHERE tg_user_id = ?", (staff_u.id,)) == 0
        await settle(fake, quiet=0.3)
        assert fake.errors == [] and "Traceback" not in bot_process.log()
    finally:
        await db.close()
