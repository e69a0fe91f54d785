"""A readable text transcript of everything that happened in the sandbox's chats."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.devkit.sandbox.state import Chat, StoredMessage

if TYPE_CHECKING:
    from bot.devkit.sandbox.core import ChatRef, SandboxCore

__all__ = ["transcript"]


_MEDIA = ("photo", "voice", "document", "audio", "video", "sticker", "animation")
_MEDIA_EXTRA: dict[str, Callable[[dict[str, Any]], str]] = {
    "voice": lambda v: f" {v.get('duration', 0)}s",
    "document": lambda d: f" {d.get('file_name', '')}",
    "sticker": lambda s: f" {s.get('emoji', '')}",
}
# Messages that are neither text nor media: the first of these keys a message has says what it shows.
_OTHER: tuple[tuple[str, Callable[[Any], str]], ...] = (
    ("contact", lambda c: f"<contact {c.get('first_name', '')} {c.get('phone_number', '')}>"),
    ("location", lambda loc: f"<location {loc['latitude']:.4f},{loc['longitude']:.4f}>"),
    ("new_chat_members", lambda ms: f"<joined: {', '.join(m.get('first_name', '?') for m in ms)}>"),
    ("left_chat_member", lambda m: f"<left: {m.get('first_name', '?')}>"),
    ("migrate_to_chat_id", lambda cid: f"<group upgraded to supergroup {cid}>"),
    ("migrate_from_chat_id", lambda cid: f"<supergroup created from group {cid}>"),
    ("pinned_message", lambda m: f"<pinned message {m.get('message_id')}>"),
)


def _body(data: dict[str, Any]) -> str:
    if "text" in data:
        return str(data["text"])
    kind = next((k for k in _MEDIA if k in data), None)
    if kind is not None:
        extra = _MEDIA_EXTRA[kind](data[kind]) if kind in _MEDIA_EXTRA else ""
        caption = f" {data['caption']}" if data.get("caption") else ""
        return f"<{kind}{extra}>{caption}"
    return next((show(data[key]) for key, show in _OTHER if key in data), "<message>")


def _buttons(markup: dict[str, Any] | None) -> str:
    if not markup:
        return ""
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
    elif "keyboard" in markup:
        rows = markup["keyboard"]
    else:
        return "  (keyboard removed)" if markup.get("remove_keyboard") else ""
    lines = ["    " + " ".join(f"[{b['text'] if isinstance(b, dict) else b}]" for b in row) for row in rows]
    return "\n" + "\n".join(lines)


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def _chat_title(chat: Chat) -> str:
    if chat.type == "private" and chat.user is not None:
        return f"private chat with {chat.user.full_name} ({chat.id})"
    return f"{chat.type} {chat.title!r} ({chat.id})"


def transcript(server: SandboxCore, chats: list[ChatRef] | None = None) -> str:
    selected: list[Chat] = (
        [server.chat(c) for c in chats] if chats is not None
        else [*server.private_chats.values(), *server.groups.values()]
    )
    presses: dict[int, list[tuple[float, str]]] = {}
    for record in server.callbacks.values():
        if record.message is None:
            continue  # a press on an inline message: no chat to show it in
        line = f"{record.user.first_name} pressed"
        label = record.label or next(
            (b["text"] for b in record.message.inline_buttons if b.get("callback_data") == record.data), None)
        line += f" [{label}]" if label else f" <callback {record.data!r}>"
        if record.answer is not None:
            if record.answer.get("text"):
                kind = "alert" if record.answer.get("show_alert") else "toast"
                line += f" -> {kind}: {record.answer['text']}"
        else:
            line += " (never answered)"
        presses.setdefault(record.message.chat.id, []).append((record.wall_time, line))
    out: list[str] = []
    for chat in selected:
        events: list[tuple[float, str]] = list(presses.get(chat.id, []))
        for message in chat.messages:
            events.append((message.date, _message_line(message)))
        if not events:
            continue
        out.append(f"=== {_chat_title(chat)} ===")
        for when, line in sorted(events, key=lambda e: e[0]):
            stamp = time.strftime("%H:%M:%S", time.localtime(when))
            out.append(f"[{stamp}] {line}")
        out.append("")
    return "\n".join(out)


def _message_line(message: StoredMessage) -> str:
    name = message.sender.first_name
    flags = []
    if message.edits:
        flags.append(f"edited x{len(message.edits)}")
    if message.deleted:
        flags.append("deleted")
    if message.pinned:
        flags.append("pinned")
    suffix = f" ({', '.join(flags)})" if flags else ""
    reply = ""
    if "reply_to_message" in message.data:
        reply = f" (reply to #{message.data['reply_to_message']['message_id']})"
    line = f"#{message.message_id} {name}{reply}: {_indent(_body(message.data))}{suffix}"
    if message.edits:
        first = _body(message.edits[0])
        if first != _body(message.data):
            line += f"\n    (originally: {_indent(first)})"
    return line + _buttons(message.markup)
