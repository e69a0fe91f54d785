"""Button presses: the answer a bot gives each callback query, once, in time.

One layer of the Telegram stand-in (the layers: bot/devkit/sandbox/server.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.devkit.sandbox.chats import ChatsAndSettings
from bot.devkit.sandbox.core import _CALLBACK_EXPIRED
from bot.devkit.sandbox.spec import bad_request
from bot.devkit.sandbox.state import BotAccount, SandboxError

__all__ = ["CallbackQueries"]


class CallbackQueries(ChatsAndSettings):
    """Button presses: the answer a bot gives each callback query, once, in time."""

    async def _answer_callback(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        record = self.callbacks.get(params["callback_query_id"])
        loop_time = asyncio.get_running_loop().time()
        if (
            record is None
            or record.bot_id != bot.id
            or record.answered
            or loop_time - record.created > self.callback_timeout
        ):
            raise bad_request(_CALLBACK_EXPIRED)
        text = params.get("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answered = True
        record.answer = {
            "text": text,
            "show_alert": bool(params.get("show_alert")),
            "url": params.get("url"),
            "cache_time": params.get("cache_time"),
        }
        record.answered_event.set()
        return True

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """The recorded answer of a callback query (text, show_alert, url), or None."""
        record = self.callbacks.get(query_id)
        if record is None:
            raise SandboxError(f"no callback query {query_id}")
        return record.answer

    async def wait_callback_answer(self, query_id: str, timeout: float = 5) -> dict[str, Any]:
        """Wait for the bot's answer to a callback query (``timeout`` is scaled by ``patience``)."""
        record = self.callbacks.get(query_id)
        if record is None:
            raise SandboxError(f"no callback query {query_id}")
        await asyncio.wait_for(record.answered_event.wait(), timeout * self.patience)
        assert record.answer is not None
        return record.answer
