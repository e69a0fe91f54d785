"""Logging set-up that never writes the bot token."""

from __future__ import annotations

import logging
import re
import sys

_TOKEN_RE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")


class RedactToken(logging.Filter):
    def __init__(self, secret: str | None) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _TOKEN_RE.sub("<token>", message)
        if self.secret:
            redacted = redacted.replace(self.secret, "<token>")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class SkippedRun(logging.Filter):
    """The repeating jobs (outbox, cards, sweeps) run one at a time on purpose: when a run is still
    busy at the next tick, APScheduler skips the tick and warns. That is the design, not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


def setup_logging(level: str = "INFO", secret: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactToken(secret))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # httpx logs every request URL, and the URL contains the token.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(SkippedRun())
