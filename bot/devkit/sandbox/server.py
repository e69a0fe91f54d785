"""FakeTelegram: a loopback HTTP stand-in for the Telegram Bot API.

Bots talk to it over HTTP exactly as to api.telegram.org (``POST /bot<token>/<method>``);
tests and demo drivers simulate people through plain async methods (``send_text``,
``press_button`` ...) or the JSON endpoints under ``/_sandbox/``.

The class is built in layers, one module per part of Telegram it stands in for, each adding to
the one below: ``core`` (state, lookups, waits) < ``files`` < ``updates`` (polling and webhook
delivery) < ``messages`` (send, edit, delete, pin) < ``chats`` (chats, members, bot settings)
< ``callbacks`` < ``people`` (what people do) < ``server`` (HTTP, validation against the
spec, flood limits, the method table). Entity parsing is in ``html``, the spec in ``spec``,
flood limits in ``flood``, the control API in ``control``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from bot.devkit.sandbox.core import _MEDIA_KINDS, Handler, _counted, _public
from bot.devkit.sandbox.people import People
from bot.devkit.sandbox.spec import ApiError, Upload, bad_request
from bot.devkit.sandbox.state import ApiCall, BotAccount

__all__ = ["FakeTelegram"]


class FakeTelegram(People):
    """An in-process Telegram Bot API server for tests and demos."""

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

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        params: dict[str, Any] = dict(parse_qsl(request.query_string, keep_blank_values=True))
        uploads: dict[str, Upload] = {}
        if request.method not in {"POST", "PUT"} or not request.can_read_body:
            return params, uploads
        ctype = request.content_type
        if ctype == "application/json":
            params.update(await _json_params(request))
        elif ctype == "multipart/form-data":
            await _multipart_params(request, params, uploads)
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

    async def _handle_control(self, request: web.Request) -> web.Response:
        from bot.devkit.sandbox.control import handle_control

        return await handle_control(self, request)


async def _json_params(request: web.Request) -> dict[str, Any]:
    body = await request.read()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise bad_request("can't parse JSON encoded request parameters") from None
    if not isinstance(data, dict):
        raise bad_request("JSON request body must be an object")
    return data


async def _multipart_params(request: web.Request, params: dict[str, Any], uploads: dict[str, Upload]) -> None:
    """Form fields into ``params``, files into ``uploads``."""
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
