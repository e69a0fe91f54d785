"""Setup and registration through the real bot process."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import ledger
from storage.db import open_database
from tests.conftest import ADMIN_ID
from tests.e2e.people import make_staff, register, say, setup_community


def _db(proc: BotProcess) -> sqlite3.Connection:
    conn = sqlite3.connect(proc.database)
    conn.row_factory = sqlite3.Row
    return conn


@pytest.mark.unpaced  # the flows, not pacing
async def test_setup_refused_then_registration_each_role(fake: FakeTelegram, bot_process: BotProcess) -> None:
    stranger = fake.add_user("Stranger", language_code="en")
    group = fake.add_group("Other", creator=stranger)
    await fake.add_bot_to_group(group, stranger)
    await fake.send_text(stranger, group, "/setup Mine")
    msg = await fake.wait_for_message(group, timeout=10)
    assert "only the operator" in msg.text
    assert _db(bot_process).execute("SELECT COUNT(*) FROM communities").fetchone()[0] == 0

    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin, name="Sunshine Garden")
    conn = _db(bot_process)
    assert conn.execute("SELECT COUNT(*) FROM categories").fetchone()[0] == 6
    assert any(c.method == "pinChatMessage" and c.ok for c in fake.calls)

    await fake.send_text(admin, None, "/areas add Building 3")
    await fake.wait_for_message(admin, lambda m: "Building 3" in (m.text or ""), timeout=10)
    area_id = conn.execute("SELECT id FROM areas WHERE name = 'Building 3'").fetchone()[0]
    # Typed instead of tapped, the listed area is still recognised; a full address stays private.
    for (role, name, lang), typed, address, area in zip(
            (("resident", "Wang", "zh-hans"), ("volunteer", "Ann", "en"), ("both", "Li", "en")),
            ("ｂｕｉｌｄｉｎｇ３", "Building 3, flat 201", "Building 31"),
            (None, "Building 3, flat 201", "Building 31"), (area_id, area_id, None), strict=True):
        user = fake.add_user(name, language_code=lang)
        await register(fake, user, role=role, area=typed)
        row = _db(bot_process).execute("SELECT * FROM members WHERE tg_user_id = ?", (user.id,)).fetchone()
        assert (row["area_id"], row["address"]) == (area, address)
        assert row["registered_at"] is not None and row["display_name"] == name
        assert row["is_resident"] == (role != "volunteer") and row["is_volunteer"] == (role != "resident")
        assert row["phone"]
    # The group becomes a supergroup, then the bot is removed.
    await fake.send_text(admin, None, "/help")
    await fake.wait_for_message(admin, timeout=10)
    new = await fake.migrate_group(group)
    await settle(fake)
    assert _db(bot_process).execute("SELECT group_chat_id FROM communities").fetchone()[0] == new.id
    await fake.remove_bot_from_group(new)
    await settle(fake)
    row = _db(bot_process).execute("SELECT group_chat_id, active FROM communities").fetchone()
    assert row["group_chat_id"] is None and row["active"] == 0
    # The admin who set it up (staff) hears about it in private.
    await fake.wait_for_message(admin, lambda m: "removed" in (m.text or ""), timeout=10)
    # Added back to the same group: the same community is active again, members and all.
    members_before = _db(bot_process).execute("SELECT COUNT(*) FROM members").fetchone()[0]
    await fake.add_bot_to_group(new, admin, admin=True)
    await fake.wait_for_message(new, lambda m: "is back" in (m.text or ""), timeout=10)
    await fake.wait_for_message(admin, lambda m: "is back" in (m.text or ""), timeout=10)
    rows = _db(bot_process).execute("SELECT id, group_chat_id, active FROM communities").fetchall()
    assert [(r["group_chat_id"], r["active"]) for r in rows] == [(new.id, 1)]
    assert _db(bot_process).execute("SELECT COUNT(*) FROM members").fetchone()[0] == members_before
    # /start in the group answers with a button to register in private (nothing else posted).
    await fake.send_text(admin, new, "/start@linli_test_bot")
    hint = await fake.wait_for_message(new, lambda m: "private chat" in (m.text or ""), timeout=10)
    code = _db(bot_process).execute("SELECT join_code FROM communities").fetchone()[0]
    assert hint.inline_buttons[0]["url"].endswith(f"?start=join_{code}")
    # Another group the bot joins is not mistaken for it.
    other = fake.add_group("Elsewhere", creator=admin)
    await fake.add_bot_to_group(other, admin)
    await settle(fake)
    assert _db(bot_process).execute("SELECT COUNT(*) FROM communities WHERE group_chat_id = ?", (other.id,)).fetchone()[0] == 0
    assert fake.errors == []


async def test_bad_input_and_restart_resumes(fake: FakeTelegram, bot_process: BotProcess) -> None:
    early = fake.add_user("Early", language_code="en")
    await fake.send_text(early, None, "/start")
    msg = await fake.wait_for_message(early, timeout=10)
    assert "not set up Linli yet" in msg.text
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    user = fake.add_user("Bob", language_code="en")
    await fake.send_text(user, None, "/start")
    msg = await fake.wait_for_message(user, timeout=10)
    await fake.press_button(user, msg, "d:lang:en")
    msg = await fake.wait_for_message(user, lambda m: "take part" in (m.text or ""), timeout=10)
    await fake.press_button(user, msg, "d:role:resident")
    await fake.wait_for_message(user, lambda m: "call you" in (m.text or ""), timeout=10)
    for bad in ("😀😀", "x" * 5000, "<b>   </b>"[3:6] + "🙂"):
        await fake.send_text(user, None, bad)
        reply = await fake.wait_for_message(user, timeout=10)
        assert "name" in reply.text
    await fake.send_sticker(user, None)
    reply = await fake.wait_for_message(user, timeout=10)
    assert "as text" in reply.text
    await fake.send_text(user, None, "<b>Bob</b>")
    await fake.wait_for_message(user, lambda m: bool(m.keyboard_buttons), timeout=10)
    await fake.send_text(user, None, "+8613800000000")
    reply = await fake.wait_for_message(user, timeout=10)
    assert "do not type" in reply.text
    await settle(fake, quiet=0.3)
    await bot_process.stop()
    await bot_process.start()
    await fake.send_contact(user, None)
    await fake.wait_for_message(user, lambda m: "area" in (m.text or ""), timeout=10)
    row = _db(bot_process).execute("SELECT step, data FROM dialogs WHERE tg_user_id = ?", (user.id,)).fetchone()
    assert row["step"] == "area" and "&lt;" not in row["data"]
    await settle(fake)
    assert fake.errors == []


@pytest.mark.unpaced  # the flows, not pacing
async def test_edit_org_staff_deleteme(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    vol = fake.add_user("Mei", language_code="en")
    await register(fake, vol, role="volunteer", phone=False)
    row = _db(bot_process).execute("SELECT * FROM members WHERE tg_user_id = ?", (vol.id,)).fetchone()
    assert row["phone"] is None and row["is_volunteer"] == 1
    # Editing: /start again, now as both with a phone.
    await register(fake, vol, role="both", area="Building 9")
    row = _db(bot_process).execute("SELECT * FROM members WHERE tg_user_id = ?", (vol.id,)).fetchone()
    assert row["is_resident"] == 1 and row["address"] == "Building 9" and row["phone"]
    # Staff and organisations.
    await make_staff(fake, admin, vol, group)
    assert _db(bot_process).execute("SELECT is_staff FROM members WHERE tg_user_id = ?", (vol.id,)).fetchone()[0] == 1
    await fake.send_text(vol, None, "/org new City Bank")
    msg = await fake.wait_for_message(vol, timeout=10)
    code = _db(bot_process).execute("SELECT invite_code FROM organisations").fetchone()[0]
    assert code in msg.text
    # Registering through the organisation's invite ends by naming the organisation joined.
    tob = fake.add_user("烟草张", language_code="zh-hans")
    await register(fake, tob, role="volunteer", phone=False, start=f"/start org_{code}")
    done = fake.bot_messages(fake.private_chat(tob))[-1]
    assert done.text == "注册好了，您已加入“City Bank”。欢迎您，烟草张！", done.text
    other = fake.add_user("Jun", language_code="zh-hans")
    await register(fake, other, role="volunteer")
    await fake.send_text(other, None, "/join wrongcode")
    msg = await fake.wait_for_message(other, timeout=10)
    assert "邀请码" in msg.text
    assert _db(bot_process).execute("SELECT organisation_id FROM members WHERE tg_user_id = ?", (other.id,)).fetchone()[0] is None
    await fake.send_text(other, None, f"/start org_{code}")
    msg = await fake.wait_for_message(other, timeout=10)
    assert "City Bank" in msg.text
    assert _db(bot_process).execute("SELECT organisation_id FROM members WHERE tg_user_id = ?", (other.id,)).fetchone()[0] == 1
    # Choosing an organisation by button.
    await fake.send_text(vol, None, "/org")
    msg = await fake.wait_for_message(vol, timeout=10)
    await fake.press_button(vol, msg, text="City Bank")
    await fake.wait_for_message(vol, lambda m: "joined" in (m.text or ""), timeout=10, after_id=msg.message_id)
    assert _db(bot_process).execute("SELECT organisation_id FROM members WHERE tg_user_id = ?", (vol.id,)).fetchone()[0] == 1
    # A little ledger history, then /deleteme keeps totals.
    conn = _db(bot_process)
    mid = conn.execute("SELECT id FROM members WHERE tg_user_id = ?", (other.id,)).fetchone()[0]
    database = await open_database(bot_process.database, migrate=False)
    try:
        async with database.transaction() as wconn:
            await ledger.credit(wconn, member_id=mid, amount=5, reason="adjust", key="test:1", now=datetime.now(UTC))
    finally:
        await database.close()
    total = _db(bot_process).execute("SELECT SUM(delta), COUNT(*) FROM ledger").fetchone()
    # Erasing from the profile's button (the texts point there, not to /deleteme).
    mark = max((m.message_id for m in fake.bot_messages(fake.private_chat(other))), default=0)
    await fake.press_reply_button(other, None, "👤 我的资料")
    prof = await fake.wait_for_message(other, lambda m: "要修改或删除，请按下面的按钮。" in (m.text or ""),
                                       timeout=10, after_id=mark)
    assert [b["text"] for b in prof.inline_buttons] == ["✏ 修改资料", "🗑 删除我的资料"]
    assert not re.search(r"/[a-z]", prof.text or ""), prof.text
    await fake.press_button(other, prof, "pf:erase")
    msg = await fake.wait_for_message(other, lambda m: m.carries("d:confirm:yes"), timeout=10, after_id=mark)
    await fake.press_button(other, msg, "d:confirm:yes")
    await fake.wait_for_message(other, lambda m: "删除" in (m.text or ""), timeout=10, after_id=msg.message_id)
    row = _db(bot_process).execute("SELECT * FROM members WHERE id = ?", (mid,)).fetchone()
    assert row["tg_user_id"] is None and row["display_name"] is None and row["phone"] is None and row["address"] is None
    assert tuple(_db(bot_process).execute("SELECT SUM(delta), COUNT(*) FROM ledger").fetchone()) == tuple(total)
    assert row["balance"] == 5
    dump = "\n".join(_db(bot_process).iterdump())
    assert "Jun" not in dump.replace("Jun'", "")  # no trace of the name (audit details carry ids only)
    await settle(fake)
    assert fake.errors == []


async def test_a_member_of_one_community_cannot_slip_into_another(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """Found by an exploratory review: a staff member of A who opened B's registration link became
    B's staff (and took A's points along). Now they are told how to move, and nothing changes."""
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin, title="A volunteers", name="Garden A")
    await setup_community(fake, admin, title="B volunteers", name="Garden B")
    sam = fake.add_user("Sam", language_code="en")
    await register(fake, sam, role="both", community="Garden A")
    conn = _db(bot_process)
    a_id, b_code = conn.execute("SELECT id FROM communities WHERE name = 'Garden A'").fetchone()[0], conn.execute(
        "SELECT join_code FROM communities WHERE name = 'Garden B'").fetchone()[0]
    conn.execute("UPDATE members SET is_staff = 1 WHERE tg_user_id = ?", (sam.id,))
    conn.commit()
    before = tuple(conn.execute("SELECT community_id, is_staff, display_name FROM members WHERE tg_user_id = ?",
                                (sam.id,)).fetchone())
    text = await say(fake, sam, f"/start join_{b_code}", "One Telegram account belongs to one community")
    assert "Garden A" in text and "Garden B" in text and "🗑 Erase my data" in text
    after = tuple(_db(bot_process).execute("SELECT community_id, is_staff, display_name FROM members"
                                           " WHERE tg_user_id = ?", (sam.id,)).fetchone())
    assert after == before and before[0] == a_id
    assert _db(bot_process).execute("SELECT COUNT(*) FROM dialogs WHERE tg_user_id = ?", (sam.id,)).fetchone()[0] == 0
    assert fake.errors == []


async def test_a_resident_may_skip_the_phone_in_her_own_words(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """Found by an exploratory review: "不想给" at the phone step was answered "do not type the
    number", with no way on. Now a resident may skip (typed or with the button)."""
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    gran = fake.add_user("奶奶", language_code="zh-hans")
    await fake.send_text(gran, None, "/start")
    for data in ("d:lang:zh", "d:role:resident"):
        msg = await fake.wait_for_message(gran, lambda m, d=data: m.carries(d), timeout=10)
        await fake.press_button(gran, msg, data)
    await fake.wait_for_message(gran, lambda m: "称呼" in (m.text or ""), timeout=10)
    await say(fake, gran, "王奶奶", "跳过")               # the phone question offers 跳过
    await say(fake, gran, "我不会弄", "跳过")              # no number typed: pointed at both buttons
    await say(fake, gran, "不想给", "楼")                  # skipped: on to the area question
    row = _db(bot_process).execute("SELECT step, data FROM dialogs WHERE tg_user_id = ?", (gran.id,)).fetchone()
    assert row["step"] == "area" and '"phone": null' in row["data"]


