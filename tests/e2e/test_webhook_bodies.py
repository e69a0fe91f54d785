"""What the bot in webhook mode answers to each kind of body posted to its port (bot/webhook.py).

The real bot process runs in webhook mode against the stand-in; the tests post to its webhook port
themselves. An update python-telegram-bot cannot read used to be answered 400, so Telegram
delivered it again for ever (holding back the updates after it), and its whole content was logged;
now it is reduced to its id as long polling does: stored, answered 200, handled once, logged once
with its id and nothing of its content. A body that is not a Telegram update (not JSON, not an
object, no update_id) is refused with 400 and stores nothing; an oversize one is refused before it
is read; a wrong or missing secret stays 403."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.webhook import MAX_BODY
from tests.e2e.people import send_unreadable_poll
from tests.nginx import free_port

T = 15
SECRET = "s3cret-token_for-the-hook"
JSON = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}


class Hook:
    """The bot in webhook mode: its URL, its database file and its log."""

    def __init__(self, proc: BotProcess, url: str, db: Path) -> None:
        self.proc, self.url, self.db = proc, url, db

    async def post(self, body: str | bytes, headers: dict[str, str] | None = None) -> int:
        async with aiohttp.ClientSession() as http, \
                http.post(self.url, data=body, headers=JSON if headers is None else headers) as resp:
            return resp.status

    def rows(self, update_id: int) -> list[tuple[str, str]]:
        """(status, payload) of the inbox rows of ``update_id``."""
        with closing(sqlite3.connect(self.db)) as conn:
            return conn.execute("SELECT status, payload FROM inbox WHERE update_id = ?", (update_id,)).fetchall()

    def count(self) -> int:
        with closing(sqlite3.connect(self.db)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])

    async def wait_rows(self, update_id: int, done: Callable[[list[tuple[str, str]]], bool]) -> list[tuple[str, str]]:
        deadline = time.monotonic() + T * 4
        rows = self.rows(update_id)
        while not done(rows) and time.monotonic() < deadline:
            await settle(self.proc.server, quiet=0.2)
            rows = self.rows(update_id)
        return rows


@pytest.fixture
async def hook(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[Hook]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    proc = BotProcess(fake, str(tmp_path / "hook.db"), log_path=str(tmp_path / "hook.log"),
                      env={"BOT_WEBHOOK_URL": url, "BOT_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
                           "BOT_WEBHOOK_SECRET": SECRET})
    await proc.start()
    try:
        yield Hook(proc, url, tmp_path / "hook.db")
    finally:
        await proc.stop()


def _myid(fake: FakeTelegram, update_id: int, name: str = "Ann") -> tuple[Any, dict[str, Any]]:
    """A user and a /myid update from them (as Telegram would post it)."""
    user = fake.add_user(name, language_code="en")
    chat = fake.private_chat(user, create=True)
    assert chat is not None
    return user, {"update_id": update_id, "message": {
        "message_id": update_id % 1000 + 1, "date": int(time.time()), "text": "/myid",
        "from": {"id": user.id, "is_bot": False, "first_name": name, "language_code": "en"},
        "chat": {"id": chat.id, "type": "private", "first_name": name},
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}


async def _answered_once(fake: FakeTelegram, user: Any) -> None:
    await fake.wait_for_message(user, lambda m: "Telegram user id" in str(m.text), timeout=T)
    await settle(fake)
    chat = fake.private_chat(user)
    assert len([m for m in fake.bot_messages(chat) if "Telegram user id" in str(m.text)]) == 1


async def test_an_unreadable_update_is_answered_200_handled_once_and_logged_once(
        fake: FakeTelegram, hook: Hook) -> None:
    """A poll shaped as an older Bot API sent it (without the fields 9.6 made required)."""
    _, update = _myid(fake, 555_001, name="Zhang Wei")
    message = update["message"]
    del message["text"], message["entities"]
    message["poll"] = {"id": "5", "question": "Tea or coffee, 13800138000?", "total_voter_count": 0,
                       "options": [{"text": "Tea", "voter_count": 0}], "is_closed": False,
                       "is_anonymous": True, "type": "regular", "allows_multiple_answers": False}
    body = json.dumps(update)
    assert await hook.post(body) == 200           # was 400: Telegram would deliver it again for ever
    assert await hook.post(body) == 200           # a redelivery (its 200 lost on the way)
    rows = await hook.wait_rows(555_001, lambda rs: bool(rs) and rs[0][0] == "handled")
    assert [r[0] for r in rows] == ["handled"], rows
    # the updates after it go on
    other, after = _myid(fake, 555_002, name="Li")
    assert await hook.post(json.dumps(after)) == 200
    await _answered_once(fake, other)
    log = hook.proc.log()
    assert log.count("update 555001 cannot be read") == 1, log[-3000:]
    assert "13800138000" not in log and "Zhang Wei" not in log and "Tea or coffee" not in log, log[-3000:]


async def test_the_updates_behind_an_unreadable_one_are_not_held_back(fake: FakeTelegram, hook: Hook) -> None:
    """The stand-in delivers as Telegram does: the first pending update again until it gets a 2xx."""
    user = fake.add_user("Wang", language_code="en")
    fake.private_chat(user, create=True)
    send_unreadable_poll(fake, user)
    start = await fake.send_text(user, None, "/start")
    await fake.wait_for_message(user, lambda m: "Linli" in str(m.text), timeout=T, after_id=start.message_id)
    assert fake.bot.webhook_last_error is None, fake.bot.webhook_last_error
    assert hook.proc.log().count("cannot be read") == 1


async def test_a_redelivered_update_is_handled_once(fake: FakeTelegram, hook: Hook) -> None:
    user, update = _myid(fake, 555_010)
    for _ in range(3):
        assert await hook.post(json.dumps(update)) == 200
    await _answered_once(fake, user)
    assert [r[0] for r in hook.rows(555_010)] == ["handled"]


async def test_new_fields_and_an_unknown_kind_of_update_are_taken(fake: FakeTelegram, hook: Hook) -> None:
    """A newer Bot API: a field python-telegram-bot does not know yet, an update of a new kind."""
    user, update = _myid(fake, 555_020)
    update["message"]["a_field_from_the_future"] = {"x": 1}
    assert await hook.post(json.dumps(update)) == 200
    await _answered_once(fake, user)
    assert await hook.post(json.dumps({"update_id": 555_021, "a_kind_from_the_future": {"id": 1}})) == 200
    rows = await hook.wait_rows(555_021, lambda rs: bool(rs) and rs[0][0] == "handled")
    assert [r[0] for r in rows] == ["handled"]


@pytest.mark.parametrize("body", [
    "this is not JSON {", b"\xff\xfe not even text", "[1, 2, 3]", '"update"', "17", "null",
    '{"message": {"text": "no id, Zhang Wei"}}', '{"update_id": "555030"}', '{"update_id": true}'])
async def test_a_body_that_is_not_a_telegram_update_is_refused_and_stores_nothing(
        fake: FakeTelegram, hook: Hook, body: str | bytes) -> None:
    before = hook.count()
    assert await hook.post(body) == 400           # not JSON was 500
    assert hook.count() == before
    log = hook.proc.log()
    assert "not a Telegram update" in log and "Zhang Wei" not in log, log[-3000:]


async def test_an_oversize_body_is_refused_before_it_is_read(fake: FakeTelegram, hook: Hook) -> None:
    user, update = _myid(fake, 555_040)
    update["message"]["padding"] = "x" * MAX_BODY   # was taken (and answered) whatever its size
    try:
        status = await hook.post(json.dumps(update))
    except aiohttp.ClientError:                  # closed while the body was still on its way
        status = 400
    assert status == 400
    assert hook.rows(555_040) == []
    # the bot goes on
    user, update = _myid(fake, 555_041, name="Li")
    assert await hook.post(json.dumps(update)) == 200
    await _answered_once(fake, user)


async def test_a_wrong_or_missing_secret_is_refused(fake: FakeTelegram, hook: Hook) -> None:
    user, update = _myid(fake, 555_050)
    body = json.dumps(update)
    for headers in ({**JSON, "X-Telegram-Bot-Api-Secret-Token": "not-the-secret"},
                    {"Content-Type": "application/json"}, {"X-Telegram-Bot-Api-Secret-Token": SECRET}):
        assert await hook.post(body, headers) == 403
    assert await hook.post("not JSON", {"Content-Type": "application/json"}) == 403  # the secret first
    assert hook.rows(555_050) == []
    assert await hook.post(body) == 200
    await _answered_once(fake, user)


def test_a_python_telegram_bot_without_the_app_class_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rather than serve with python-telegram-bot's own handler (400 to an unreadable update): one line."""
    from types import SimpleNamespace

    from telegram.ext import _updater

    from bot import cli

    monkeypatch.delattr(_updater, "WebhookAppClass")
    line = cli._install_webhook(SimpleNamespace(webhook_url="https://bot.example.org/telegram"))  # type: ignore[arg-type]
    assert line is not None and "WebhookAppClass" in line
    assert cli._install_webhook(SimpleNamespace(webhook_url=None)) is None  # type: ignore[arg-type]
