"""Updates: queued per bot, handed out by getUpdates (long polling) or posted to a webhook, and
confirmed by the next offset or the webhook's 2xx.

One layer of the Telegram stand-in (the layers: bot/devkit/sandbox/server.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from typing import Any

import aiohttp

from bot.devkit.sandbox.core import _utf16_slice
from bot.devkit.sandbox.files import FileStore
from bot.devkit.sandbox.spec import ApiError, bad_request
from bot.devkit.sandbox.state import DEFAULT_ALLOWED, BotAccount, Chat, SandboxError, StoredMessage, User

__all__ = ["UpdateDelivery"]


class UpdateDelivery(FileStore):
    """Updates: queued per bot, handed out by getUpdates (long polling) or posted to a webhook, and
    confirmed by the next offset or the webhook's 2xx."""

    def _enqueue(self, bot: BotAccount, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if kind not in bot.allowed_updates:
            return None
        update_id = bot.next_update_id
        update: dict[str, Any] = {"update_id": update_id, kind: copy.deepcopy(payload)}
        bot.next_update_id += 1
        bot.history[update_id] = update
        bot.pending.append(update)
        if self._duplicate:
            twin = copy.deepcopy(update)
            bot.pending.append(twin)
            bot.sticky.append(twin)
        bot.notify()
        self._kick_webhook(bot)
        self._touch()
        return update

    def redeliver(self, update_id: int, bot: BotAccount | str | None = None) -> dict[str, Any]:
        """Queue an already-delivered update again, with the same update_id and content."""
        account = self._bot(bot)
        update = account.history.get(update_id)
        if update is None:
            raise SandboxError(f"no update {update_id}")
        again = copy.deepcopy(update)
        account.pending.append(again)
        account.sticky.append(again)
        account.pending.sort(key=lambda u: u["update_id"])
        account.notify()
        self._kick_webhook(account)
        return again

    def pending_updates(self, bot: BotAccount | str | None = None) -> list[dict[str, Any]]:
        return copy.deepcopy(self._bot(bot).pending)

    def _drop_confirmed(self, bot: BotAccount, offset: int | None) -> None:
        """A getUpdates offset confirms every update before it (a negative one keeps the last few)."""
        if offset is not None and offset > 0:
            self._confirm(bot, min(offset - 1, bot.next_update_id - 1))
        if offset is not None:
            if offset < 0:
                bot.pending = bot.pending[offset:]
            else:
                bot.pending = [
                    u for u in bot.pending if u["update_id"] >= offset or any(u is s for s in bot.sticky)
                ]

    async def _wait_for_updates(self, bot: BotAccount, timeout: float, generation: int) -> None:
        """The long poll: until an update is pending, the timeout passes, or another poll or a webhook
        takes over (Telegram ends the older request with a 409)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not bot.pending:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            event = bot.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
            if self._stopping:
                break
            if bot.poll_generation != generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                )
            if bot.webhook_url:
                break

    async def _get_updates(self, bot: BotAccount, params: dict[str, Any]) -> list[dict[str, Any]]:
        if bot.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
        if "allowed_updates" in params:
            allowed = params["allowed_updates"]
            bot.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        self._drop_confirmed(bot, params.get("offset"))
        limit = params.get("limit") or 100
        if not 1 <= limit <= 100:
            limit = 100
        timeout = float(params.get("timeout") or 0)
        bot.last_poll = asyncio.get_running_loop().time()
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.notify()  # wakes (and terminates) an earlier concurrent long poll
        await self._wait_for_updates(bot, timeout, generation)
        batch = bot.pending[:limit]
        bot.sticky = [s for s in bot.sticky if not any(s is u for u in batch)]
        return copy.deepcopy(batch)

    def _confirm(self, bot: BotAccount, update_id: int) -> None:
        if update_id <= bot.confirmed:
            return
        bot.confirmed = update_id
        for callback in list(self.on_confirmed):
            callback(bot, update_id)
        self._touch()

    async def _set_webhook(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        url = params["url"]
        if url and not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        bot.webhook_url = url
        bot.webhook_secret = params.get("secret_token")
        if "allowed_updates" in params:
            allowed = params["allowed_updates"]
            bot.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        if params.get("drop_pending_updates"):
            bot.pending.clear()
        bot.notify()
        self._kick_webhook(bot)
        return True

    async def _delete_webhook(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        bot.webhook_url = ""
        bot.webhook_secret = None
        if params.get("drop_pending_updates"):
            bot.pending.clear()
        task = self._webhook_tasks.pop(bot.id, None)
        if task is not None:
            task.cancel()
        return True

    async def _get_webhook_info(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": bot.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(bot.pending),
        }
        if bot.webhook_url:
            info["max_connections"] = 40
            info["ip_address"] = "127.0.0.1"
            if bot.allowed_updates != DEFAULT_ALLOWED:
                info["allowed_updates"] = sorted(bot.allowed_updates)
        if bot.webhook_last_error:
            info["last_error_date"] = bot.webhook_last_error_date
            info["last_error_message"] = bot.webhook_last_error
        return info

    def _kick_webhook(self, bot: BotAccount) -> None:
        if not bot.webhook_url or self._runner is None:
            return
        task = self._webhook_tasks.get(bot.id)
        if task is None or task.done():
            self._webhook_tasks[bot.id] = asyncio.get_running_loop().create_task(self._webhook_loop(bot))

    async def _webhook_loop(self, bot: BotAccount) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        while bot.webhook_url and bot.pending:
            update = bot.pending[0]
            headers = {"Content-Type": "application/json"}
            if bot.webhook_secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = bot.webhook_secret
            try:
                async with self._http.post(bot.webhook_url, data=json.dumps(update), headers=headers) as resp:
                    ok = 200 <= resp.status < 300
                    error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                ok = False
                error = f"Connection failed: {exc.__class__.__name__}"
            if ok:
                self._confirm(bot, int(update["update_id"]))
                self.stats.webhook_deliveries += 1
                if bot.pending and bot.pending[0] is update:
                    bot.pending.pop(0)
                bot.sticky = [s for s in bot.sticky if s is not update]
                self._touch()
            else:
                bot.webhook_last_error = error
                bot.webhook_last_error_date = int(time.time())
                await asyncio.sleep(self.webhook_retry_delay)

    def _deliver(self, bot: BotAccount, chat: Chat, message: StoredMessage, *, kind: str = "message") -> None:
        if chat.type == "private":
            if chat.bot_id == bot.id:
                self._enqueue(bot, kind, message.data)
            return
        status = chat.members.get(bot.id)
        if status not in {"member", "administrator", "creator"}:
            return
        if self._bot_sees(bot, chat, message):
            self._enqueue(bot, kind, message.data)

    def _bot_sees(self, bot: BotAccount, chat: Chat, message: StoredMessage) -> bool:
        if not bot.privacy_mode or chat.members.get(bot.id) in {"administrator", "creator"}:
            return True
        if message.service:
            return True
        data = message.data
        reply = data.get("reply_to_message")
        if reply and reply.get("from", {}).get("id") == bot.id:
            return True
        text = data.get("text") or data.get("caption") or ""
        for entity in data.get("entities") or data.get("caption_entities") or []:
            body = _utf16_slice(text, entity["offset"], entity["length"])
            if entity["type"] == "bot_command" and entity["offset"] == 0:
                target = body.split("@", 1)[1] if "@" in body else None
                if target is None or target.lower() == bot.username.lower():
                    return True
            if entity["type"] == "mention" and body[1:].lower() == bot.username.lower():
                return True
        return False

    def _emit_my_chat_member(self, bot: BotAccount, chat: Chat, actor: User, old: str, new: str) -> None:
        payload = {
            "chat": chat.to_dict(),
            "from": actor.to_dict(),
            "date": int(time.time()),
            "old_chat_member": self._member_dict(chat, bot.user, old),
            "new_chat_member": self._member_dict(chat, bot.user, new),
        }
        self._enqueue(bot, "my_chat_member", payload)
