"""Logging set-up, and the guard that keeps the bot token out of every line the program writes.

The token is a password: whoever has it is the bot. It reaches text in many ways (the Bot API URL
``…/bot<token>/getMe``, python-telegram-bot's "The token `…` was rejected", an exception's
traceback), so it is removed where text leaves the process: every log record (message and
traceback), and ``sys.stdout``/``sys.stderr`` themselves (prints, uncaught exceptions, warnings).
``protect_output()`` runs first thing in ``linli``; ``add_secret()`` adds the configured token as
soon as it is known.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any, TextIO
from urllib.parse import quote

# What a Bot API token looks like: the bot's numeric id, a colon, the secret part.
_TOKEN_RE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
MASK = "<token>"
_MIN_SECRET = 6  # a shorter "secret" would blank out ordinary words; such a token is refused anyway

_lock = threading.Lock()
_secrets: list[str] = []


def add_secret(secret: str | None) -> None:
    """Remove ``secret`` (and its URL-encoded form and the part after the colon) from all output."""
    if not secret:
        return
    forms = {secret, quote(secret, safe=""), quote(secret)}
    _, sep, tail = secret.partition(":")
    if sep and len(tail) >= _MIN_SECRET:
        forms.add(tail)
    with _lock:
        for form in forms:
            if len(form) >= _MIN_SECRET and form not in _secrets:
                _secrets.append(form)
        _secrets.sort(key=len, reverse=True)  # the whole token before its tail


def redact(text: str, secret: str | None = None) -> str:
    """``text`` without anything that looks like a token or is a registered secret."""
    if not text:
        return text
    out = _TOKEN_RE.sub(MASK, text)
    extra = [secret] if secret and len(secret) >= _MIN_SECRET else []
    for form in [*extra, *_secrets]:
        if form in out:
            out = out.replace(form, MASK)
    return out


class RedactToken(logging.Filter):
    """Redacts a record's message (the formatter redacts its traceback too)."""

    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message, self.secret)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secret)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secret)
        return True


class RedactingFormatter(logging.Formatter):
    """The whole formatted line, traceback included, passes through ``redact``."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingStream:
    """A text stream that writes through ``redact`` (prints, tracebacks, warnings)."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(redact(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def protect_output() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` so nothing written there carries a token."""
    if not isinstance(sys.stdout, RedactingStream) and sys.stdout is not None:
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream) and sys.stderr is not None:
        sys.stderr = RedactingStream(sys.stderr)


class SkippedRun(logging.Filter):
    """The repeating jobs (outbox, cards, sweeps) run one at a time on purpose: when a run is still
    busy at the next tick, APScheduler skips the tick and warns. That is the design, not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


class WithholdUpdates(logging.Filter):
    """python-telegram-bot logs an update it cannot read whole, at CRITICAL, with a traceback
    ("Error while parsing updates! Received data was [...]"): names, phone numbers, addresses and
    typed words in the log, and an alarm for what the bot then handles (long polling asks again and
    reduces that update to its id: bot/inbox.py ``read_update``). Such a record becomes one WARNING
    line naming the error's type; the content and traceback are left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "Received data was" in str(record.msg):
            error = record.exc_info[1] if record.exc_info else None
            record.msg = ("python-telegram-bot could not read what Telegram sent (%s); its content is not "
                          "logged, and an update it cannot read is handled as an empty one (bot/inbox.py)")
            record.args = (type(error).__name__ if error is not None else "no error given",)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def setup_logging(level: str = "INFO", secret: str | None = None) -> None:
    add_secret(secret)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactToken(secret))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # httpx logs every request URL, and the URL contains the token.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(SkippedRun())
    for name in ("telegram.ext.ExtBot", "telegram.Bot", "telegram.ext.Updater"):
        logging.getLogger(name).addFilter(WithholdUpdates())
