"""FakeTelegram: a loopback HTTP stand-in for the Telegram Bot API.

Bots talk to it over HTTP exactly as to api.telegram.org (``POST /bot<token>/<method>``);
tests and demo drivers simulate people through plain async methods (``send_text``,
``press_button`` ...) or the JSON endpoints under ``/_sandbox/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from bot.devkit.sandbox.flood import FloodConfig, FloodControl
from bot.devkit.sandbox.html import EntityParseError, parse_text
from bot.devkit.sandbox.spec import ApiError, Spec, Upload, bad_request, load_spec
from bot.devkit.sandbox.state import (
    DEFAULT_ALLOWED,
    ApiCall,
    BotAccount,
    CallbackRecord,
    Chat,
    FileRecord,
    PressRefused,
    SandboxError,
    Stats,
    StoredMessage,
    User,
)

__all__ = ["FakeTelegram"]

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


class FakeTelegram:
    """An in-process Telegram Bot API server for tests and demos."""

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

    # ==================================================================================
    # lifecycle
    # ==================================================================================

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._stopping = False
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/_sandbox/{action}", self._handle_control)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        actual_port = sockets[0].getsockname()[1] if sockets else port
        self._site_url = f"http://{host}:{actual_port}"
        for bot in self.bots.values():
            self._kick_webhook(bot)

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._webhook_tasks.values()):
            task.cancel()
        for task in list(self._webhook_tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._webhook_tasks.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None
        for bot in self.bots.values():
            bot.poll_generation += 1
            bot.notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

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

    # ==================================================================================
    # registration
    # ==================================================================================

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

    def add_member(self, group: Chat, user: User, status: str = "member", *, announce: bool = True) -> None:
        """A person joins a group (emits a new_chat_members service message)."""
        self._set_member(group, user, status)
        if announce:
            self._user_message(user, group, {"new_chat_members": [user.to_dict()]}, service=True)

    # ==================================================================================
    # chats
    # ==================================================================================

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
            name = chat_id.lstrip("@").lower()
            for group in self.groups.values():
                if group.username and group.username.lower() == name:
                    chat_id = group.id
                    break
            else:
                raise bad_request("chat not found")
        if chat_id < 0:
            found = self.groups.get(chat_id)
            if found is None:
                raise bad_request("chat not found")
            group = found
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

    def _readable_chat(self, bot: BotAccount, chat_id: Any) -> Chat:
        try:
            return self._writable_chat(bot, chat_id)
        except ApiError as exc:
            if exc.error_code == 403 and "blocked" in exc.description:
                return self.private_chats[(bot.id, chat_id)]
            if exc.error_code == 403:
                raise bad_request("chat not found") from None
            raise

    # ==================================================================================
    # updates
    # ==================================================================================

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

    def _touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ==================================================================================
    # HTTP plumbing
    # ==================================================================================

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        params: dict[str, Any] = dict(parse_qsl(request.query_string, keep_blank_values=True))
        uploads: dict[str, Upload] = {}
        if request.method not in {"POST", "PUT"} or not request.can_read_body:
            return params, uploads
        ctype = request.content_type
        if ctype == "application/json":
            body = await request.read()
            if body.strip():
                try:
                    data = json.loads(body)
                except ValueError:
                    raise bad_request("can't parse JSON encoded request parameters") from None
                if not isinstance(data, dict):
                    raise bad_request("JSON request body must be an object")
                params.update(data)
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    data_bytes = await part.read(decode=False)
                    uploads[part.name] = Upload(
                        field=part.name,
                        filename=part.filename,
                        data=bytes(data_bytes),
                        content_type=part.headers.get("Content-Type", "application/octet-stream"),
                    )
                else:
                    params[part.name] = await part.text()
        else:
            body_text = (await request.read()).decode("utf-8")
            params.update(dict(parse_qsl(body_text, keep_blank_values=True)))
        return params, uploads

    async def _handle_api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        bot = self.bots.get(token)
        call = ApiCall(bot_id=bot.id if bot else None, method=method, params={}, ok=False)
        try:
            if bot is None:
                raise ApiError(401, "Unauthorized")
            params, uploads = await self._read_params(request)
            call.params = _public({**params, **uploads})
            result = await self.call_api(bot, method, params, uploads, record=False, call=call)
            body: dict[str, Any] = {"ok": True, "result": result}
            status = 200
        except ApiError as exc:
            body = exc.to_json()
            status = exc.error_code
            self._record_error(call, exc)
        return web.json_response(body, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))

    def _record_error(self, call: ApiCall, exc: ApiError) -> None:
        call.ok = False
        call.error_code = exc.error_code
        call.description = exc.description
        self.calls.append(call)
        self.errors.append(call)
        self.stats.count(call.method, ok=False)
        if exc.error_code == 429:
            self.stats.too_many_requests += 1
        self._touch()

    async def call_api(
        self,
        bot: BotAccount | str | None,
        method: str,
        params: dict[str, Any] | None = None,
        uploads: dict[str, Upload] | None = None,
        *,
        record: bool = True,
        call: ApiCall | None = None,
    ) -> Any:
        """Run one Bot API call in-process (what the HTTP route does). Raises ApiError."""
        account = self._bot(bot)
        params = params or {}
        if call is None:
            call = ApiCall(bot_id=account.id, method=method, params=_public(params), ok=False)
        try:
            canonical = self.spec.method_name(method)
            if canonical is None:
                raise ApiError(404, "Not Found")
            call.method = canonical
            typed = self.spec.validate(canonical, params, uploads, strict=self.strict)
            call.params = _public(typed)
            if self.flood_limits and _counted(canonical) and "chat_id" in typed:
                self._check_flood(account, canonical, typed)
            handler = self._handlers.get(canonical)
            if handler is None:
                result = await self._unimplemented(account, canonical, typed)
            else:
                result = await handler(account, typed)
        except ApiError as exc:
            if record:
                self._record_error(call, exc)
            raise
        call.ok = True
        call.result = result
        self.calls.append(call)
        self.stats.count(call.method, ok=True)
        self._touch()
        return result

    def _check_flood(self, bot: BotAccount, method: str, params: dict[str, Any]) -> None:
        chat_id = params["chat_id"]
        try:
            chat = self._writable_chat(bot, chat_id)
        except ApiError:
            return  # the handler reports the real error
        amount = len(params.get("media") or []) if method == "sendMediaGroup" else 1
        retry_after = bot.flood.check(chat.id, chat.is_group, max(1, amount))
        if retry_after:
            raise ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )

    async def _unimplemented(self, bot: BotAccount, method: str, params: dict[str, Any]) -> Any:
        call = ApiCall(bot_id=bot.id, method=method, params=_public(params), ok=True, result=True)
        self.unimplemented.append(call)
        returns = self.spec.methods[method].get("returns") or []
        if returns == ["Message"] and "chat_id" in params:
            chat = self._writable_chat(bot, params["chat_id"])
            return self._bot_message(bot, chat, {}, params).to_dict()
        return True

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        bot = self.bots.get(request.match_info["token"])
        if bot is None:
            return web.json_response(ApiError(401, "Unauthorized").to_json(), status=401)
        record = self._files_by_path.get(request.match_info["path"])
        if record is None:
            return web.json_response(ApiError(404, "Not Found").to_json(), status=404)
        return web.Response(body=record.data, content_type=record.mime_type or "application/octet-stream")

    # ==================================================================================
    # files
    # ==================================================================================

    def store_file(
        self, data: bytes, kind: str, *, mime_type: str | None = None, file_name: str | None = None
    ) -> FileRecord:
        self._file_counter += 1
        unique = f"AQAD{secrets.token_hex(6)}"
        file_id = f"{kind[:2].upper()}ACAgUAAx{self._file_counter:06d}{secrets.token_hex(8)}"
        folder, ext = _FILE_DIRS.get(kind, ("files", ""))
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1]
        record = FileRecord(
            file_id=file_id,
            file_unique_id=unique,
            data=data,
            file_path=f"{folder}/file_{self._file_counter}{ext}",
            kind=kind,
            mime_type=mime_type,
            file_name=file_name,
        )
        self.files[file_id] = record
        self._files_by_path[record.file_path] = record
        return record

    def file_bytes(self, file_id: str) -> bytes:
        return self.files[file_id].data

    def _resolve_input_file(self, value: Any, kind: str) -> FileRecord:
        if isinstance(value, Upload):
            mime = value.content_type if value.content_type != "application/octet-stream" else None
            return self.store_file(value.data, kind, mime_type=mime, file_name=value.filename)
        if isinstance(value, str):
            if value.startswith("attach://"):
                raise bad_request("wrong file identifier/HTTP URL specified")
            if value in self.files:
                return self.files[value]
            if value.startswith(("http://", "https://")):
                return self.store_file(b"", kind, file_name=value.rsplit("/", 1)[-1] or None)
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _media_object(self, record: FileRecord, kind: str, params: dict[str, Any]) -> Any:
        base = {"file_id": record.file_id, "file_unique_id": record.file_unique_id, "file_size": len(record.data)}
        if kind == "photo":
            small_id = record.file_id + "s"
            small = {**base, "file_id": small_id, "width": 90, "height": 67}
            self.files.setdefault(small_id, record)
            return [small, {**base, "width": 800, "height": 600}]
        obj = dict(base)
        if record.mime_type:
            obj["mime_type"] = record.mime_type
        if kind in {"document", "audio", "video", "animation"} and record.file_name:
            obj["file_name"] = record.file_name
        if kind in {"voice", "audio", "video", "animation", "video_note"}:
            obj["duration"] = int(params.get("duration") or 1)
        if kind in {"video", "animation"}:
            obj.update(width=int(params.get("width") or 640), height=int(params.get("height") or 480))
        if kind == "video_note":
            obj["length"] = int(params.get("length") or 240)
        if kind == "sticker":
            obj.update(type="regular", width=512, height=512, is_animated=False, is_video=False)
            if params.get("emoji"):
                obj["emoji"] = params["emoji"]
        return obj

    # ==================================================================================
    # message construction
    # ==================================================================================

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

    # ==================================================================================
    # Bot API method handlers
    # ==================================================================================

    def _build_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendContact": self._send_contact,
            "sendLocation": self._send_location,
            "sendMediaGroup": self._send_media_group,
            "copyMessage": self._copy_message,
            "forwardMessage": self._forward_message,
            "editMessageText": self._edit_text,
            "editMessageCaption": self._edit_caption,
            "editMessageReplyMarkup": self._edit_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "pinChatMessage": self._pin,
            "unpinChatMessage": self._unpin,
            "unpinAllChatMessages": self._unpin_all,
            "sendChatAction": self._send_chat_action,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "getChatMemberCount": self._get_chat_member_count,
            "leaveChat": self._leave_chat,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "setMyDescription": self._text_setter("descriptions", "description"),
            "getMyDescription": self._text_getter("descriptions", "description"),
            "setMyShortDescription": self._text_setter("short_descriptions", "short_description"),
            "getMyShortDescription": self._text_getter("short_descriptions", "short_description"),
            "setMyName": self._text_setter("names", "name"),
            "getMyName": self._text_getter("names", "name"),
            "getFile": self._get_file,
            "answerCallbackQuery": self._answer_callback,
        }
        for method, kind in _MEDIA_KINDS.items():
            handlers[method] = self._media_sender(kind)
        return handlers

    async def _true(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        return True

    async def _get_me(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **bot.user.to_dict(),
            "can_join_groups": bot.can_join_groups,
            "can_read_all_group_messages": not bot.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # -- updates -----------------------------------------------------------------------

    async def _get_updates(self, bot: BotAccount, params: dict[str, Any]) -> list[dict[str, Any]]:
        if bot.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
        if "allowed_updates" in params:
            allowed = params["allowed_updates"]
            bot.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        offset = params.get("offset")
        if offset is not None and offset > 0:
            self._confirm(bot, min(offset - 1, bot.next_update_id - 1))
        if offset is not None:
            if offset < 0:
                bot.pending = bot.pending[offset:]
            else:
                bot.pending = [
                    u for u in bot.pending if u["update_id"] >= offset or any(u is s for s in bot.sticky)
                ]
        limit = params.get("limit") or 100
        if not 1 <= limit <= 100:
            limit = 100
        timeout = float(params.get("timeout") or 0)
        bot.last_poll = asyncio.get_running_loop().time()
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.notify()  # wakes (and terminates) an earlier concurrent long poll
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

    # -- sending -----------------------------------------------------------------------

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

    # -- editing -----------------------------------------------------------------------

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

    # -- deleting and pinning ------------------------------------------------------------

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

    # -- chats and members ---------------------------------------------------------------

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

    # -- bot settings ------------------------------------------------------------------------

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

    async def _get_file(self, bot: BotAccount, params: dict[str, Any]) -> dict[str, Any]:
        record = self.files.get(params["file_id"])
        if record is None:
            raise bad_request("invalid file_id")
        result = record.to_file()
        result["file_id"] = params["file_id"]
        return result

    # -- callback queries ----------------------------------------------------------------

    async def _answer_callback(self, bot: BotAccount, params: dict[str, Any]) -> bool:
        record = self.callbacks.get(params["callback_query_id"])
        loop_time = asyncio.get_running_loop().time()
        if (
            record is None
            or record.bot_id != bot.id
            or record.answered
            or loop_time - record.created > self.callback_timeout
        ):
            raise bad_request(_CALLBACK_EXPIRED)
        text = params.get("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answered = True
        record.answer = {
            "text": text,
            "show_alert": bool(params.get("show_alert")),
            "url": params.get("url"),
            "cache_time": params.get("cache_time"),
        }
        record.answered_event.set()
        return True

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """The recorded answer of a callback query (text, show_alert, url), or None."""
        record = self.callbacks.get(query_id)
        if record is None:
            raise SandboxError(f"no callback query {query_id}")
        return record.answer

    async def wait_callback_answer(self, query_id: str, timeout: float = 5) -> dict[str, Any]:
        """Wait for the bot's answer to a callback query (``timeout`` is scaled by ``patience``)."""
        record = self.callbacks.get(query_id)
        if record is None:
            raise SandboxError(f"no callback query {query_id}")
        await asyncio.wait_for(record.answered_event.wait(), timeout * self.patience)
        assert record.answer is not None
        return record.answer

    # ==================================================================================
    # simulating people
    # ==================================================================================

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
        (``MESSAGE_ID_INVALID``). ``press_raw_callback`` and ``inject_callback`` forge presses."""
        stored = self._message(message)
        if stored.deleted:
            raise PressRefused("MESSAGE_ID_INVALID", f"message {stored.message_id} was deleted")
        for button in stored.inline_buttons:
            if "callback_data" not in button:
                continue
            if (callback_data is None or button["callback_data"] == callback_data) and (
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

    def _bot_for_message(self, message: StoredMessage) -> BotAccount:
        for account in self.bots.values():
            if account.id == message.sender.id:
                return account
        return self.bot

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

    def _emit_my_chat_member(self, bot: BotAccount, chat: Chat, actor: User, old: str, new: str) -> None:
        payload = {
            "chat": chat.to_dict(),
            "from": actor.to_dict(),
            "date": int(time.time()),
            "old_chat_member": self._member_dict(chat, bot.user, old),
            "new_chat_member": self._member_dict(chat, bot.user, new),
        }
        self._enqueue(bot, "my_chat_member", payload)

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

    # ==================================================================================
    # inspection
    # ==================================================================================

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

    # ==================================================================================
    # control API over HTTP
    # ==================================================================================

    async def _handle_control(self, request: web.Request) -> web.Response:
        from bot.devkit.sandbox.control import handle_control

        return await handle_control(self, request)


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
