"""The stand-in's state and its lookups: bots, people, chats and their members, stored messages,
and the ways tests look at what happened (messages, calls, waits).

One layer of the Telegram stand-in (the layers: bot/devkit/sandbox/server.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from bot.devkit.sandbox.flood import FloodConfig, FloodControl
from bot.devkit.sandbox.html import EntityParseError, parse_text
from bot.devkit.sandbox.spec import ApiError, Spec, Upload, bad_request, load_spec
from bot.devkit.sandbox.state import (
    ApiCall,
    BotAccount,
    CallbackRecord,
    Chat,
    FileRecord,
    SandboxError,
    Stats,
    StoredMessage,
    User,
)

Handler = Callable[[BotAccount, dict[str, Any]], Awaitable[Any]]
ChatRef = Chat | User | int | StoredMessage | None
MessageRef = StoredMessage | dict[str, Any]

_MEDIA_KINDS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendVideo": "video",
    "sendAnimation": "animation",
    "sendSticker": "sticker",
    "sendVideoNote": "video_note",
}
_FILE_DIRS = {
    "photo": ("photos", ".jpg"),
    "document": ("documents", ""),
    "voice": ("voice", ".oga"),
    "audio": ("music", ".mp3"),
    "video": ("videos", ".mp4"),
    "animation": ("animations", ".mp4"),
    "sticker": ("stickers", ".webp"),
    "video_note": ("video_notes", ".mp4"),
}
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
_CALLBACK_EXPIRED = "query is too old and response timeout expired or query ID is invalid"


def _counted(method: str) -> bool:
    return (method.startswith("send") and method != "sendChatAction") or method in {
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "editMessageMedia",
        "editMessageLiveLocation",
    }


def _public(value: Any) -> Any:
    """Parameters as recorded in ``calls``: uploads replaced by a short description."""
    if isinstance(value, Upload):
        return {"upload": value.filename, "size": len(value.data)}
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


PATIENCE_ENV = "LINLI_PATIENCE"
DEFAULT_PATIENCE = 6.0


def default_patience() -> float:
    """How many times longer than its nominal timeout a wait for the bot may last.

    Waits return as soon as what they wait for happens, so a generous limit costs nothing when the
    bot is healthy; it only decides how long a broken test takes to fail. The nominal timeouts
    (``timeout=10``) fit an idle machine; a two-core machine running two test suites at once needs
    several times that, hence the default 6. Set ``LINLI_PATIENCE`` (a number ≥ 1) to change it.
    """
    raw = os.environ.get(PATIENCE_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_PATIENCE
    except ValueError:
        raise SandboxError(f"{PATIENCE_ENV} must be a number, e.g. 6 (got {raw!r})") from None
    return max(1.0, value)


__all__ = ["SandboxCore"]


class SandboxCore:
    """The stand-in's state and its lookups: bots, people, chats and their members, stored messages,
    and the ways tests look at what happened (messages, calls, waits)."""

    def __init__(
        self,
        *,
        strict: bool = True,
        flood_limits: bool = True,
        flood: FloodConfig | None = None,
        callback_timeout: float = 15.0,
        webhook_retry_delay: float = 0.5,
        spec: Spec | None = None,
        patience: float | None = None,
    ) -> None:
        self.strict = strict
        # Every wait for something to happen (wait_for, wait_for_message, wait_callback_answer)
        # lasts up to its timeout times this; None reads LINLI_PATIENCE (see patience()).
        self.patience = patience if patience is not None else default_patience()
        self.flood_limits = flood_limits
        self.flood_config = flood or FloodConfig()
        self.callback_timeout = callback_timeout
        self.webhook_retry_delay = webhook_retry_delay
        self.spec = spec or load_spec()
        self.bots: dict[str, BotAccount] = {}
        self.users: dict[int, User] = {}
        self.groups: dict[int, Chat] = {}
        self.private_chats: dict[tuple[int, int], Chat] = {}
        self.files: dict[str, FileRecord] = {}
        self._files_by_path: dict[str, FileRecord] = {}
        self.callbacks: dict[str, CallbackRecord] = {}
        self.calls: list[ApiCall] = []
        self.errors: list[ApiCall] = []
        self.stats = Stats()
        self.unimplemented: list[ApiCall] = []
        # Called (synchronously, in the stand-in's event loop) with the bot account and the highest
        # update_id just confirmed: by a getUpdates offset, or by a webhook's 2xx answer.
        self.on_confirmed: list[Callable[[BotAccount, int], None]] = []
        self._duplicate = False
        self._stopping = False
        self._next_user_id = 700_000_001
        self._next_group_id = 4_000_001
        self._file_counter = 0
        self._changed = asyncio.Event()
        self._last_user_message: dict[int, int] = {}
        self._runner: web.AppRunner | None = None
        self._site_url = ""
        self._webhook_tasks: dict[int, asyncio.Task[None]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._handlers: dict[str, Handler] = self._build_handlers()

    def _build_handlers(self) -> dict[str, Handler]:
        """The Bot API methods answered, by name (the full table is FakeTelegram's)."""
        return {}

    @property
    def url(self) -> str:
        return self._site_url

    @property
    def base_url(self) -> str:
        return f"{self._site_url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self._site_url}/file/bot"

    def set_flood_limits(self, enabled: bool) -> None:
        self.flood_limits = enabled
        if enabled:
            for bot in self.bots.values():
                bot.flood.reset()

    def duplicate_next_updates(self, enabled: bool = True) -> None:
        """While enabled, every new update is queued twice with the same update_id."""
        self._duplicate = enabled

    def add_bot(
        self,
        token: str = "123456:TEST",
        username: str = "linli_test_bot",
        first_name: str = "Linli",
        *,
        privacy_mode: bool = True,
    ) -> BotAccount:
        bot_id = int(token.split(":", 1)[0])
        user = User(id=bot_id, first_name=first_name, username=username, is_bot=True)
        bot = BotAccount(token=token, user=user, privacy_mode=privacy_mode)
        bot.flood = FloodControl(self.flood_config)
        self.bots[token] = bot
        self.users[bot_id] = user
        return bot

    @property
    def bot(self) -> BotAccount:
        """The first registered bot (the default for every ``bot=None`` argument)."""
        if not self.bots:
            raise SandboxError("no bot registered; call add_bot() first")
        return next(iter(self.bots.values()))

    def _bot(self, bot: BotAccount | str | None) -> BotAccount:
        if bot is None:
            return self.bot
        if isinstance(bot, str):
            return self.bots[bot]
        return bot

    def add_user(
        self,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
        user_id: int | None = None,
        phone_number: str | None = None,
    ) -> User:
        if user_id is None:
            user_id = self._next_user_id
            self._next_user_id += 1
        if phone_number is None:
            phone_number = f"+8613{user_id % 1_000_000_000:09d}"
        user = User(user_id, first_name, last_name, username, language_code, phone_number=phone_number)
        self.users[user_id] = user
        return user

    def add_group(
        self,
        title: str,
        creator: User | None = None,
        members: list[User] | None = None,
        admins: list[User] | None = None,
        supergroup: bool = False,
        username: str | None = None,
    ) -> Chat:
        base = self._next_group_id
        self._next_group_id += 1
        chat_id = -(1_000_000_000_000 + base) if supergroup else -base
        chat = Chat(id=chat_id, type="supergroup" if supergroup else "group", title=title, username=username)
        if creator is not None:
            self._set_member(chat, creator, "creator")
        for admin in admins or []:
            self._set_member(chat, admin, "administrator")
        for member in members or []:
            if member.id not in chat.members:
                self._set_member(chat, member, "member")
        self.groups[chat_id] = chat
        return chat

    def _set_member(self, chat: Chat, user: User, status: str) -> None:
        chat.members[user.id] = status
        chat.member_users[user.id] = user

    def private_chat(self, user: User, bot: BotAccount | str | None = None, *, create: bool = False) -> Chat | None:
        account = self._bot(bot)
        key = (account.id, user.id)
        chat = self.private_chats.get(key)
        if chat is None and create:
            chat = Chat(id=user.id, type="private", user=user, bot_id=account.id)
            self._set_member(chat, user, "member")
            self.private_chats[key] = chat
        return chat

    def chat(self, ref: ChatRef, bot: BotAccount | str | None = None) -> Chat:
        """Resolve a chat reference (Chat, User = private chat, chat id, or a message)."""
        if isinstance(ref, Chat):
            return ref
        if isinstance(ref, StoredMessage):
            return ref.chat
        if isinstance(ref, User):
            chat = self.private_chat(ref, bot)
            if chat is None:
                raise SandboxError(f"{ref.first_name} has no private chat with the bot yet")
            return chat
        if isinstance(ref, int):
            if ref < 0:
                if ref not in self.groups:
                    raise SandboxError(f"no group {ref}")
                return self.groups[ref]
            user = self.users.get(ref)
            if user is None:
                raise SandboxError(f"no user {ref}")
            return self.chat(user, bot)
        raise SandboxError(f"cannot resolve chat from {ref!r}")

    def _writable_chat(self, bot: BotAccount, chat_id: Any) -> Chat:
        """The chat ``bot`` may post to, or the error Telegram would give."""
        if isinstance(chat_id, str):
            chat_id = self._group_by_username(chat_id)
        if chat_id < 0:
            return self._writable_group(bot, chat_id)
        user = self.users.get(chat_id)
        if user is None:
            raise bad_request("chat not found")
        if user.is_bot:
            raise ApiError(403, "Forbidden: bot can't send messages to bots")
        chat = self.private_chats.get((bot.id, chat_id))
        if chat is None:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat_id in bot.blocked_by:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _group_by_username(self, ref: str) -> int:
        name = ref.lstrip("@").lower()
        for group in self.groups.values():
            if group.username and group.username.lower() == name:
                return group.id
        raise bad_request("chat not found")

    def _writable_group(self, bot: BotAccount, chat_id: int) -> Chat:
        group = self.groups.get(chat_id)
        if group is None:
            raise bad_request("chat not found")
        if group.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": group.migrated_to}
            )
        status = group.members.get(bot.id, "left")
        noun = "supergroup" if group.type == "supergroup" else "group"
        if status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {noun} chat")
        if status not in {"member", "administrator", "creator"}:
            raise ApiError(403, f"Forbidden: bot is not a member of the {noun} chat")
        return group

    def _readable_chat(self, bot: BotAccount, chat_id: Any) -> Chat:
        try:
            return self._writable_chat(bot, chat_id)
        except ApiError as exc:
            if exc.error_code == 403 and "blocked" in exc.description:
                return self.private_chats[(bot.id, chat_id)]
            if exc.error_code == 403:
                raise bad_request("chat not found") from None
            raise

    def _touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _store(
        self,
        chat: Chat,
        sender: User,
        content: dict[str, Any],
        *,
        markup: dict[str, Any] | None = None,
        reply_to: StoredMessage | None = None,
        service: bool = False,
    ) -> StoredMessage:
        message_id = chat.allocate_id()
        now = time.time()
        data: dict[str, Any] = {"message_id": message_id, "from": sender.to_dict(), "chat": chat.to_dict(), "date": int(now)}
        if reply_to is not None:
            replied = copy.deepcopy(reply_to.data)
            replied.pop("reply_to_message", None)
            data["reply_to_message"] = replied
        data.update(content)
        if markup and "inline_keyboard" in markup:
            data["reply_markup"] = copy.deepcopy(markup)
        message = StoredMessage(chat=chat, message_id=message_id, sender=sender, data=data, markup=markup,
                                date=now, service=service)
        chat.messages.append(message)
        if markup is not None and sender.is_bot:
            if "keyboard" in markup:
                chat.reply_keyboard = copy.deepcopy(markup)
            elif markup.get("remove_keyboard"):
                chat.reply_keyboard = None
        return message

    def _text_content(self, params: dict[str, Any], field: str = "text") -> dict[str, Any]:
        raw = params.get(field)
        if raw is None:
            return {}
        entities_key = "entities" if field == "text" else f"{field}_entities"
        if params.get(entities_key) is not None:
            text, entities = raw, params[entities_key]
        else:
            try:
                text, entities = parse_text(raw, params.get("parse_mode"))
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
            entities = entities + _auto_entities(text, skip=entities)
            entities.sort(key=lambda e: (e["offset"], -e["length"]))
        content: dict[str, Any] = {field: text}
        if entities:
            content[entities_key] = entities
        if field == "caption" and params.get("show_caption_above_media"):
            content["show_caption_above_media"] = True
        return content

    def _reply_target(self, bot: BotAccount, chat: Chat, params: dict[str, Any]) -> StoredMessage | None:
        reply = params.get("reply_parameters")
        if reply is None:
            return None
        target_chat = chat
        if reply.get("chat_id") is not None:
            target_chat = self._readable_chat(bot, reply["chat_id"])
        target = target_chat.find(reply["message_id"])
        if target is None or target.deleted:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return target

    def _bot_message(
        self, bot: BotAccount, chat: Chat, content: dict[str, Any], params: dict[str, Any]
    ) -> StoredMessage:
        reply_to = self._reply_target(bot, chat, params)
        extra: dict[str, Any] = {}
        if params.get("link_preview_options") and "text" in content:
            extra["link_preview_options"] = params["link_preview_options"]
        if params.get("protect_content"):
            extra["has_protected_content"] = True
        return self._store(chat, bot.user, {**content, **extra}, markup=params.get("reply_markup"), reply_to=reply_to)

    def _message(self, ref: MessageRef, chat: Chat | None = None) -> StoredMessage:
        if isinstance(ref, StoredMessage):
            return ref
        if isinstance(ref, int) and chat is not None:
            found = chat.find(ref)
        elif isinstance(ref, dict):
            found = self._find_by_dict(ref)
        else:
            found = None
        if found is None:
            raise SandboxError(f"no such message: {ref!r}")
        return found

    def _find_by_dict(self, data: dict[str, Any]) -> StoredMessage | None:
        chat_id = data.get("chat", {}).get("id") if isinstance(data.get("chat"), dict) else data.get("chat_id")
        message_id = data.get("message_id")
        candidates: list[Chat] = []
        if chat_id is not None and chat_id < 0 and chat_id in self.groups:
            candidates.append(self.groups[chat_id])
        elif chat_id is not None:
            candidates.extend(c for (_, uid), c in self.private_chats.items() if uid == chat_id)
        for chat in candidates:
            found = chat.find(message_id) if message_id is not None else None
            if found is not None and (found.data.get("date") == data.get("date") or "date" not in data):
                return found
        for chat in candidates:
            found = chat.find(message_id) if message_id is not None else None
            if found is not None:
                return found
        return None

    def _bot_for_message(self, message: StoredMessage) -> BotAccount:
        for account in self.bots.values():
            if account.id == message.sender.id:
                return account
        return self.bot

    def _member_dict(self, chat: Chat, user: User, status: str) -> dict[str, Any]:
        data: dict[str, Any] = {"status": status, "user": user.to_dict()}
        if status == "creator":
            data["is_anonymous"] = False
        elif status == "administrator":
            data.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
                can_pin_messages=True,
            )
        elif status == "kicked":
            data["until_date"] = 0
        return data

    def messages(self, chat: ChatRef, bot: BotAccount | str | None = None) -> list[StoredMessage]:
        """Every message of the chat, oldest first (deleted ones flagged, edits kept)."""
        return list(self.chat(chat, bot).messages)

    def bot_messages(self, chat: ChatRef, bot: BotAccount | str | None = None) -> list[StoredMessage]:
        account = self._bot(bot)
        return [m for m in self.chat(chat, bot).messages if m.sender.id == account.id and not m.service]

    def last_message(
        self, chat: ChatRef, bot: BotAccount | str | None = None, *, from_bot: bool | None = True
    ) -> StoredMessage | None:
        """The latest message (by default the latest one from the bot), or None."""
        for message in reversed(self.chat(chat, bot).messages):
            if message.service:
                continue
            if from_bot is None or message.from_bot == from_bot:
                return message
        return None

    def api_calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self.calls if method is None or c.method == method]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5) -> Any:
        """Wait until ``predicate()`` returns something truthy; return it (TimeoutError otherwise).

        Returns as soon as the condition holds; ``timeout`` is how long a healthy bot on an idle
        machine may take, multiplied by ``patience`` so a loaded machine does not fail the wait."""
        loop = asyncio.get_running_loop()
        limit = timeout * self.patience
        deadline = loop.time() + limit
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {limit:g} s ({timeout:g} s × patience {self.patience:g})")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.25))

    async def wait_for_message(
        self,
        chat: ChatRef,
        predicate: Callable[[StoredMessage], Any] | None = None,
        timeout: float = 5,
        after_id: int | None = None,
        *,
        bot: BotAccount | str | None = None,
    ) -> StoredMessage:
        """Wait for a bot message in ``chat`` newer than ``after_id``.

        ``after_id=None`` means: newer than the latest message a simulated person sent there.
        """
        account = self._bot(bot)

        def find() -> StoredMessage | None:
            try:
                target = self.chat(chat, account)
            except SandboxError:
                return None
            floor = after_id if after_id is not None else self._last_user_message.get(target.id, 0)
            for message in target.messages:
                if message.message_id <= floor or message.sender.id != account.id or message.service:
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        found: StoredMessage = await self.wait_for(find, timeout)
        return found

    def transcript(self, chats: list[ChatRef] | None = None) -> str:
        from bot.devkit.sandbox.transcript import transcript

        return transcript(self, chats)


def _utf16_slice(text: str, offset: int, length: int) -> str:
    raw = text.encode("utf-16-le")
    return raw[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="replace")


def _auto_entities(text: str, skip: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Entities Telegram detects by itself: bot commands, @mentions, hashtags, URLs."""
    import re

    from bot.devkit.sandbox.html import utf16_len

    found: list[dict[str, Any]] = []
    covered = [(e["offset"], e["offset"] + e["length"]) for e in skip or [] if e["type"] in {"code", "pre", "text_link"}]
    patterns = [
        ("bot_command", r"(?<![\w/])/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{3,32})?"),
        ("mention", r"(?<!\w)@[a-zA-Z0-9_]{4,32}"),
        ("hashtag", r"(?<!\w)#\w+"),
        ("url", r"https?://[^\s<>\"]+"),
    ]
    for kind, pattern in patterns:
        for match in re.finditer(pattern, text):
            offset = utf16_len(text[: match.start()])
            length = utf16_len(match.group(0))
            if any(start <= offset < end for start, end in covered):
                continue
            found.append({"type": kind, "offset": offset, "length": length})
    return found