async def test_language_is_chosen_not_flipped(fake: FakeTelegram, bot_process: BotProcess) -> None:
    """Found by an exploratory review: the language button switched at once, so a mistaken tap left
    a Chinese-speaking resident in English. Now it asks, showing the current choice."""
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    gran = fake.add_user("奶奶", language_code="zh-hans")
    await register(fake, gran, role="resident")
    # editing her profile, she leaves through the menu: told that the changes were not kept
    await say(fake, gran, "/start", "语言")
    await say(fake, gran, "⭐ 我的积分", "没有保存")
    await say(fake, gran, "🌐 中文 / English", "请选择语言")
    picker = fake.bot_messages(fake.private_chat(gran))[-1]
    assert [b["text"] for b in picker.inline_buttons] == ["✅ 中文", "English"]
    assert _db(bot_process).execute("SELECT language FROM members WHERE tg_user_id = ?", (gran.id,)).fetchone()[0] == "zh"
    await fake.press_button(gran, picker, "lg:en")
    done = await fake.wait_for_message(gran, lambda m: "English" in (m.text or "") and bool(m.keyboard_buttons),
                                       timeout=10, after_id=picker.message_id)
    assert "My points" in str(done.keyboard_buttons) or "Ask for help" in str(done.keyboard_buttons)
    assert _db(bot_process).execute("SELECT language FROM members WHERE tg_user_id = ?", (gran.id,)).fetchone()[0] == "en"
    await say(fake, gran, "/language zh", "中文")
    assert _db(bot_process).execute("SELECT language FROM members WHERE tg_user_id = ?", (gran.id,)).fetchone()[0] == "zh"


