"""What people do, as a Telegram app would send it: write, share, press buttons, block the bot,
add it to groups.

One layer of the Telegram stand-in (the layers: bot/devkit/sandbox/server.py).
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from typing import Any

from bot.devkit.sandbox.callbacks import CallbackQueries
from bot.devkit.sandbox.core import ChatRef, MessageRef, _auto_entities
from bot.devkit.sandbox.state import (
    BotAccount,
    CallbackRecord,
    Chat,
    PressRefused,
    SandboxError,
    StoredMessage,
    User,
    button_named,
)

__all__ = ["People"]


class People(CallbackQueries):
    """What people do, as a Telegram app would send it: write, share, press buttons, block the bot,
    add it to groups."""

    def add_member(self, group: Chat, user: User, status: str = "member", *, announce: bool = True) -> None:
        """A person joins a group (emits a new_chat_members service message)."""
        self._set_member(group, user, status)
        if announce:
            self._user_message(user, group, {"new_chat_members": [user.to_dict()]}, service=True)

    def _user_message(
        self,
        user: User,
        chat: ChatRef,
        content: dict[str, Any],
        *,
        reply_to: MessageRef | None = None,
        bot: BotAccount | str | None = None,
        service: bool = False,
    ) -> StoredMessage:
        account = self._bot(bot)
        if chat is None or (isinstance(chat, User) and chat.id == user.id):
            target = self.private_chat(user, account, create=True)
            assert target is not None
            if user.id in account.blocked_by:
                self.unblock_bot(user, account)
        else:
            target = self.chat(chat, account)
        if target.is_group:
            if target.migrated_to is not None:
                raise SandboxError(f"group {target.id} was migrated to {target.migrated_to}")
            if target.members.get(user.id) not in {"member", "administrator", "creator", None} or (
                user.id not in target.members and not service
            ):
                raise SandboxError(f"{user.first_name} is not a member of {target.title!r}")
        replied = self._message(reply_to, target) if reply_to is not None else None
        message = self._store(target, user, content, reply_to=replied, service=service)
        self._last_user_message[target.id] = message.message_id
        if target.type == "private":
            self._deliver(account, target, message)
        else:
            for other in self.bots.values():
                self._deliver(other, target, message)
        self._touch()
        return message

    async def send_text(
        self,
        user: User,
        chat: ChatRef = None,
        text: str = "",
        reply_to: MessageRef | None = None,
        *,
        bot: BotAccount | str | None = None,
    ) -> StoredMessage:
        """``user`` writes ``text`` in ``chat`` (None or the user = private chat with the bot)."""
        if not text:
            raise SandboxError("a person cannot send an empty message")
        content: dict[str, Any] = {"text": text}
        entities = _auto_entities(text)
        if entities:
            content["entities"] = entities
        return self._user_message(user, chat, content, reply_to=reply_to, bot=bot)

    async def send_contact(
        self,
        user: User,
        chat: ChatRef = None,
        phone_number: str | None = None,
        own: bool = True,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        bot: BotAccount | str | None = None,
    ) -> StoredMessage:
        """Share a contact; with ``own=True`` it is the user's own (as from a request_contact button)."""
        contact: dict[str, Any] = {
            "phone_number": phone_number or user.phone_number or "+8613800000000",
            "first_name": first_name or (user.first_name if own else "Contact"),
        }
        surname = last_name if last_name is not None else (user.last_name if own else None)
        if surname:
            contact["last_name"] = surname
        if own:
            contact["user_id"] = user.id
        return self._user_message(user, chat, {"contact": contact}, bot=bot)

    async def send_location(
        self,
        user: User,
        chat: ChatRef = None,
        latitude: float = 31.2304,
        longitude: float = 121.4737,
        *,
        bot: BotAccount | str | None = None,
    ) -> StoredMessage:
        return self._user_message(user, chat, {"location": {"latitude": latitude, "longitude": longitude}}, bot=bot)

    async def _send_file(
        self,
        user: User,
        chat: ChatRef,
        kind: str,
        data: bytes,
        *,
        caption: str | None = None,
        mime_type: str | None = None,
        file_name: str | None = None,
        extra: dict[str, Any] | None = None,
        bot: BotAccount | str | None = None,
    ) -> StoredMessage:
        record = self.store_file(data, kind, mime_type=mime_type, file_name=file_name)
        content: dict[str, Any] = {kind: self._media_object(record, kind, extra or {})}
        if caption:
            content["caption"] = caption
            entities = _auto_entities(caption)
            if entities:
                content["caption_entities"] = entities
        return self._user_message(user, chat, content, bot=bot)

    async def send_voice(
        self,
        user: User,
        chat: ChatRef = None,
        duration: int = 5,
        data: bytes = b"OggS\x00fake-voice",
        *,
        bot: BotAccount | str | None = None,
    ) -> StoredMessage:
        return await self._send_file(user, chat, "voice", data, mime_type="audio/ogg", extra={"duration": duration}, bot=bot)

    async def send_photo(
        self,
        user: User,
        chat: ChatRef = None,
        data: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
        caption: str | None = None,
        *,
        bot: BotAccount | str | None = None,
    ) -> StoredMessage:
        return await self._send_file(user, chat, "photo", data, caption=caption, bot=bot)

    async def send_document(
        self,
        user: User,
        chat: ChatRef = None,
        data: bytes = b"hello",
        file_name: str = "file.txt",
        mime_type: str = "text/plain",
        caption: str | None = None,
        *,
        bot: BotAccount | str | None = None,
    ) -> StoredMessage:
        return await self._send_file(
            user, chat, "document", data, caption=caption, mime_type=mime_type, file_name=file_name, bot=bot
        )

    async def send_sticker(
        self,
        user: User,
        chat: ChatRef = None,
        emoji: str = "👍",
        data: bytes = b"RIFFfake-webp",
        *,
        bot: BotAccount | str | None = None,
    ) -> StoredMessage:
        return await self._send_file(user, chat, "sticker", data, mime_type="image/webp", extra={"emoji": emoji}, bot=bot)

    async def edit_text(self, user: User, message: MessageRef, text: str) -> StoredMessage:
        """The user edits one of their own text messages (emits edited_message)."""
        stored = self._message(message)
        if stored.sender.id != user.id:
            raise SandboxError("people can only edit their own messages")
        stored.edits.append(copy.deepcopy(stored.data))
        stored.data["text"] = text
        entities = _auto_entities(text)
        if entities:
            stored.data["entities"] = entities
        else:
            stored.data.pop("entities", None)
        stored.edit_date = time.time()
        stored.data["edit_date"] = int(stored.edit_date)
        for account in self.bots.values():
            self._deliver(account, stored.chat, stored, kind="edited_message")
        self._touch()
        return stored

    async def press_button(
        self,
        user: User,
        message: MessageRef,
        callback_data: str | None = None,
        *,
        text: str | None = None,
        bot: BotAccount | str | None = None,
    ) -> str:
        """Press an inline button (by callback_data or label), as a Telegram app does; returns the
        callback query id. Like Telegram's servers, refuses (``PressRefused``, ``DATA_INVALID``) data
        that no button of that message carries, and a press on a deleted message
        (``MESSAGE_ID_INVALID``). ``press_raw_callback`` and ``inject_callback`` forge presses.

        A Linli dialog button (``d:<step>:<value>~<mark>``) may be named without its dialog's mark,
        which a test cannot know: the button so named on this message is pressed, with its data as
        it is shown (a button of another dialog is not on this message and is refused as usual)."""
        stored = self._message(message)
        if stored.deleted:
            raise PressRefused("MESSAGE_ID_INVALID", f"message {stored.message_id} was deleted")
        for button in stored.inline_buttons:
            if "callback_data" not in button:
                continue
            if (callback_data is None or button_named(str(button["callback_data"]), callback_data)) and (
                text is None or button["text"] == text
            ):
                return self._callback(user, stored, button["callback_data"], bot)
        shown = [(b["text"], b.get("callback_data")) for b in stored.inline_buttons]
        raise PressRefused(
            "DATA_INVALID",
            f"no inline button with callback_data={callback_data!r} text={text!r} on message "
            f"{stored.message_id}; buttons: {shown}",
        )

    async def press_raw_callback(
        self, user: User, message: MessageRef, data: str, *, bot: BotAccount | str | None = None
    ) -> str:
        """A forged press, as a modified app could send were Telegram's check to let it through:
        arbitrary data on any stored message (another chat's too, a deleted one too); the update
        carries that message as it is stored, as Telegram would send it."""
        return self._callback(user, self._message(message), data, bot)

    async def inject_callback(
        self,
        user: User,
        data: str | None,
        *,
        message: dict[str, Any] | None = None,
        inline_message_id: str | None = None,
        bot: BotAccount | str | None = None,
    ) -> str:
        """A raw callback query update, nothing checked: ``message`` is any Message JSON (or none),
        ``inline_message_id`` a press on an inline message. Answers are recorded as usual."""
        account = self._bot(bot)
        query_id = str(secrets.randbits(62))
        self.callbacks[query_id] = CallbackRecord(
            id=query_id, bot_id=account.id, user=user, message=None, data=data or "",
            created=asyncio.get_running_loop().time(),
        )
        payload: dict[str, Any] = {"id": query_id, "from": user.to_dict(),
                                   "chat_instance": str(secrets.randbits(60))}
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        if inline_message_id is not None:
            payload["inline_message_id"] = inline_message_id
        if data is not None:
            payload["data"] = data
        self._enqueue(account, "callback_query", payload)
        return query_id

    def _callback(self, user: User, message: StoredMessage, data: str, bot: BotAccount | str | None) -> str:
        account = self._bot(bot) if bot is not None else self._bot_for_message(message)
        query_id = str(secrets.randbits(62))
        label = next((b["text"] for b in message.inline_buttons if b.get("callback_data") == data), None)
        record = CallbackRecord(
            id=query_id, bot_id=account.id, user=user, message=message, data=data,
            created=asyncio.get_running_loop().time(), label=label,
        )
        self.callbacks[query_id] = record
        chat_instance = str(abs(hash((account.id, message.chat.id))) % 10**18)
        payload = {
            "id": query_id,
            "from": user.to_dict(),
            "message": copy.deepcopy(message.data),
            "chat_instance": chat_instance,
            "data": data,
        }
        self._enqueue(account, "callback_query", payload)
        return query_id

    async def press_reply_button(
        self, user: User, chat: ChatRef = None, text: str = "", *, bot: BotAccount | str | None = None
    ) -> StoredMessage:
        """Press a button of the latest reply keyboard shown in ``chat``."""
        account = self._bot(bot)
        target = self.chat(chat if chat is not None else user, account)
        keyboard = target.reply_keyboard
        if not keyboard:
            raise SandboxError(f"no reply keyboard is shown in chat {target.id}")
        for row in keyboard["keyboard"]:
            for button in row:
                if button["text"] != text:
                    continue
                if button.get("request_contact"):
                    message = await self.send_contact(user, target, own=True, bot=account)
                elif button.get("request_location"):
                    message = await self.send_location(user, target, bot=account)
                else:
                    message = await self.send_text(user, target, text, bot=account)
                if keyboard.get("one_time_keyboard"):
                    target.reply_keyboard = None
                return message
        labels = [b["text"] for row in keyboard["keyboard"] for b in row]
        raise SandboxError(f"no reply button {text!r} in chat {target.id}; buttons: {labels}")

    def block_bot(self, user: User, bot: BotAccount | str | None = None) -> None:
        account = self._bot(bot)
        if user.id in account.blocked_by:
            return
        account.blocked_by.add(user.id)
        chat = self.private_chat(user, account)
        if chat is not None:
            self._emit_my_chat_member(account, chat, user, "member", "kicked")

    def unblock_bot(self, user: User, bot: BotAccount | str | None = None) -> None:
        account = self._bot(bot)
        if user.id not in account.blocked_by:
            return
        account.blocked_by.discard(user.id)
        chat = self.private_chat(user, account)
        if chat is not None:
            self._emit_my_chat_member(account, chat, user, "kicked", "member")

    async def add_bot_to_group(
        self, group: Chat, added_by: User, *, bot: BotAccount | str | None = None, admin: bool = False
    ) -> StoredMessage:
        account = self._bot(bot)
        old = group.members.get(account.id, "left")
        new = "administrator" if admin else "member"
        group.members[account.id] = new
        group.member_users[account.id] = account.user
        self._emit_my_chat_member(account, group, added_by, old, new)
        content = {"new_chat_members": [account.user.to_dict()], "new_chat_member": account.user.to_dict(),
                   "new_chat_participant": account.user.to_dict()}
        return self._user_message(added_by, group, content, service=True, bot=account)

    async def remove_bot_from_group(
        self, group: Chat, removed_by: User | None = None, *, kicked: bool = True, bot: BotAccount | str | None = None
    ) -> None:
        account = self._bot(bot)
        actor = removed_by or next(
            (group.member_users[uid] for uid, s in group.members.items() if s == "creator"), account.user
        )
        old = group.members.get(account.id, "left")
        new = "kicked" if kicked else "left"
        group.members[account.id] = new
        self._emit_my_chat_member(account, group, actor, old, new)
        self._store(group, actor, {"left_chat_member": account.user.to_dict()}, service=True)

    async def set_bot_admin(self, group: Chat, admin: bool = True, *, bot: BotAccount | str | None = None) -> None:
        account = self._bot(bot)
        old = group.members.get(account.id, "left")
        new = "administrator" if admin else "member"
        group.members[account.id] = new
        actor = next((group.member_users[uid] for uid, s in group.members.items() if s == "creator"), account.user)
        self._emit_my_chat_member(account, group, actor, old, new)

    async def migrate_group(self, group: Chat) -> Chat:
        """Upgrade a basic group to a supergroup; returns the new chat."""
        if group.type != "group":
            raise SandboxError("only basic groups can be migrated")
        new_id = -(1_000_000_000_000 + abs(group.id))
        creator = next((group.member_users[uid] for uid, s in group.members.items() if s == "creator"), None)
        actor = creator or next(iter(u for u in group.member_users.values() if not u.is_bot))
        supergroup = Chat(
            id=new_id, type="supergroup", title=group.title, members=dict(group.members),
            member_users=dict(group.member_users), migrated_from=group.id,
        )
        self.groups[new_id] = supergroup
        self._user_message(actor, group, {"migrate_to_chat_id": new_id}, service=True)
        group.migrated_to = new_id
        migrated = self._store(supergroup, actor, {"migrate_from_chat_id": group.id}, service=True)
        migrated.data["sender_chat"] = group.to_dict()
        for account in self.bots.values():
            self._deliver(account, supergroup, migrated)
        self._touch()
        return supergroup
