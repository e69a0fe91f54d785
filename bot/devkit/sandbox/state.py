"""The sandbox's model of Telegram: users, bots, chats, messages, files, callback queries."""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass, field
from typing import Any

from bot.devkit.sandbox.flood import FloodControl

__all__ = [
    "ApiCall",
    "BotAccount",
    "CallbackRecord",
    "Chat",
    "FileRecord",
    "SandboxError",
    "Stats",
    "StoredMessage",
    "User",
]

DEFAULT_ALLOWED = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)


class SandboxError(AssertionError):
    """A simulated person tried something impossible (e.g. pressing a button that is not there)."""


class PressRefused(SandboxError):
    """Telegram's servers refuse this press; its app is told ``error`` (``DATA_INVALID``: no button
    on that message carries the data; ``MESSAGE_ID_INVALID``: the message is gone)."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error


@dataclass(eq=False)
class User:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    phone_number: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass(eq=False)
class BotAccount:
    token: str
    user: User
    privacy_mode: bool = True
    can_join_groups: bool = True
    flood: FloodControl = field(default_factory=FloodControl)
    commands: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    short_descriptions: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    menu_buttons: dict[int | None, dict[str, Any]] = field(default_factory=dict)
    webhook_url: str = ""
    webhook_secret: str | None = None
    webhook_last_error: str | None = None
    webhook_last_error_date: int | None = None
    allowed_updates: frozenset[str] = DEFAULT_ALLOWED
    pending: list[dict[str, Any]] = field(default_factory=list)
    history: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Re-delivered or duplicated copies (by object identity) survive one offset confirmation,
    # just as Telegram re-sends updates it believes were not processed.
    sticky: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 100_000_001
    # The highest update_id the bot has confirmed (a getUpdates offset above it, or a webhook 2xx).
    confirmed: int = 0
    blocked_by: set[int] = field(default_factory=set)
    poll_generation: int = 0
    # Event-loop time of the bot's latest getUpdates call (None: it never polled).
    last_poll: float | None = None
    logged_out: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def username(self) -> str:
        return self.user.username or ""

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass(eq=False)
class StoredMessage:
    """One message in a chat as the sandbox sees it (including what the bot cannot see any more)."""

    chat: Chat
    message_id: int
    sender: User
    data: dict[str, Any]
    markup: dict[str, Any] | None = None  # any reply_markup, including reply keyboards
    date: float = field(default_factory=time.time)
    edit_date: float | None = None
    deleted: bool = False
    pinned: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)  # previous versions of ``data``
    service: bool = False

    @property
    def from_bot(self) -> bool:
        return self.sender.is_bot

    @property
    def text(self) -> str | None:
        return self.data.get("text")

    @property
    def caption(self) -> str | None:
        return self.data.get("caption")

    @property
    def entities(self) -> list[dict[str, Any]]:
        return list(self.data.get("entities") or self.data.get("caption_entities") or [])

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.markup

    @property
    def inline_buttons(self) -> list[dict[str, Any]]:
        if not self.markup or "inline_keyboard" not in self.markup:
            return []
        return [button for row in self.markup["inline_keyboard"] for button in row]

    def carries(self, data: str) -> bool:
        """An inline button named ``data`` is on this message (see ``button_named``)."""
        return any(button_named(str(b.get("callback_data", "")), data) for b in self.inline_buttons)

    @property
    def keyboard_buttons(self) -> list[dict[str, Any]]:
        if not self.markup or "keyboard" not in self.markup:
            return []
        return [button for row in self.markup["keyboard"] for button in row]

    @property
    def buttons(self) -> list[str]:
        """Labels of all buttons (inline or reply keyboard) attached to the message."""
        return [b["text"] for b in self.inline_buttons] + [b["text"] for b in self.keyboard_buttons]

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)

    # Read-only mapping access to the Telegram Message JSON: message["text"], message.get("contact").
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __repr__(self) -> str:
        body = self.text if self.text is not None else self.caption
        return f"<StoredMessage chat={self.chat.id} id={self.message_id} from={self.sender.first_name!r} {body!r}>"


@dataclass(eq=False)
class Chat:
    id: int
    type: str  # private, group, supergroup
    title: str | None = None
    username: str | None = None
    user: User | None = None  # the other party of a private chat
    bot_id: int | None = None  # owner bot of a private chat
    members: dict[int, str] = field(default_factory=dict)  # user id -> status
    member_users: dict[int, User] = field(default_factory=dict)
    messages: list[StoredMessage] = field(default_factory=list)
    next_message_id: int = 1
    migrated_to: int | None = None
    migrated_from: int | None = None
    reply_keyboard: dict[str, Any] | None = None
    actions: list[str] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return self.type in {"group", "supergroup"}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
        else:
            data["title"] = self.title or ""
            if self.username:
                data["username"] = self.username
            if self.type == "group":
                data["all_members_are_administrators"] = False
        return data

    def allocate_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def find(self, message_id: int) -> StoredMessage | None:
        for message in self.messages:
            if message.message_id == message_id:
                return message
        return None


@dataclass(eq=False)
class FileRecord:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    kind: str
    mime_type: str | None = None
    file_name: str | None = None

    def to_file(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass(eq=False)
class CallbackRecord:
    id: str
    bot_id: int
    user: User
    message: StoredMessage | None  # None: a press on an inline message (``inject_callback``)
    data: str
    created: float  # monotonic
    answered: bool = False
    answer: dict[str, Any] | None = None
    answered_event: asyncio.Event = field(default_factory=asyncio.Event)
    wall_time: float = field(default_factory=time.time)
    label: str | None = None  # the pressed button's text when it was pressed (the message may change later)


@dataclass
class ApiCall:
    bot_id: int | None
    method: str
    params: dict[str, Any]
    ok: bool
    result: Any = None
    error_code: int | None = None
    description: str | None = None
    time: float = field(default_factory=time.time)


@dataclass
class Stats:
    by_method: dict[str, int] = field(default_factory=dict)
    errors_by_method: dict[str, int] = field(default_factory=dict)
    too_many_requests: int = 0
    webhook_deliveries: int = 0

    def count(self, method: str, ok: bool) -> None:
        self.by_method[method] = self.by_method.get(method, 0) + 1
        if not ok:
            self.errors_by_method[method] = self.errors_by_method.get(method, 0) + 1


def button_named(shown: str, named: str) -> bool:
    """A button's callback data is the one a test names: the same, or a Linli dialog button
    (``d:<step>:<value>~<mark>``) named without its dialog's mark, which a test cannot know."""
    return named == shown or (shown.startswith("d:") and "~" in shown and named == shown.rpartition("~")[0])
