"""Fitting an HTML text into one Telegram message (4,096 characters once the markup is parsed).

A raw cut (``text[:4000]``) can end inside a tag or an entity (``<b>Na``, ``&am``): Telegram then
refuses the whole message ("can't parse entities") and it is lost; and it drops the end without a
word. ``fit`` cuts at a line boundary (or, for one very long line, at a character outside any tag or
entity), closes the tags still open, and ends with a translated "… (3 more lines)" so the reader
knows something is missing. ``pages`` splits a text into as many messages as it needs instead, for a
list someone needs whole.

Lengths are counted in UTF-16 code units of the visible text: an emoji counts twice, which is never
less than what Telegram counts (it counts characters), so what fits here fits there.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

from bot.i18n import Translator

MESSAGE_LIMIT = 4096   # Telegram's limit for a message's visible text
CAPTION_LIMIT = 1024   # and for a photo's or a document's caption
MID_LINE_ROOM = 300    # a line that does not fit is cut inside when this much room (or a quarter) is left

# A tag, a character reference, a line break, a run of plain characters, or a lone "<" or "&".
_TOKEN = re.compile(r"<[^<>]*>|&(?:#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]+);|\n|[^<&\n]+|[<&]")
_TAGS = re.compile(r"<[^<>]*>")
_REFS = re.compile(r"&(?:#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|lt|gt|amp|quot);", re.IGNORECASE)
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][a-zA-Z0-9-]*)")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_NAMED = {"&lt;", "&gt;", "&amp;", "&quot;"}   # the named entities Telegram knows; others show as typed


def _units(token: str) -> int:
    """How many UTF-16 code units a token shows: none for a tag, one character for an entity."""
    if token.startswith("<") and len(token) > 1:
        return 0
    if token.startswith("&#") or token.lower() in _NAMED:
        return utf16_len(html.unescape(token))
    return utf16_len(token)


def visible_len(text: str) -> int:
    """The length of ``text`` as Telegram shows it (tags out, entities one character), in UTF-16 units."""
    plain = "".join(_REFS.sub(lambda m: html.unescape(m.group(0)), part) for part in _TAGS.split(text))
    return utf16_len(plain)


def _prefix(run: str, room: int) -> int:
    """How many characters of a run of plain text fit in ``room`` UTF-16 units."""
    used = 0
    for i, ch in enumerate(run):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > room:
            return i
    return len(run)


@dataclass
class _Cut:
    head: str        # the part that fits, its open tags closed
    rest: str        # what is left, the tags open at the cut opened again ("" when nothing is)
    mid_line: bool   # the cut is inside a line (the head's last line goes on in ``rest``)


def _tokens(text: str) -> Iterator[re.Match[str]]:
    return _TOKEN.finditer(text)


def _tag(token: str) -> tuple[str, bool] | None:
    """(name, closing) of a tag token, None for anything else."""
    if not token.startswith("<") or len(token) < 3 or not token.endswith(">"):
        return None
    name = _TAG_NAME.match(token)
    return (name.group(1).lower(), token.startswith("</")) if name else None


def _close(stack: list[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _raw in reversed(stack))


def _reopen(stack: list[tuple[str, str]]) -> str:
    return "".join(raw for _name, raw in stack)


def _cut(text: str, budget: int) -> _Cut:
    """The longest head of ``text`` showing at most ``budget`` units: up to the last line that fits, or
    inside the next line (at a character outside any tag or entity) when stopping at the line boundary
    would leave ``MID_LINE_ROOM`` or a quarter of the budget unused (one very long line)."""
    used = 0
    stack: list[tuple[str, str]] = []
    line_end: tuple[int, int, list[tuple[str, str]]] | None = None   # (position of "\n", used, stack)
    for match in _tokens(text):
        token = match.group(0)
        units = _units(token)
        if used + units > budget:
            if line_end is not None and line_end[1] > 0 and budget - line_end[1] < min(MID_LINE_ROOM, budget // 4):
                at, _used, open_tags = line_end
                return _Cut(text[:at] + _close(open_tags), _reopen(open_tags) + text[at + 1:], False)
            at = match.start() + (_prefix(token, budget - used) if token[0] not in "<&" else 0)
            return _Cut(text[:at] + _close(stack), _reopen(stack) + text[at:], True)
        if token == "\n":
            line_end = (match.start(), used, list(stack))
        used += units
        tag = _tag(token)
        if tag is not None and tag[1]:
            if stack and stack[-1][0] == tag[0]:
                stack.pop()
        elif tag is not None and not token.endswith("/>"):
            stack.append((tag[0], token))
    return _Cut(text, "", False)


def _lines_left(rest: str, mid_line: bool) -> int:
    """Lines with something to see in ``rest`` (the end of a line cut inside is not counted)."""
    lines = rest.split("\n")[1 if mid_line else 0:]
    return sum(1 for line in lines if re.sub(r"<[^<>]*>", "", line).strip())


def _marker(t: Translator, more: int, mid_line: bool) -> str:
    if more:
        said = t.np("… ({n} more line)", "… ({n} more lines)", more)
        return ("…\n" if mid_line else "\n") + said
    return "…\n" + t("(the rest is too long to show)")


def fit(text: str, t: Translator, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` if it fits in one message, else its head (whole lines, tags closed) and a marker
    saying how many lines are left out, in the reader's language."""
    if len(text) * 2 <= limit or visible_len(text) <= limit:   # (a character is at most two units)
        return text
    room = limit - max(visible_len(_marker(t, 99_999, True)), visible_len(_marker(t, 0, True)))
    cut = _cut(text, room)
    return cut.head.rstrip("\n") + _marker(t, _lines_left(cut.rest, cut.mid_line), cut.mid_line)


def clip(value: str, most: int) -> str:
    """A person's words (plain text, not yet escaped) shortened to ``most`` characters, with "…"."""
    return value if len(value) <= most else value[: most - 1].rstrip() + "…"


def pages(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` as one or more messages, each fitting, cut at line boundaries (inside a line only
    when one line is longer than a message), every page's tags closed and opened again on the next."""
    result: list[str] = []
    rest = text
    while visible_len(rest) > limit:
        cut = _cut(rest, limit)
        if not cut.head.strip():   # nothing fits (cannot happen with a sane limit): stop rather than loop
            break
        result.append(cut.head.rstrip("\n"))
        rest = cut.rest
    if rest.strip():
        result.append(rest)
    return result
