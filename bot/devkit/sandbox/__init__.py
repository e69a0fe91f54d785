"""A loopback stand-in for the Telegram Bot API, for tests and ``linli demo``.

Typical use::

    server = FakeTelegram()
    bot = server.add_bot(token="123456:TEST", username="linli_test_bot")
    await server.start()
    # run the real bot with base_url=server.base_url, then drive it:
    alice = server.add_user("Alice")
    await server.send_text(alice, None, "/start")
    reply = await server.wait_for_message(alice)
"""

from bot.devkit.sandbox.flood import FloodConfig
from bot.devkit.sandbox.server import FakeTelegram
from bot.devkit.sandbox.spec import ApiError, Spec, Upload, load_spec
from bot.devkit.sandbox.state import (
    ApiCall,
    BotAccount,
    CallbackRecord,
    Chat,
    PressRefused,
    SandboxError,
    Stats,
    StoredMessage,
    User,
)
from bot.devkit.sandbox.transcript import transcript

__all__ = [
    "ApiCall",
    "ApiError",
    "BotAccount",
    "CallbackRecord",
    "Chat",
    "FakeTelegram",
    "FloodConfig",
    "PressRefused",
    "SandboxError",
    "Spec",
    "Stats",
    "StoredMessage",
    "Upload",
    "User",
    "load_spec",
    "transcript",
]
