"""/deleteme through the real bot process: a resident and a volunteer go through a request, a
claim from the group card, Done with a note and a photo, Not done and Problem with reasons; each
then erases themselves, and the bot's database (every cell, and the file's bytes) holds nothing of
them but the request's text as the group saw it, masked."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from tests.conftest import ADMIN_ID
from tests.e2e.people import register, setup_community

T = 10
R_NAME, R_PHONE, R_HOME = "Rosalind Quince", "+8613912345678", "Plum Court 7 Flat 1203"
R_PLACE = "Quince Tower Gate 5 Room 88"
R_TEXT = "Eggs please, ring Rosalind Quince on 13912345678"
R_NOT_DONE, R_PROBLEM = "Zebrafinch came without the eggs", "Marmalade jar broken on the stairs"
V_NAME, V_PHONE, V_HOME = "Victor Wobblesworth", "+8613887654321", "Hazel Row 9 Room 4"
V_NOTE, V_CAPTION = "Left at the door with Gooseberry", "Photo of Persimmon porch"


def _has(prefix: str) -> Any:
    return lambda m: any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


def _mark(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


async def _press(fake: FakeTelegram, user: Any, msg: Any, data: str, expect: Any) -> Any:
    """Press a button; return the next message (new, or that one edited) that ``expect`` accepts."""
    mark = _mark(fake, user)
    before = (msg.text, repr(msg.inline_buttons))
    q = await fake.press_button(user, msg, data)
    await fake.wait_callback_answer(q, timeout=T)

    def find() -> Any:
        if (msg.text, repr(msg.inline_buttons)) != before and expect(msg):
            return msg
        chat = fake.private_chat(user)
        return next((m for m in chat.messages if m.message_id > mark and m.from_bot and expect(m)), None)

    return await fake.wait_for(find, timeout=T)


async def _say(fake: FakeTelegram, user: Any, text: str, expect: Any) -> Any:
    mark = _mark(fake, user)
    await fake.send_text(user, None, text)
    return await fake.wait_for_message(user, expect, timeout=T, after_id=mark)


def _cells(path: str) -> list[tuple[str, str, Any]]:
    conn = sqlite3.connect(path)
    try:
        out = []
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            for row in conn.execute(f"SELECT * FROM {table}"):
                out += list(zip([table] * len(cols), cols, row, strict=True))
        return out
    finally:
        conn.close()


def _leftovers(path: str, tg: int, markers: list[str], photo_ids: list[str]) -> list[tuple[str, str, str]]:
    found = []
    needles = [*markers, *photo_ids, str(tg)]
    for table, col, value in _cells(path):
        if value == tg:
            found.append((table, col, str(tg)))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            continue
        allowed_text = (table, col) in (("tasks", "title"), ("tasks", "description"))
        for n in needles:
            if n in value and not (allowed_text and n == "Eggs please, ring"):
                found.append((table, col, n))
    return found


def _raw(path: str, needles: list[str]) -> list[str]:
    data = b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if Path(p).exists())
    return [n for n in needles if n.encode() in data]


async def _deleteme(fake: FakeTelegram, user: Any) -> None:
    msg = await _say(fake, user, "/deleteme", _has("d:confirm:"))
    await _press(fake, user, msg, "d:confirm:yes", lambda m: "erased" in (m.text or ""))
    await settle(fake)


@pytest.mark.unpaced  # erasure, not pacing, is the point
async def test_deleteme_leaves_nothing_of_a_resident_or_a_volunteer(fake: FakeTelegram, bot_process: BotProcess) -> None:
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    fake.private_chat(admin, create=True)
    res = fake.add_user(R_NAME, language_code="en", phone_number=R_PHONE)
    vol = fake.add_user(V_NAME, language_code="en", phone_number=V_PHONE)
    fake.add_member(group, vol, announce=False)
    await register(fake, res, role="resident", area=R_HOME)
    await register(fake, vol, role="volunteer", area=V_HOME)
    # A request with a typed place.
    msg = await _say(fake, res, "/request", _has("d:cat:"))
    await _press(fake, res, msg, "d:cat:shopping", lambda m: "what you need" in (m.text or ""))
    msg = await _say(fake, res, R_TEXT, _has("d:when:"))
    msg = await _press(fake, res, msg, "d:when:asap", _has("d:where:"))
    await _press(fake, res, msg, "d:where:other", lambda m: "type the address" in (m.text or ""))
    msg = await _say(fake, res, R_PLACE, _has("d:helpers:"))
    msg = await _press(fake, res, msg, "d:helpers:1", _has("d:confirm:"))
    await _press(fake, res, msg, "d:confirm:submit", lambda m: "request is sent" in (m.text or ""))
    conn = sqlite3.connect(bot_process.database)
    tid, address = conn.execute("SELECT id, address FROM tasks").fetchone()
    conn.close()
    assert address == R_PLACE
    # The volunteer claims from the group card, does it, and adds a note and a photo.
    card = await fake.wait_for_message(group, _has(f"cl:{tid}"), timeout=T, after_id=0)
    q = await fake.press_button(vol, card, f"cl:{tid}")
    await fake.wait_callback_answer(q, timeout=T)
    done = await fake.wait_for_message(vol, _has(f"done:{tid}"), timeout=T, after_id=0)
    await _press(fake, vol, done, f"done:{tid}", _has("d:note:"))
    await _say(fake, vol, V_NOTE, lambda m: True)
    ask = await fake.wait_for_message(res, _has(f"cf:{tid}:n"), timeout=T, after_id=0)
    # Not done, with a reason; done again, with a photo; then a problem, with a reason.
    await _press(fake, res, ask, f"cf:{tid}:n", _has("d:reason:"))
    await _say(fake, res, R_NOT_DONE, lambda m: True)
    await fake.wait_for_message(vol, lambda m: R_NOT_DONE in (m.text or ""), timeout=T, after_id=0)
    again = await fake.wait_for_message(vol, _has(f"done:{tid}"), timeout=T, after_id=done.message_id)
    await _press(fake, vol, again, f"done:{tid}", _has("d:note:"))
    mark = _mark(fake, vol)
    await fake.send_photo(vol, None, caption=V_CAPTION)
    await fake.wait_for_message(vol, timeout=T, after_id=mark)
    ask2 = await fake.wait_for_message(res, _has(f"cf:{tid}:p"), timeout=T, after_id=ask.message_id)
    await _press(fake, res, ask2, f"cf:{tid}:p", _has("d:reason:"))
    await _say(fake, res, R_PROBLEM, lambda m: True)
    # A second request, by voice; he claims it too: its details and her voice note reach his chat.
    msg = await _say(fake, res, "/request", _has("d:cat:"))
    await _press(fake, res, msg, "d:cat:shopping", lambda m: "what you need" in (m.text or ""))
    mark = _mark(fake, res)
    await fake.send_voice(res, None, duration=6)
    msg = await fake.wait_for_message(res, _has("d:when:"), timeout=T, after_id=mark)
    msg = await _press(fake, res, msg, "d:when:asap", _has("d:where:"))
    msg = await _press(fake, res, msg, "d:where:home", _has("d:helpers:"))
    msg = await _press(fake, res, msg, "d:helpers:1", _has("d:confirm:"))
    await _press(fake, res, msg, "d:confirm:submit", lambda m: "request is sent" in (m.text or ""))
    vtid = sqlite3.connect(bot_process.database).execute("SELECT MAX(id) FROM tasks").fetchone()[0]
    card = await fake.wait_for_message(group, _has(f"cl:{vtid}"), timeout=T, after_id=0)
    q = await fake.press_button(vol, card, f"cl:{vtid}")
    await fake.wait_callback_answer(q, timeout=T)
    details = await fake.wait_for_message(vol, _has(f"done:{vtid}"), timeout=T, after_id=0)
    voice = await fake.wait_for_message(vol, lambda m: "voice" in m.data, timeout=T, after_id=details.message_id)
    assert R_NAME in (details.text or "") and R_HOME in (details.text or "") and R_PHONE[3:] in (details.text or "")
    await settle(fake)
    assert sqlite3.connect(bot_process.database).execute("SELECT reason FROM cases").fetchone()[0] == R_PROBLEM
    photo_ids = [str(r[0]) for r in sqlite3.connect(bot_process.database).execute(
        "SELECT done_photo_file_id FROM claims WHERE done_photo_file_id IS NOT NULL")]
    assert photo_ids

    r_markers = [R_NAME, R_PHONE[3:], R_HOME, R_PLACE, R_NOT_DONE, R_PROBLEM, R_TEXT]
    v_markers = [V_NAME, V_PHONE[3:], V_HOME, V_NOTE, V_CAPTION]
    assert len(_leftovers(bot_process.database, res.id, r_markers, [])) > 10
    assert len(_leftovers(bot_process.database, vol.id, v_markers, photo_ids)) > 10
    total = sqlite3.connect(bot_process.database).execute("SELECT COUNT(*), COALESCE(SUM(delta), 0) FROM ledger").fetchone()

    await _deleteme(fake, vol)
    # His chat keeps one line where each task's details were (the one he held, given back when he
    # left, and the one he did); her voice note is deleted. Then nothing of him is left.
    gone = "The personal details in this message were removed when you left."
    await fake.wait_for(lambda: done.text == gone and details.text == gone and voice.deleted, timeout=T)
    assert done.markup is None and details.markup is None
    assert not [m for m in fake.private_chat(vol).messages if not m.deleted
                and (R_NAME in str(m.data) or R_HOME in str(m.data) or R_PHONE[3:] in str(m.data))]
    await fake.wait_for(lambda: not _leftovers(bot_process.database, vol.id, v_markers, photo_ids), timeout=T)
    assert _raw(bot_process.database, [*v_markers, *photo_ids, str(vol.id)]) == []
    await _deleteme(fake, res)
    # Her request's text stays only as the group saw it (masked); nothing else of her anywhere.
    leftovers = _leftovers(bot_process.database, res.id, r_markers, [])
    assert leftovers == [], leftovers
    raw_needles = [R_NAME, R_PHONE[3:], R_HOME, R_PLACE, R_NOT_DONE, R_PROBLEM, str(res.id)]
    assert _raw(bot_process.database, raw_needles) == []
    conn = sqlite3.connect(bot_process.database)
    description = conn.execute("SELECT description FROM tasks WHERE id = ?", (tid,)).fetchone()[0]
    assert description.startswith("Eggs please, ring ***") and "13912345678" not in description
    assert conn.execute("SELECT COUNT(*), COALESCE(SUM(delta), 0) FROM ledger").fetchone() == total
    conn.close()
    assert fake.errors == []
