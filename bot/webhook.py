"""The webhook's HTTP side (BOT_WEBHOOK_URL set): what the bot answers to each POST.

Telegram posts one update per request and delivers it again, and again, until it gets a 2xx; the
updates behind it wait meanwhile. python-telegram-bot's handler answered 400 to an update it
could not parse (a shape a newer or older Bot API sent), so that update came back for ever and
held the others back; it also logged the whole body (names, phones, addresses) at CRITICAL. Here:

- a wrong or missing ``X-Telegram-Bot-Api-Secret-Token`` (when BOT_WEBHOOK_SECRET is set), or a
  Content-Type other than ``application/json``: 403, as before, and nothing is parsed or stored;
- an update the bot can read: committed to the durable inbox, then 200 (an error storing it: 500,
  and Telegram delivers it again); a redelivery is recognised in the inbox and handled once;
- an update it cannot read: reduced to its id as long polling does (``bot.inbox.read_update``, the
  one home of that rule), stored and handled as an empty update, 200;
- a body that is not a JSON object with an integer ``update_id``: 400, nothing stored. Telegram
  only ever posts updates, each with its id (the Bot API's ``Update.update_id`` is required), so
  such a body is not Telegram's (a test post, a misrouted request) and nothing will deliver it
  again: a 200 would only hide the sender's mistake, and without an id there is nothing to record
  a redelivery against;
- a body over ``MAX_BODY``: refused (400, the connection closed) before it is read whole. Telegram's
  updates are far smaller (a message's text is at most 4096 characters; files stay on Telegram's
  servers), and nginx in front refuses the same size (deploy/nginx-linli.conf).

Nothing of a body's content is logged. python-telegram-bot's Updater builds its web application
from ``telegram.ext._updater.WebhookAppClass``; ``install()`` puts ``InboxWebhookApp`` there (the
process runs one application; tests/e2e/test_webhook_bodies.py fails if that stops working).
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any

import tornado.web
from telegram import Bot
from telegram.ext import ExtBot
from telegram.ext import _updater as ptb_updater
from telegram.ext._utils.webhookhandler import TelegramHandler, WebhookAppClass

from bot.inbox import read_update

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # bytes; nginx's client_max_body_size 1m


def _update_json(body: bytes) -> dict[str, Any] | None:
    """The body as one update's JSON object with an integer ``update_id``, or None."""
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and json's errors both are ValueErrors
        return None
    if not isinstance(data, dict):
        return None
    update_id = data.get("update_id")
    return data if isinstance(update_id, int) and not isinstance(update_id, bool) else None


@tornado.web.stream_request_body
class InboxWebhookHandler(TelegramHandler):
    """python-telegram-bot's handler (its secret and Content-Type checks), reading the body itself."""

    def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self.request.connection.set_max_body_size(MAX_BODY)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    async def post(self) -> None:
        self._validate_post()  # 403: a wrong or missing secret token, or not JSON's Content-Type
        data = _update_json(b"".join(self._chunks))
        if data is None:
            log.warning("webhook: a POST that is not a Telegram update (no JSON object with an update_id)"
                        " was refused (400)")
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST, reason="Not a Telegram update")
        update, _ = read_update(data, self.bot)
        if isinstance(self.bot, ExtBot):
            self.bot.insert_callback_data(update)
        await self.update_queue.put(update)  # returns once the update is committed (bot/inbox.py)
        self.set_status(HTTPStatus.OK)


class InboxWebhookApp(WebhookAppClass):
    """python-telegram-bot's webhook application, with ``InboxWebhookHandler`` at its path."""

    def __init__(self, webhook_path: str, bot: Bot, update_queue: asyncio.Queue[Any],
                 secret_token: str | None = None) -> None:
        self.shared_objects = {"bot": bot, "update_queue": update_queue, "secret_token": secret_token}
        tornado.web.Application.__init__(
            self, [(rf"{webhook_path}/?", InboxWebhookHandler, self.shared_objects)])


def install() -> None:
    """python-telegram-bot's Updater serves the webhook with ``InboxWebhookApp`` from now on. A
    python-telegram-bot that builds its web application some other way stops the start (its own
    handler would answer 400 to an unreadable update again, and log bodies), rather than run so."""
    if not isinstance(getattr(ptb_updater, "WebhookAppClass", None), type):
        raise RuntimeError("python-telegram-bot's Updater has no WebhookAppClass any more: "
                           "bot/webhook.py needs updating for this version")
    setattr(ptb_updater, "WebhookAppClass", InboxWebhookApp)  # noqa: B010 (a module's attribute)