async def test_setup_asks_the_one_who_set_it_up_to_register_in_plain_words(fake: FakeTelegram,
                                                                            bot_process: BotProcess) -> None:
    """Found in the stories: "设置本群的人就是工作人员：请也按"注册"…" read like a translation."""
    admin = fake.add_user("周主任", language_code="zh-hans", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    note = await fake.wait_for_message(group, lambda m: "工作人员" in (m.text or ""), timeout=10)
    assert note.text == ("您设置了这个群，就是这里的工作人员。请您也点“注册”，"
                         "这样居民反映的问题、等您审核的求助才能发给您。"), note.text


def _menu(fake: FakeTelegram, user: object) -> list[list[str]]:
    """The rows of the main menu the person sees last (the latest reply keyboard in their chat)."""
    shown = [m for m in fake.bot_messages(fake.private_chat(user)) if m.keyboard_buttons]
    assert shown
    return [[str(b["text"] if isinstance(b, dict) else b) for b in row] for row in (shown[-1].markup or {})["keyboard"]]


async def test_settings_is_a_menu_button_and_the_leaderboard_hides_a_name_with_one_tap(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    """Residents and volunteers were told to send /settings and "/leaderboard hide": the menu has
    ⚙ 设置 (one more row at most), and the leaderboard its own hide/show button."""
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    await setup_community(fake, admin)
    vol, gran = fake.add_user("小王", language_code="zh-hans"), fake.add_user("郭奶奶", language_code="zh-hans")
    await register(fake, vol, role="volunteer")
    await register(fake, gran, role="resident")
    # Without it a volunteer had nine buttons (five rows), a resident six (three rows): one more row at most.
    for person, most in ((vol, 5), (gran, 4)):
        rows = _menu(fake, person)
        assert any("⚙ 设置" in row for row in rows), rows
        assert len(rows) <= most, rows
        mark = max(m.message_id for m in fake.private_chat(person).messages)
        await fake.press_reply_button(person, None, "⚙ 设置")
        view = await fake.wait_for_message(person, lambda m: "提醒和每日简报" in str(m.text or ""), timeout=10,
                                           after_id=mark)
        assert any(b.get("callback_data") == "st:lb:1" for b in view.inline_buttons)

    mark = max(m.message_id for m in fake.private_chat(vol).messages)
    await fake.send_text(vol, None, "/leaderboard")
    board = await fake.wait_for_message(vol, lambda m: "🏆" in str(m.text or ""), timeout=10, after_id=mark)
    assert "/leaderboard" not in str(board.text)
    hide = next(b for b in board.inline_buttons if b.get("text") == "🙈 不显示我的名字")
    answer = await fake.wait_callback_answer(await fake.press_button(vol, board, hide["callback_data"]), timeout=10)
    assert answer.get("text") == "您的名字已在排行榜上隐藏。", answer
    await fake.wait_for(lambda: any(b.get("text") == "👁 显示我的名字" for b in board.inline_buttons), timeout=10)
    with _db(bot_process) as conn:
        assert conn.execute("SELECT leaderboard_opt_out FROM members WHERE tg_user_id = ?", (vol.id,)).fetchone()[0] == 1
    show = next(b for b in board.inline_buttons if b.get("text") == "👁 显示我的名字")
    await fake.wait_callback_answer(await fake.press_button(vol, board, show["callback_data"]), timeout=10)
    await fake.wait_for(lambda: any(b.get("text") == "🙈 不显示我的名字" for b in board.inline_buttons), timeout=10)
    with _db(bot_process) as conn:
        assert conn.execute("SELECT leaderboard_opt_out FROM members WHERE tg_user_id = ?", (vol.id,)).fetchone()[0] == 0
    await settle(fake)
    assert not fake.errors, fake.errors


async def test_a_community_set_up_keeps_the_configured_time_zone(fake: FakeTelegram, tmp_path: Path) -> None:
    """BOT_TIMEZONE is the zone a new community starts with (it was Asia/Shanghai, the column's default,
    whatever the setting)."""
    proc = BotProcess(fake, str(tmp_path / "bot.db"), admins=(ADMIN_ID,), log_path=str(tmp_path / "bot.log"),
                      env={"BOT_TIMEZONE": "Europe/Berlin"})
    await proc.start()
    try:
        admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
        await setup_community(fake, admin, title="Lindenhof volunteers", name="Lindenhof")
        with _db(proc) as conn:
            assert [tuple(r) for r in conn.execute("SELECT name, timezone FROM communities")] == [
                ("Lindenhof", "Europe/Berlin")]
    finally:
        await proc.stop()
