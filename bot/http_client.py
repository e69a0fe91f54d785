"""python-telegram-bot's HTTP requests made with aiohttp instead of httpx.

Why: every update costs the bot at least one request (answerCallbackQuery, sendMessage), and on
a busy event that per-request cost is what limits how fast taps are answered. Measured against
the loopback stand-in (bench/RESULTS.md, "Throughput" and "Claim storm"), aiohttp's client takes
a fraction of httpx's CPU time per request. ``BaseRequest`` is python-telegram-bot's documented
extension point for this; everything above it (retries, error mapping, rate limiting, JSON
parsing) stays python-telegram-bot's own. aiohttp was already a dependency (the stand-in and
the webhook server use it).

Requests without files are sent form-encoded, exactly like ``HTTPXRequest``; with files,
multipart.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from telegram import Bot
from telegram._utils.defaultvalue import DEFAULT_NONE, DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class AiohttpRequest(BaseRequest):
    def __init__(self, *, connection_pool_size: int = 64, read_timeout: float | None = 15.0,
                 write_timeout: float | None = 15.0, connect_timeout: float | None = 10.0,
                 pool_timeout: float | None = 5.0, media_write_timeout: float | None = 30.0) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, tuple[URL | None, aiohttp.BasicAuth | None]] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._pool_size,
                                             ttl_dns_cache=300, enable_cleanup_closed=True)
            # Not trust_env: with it aiohttp reads ~/.netrc and the proxy variables in a worker
            # thread on every request (two thread hops per answer, about a tenth of the bot's CPU
            # in a claim storm). The proxy is looked up once per host instead (_proxy).
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                  headers={"User-Agent": self.USER_AGENT})

    def _proxy(self, url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
        """HTTP(S)_PROXY / NO_PROXY from the environment, as python-telegram-bot's httpx client
        honours them (a bot that reaches Telegram only through a proxy keeps working)."""
        end = url.find("/", url.find("//") + 2)
        origin = url if end < 0 else url[:end]  # scheme://host[:port]
        found = self._proxies.get(origin)
        if found is None:
            try:
                found = get_env_proxy_for_url(URL(origin))
            except LookupError:
                found = (None, None)
            self._proxies[origin] = found
        return found

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _timeout(
        self,
        read_timeout: ODVInput[float],
        write_timeout: ODVInput[float],
        connect_timeout: ODVInput[float],
        pool_timeout: ODVInput[float],
        *,
        media: bool,
    ) -> aiohttp.ClientTimeout:
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        if isinstance(write_timeout, DefaultValue):
            write = self._media_write_timeout if media else self._write_timeout
        else:
            write = write_timeout
        # aiohttp has no separate write timeout: the whole request may take connect + write + read.
        parts = [t for t in (connect, write, read) if t is not None]
        return aiohttp.ClientTimeout(total=sum(parts) if len(parts) == 3 else None,
                                     connect=pool, sock_connect=connect, sock_read=read)

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        timeout = self._timeout(read_timeout, write_timeout, connect_timeout, pool_timeout, media=bool(files))
        body = _body(fields, files)
        try:
            proxy, proxy_auth = self._proxy(url)
            headers = _FORM if isinstance(body, bytes) else None
            async with self._session.request(method, url, data=body, timeout=timeout, headers=headers,
                                             proxy=proxy, proxy_auth=proxy_auth) as res:
                return res.status, await res.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err


async def send_text(bot: Any, chat_id: int, text: str, reply_markup: Any = None) -> int:
    """``bot.send_message(chat_id, text, reply_markup=...)`` for a caller that needs only the new
    message's id (the outbox): the same request, through the same rate limiter and defaults, but
    Telegram's answer is not built into a ``Message`` (those objects cost about as much CPU as the
    request itself; tests/app/test_http_client.py checks the request is the same)."""
    if not isinstance(bot, Bot):  # a stand-in for the bot in unit tests
        return int((await bot.send_message(chat_id, text, reply_markup=reply_markup)).message_id)
    data = {"chat_id": chat_id, "text": text, "reply_markup": reply_markup, "parse_mode": DEFAULT_NONE,
            "link_preview_options": DEFAULT_NONE, "disable_notification": DEFAULT_NONE,
            "protect_content": DEFAULT_NONE}
    # Bot._post is what every Bot method ends in (defaults filled in, then ExtBot's rate limiter).
    result = await bot._post("sendMessage", data)
    return int(result["message_id"])


async def edit_text(bot: Any, chat_id: int, message_id: int, text: str, reply_markup: Any = None) -> int | None:
    """``bot.edit_message_text(text, chat_id=..., message_id=..., reply_markup=...)`` for a caller that
    needs only the edited message's id (the outbox), as ``send_text``: the same request and errors
    (``BadRequest`` for "message is not modified", ``RetryAfter``, ``Forbidden``...), no ``Message``
    built from the answer. None if Telegram answered ``true`` (an inline message)."""
    if not isinstance(bot, Bot):  # a stand-in for the bot in unit tests
        result = await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, reply_markup=reply_markup)
        return int(result.message_id) if getattr(result, "message_id", None) is not None else None
    data = {"text": text, "chat_id": chat_id, "message_id": message_id, "reply_markup": reply_markup,
            "parse_mode": DEFAULT_NONE, "link_preview_options": DEFAULT_NONE,
            "disable_notification": DEFAULT_NONE, "protect_content": DEFAULT_NONE}
    result = await bot._post("editMessageText", data)
    return int(result["message_id"]) if isinstance(result, dict) else None


def _body(fields: dict[str, Any] | None, files: dict[str, Any] | None) -> Any:
    """A multipart form when there are files; else the url-encoded fields (or nothing)."""
    if files:
        form = aiohttp.FormData(quote_fields=False)
        for name, value in (fields or {}).items():
            form.add_field(name, value)
        for name, field in files.items():
            filename, content, mime = field[0], field[1], (field[2] if len(field) > 2 else None)
            form.add_field(name, content, filename=filename, content_type=mime)
        return form
    if fields:
        # What aiohttp.FormData would send for plain fields, without building a multipart
        # writer (and a random boundary) for every request.
        return urlencode(fields, doseq=True).encode()
    return None
