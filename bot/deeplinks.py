"""``/start <payload>`` routing: features register a payload prefix and its handler.

``t.me/<bot>?start=join_<code>`` (register in a community), ``merchant_<code>`` (a merchant's
invite), ``org_<code>`` (join an organisation), ``v_<code>`` (a voucher's QR code), ...
The /start handler (members) calls ``dispatch`` first; when it returns False, /start goes on
with registration or the profile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Update

from bot.context import LinliContext

PayloadHandler = Callable[[Update, LinliContext, str], Awaitable[None]]
HANDLERS: dict[str, PayloadHandler] = {}


def start_payload(prefix: str) -> Callable[[PayloadHandler], PayloadHandler]:
    """Register ``handler(update, ctx, rest)`` for payloads ``<prefix><rest>``."""

    def deco(fn: PayloadHandler) -> PayloadHandler:
        HANDLERS[prefix] = fn
        return fn

    return deco


def link(bot_username: str, payload: str) -> str:
    """A deep link (payload: letters, digits, _ and -, at most 64 characters)."""
    return f"https://t.me/{bot_username}?start={payload}"


async def dispatch(update: Update, ctx: LinliContext, payload: str) -> bool:
    for prefix in sorted(HANDLERS, key=len, reverse=True):
        if payload.startswith(prefix):
            await HANDLERS[prefix](update, ctx, payload[len(prefix):])
            return True
    return False
