"""A readable text transcript of everything that happened in the sandbox's chats."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bot.devkit.sandbox.state import Chat, StoredMessage

if TYPE_CHECKING:
    from bot.devkit.sandbox.server import ChatRef, FakeTelegram

__all__ = ["transcript"]


def _body(data: dict[str, Any]) -> str:
    if "text" in data:
        return str(data["text"])
    for kind, label in (
        ("photo", "photo"),
        ("voice", "voice"),
        ("document", "document"),
        ("audio", "audio"),
        ("video", "video"),
        ("sticker", "sticker"),
        ("animation", "animation"),
    ):
        if kind in data:
            extra = ""
            if kind == "voice":
                extra = f" {data['voice'].get('duration', 0)}s"
            elif kind == "document":
                extra = f" {data['document'].get('file_name', '')}"
            elif kind == "sticker":
                extra = f" {data['sticker'].get('emoji', '')}"
            caption = f" {data['caption']}" if data.get("caption") else ""
            return f"<{label}{extra}>{caption}"
    if "contact" in data:
        contact = data["contact"]
        return f"<contact {contact.get('first_name', '')} {contact.get('phone_number', '')}>"
    if "location" in data:
        return f"<location {data['location']['latitude']:.4f},{data['location']['longitude']:.4f}>"
    if "new_chat_members" in data:
        names = ", ".join(m.get("first_name", "?") for m in data["new_chat_members"])
        return f"<joined: {names}>"
    if "left_chat_member" in data:
        return f"<left: {data['left_chat_member'].get('first_name', '?')}>"
    if "migrate_to_chat_id" in data:
        return f"<group upgraded to supergroup {data['migrate_to_chat_id']}>"
    if "migrate_from_chat_id" in data:
        return f"<supergroup created from group {data['migrate_from_chat_id']}>"
    if "pinned_message" in data:
        return f"<pinned message {data['pinned_message'].get('message_id')}>"
    return "<message>"


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


def transcript(server: FakeTelegram, chats: list[ChatRef] | None = None) -> str:
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
