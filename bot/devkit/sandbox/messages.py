"""What bots do to messages: send (text, media, albums, copies, forwards), edit, delete, pin.

One layer of the Telegram stand-in (the layers: bot/devkit/sandbox/server.py).
"""

from __future__ import annotations

import contextlib
import copy
import secrets
import time
from typing import Any

from bot.devkit.sandbox.core import _NOT_MODIFIED, Handler
from bot.devkit.sandbox.spec import ApiError, bad_request
from bot.devkit.sandbox.state import BotAccount, Chat, StoredMessage
from bot.devkit.sandbox.updates import UpdateDelivery

__all__ = ["BotMessages"]


class BotMessages(UpdateDelivery):
    """What bots do to messages: send (text, media, albums, copies, forwards), edit, delete, pin."""

    async def _send_message(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(bot, params["chat_id"])
        content = self._text_content(params)
        return self._bot_message(bot, chat, content, params).to_dict()

    def _media_sender(self, kind: str) -> Handler:
        async def handler(bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
            chat = self._writable_chat(bot, params["chat_id"])
            record = self._resolve_input_file(params[kind], kind)
            content: dict[str, Any] = {kind: self._media_object(record, kind, params)}
            content.update(self._text_content(params, "caption"))
            if params.get("has_spoiler"):
                content["has_media_spoiler"] = True
            return self._bot_message(bot, chat, content, params).to_dict()

        return handler

    async def _send_contact(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(bot, params["chat_id"])
        contact = {k: params[k] for k in ("phone_number", "first_name", "last_name", "vcard") if k in params}
        return self._bot_message(bot, chat, {"contact": contact}, params).to_dict()

    async def _send_location(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(bot, params["chat_id"])
        location = {"latitude": params["latitude"], "longitude": params["longitude"]}
        for key in ("horizontal_accuracy", "live_period", "heading"):
            if key in params:
                location[key] = params[key]
        return self._bot_message(bot, chat, {"location": location}, params).to_dict()

    async def _send_media_group(self, bot: BotAccount, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat = self._writable_chat(bot, params["chat_id"])
        media = params["media"]
        if not 2 <= len(media) <= 10:
            raise bad_request("wrong number of media specified; must be 2-10")
        group_id = str(10_000_000_000 + secrets.randbelow(10**9))
        uploads = {}
        results = []
        for item in media:
            kind = item["type"]
            source = item["media"]
            if isinstance(source, str) and source.startswith("attach://"):
                raise bad_request(f"file {source} not found in the request")
            uploads[id(item)] = self._resolve_input_file(source, kind)
        for index, item in enumerate(media):
            kind = item["type"]
            record = uploads[id(item)]
            content: dict[str, Any] = {kind: self._media_object(record, kind, item), "media_group_id": group_id}
            content.update(self._text_content(item, "caption"))
            message = self._bot_message(bot, chat, content, params if index == 0 else {})
            results.append(message.to_dict())
        return results

    def _source_message(self, bot: BotAccount, params: dict[str, Any], verb: str) -> StoredMessage:
        source_chat = self._readable_chat(bot, params["from_chat_id"])
        message = source_chat.find(params["message_id"])
        if message is None or message.deleted or message.service:
            raise bad_request(f"message to {verb} not found")
        return message

    async def _copy_message(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(bot, params["chat_id"])
        source = self._source_message(bot, params, "copy")
        skip = {"message_id", "from", "chat", "date", "edit_date", "reply_to_message", "reply_markup",
                "forward_origin", "media_group_id"}
        content = {k: copy.deepcopy(v) for k, v in source.data.items() if k not in skip}
        if "caption" in params:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._text_content(params, "caption"))
        message = self._bot_message(bot, chat, content, params)
        return {"message_id": message.message_id}

    async def _forward_message(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(bot, params["chat_id"])
        source = self._source_message(bot, params, "forward")
        skip = {"message_id", "from", "chat", "date", "edit_date", "reply_to_message", "forward_origin"}
        content = {k: copy.deepcopy(v) for k, v in source.data.items() if k not in skip}
        if source.sender.is_bot or source.chat.type == "private":
            origin: dict[str, Any] = {"type": "user", "date": source.data["date"], "sender_user": source.sender.to_dict()}
        else:
            origin = {"type": "user", "date": source.data["date"], "sender_user": source.sender.to_dict()}
        content["forward_origin"] = origin
        message = self._store(chat, bot.user, content, markup=source.markup if "inline_keyboard" in (source.markup or {}) else None)
        return message.to_dict()

    def _editable(self, bot: BotAccount, params: dict[str, Any]) -> StoredMessage:
        if params.get("inline_message_id"):
            raise bad_request("message to edit not found")
        if "chat_id" not in params or "message_id" not in params:
            raise bad_request("message identifier is not specified")
        chat = self._readable_chat(bot, params["chat_id"])
        message = chat.find(params["message_id"])
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if message.sender.id != bot.id or message.service:
            raise bad_request("message can't be edited")
        return message

    def _apply_edit(self, message: StoredMessage, content: dict[str, Any], markup: dict[str, Any] | None) -> dict[str, Any]:
        current = {k: message.data.get(k) for k in content}
        old_markup = message.data.get("reply_markup")
        new_markup = markup if markup and "inline_keyboard" in markup else None
        if current == content and old_markup == new_markup:
            raise bad_request(_NOT_MODIFIED)
        message.edits.append(copy.deepcopy(message.data))
        for key, value in content.items():
            if value is None:
                message.data.pop(key, None)
            else:
                message.data[key] = value
        if new_markup is None:
            message.data.pop("reply_markup", None)
            message.markup = None
        else:
            message.data["reply_markup"] = copy.deepcopy(new_markup)
            message.markup = copy.deepcopy(new_markup)
        message.edit_date = time.time()
        message.data["edit_date"] = int(message.edit_date)
        self._touch()
        return message.to_dict()

    async def _edit_text(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable(bot, params)
        if "text" not in message.data:
            raise bad_request("there is no text in the message to edit")
        parsed = self._text_content(params)
        content = {"text": parsed["text"], "entities": parsed.get("entities")}
        if params.get("link_preview_options"):
            content["link_preview_options"] = params["link_preview_options"]
        return self._apply_edit(message, content, params.get("reply_markup"))

    async def _edit_caption(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable(bot, params)
        if not any(k in message.data for k in ("photo", "document", "voice", "audio", "video", "animation")):
            raise bad_request("there is no caption in the message to edit")
        parsed = self._text_content(params, "caption") if params.get("caption") else {}
        content = {"caption": parsed.get("caption"), "caption_entities": parsed.get("caption_entities")}
        return self._apply_edit(message, content, params.get("reply_markup"))

    async def _edit_markup(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable(bot, params)
        return self._apply_edit(message, {}, params.get("reply_markup"))

    def _deletable(self, bot: BotAccount, chat: Chat, message_id: int) -> StoredMessage:
        message = chat.find(message_id)
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        if chat.is_group and message.sender.id != bot.id and chat.members.get(bot.id) not in {"administrator", "creator"}:
            raise bad_request("message can't be deleted")
        return message

    async def _delete_message(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        chat = self._readable_chat(bot, params["chat_id"])
        message = self._deletable(bot, chat, params["message_id"])
        message.deleted = True
        return True

    async def _delete_messages(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        chat = self._readable_chat(bot, params["chat_id"])
        for message_id in params["message_ids"]:
            with contextlib.suppress(ApiError):
                self._deletable(bot, chat, message_id).deleted = True
        return True

    def _pinnable(self, bot: BotAccount, params: dict[str, Any]) -> Chat:
        chat = self._writable_chat(bot, params["chat_id"])
        if chat.is_group and chat.members.get(bot.id) not in {"administrator", "creator"}:
            raise bad_request("not enough rights to manage pinned messages in the chat")
        return chat

    async def _pin(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        chat = self._pinnable(bot, params)
        message = chat.find(params["message_id"])
        if message is None or message.deleted:
            raise bad_request("message to pin not found")
        message.pinned = True
        if chat.is_group:
            pinned = copy.deepcopy(message.data)
            pinned.pop("reply_to_message", None)
            self._store(chat, bot.user, {"pinned_message": pinned}, service=True)
        return True

    async def _unpin(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        chat = self._pinnable(bot, params)
        message_id = params.get("message_id")
        pinned = [m for m in chat.messages if m.pinned and (message_id is None or m.message_id == message_id)]
        if message_id is not None and not pinned:
            raise bad_request("message to unpin not found")
        if message_id is None and pinned:
            pinned = [pinned[-1]]
        for message in pinned:
            message.pinned = False
        return True

    async def _unpin_all(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        chat = self._pinnable(bot, params)
        for message in chat.messages:
            message.pinned = False
        return True

    async def _send_chat_action(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        chat = self._writable_chat(bot, params["chat_id"])
        chat.actions.append(params["action"])
        return True
