"""Where the bot's random codes come from (invite codes, voucher codes).

They are drawn from the operating system's secure source. ``linli demo`` replays a story and
must show the same codes every run, so it gives the bot a seed (``BOT_RANDOM_SEED``), which the
settings accept only when the Bot API is a stand-in on this machine: a real bot never runs on a
predictable source.
"""

from __future__ import annotations

import base64
import random
import secrets

_source: random.Random = secrets.SystemRandom()
_FULL_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}  # ！…～ → !…~ (a Chinese keyboard's full width)


def use_seed(seed: str | None) -> None:
    """Draw from a source seeded with ``seed`` from now on; ``None``: the secure source."""
    global _source
    _source = secrets.SystemRandom() if seed is None else random.Random(seed)


def text(alphabet: str, length: int) -> str:
    """``length`` characters drawn from ``alphabet``."""
    return "".join(_source.choice(alphabet) for _ in range(length))


def token_hex(nbytes: int) -> str:
    return _source.randbytes(nbytes).hex()


def token_urlsafe(nbytes: int) -> str:
    return base64.urlsafe_b64encode(_source.randbytes(nbytes)).rstrip(b"=").decode("ascii")


def typed(text: str) -> str:
    """A code as someone typed it, read the one way: full-width letters and digits as plain ones,
    upper case, and only ASCII letters and digits kept (spaces, dashes and look-alikes such as ² or ①
    dropped)."""
    return "".join(ch for ch in text.translate(_FULL_WIDTH).upper() if ch.isascii() and ch.isalnum())
