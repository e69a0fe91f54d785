"""The webhook behind the real nginx (deploy/nginx-linli.conf, one-instance variant): the stand-in
posts each update to nginx with the secret-token header, nginx passes it to the one bot process in
webhook mode; a resident's request is claimed by a volunteer that way, and a post with a wrong
secret is refused and handled by nobody."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.devkit.harness import BotProcess
from bot.devkit.sandbox import FakeTelegram
from tests.conftest import ADMIN_ID
from tests.e2e.people import ask_for_help, register, setup_community
from tests.nginx import Nginx, free_port, nginx_binary, render

T = 15
SECRET = "a-long-random-secret_123"


@pytest.fixture
async def behind_nginx(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[int]:
    """nginx on a loopback port in front of one bot in webhook mode; the port nginx listens on."""
    binary = nginx_binary()
    front, back = free_port(), free_port()
    server = Nginx(binary, render(tmp_path / "nginx", listen=front, upstreams=[back]), front)
    await server.start()
    proc = BotProcess(fake, str(tmp_path / "bot.db"), admins=(ADMIN_ID,), log_path=str(tmp_path / "bot.log"),
                      env={"BOT_WEBHOOK_URL": f"http://127.0.0.1:{front}/telegram", "BOT_WEBHOOK_SECRET": SECRET,
                           "BOT_WEBHOOK_LISTEN": f"127.0.0.1:{back}"})
    try:
        await proc.start()
        yield front
    finally:
        await proc.stop()
        server.stop()


def _has(m: Any, prefix: str) -> bool:
    return any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


async def test_a_request_is_claimed_through_nginx(fake: FakeTelegram, behind_nginx: int) -> None:
    front = behind_nginx
    bot = next(iter(fake.bots.values()))
    assert bot.webhook_url == f"http://127.0.0.1:{front}/telegram" and bot.webhook_secret == SECRET
    admin = fake.add_user("Admin", language_code="en", user_id=ADMIN_ID)
    group = await setup_community(fake, admin)
    resident, volunteer = fake.add_user("Zhou", language_code="en"), fake.add_user("Li", language_code="en")
    await register(fake, resident, "resident")
    await register(fake, volunteer, "volunteer")
    for user in (resident, volunteer):
        if user.id not in group.members:
            fake.add_member(group, user, announce=False)
    await ask_for_help(fake, resident, "Please buy rice and eggs")
    card = await fake.wait_for_message(group, lambda m: _has(m, "cl:"), timeout=T, after_id=0)
    data = next(str(b["callback_data"]) for b in card.inline_buttons if str(b.get("callback_data", "")).startswith("cl:"))
    query = await fake.press_raw_callback(volunteer, card, data)
    assert "You have claimed" in str((await fake.wait_callback_answer(query, timeout=T)).get("text"))
    assert fake.stats.webhook_deliveries > 0
    assert not [c for c in fake.calls if c.method == "getUpdates"]
    assert "Wrong response from the webhook" not in str(bot.webhook_last_error)


async def test_a_wrong_secret_is_refused(fake: FakeTelegram, behind_nginx: int) -> None:
    front = behind_nginx
    user = fake.add_user("Ann", language_code="en")
    chat = fake.private_chat(user, create=True)
    update = {"update_id": 987_654_321, "message": {
        "message_id": 1, "date": 1_780_000_000, "text": "/myid",
        "from": {"id": user.id, "is_bot": False, "first_name": "Ann", "language_code": "en"},
        "chat": {"id": chat.id, "type": "private", "first_name": "Ann"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}
    url = f"http://127.0.0.1:{front}/telegram"
    async with aiohttp.ClientSession() as http:
        for headers in ({"X-Telegram-Bot-Api-Secret-Token": "not-the-secret"}, {}):
            async with http.post(url, data=json.dumps(update), headers={"Content-Type": "application/json", **headers}) as resp:
                assert resp.status == 403, resp.status
        async with http.get(url) as resp:                     # only POST reaches the bot
            assert resp.status == 403
        async with http.post(f"http://127.0.0.1:{front}/elsewhere", data="{}") as resp:
            assert resp.status == 404
        # the same update with the right secret is handled: so the refusals above were the secret's doing
        async with http.post(url, data=json.dumps(update), headers={"Content-Type": "application/json",
                                                                    "X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
            assert resp.status == 200
    reply = await fake.wait_for_message(user, timeout=T)
    assert f"Your Telegram user id is {user.id}." in str(reply.text)
    assert len([m for m in fake.bot_messages(chat) if "Telegram user id" in str(m.text)]) == 1
