"""The one way to read a whole number that a person typed or a button sent.

Accepted: ASCII digits and the full-width digits a Chinese keyboard types ("12", "１２"), with
spaces around them; "#12" where an id may be written that way (``hash_ok``); a leading "-" only
when the field allows negative numbers. Nothing else: not superscripts ("²"), circled digits
("①"), other scripts' digits ("٣", "१"), "+1", "1_000", "1e3" or "1 2", which ``str.isdigit``
or ``int`` would take (or crash on). The value must lie in the field's own range; an id at
most fits SQLite's INTEGER, so a 20-digit or 400-digit number is refused instead of
overflowing. Button data is read ``strict``ly: ASCII digits exactly as the bot writes them.
No Telegram import: services use it too.
"""

from __future__ import annotations

from bot.models import N_, InvalidInput

MAX_ID = 2**63 - 1  # the largest INTEGER SQLite stores: any row id fits below it
_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
_ASCII_DIGITS = frozenset("0123456789")
_HASHES = ("#", "＃")
_MINUS = ("-", "－")


class StaleButton(InvalidInput):
    """A button whose data is not what the bot puts on its buttons (old, damaged or forged)."""

    message = N_("This button is out of date. Please use the latest message.")


def parse_int(text: object, *, low: int = 1, high: int = MAX_ID, hash_ok: bool = False,
              strict: bool = False) -> int | None:
    """The number ``text`` writes if it is one and ``low <= n <= high``, else None. Never raises.
    ``strict``: only ASCII digits (and the sign), nothing around them: how the bot writes button data."""
    if not isinstance(text, str) or low > high:
        return None
    s = text if strict else text.strip()
    if hash_ok and s.startswith(_HASHES):
        s = s[1:]
    negative = low < 0 and s.startswith("-" if strict else _MINUS)
    if negative:
        s = s[1:]
    if not strict:
        s = s.translate(_FULL_WIDTH)
    if not s or not _ASCII_DIGITS.issuperset(s):
        return None
    s = s.lstrip("0") or "0"
    if len(s) > len(str(max(abs(low), abs(high)))):  # far out of range: no int() of a huge string
        return None
    value = -int(s) if negative else int(s)
    return value if low <= value <= high else None


def number(text: object, problem: str | None = None, *, low: int = 1, high: int = MAX_ID, hash_ok: bool = False,
           **params: object) -> int:
    """A typed number in ``low..high``, else InvalidInput whose answer is ``problem`` (it may name
    ``{low}``, ``{high}`` and ``params``; the general "did not understand" when None)."""
    value = parse_int(text, low=low, high=high, hash_ok=hash_ok)
    if value is None:
        raise InvalidInput(problem, **{"low": low, "high": high, **params})
    return value


def button_number(text: object, *, low: int = 1, high: int = MAX_ID) -> int:
    """A number in a button's data (an id unless told otherwise; ASCII digits only, as the bot
    writes them), else StaleButton."""
    value = parse_int(text, low=low, high=high, strict=True)
    if value is None:
        raise StaleButton()
    return value
