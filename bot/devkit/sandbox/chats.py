"""What bots ask about chats and members, and their own settings (commands, menu button, names).

One layer of the Telegram stand-in (the layers: bot/devkit/sandbox/server.py).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from bot.devkit.sandbox.core import Handler
from bot.devkit.sandbox.messages import BotMessages
from bot.devkit.sandbox.spec import bad_request
from bot.devkit.sandbox.state import BotAccount

__all__ = ["ChatsAndSettings"]


class ChatsAndSettings(BotMessages):
    """What bots ask about chats and members, and their own settings (commands, menu button, names)."""

    async def _get_chat(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._readable_chat(bot, params["chat_id"])
        info = chat.to_dict()
        info.pop("all_members_are_administrators", None)
        info.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        if chat.migrated_from is not None:
            info["migrated_from_chat_id"] = chat.migrated_from
        pinned = [m for m in chat.messages if m.pinned and not m.deleted]
        if pinned:
            info["pinned_message"] = pinned[-1].to_dict()
        return info

    async def _get_chat_member(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._readable_chat(bot, params["chat_id"])
        user = self.users.get(params["user_id"])
        if user is None:
            raise bad_request("user not found")
        if chat.type == "private":
            status = "member"
            if user.id not in (chat.id, bot.id):
                raise bad_request("user not found")
        else:
            status = chat.members.get(user.id, "left")
        return self._member_dict(chat, user, status)

    async def _get_chat_administrators(self, bot: BotAccount, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat = self._readable_chat(bot, params["chat_id"])
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        return [
            self._member_dict(chat, self.users[uid], status)
            for uid, status in chat.members.items()
            if status in {"creator", "administrator"}
        ]

    async def _get_chat_member_count(self, bot: BotAccount, params: dict[str, Any]) -> int:
        chat = self._readable_chat(bot, params["chat_id"])
        if chat.type == "private":
            return 2
        return sum(1 for status in chat.members.values() if status in {"creator", "administrator", "member", "restricted"})

    async def _leave_chat(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        chat = self._readable_chat(bot, params["chat_id"])
        if chat.type == "private":
            raise bad_request("chat member status can't be changed in private chats")
        old = chat.members.get(bot.id, "left")
        chat.members[bot.id] = "left"
        self._emit_my_chat_member(bot, chat, bot.user, old, "left")
        return True

    @staticmethod
    def _scope_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.get("language_code") or ""

    async def _set_my_commands(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        commands = params["commands"]
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        if commands:
            bot.commands[self._scope_key(params)] = commands
        else:
            bot.commands.pop(self._scope_key(params), None)
        return True

    async def _get_my_commands(self, bot: BotAccount, params: dict[str, Any]) -> list[dict[str, Any]]:
        return copy.deepcopy(bot.commands.get(self._scope_key(params), []))

    async def _delete_my_commands(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        bot.commands.pop(self._scope_key(params), None)
        return True

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = "", bot: BotAccount | str | None = None
    ) -> list[dict[str, Any]]:
        """Commands stored by setMyCommands for a scope and language."""
        return self._bot(bot).commands.get(self._scope_key({"scope": scope, "language_code": language_code}), [])

    async def _set_chat_menu_button(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        chat_id = params.get("chat_id")
        if chat_id is not None:
            self._readable_chat(bot, chat_id)
        bot.menu_buttons[chat_id] = params.get("menu_button") or {"type": "default"}
        return True

    async def _get_chat_menu_button(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        return copy.deepcopy(bot.menu_buttons.get(chat_id) or bot.menu_buttons.get(None) or {"type": "commands"})

    def _text_setter(self, attr: str, field: str) -> Handler:
        async def handler(bot: BotAccount, params: dict[str, Any]) -> bool:
            store: dict[str, str] = getattr(bot, attr)
            value = params.get(field)
            lang = params.get("language_code") or ""
            if value:
                store[lang] = value
            else:
                store.pop(lang, None)
            return True

        return handler

    def _text_getter(self, attr: str, field: str) -> Handler:
        async def handler(bot: BotAccount, params: dict[str, Any]) -> dict[str, str]:
            store: dict[str, str] = getattr(bot, attr)
            lang = params.get("language_code") or ""
            default = bot.user.first_name if field == "name" else ""
            return {field: store.get(lang, store.get("", default))}

        return handler
