"""JSON control endpoints under ``/_sandbox/<action>`` for out-of-process drivers.

Every action takes a JSON object (POST body, or query string for GET) and answers
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}`` (HTTP 400).
People are referenced by ``user_id``; chats by ``chat_id`` (a positive id is the
private chat with that user); messages by ``chat_id`` + ``message_id``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.devkit.sandbox.state import ApiCall, Chat, SandboxError, StoredMessage, User

if TYPE_CHECKING:
    from bot.devkit.sandbox.server import FakeTelegram

__all__ = ["handle_control", "message_summary"]


def message_summary(message: StoredMessage) -> dict[str, Any]:
    return {
        "chat_id": message.chat.id,
        "message_id": message.message_id,
        "from_bot": message.from_bot,
        "sender_id": message.sender.id,
        "text": message.text,
        "caption": message.caption,
        "buttons": message.buttons,
        "markup": message.markup,
        "deleted": message.deleted,
        "pinned": message.pinned,
        "edited": message.edit_date is not None,
        "service": message.service,
        "data": message.data,
    }


def _call_dict(call: ApiCall) -> dict[str, Any]:
    return dataclasses.asdict(call)


def _user_dict(user: User) -> dict[str, Any]:
    return {**user.to_dict(), "phone_number": user.phone_number}


def _chat_dict(chat: Chat) -> dict[str, Any]:
    return {**chat.to_dict(), "members": chat.members, "migrated_to": chat.migrated_to}


class _Args:
    def __init__(self, server: FakeTelegram, data: dict[str, Any]) -> None:
        self.server = server
        self.data = data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def user(self, key: str = "user_id") -> User:
        if key not in self.data:
            raise SandboxError(f"missing {key}")
        user = self.server.users.get(int(self.data[key]))
        if user is None:
            raise SandboxError(f"no user {self.data[key]}")
        return user

    def optional_user(self, key: str) -> User | None:
        return self.user(key) if self.data.get(key) is not None else None

    def chat(self, key: str = "chat_id") -> Chat | User | None:
        value = self.data.get(key)
        if value is None:
            return None
        value = int(value)
        if value > 0:
            user = self.server.users.get(value)
            if user is None:
                raise SandboxError(f"no user {value}")
            return user
        return self.server.chat(value)

    def message(self) -> StoredMessage:
        chat = self.server.chat(self.chat() or self.user())
        found = chat.find(int(self.data["message_id"]))
        if found is None:
            raise SandboxError(f"no message {self.data['message_id']} in chat {chat.id}")
        return found

    def data_bytes(self, default: bytes) -> bytes:
        encoded = self.data.get("data_base64")
        return base64.b64decode(encoded) if encoded else default


Action = Callable[["FakeTelegram", _Args], Awaitable[Any]]
_ACTIONS: dict[str, Action] = {}


def _action(name: str) -> Callable[[Action], Action]:
    def register(func: Action) -> Action:
        _ACTIONS[name] = func
        return func

    return register


@_action("add_user")
async def _add_user(server: FakeTelegram, a: _Args) -> Any:
    user = server.add_user(
        a.get("first_name", "User"), a.get("last_name"), a.get("username"), a.get("language_code", "zh-hans"),
        a.get("user_id"), a.get("phone_number"),
    )
    return _user_dict(user)


@_action("users")
async def _users(server: FakeTelegram, a: _Args) -> Any:
    return [_user_dict(u) for u in server.users.values() if not u.is_bot]


@_action("add_group")
async def _add_group(server: FakeTelegram, a: _Args) -> Any:
    users = server.users
    chat = server.add_group(
        a.get("title", "Group"),
        creator=a.optional_user("creator_id"),
        members=[users[int(i)] for i in a.get("member_ids", [])],
        admins=[users[int(i)] for i in a.get("admin_ids", [])],
        supergroup=bool(a.get("supergroup", False)),
    )
    return _chat_dict(chat)


@_action("add_bot_to_group")
async def _add_bot_to_group(server: FakeTelegram, a: _Args) -> Any:
    group = server.chat(int(a.get("chat_id")))
    message = await server.add_bot_to_group(group, a.user("added_by"), admin=bool(a.get("admin", False)))
    return message_summary(message)


@_action("remove_bot_from_group")
async def _remove_bot(server: FakeTelegram, a: _Args) -> Any:
    group = server.chat(int(a.get("chat_id")))
    await server.remove_bot_from_group(group, a.optional_user("removed_by"), kicked=bool(a.get("kicked", True)))
    return True


@_action("migrate_group")
async def _migrate(server: FakeTelegram, a: _Args) -> Any:
    return _chat_dict(await server.migrate_group(server.chat(int(a.get("chat_id")))))


@_action("block_bot")
async def _block(server: FakeTelegram, a: _Args) -> Any:
    server.block_bot(a.user())
    return True


@_action("unblock_bot")
async def _unblock(server: FakeTelegram, a: _Args) -> Any:
    server.unblock_bot(a.user())
    return True


@_action("send_text")
async def _send_text(server: FakeTelegram, a: _Args) -> Any:
    chat = a.chat()
    reply_to = None
    if a.get("reply_to_message_id") is not None:
        reply_to = server.chat(chat or a.user()).find(int(a.get("reply_to_message_id")))
    return message_summary(await server.send_text(a.user(), chat, a.get("text", ""), reply_to))


@_action("send_contact")
async def _send_contact(server: FakeTelegram, a: _Args) -> Any:
    message = await server.send_contact(a.user(), a.chat(), a.get("phone_number"), bool(a.get("own", True)))
    return message_summary(message)


@_action("send_voice")
async def _send_voice(server: FakeTelegram, a: _Args) -> Any:
    message = await server.send_voice(a.user(), a.chat(), int(a.get("duration", 5)), a.data_bytes(b"OggS\x00voice"))
    return message_summary(message)


@_action("send_photo")
async def _send_photo(server: FakeTelegram, a: _Args) -> Any:
    message = await server.send_photo(a.user(), a.chat(), a.data_bytes(b"\xff\xd8\xff\xe0photo"), a.get("caption"))
    return message_summary(message)


@_action("send_document")
async def _send_document(server: FakeTelegram, a: _Args) -> Any:
    message = await server.send_document(
        a.user(), a.chat(), a.data_bytes(b"document"), a.get("file_name", "file.txt"),
        a.get("mime_type", "text/plain"), a.get("caption"),
    )
    return message_summary(message)


@_action("send_sticker")
async def _send_sticker(server: FakeTelegram, a: _Args) -> Any:
    return message_summary(await server.send_sticker(a.user(), a.chat(), a.get("emoji", "👍")))


@_action("send_location")
async def _send_location(server: FakeTelegram, a: _Args) -> Any:
    message = await server.send_location(
        a.user(), a.chat(), float(a.get("latitude", 31.2304)), float(a.get("longitude", 121.4737))
    )
    return message_summary(message)


@_action("press_button")
async def _press_button(server: FakeTelegram, a: _Args) -> Any:
    query_id = await server.press_button(a.user(), a.message(), a.get("callback_data"), text=a.get("text"))
    return {"query_id": query_id}


@_action("press_raw_callback")
async def _press_raw(server: FakeTelegram, a: _Args) -> Any:
    return {"query_id": await server.press_raw_callback(a.user(), a.message(), a.get("data", ""))}


@_action("inject_callback")
async def _inject_callback(server: FakeTelegram, a: _Args) -> Any:
    query_id = await server.inject_callback(a.user(), a.get("data"), message=a.get("message"),
                                            inline_message_id=a.get("inline_message_id"))
    return {"query_id": query_id}


@_action("press_reply_button")
async def _press_reply(server: FakeTelegram, a: _Args) -> Any:
    return message_summary(await server.press_reply_button(a.user(), a.chat(), a.get("text", "")))


@_action("callback_answer")
async def _callback_answer(server: FakeTelegram, a: _Args) -> Any:
    return server.callback_answer(str(a.get("query_id")))


@_action("wait_callback_answer")
async def _wait_callback_answer(server: FakeTelegram, a: _Args) -> Any:
    return await server.wait_callback_answer(str(a.get("query_id")), float(a.get("timeout", 5)))


@_action("messages")
async def _messages(server: FakeTelegram, a: _Args) -> Any:
    return [message_summary(m) for m in server.messages(a.chat() or a.user())]


@_action("last_message")
async def _last_message(server: FakeTelegram, a: _Args) -> Any:
    message = server.last_message(a.chat() or a.user())
    return message_summary(message) if message else None


@_action("wait_for_message")
async def _wait_for_message(server: FakeTelegram, a: _Args) -> Any:
    needle = a.get("contains")

    def matches(message: StoredMessage) -> bool:
        body = message.text or message.caption or ""
        return needle is None or needle in body

    after = a.get("after_id")
    message = await server.wait_for_message(
        a.chat() or a.user(), matches, float(a.get("timeout", 5)), int(after) if after is not None else None
    )
    return message_summary(message)


@_action("calls")
async def _calls(server: FakeTelegram, a: _Args) -> Any:
    return [_call_dict(c) for c in server.api_calls(a.get("method"))]


@_action("errors")
async def _errors(server: FakeTelegram, a: _Args) -> Any:
    return [_call_dict(c) for c in server.errors]


@_action("stats")
async def _stats(server: FakeTelegram, a: _Args) -> Any:
    return dataclasses.asdict(server.stats)


@_action("transcript")
async def _transcript(server: FakeTelegram, a: _Args) -> Any:
    return server.transcript()


@_action("redeliver")
async def _redeliver(server: FakeTelegram, a: _Args) -> Any:
    return server.redeliver(int(a.get("update_id")))


@_action("duplicate_next_updates")
async def _duplicate(server: FakeTelegram, a: _Args) -> Any:
    server.duplicate_next_updates(bool(a.get("enabled", True)))
    return True


@_action("set_flood_limits")
async def _flood(server: FakeTelegram, a: _Args) -> Any:
    server.set_flood_limits(bool(a.get("enabled", True)))
    return True


@_action("add_member")
async def _add_member(server: FakeTelegram, a: _Args) -> Any:
    group = server.chat(int(a.get("chat_id")))
    server.add_member(group, a.user(), a.get("status", "member"))
    return _chat_dict(group)


@_action("set_bot_admin")
async def _set_bot_admin(server: FakeTelegram, a: _Args) -> Any:
    await server.set_bot_admin(server.chat(int(a.get("chat_id"))), bool(a.get("admin", True)))
    return True


@_action("set_privacy_mode")
async def _set_privacy(server: FakeTelegram, a: _Args) -> Any:
    server.bot.privacy_mode = bool(a.get("enabled", True))
    return True


@_action("edit_text")
async def _edit_text(server: FakeTelegram, a: _Args) -> Any:
    return message_summary(await server.edit_text(a.user(), a.message(), a.get("text", "")))


@_action("pending_updates")
async def _pending(server: FakeTelegram, a: _Args) -> Any:
    return server.pending_updates()


@_action("bots")
async def _bots(server: FakeTelegram, a: _Args) -> Any:
    return [{"token": b.token, **b.user.to_dict()} for b in server.bots.values()]


async def handle_control(server: FakeTelegram, request: web.Request) -> web.Response:
    action = _ACTIONS.get(request.match_info["action"])
    if action is None:
        return web.json_response({"ok": False, "error": f"unknown action {request.match_info['action']}"}, status=404)
    data: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "body must be JSON"}, status=400)
        if isinstance(body, dict):
            data.update(body)
    try:
        result = await action(server, _Args(server, data))
    except (SandboxError, KeyError, ValueError, TimeoutError) as exc:
        return web.json_response({"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}, status=400)
    if request.match_info["action"] == "transcript" and request.method == "GET":
        return web.Response(text=result)
    return web.json_response({"ok": True, "result": result}, dumps=lambda d: json.dumps(d, ensure_ascii=False, default=str))
