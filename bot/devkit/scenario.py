"""Drive the REAL flows of the bot process through the stand-in, as people would (demo and tests).

Stable signatures (other features' end-to-end tests use them):

- ``await setup_community(fake, admin_user, title="Sunshine volunteers", name="Sunshine Garden") -> Chat``:
  a group created by ``admin_user`` (use ``tests.conftest.ADMIN_ID``), the bot added, ``/setup <name>``
  sent; waits for the welcome with the Register button. The admin becomes staff (still unregistered).
- ``await register(fake, user, role="volunteer", area="Building 3", phone=True, community=None)``:
  the private /start dialog to the end (language from the user's language_code, typed area).
  ``role``: "resident" | "volunteer" | "both"; ``phone=False`` skips the phone (by typing "跳过"/"Skip").
- ``await ask_for_help(fake, user, text, category="shopping")``: the resident's /request dialog to Submit.
- ``await make_staff(fake, admin_user, user, group)``: a registered ``user`` says hello in ``group``
  and ``admin_user`` (super-admin or staff) replies ``/staff add`` to it.
"""

from __future__ import annotations

from typing import Any

from bot.devkit.harness import settle
from bot.devkit.sandbox import FakeTelegram
from bot.i18n import translator

TIMEOUT = 30  # seconds for one answer: only a failing run waits this long, and a busy machine needs room


async def setup_community(fake: FakeTelegram, admin_user: Any, title: str = "Sunshine volunteers", name: str = "Sunshine Garden") -> Any:
    group = fake.add_group(title, creator=admin_user)
    await fake.add_bot_to_group(group, admin_user, admin=True)
    await fake.send_text(admin_user, group, f"/setup {name}")
    welcome = await fake.wait_for_message(group, lambda m: any("url" in b for b in m.inline_buttons), timeout=TIMEOUT)
    assert "start=join_" in welcome.inline_buttons[0]["url"]
    await settle(fake, quiet=0.3)
    return group


def _last(fake: FakeTelegram, user: Any) -> int:
    chat = fake.private_chat(user)
    return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0


async def _dialog_message(fake: FakeTelegram, user: Any, prefix: str, after: int) -> Any:
    return await fake.wait_for_message(
        user, lambda m: any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons),
        timeout=TIMEOUT, after_id=after,
    )


async def register(
    fake: FakeTelegram, user: Any, role: str = "volunteer", area: str = "Building 3", phone: bool = True, community: str | None = None,
    start: str = "/start",
) -> None:
    lang = "en" if (user.language_code or "").startswith("en") else "zh"
    mark = _last(fake, user)
    await fake.send_text(user, None, start)  # "/start org_CODE": through an organisation's invite
    if community is not None:
        msg = await _dialog_message(fake, user, "d:community:", mark)
        mark = _last(fake, user)
        await fake.press_button(user, msg, text=community)
    msg = await _dialog_message(fake, user, "d:lang:", mark)
    mark = _last(fake, user)
    await fake.press_button(user, msg, f"d:lang:{lang}")
    msg = await _dialog_message(fake, user, "d:role:", mark)
    mark = _last(fake, user)
    await fake.press_button(user, msg, f"d:role:{role}")
    await fake.wait_for_message(user, timeout=TIMEOUT, after_id=mark)
    mark = _last(fake, user)
    await fake.send_text(user, None, user.first_name)
    if phone:
        await fake.wait_for_message(user, lambda m: bool(m.keyboard_buttons), timeout=TIMEOUT, after_id=mark)
        mark = _last(fake, user)
        await fake.send_contact(user, None)
    else:
        await fake.wait_for_message(user, lambda m: bool(m.keyboard_buttons), timeout=TIMEOUT, after_id=mark)
        mark = _last(fake, user)
        await fake.send_text(user, None, translator(lang)("Skip"))
    await fake.wait_for_message(user, lambda m: "area" in (m.text or "").lower() or "楼" in (m.text or ""),
                                timeout=TIMEOUT, after_id=mark)
    mark = _last(fake, user)
    await fake.send_text(user, None, area)
    if role in ("volunteer", "both"):
        msg = await _dialog_message(fake, user, "d:skills:", mark)
        mark = _last(fake, user)
        await fake.press_button(user, msg, "d:skills:-done")
        msg = await _dialog_message(fake, user, "d:avail:", mark)
        mark = _last(fake, user)
        await fake.press_button(user, msg, "d:avail:skip")
    msg = await _dialog_message(fake, user, "d:consent:", mark)
    mark = _last(fake, user)
    await fake.press_button(user, msg, "d:consent:yes")
    done = await fake.wait_for_message(user, timeout=TIMEOUT, after_id=mark)
    assert "d:" not in str(done.reply_markup), done.text
    await settle(fake, quiet=0.3)


async def make_staff(fake: FakeTelegram, admin_user: Any, user: Any, group: Any) -> None:
    """``user`` (registered) writes in ``group``; ``admin_user`` replies to it with /staff add."""
    if user.id not in group.members:
        fake.add_member(group, user, announce=False)
    hello = await fake.send_text(user, group, "Hello everyone")
    await fake.send_text(admin_user, group, "/staff add", reply_to=hello)
    msg = await fake.wait_for_message(group, timeout=TIMEOUT)
    assert "staff" in (msg.text or "") or "工作人员" in (msg.text or ""), msg.text
    await settle(fake, quiet=0.3)


def _buttons_start(m: Any, prefix: str) -> bool:
    return any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


async def _press_then(fake: FakeTelegram, user: Any, msg: Any, data: str, next_prefix: str | None) -> Any:
    """Press a dialog button; the next question either replaces that message or comes as a new one."""
    mark = _last(fake, user)
    query = await fake.press_button(user, msg, data)
    await fake.wait_callback_answer(query, timeout=TIMEOUT)

    def find() -> Any:
        if next_prefix is None:
            return True
        if _buttons_start(msg, next_prefix):
            return msg
        chat = fake.private_chat(user)
        if chat is None:
            return None
        return next((m for m in chat.messages if m.message_id > mark and m.from_bot and _buttons_start(m, next_prefix)), None)

    return await fake.wait_for(find, timeout=TIMEOUT)


async def ask_for_help(fake: FakeTelegram, user: Any, text: str, category: str = "shopping") -> None:
    """A registered resident asks for help with the menu's dialog: category, text, as soon as
    possible, at home, one helper, Submit."""
    mark = _last(fake, user)
    await fake.send_text(user, None, "/request")
    msg = await fake.wait_for_message(user, lambda m: _buttons_start(m, "d:cat:"), timeout=TIMEOUT, after_id=mark)
    await _press_then(fake, user, msg, f"d:cat:{category}", None)
    await settle(fake, quiet=0.3)
    mark = _last(fake, user)
    await fake.send_text(user, None, text)
    msg = await fake.wait_for_message(user, lambda m: _buttons_start(m, "d:when:"), timeout=TIMEOUT, after_id=mark)
    msg = await _press_then(fake, user, msg, "d:when:asap", "d:where:")
    msg = await _press_then(fake, user, msg, "d:where:home", "d:helpers:")
    msg = await _press_then(fake, user, msg, "d:helpers:1", "d:confirm:")
    await _press_then(fake, user, msg, "d:confirm:submit", None)
    await settle(fake, quiet=0.3)
