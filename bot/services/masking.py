"""What a group may see of a text a person typed: phone numbers, the requester's name and the
numbers of their address masked, however they were written.

A phone number can be typed in many ways that a plain digit pattern misses: with invisible
characters between the groups (zero-width space, word joiner, soft hyphen, direction marks), any
punctuation or run of spaces as separators, full-width or circled digits, keycap emoji, Chinese
numerals (一三九, 幺三九, 零/〇/两) or English number words ("one three nine"). So the text is first
brought to a normalised form that keeps, for every character, the span of the original text it
came from: Unicode compatibility decomposition (NFKD; what NFKC does, with accents taken off),
format characters and combining marks dropped, case folded, Chinese numerals and number words
read as digits. Spans to mask are found on that form and replaced in the original, so what is
shown is the text as typed, less what must not be shown.

Pure functions, no telegram or database import: every renderer that sends a task's words to a
group (card, Details alert, urgent ping, /tasks list, digest, re-announcement) calls ``mask``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Chinese numerals as people read phone numbers digit by digit (幺 for 1, 两 for 2, 拐 for 7,
# 勾 for 9, 洞 for 0, as on radio), in everyday and in financial (大写) forms. 十/百/千 are not
# digits: "十二" is a number, not a digit string.
_CJK_DIGITS = {
    **dict.fromkeys("零〇○◯洞", "0"), **dict.fromkeys("一壹幺弌", "1"), **dict.fromkeys("二贰貳两兩弍", "2"),
    **dict.fromkeys("三叁參弎", "3"), **dict.fromkeys("四肆", "4"), **dict.fromkeys("五伍", "5"),
    **dict.fromkeys("六陆陸", "6"), **dict.fromkeys("七柒拐", "7"), **dict.fromkeys("八捌", "8"),
    **dict.fromkeys("九玖勾", "9"),
}
# Characters that show nothing but are not "format" characters: read as a space.
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
_DROP = frozenset(("Cf", "Mn", "Me", "Cs", "Co"))

_WORD_DIGITS = {"zero": "0", "oh": "0", "o": "0", "nought": "0", "naught": "0", "one": "1", "two": "2",
                "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_REPEAT = {"double": 2, "triple": 3}
# A run of letters made only of number words ("one", "onethreenine", "double"); "o" and "oh"
# count only standing alone (they hide in too many words).
_JOINED_WORDS = re.compile(r"(?:zero|nought|naught|one|two|three|four|five|six|seven|eight|nine|double|triple)+")
_ONE_WORD = re.compile(r"zero|nought|naught|one|two|three|four|five|six|seven|eight|nine|double|triple")
_LETTERS = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Normalised:
    """A normalised text; ``text[j]`` came from ``original[start[j]:end[j]]``."""

    original: str
    text: str
    start: tuple[int, ...]
    end: tuple[int, ...]

    def span(self, first: int, last: int) -> tuple[int, int]:
        """The original span of normalised characters ``first..last`` (inclusive)."""
        return self.start[first], self.end[last]


class _Builder:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.start: list[int] = []
        self.end: list[int] = []

    def emit(self, chars: str, start: int, end: int) -> None:
        for c in chars:
            self.text.append(c)
            self.start.append(start)
            self.end.append(end)


def _chars(text: str) -> _Builder:
    """Character by character: compatibility forms, case, digits of any script, Chinese numerals."""
    out = _Builder()
    for i, c in enumerate(text):
        if c in _CJK_DIGITS:
            out.emit(_CJK_DIGITS[c], i, i + 1)
            continue
        if c in _BLANKS:
            out.emit(" ", i, i + 1)
            continue
        emitted = False
        for d in unicodedata.normalize("NFKD", c):
            if unicodedata.category(d) in _DROP:
                continue
            value = unicodedata.digit(d, None)
            out.emit(str(value) if value is not None else d.casefold(), i, i + 1)
            emitted = True
        if not emitted and out.end:
            # an invisible character (a keycap's marks, a zero-width space) goes with what is before it
            out.end[-1] = i + 1
    return out


def normalise(text: str) -> Normalised:
    """``text`` with invisible characters gone, compatibility forms and case folded, and every way
    of writing a digit (full-width, circled, keycap, Chinese, "one", "double one") as an ASCII digit."""
    chars = _chars(text)
    flat, start, end = "".join(chars.text), chars.start, chars.end
    out = _Builder()
    pos = 0
    repeat, repeat_from = 1, 0
    for m in _LETTERS.finditer(flat):
        for j in range(pos, m.start()):
            out.emit(flat[j], start[j], end[j])
        pos = m.end()
        run = m.group(0)
        if run in ("o", "oh"):
            words = [(run, m.start(), m.end())]
        elif _JOINED_WORDS.fullmatch(run):
            words = [(w.group(0), m.start() + w.start(), m.start() + w.end()) for w in _ONE_WORD.finditer(run)]
        else:
            for j in range(m.start(), m.end()):
                out.emit(flat[j], start[j], end[j])
            repeat = 1   # "double" counts for the next number word only
            continue
        for word, a, b in words:
            if word in _REPEAT:
                repeat, repeat_from = _REPEAT[word], start[a]
                continue
            out.emit(_WORD_DIGITS[word] * repeat, repeat_from if repeat > 1 else start[a], end[b - 1])
            repeat = 1
    for j in range(pos, len(flat)):
        out.emit(flat[j], start[j], end[j])
    return Normalised(text, "".join(out.text), tuple(out.start), tuple(out.end))


def _alnum(c: str) -> bool:
    return unicodedata.category(c)[0] in "LN"


# -- phone numbers ------------------------------------------------------------------------------
# Digits joined by anything that is neither a letter nor a digit (spaces, punctuation, symbols
# such as * ~ | +, emoji, line breaks), however many: a chain of seven or more digits is a phone
# number, unless it is all dates and times ("2026-12-03 10:30", "10:00-12:00").
_CHAIN = re.compile(r"\d(?:[\W_]*\d)*")
_DATE = (r"(?:(?:19|20)\d\d([-/.])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
         r"|(?:0?[1-9]|[12]\d|3[01])([-/.])(?:0?[1-9]|1[0-2])\2(?:19|20)\d\d)")
_TIME = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?"
_DATES_AND_TIMES = re.compile(rf"(?:{_DATE}|{_TIME})(?:[\W_]+(?:{_DATE}|{_TIME}))*")
PHONE_DIGITS = 7


def _dates_and_times(n: Normalised, a: int, b: int) -> bool:
    """Whether the chain ``n.text[a:b]`` is dates and times. A Chinese numeral glued to the word
    before or after the chain belongs to that word ("周五 9:00-17:00", "2026-12-03两人"): up to two
    are left out at each end."""
    if _DATES_AND_TIMES.fullmatch(n.text, a, b):
        return True

    def glued(j: int, beside: int) -> bool:
        return n.original[n.start[j]] in _CJK_DIGITS and 0 <= beside < len(n.text) and n.text[beside].isalpha()

    a2, b2 = a, b
    while a2 < b and a2 - a < 2 and glued(a2, a - 1):
        a2 += 1
    while b2 > a2 and b - b2 < 2 and glued(b2 - 1, b):
        b2 -= 1
    if (a2, b2) == (a, b):
        return False
    a2 = next((j for j in range(a2, b2) if n.text[j].isdigit()), b2)
    b2 = next((j + 1 for j in range(b2 - 1, a2 - 1, -1) if n.text[j].isdigit()), a2)
    return a2 < b2 and _DATES_AND_TIMES.fullmatch(n.text, a2, b2) is not None


def _phone_spans(n: Normalised) -> list[tuple[int, int, str]]:
    spans = []
    for m in _CHAIN.finditer(n.text):
        digits = re.sub(r"\D", "", m.group(0))
        if len(digits) < PHONE_DIGITS or _dates_and_times(n, m.start(), m.end()):
            continue
        shown = digits[:3] + "****" + digits[-2:] if len(digits) >= 9 else "****" + digits[-2:]
        spans.append((*n.span(m.start(), m.end() - 1), shown))
    return spans


# -- names and addresses ------------------------------------------------------------------------
def _skeleton(n: Normalised) -> tuple[str, list[int]]:
    """Letters and digits only (what is left when spaces and punctuation go), with their places in ``n``."""
    keep = [j for j, c in enumerate(n.text) if _alnum(c)]
    return "".join(n.text[j] for j in keep), keep


@functools.lru_cache(maxsize=4096)
def _secret_form(secret: str) -> tuple[str, tuple[str, ...]]:
    """A secret's letters and digits, and the numbers in it (the same few secrets recur on every
    card redraw, so they are normalised once)."""
    n = normalise(secret)
    return _skeleton(n)[0], tuple(_DIGITS.findall(n.text))


def _latin(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _secret_spans(n: Normalised, secrets: Iterable[object]) -> list[tuple[int, int, str]]:
    """Where a name or address is written, with or without spaces or invisible characters
    between its letters ("L i M i n g", "李 明"). A Latin name must stand as a whole word:
    "Li" is masked in "Mr Li", not in "please"."""
    skel, where = _skeleton(n)
    spans = []
    for secret in secrets:
        target = _secret_form(str(secret or ""))[0]
        if len(target) < 2:
            continue
        for m in re.finditer(re.escape(target), skel):
            a, b = where[m.start()], where[m.end() - 1]
            if _latin(n.text[a]) and a > 0 and _latin(n.text[a - 1]):
                continue
            if _latin(n.text[b]) and b + 1 < len(n.text) and _latin(n.text[b + 1]):
                continue
            spans.append((*n.span(a, b), "***"))
    return spans


# A number next to one of these is part of an address: 3号楼, 2单元, 301室, Building 3, room 301, #5.
_UNIT_AFTER = re.compile(r"\s*(?:号楼|号|栋|幢|座|单元|室|楼|层|户)")
_UNIT_BEFORE = re.compile(r"(?:building|bldg|block|blk|unit|room|rm|flat|apt|apartment|floor|no\.?|#)\s*$")
_DIGITS = re.compile(r"\d+")


def _address_number_spans(n: Normalised, secrets: Iterable[object]) -> list[tuple[int, int, str]]:
    """The numbers of the requester's address, typed in another form ("3号楼301" for "3号楼 2单元
    301", "room 301", "三〇一"): a number of three or more digits from the address is masked
    wherever it stands alone; a shorter one only where a building, unit or room word goes with it."""
    numbers = {d for secret in secrets for d in _secret_form(str(secret or ""))[1]}
    if not numbers:
        return []
    spans = []
    for m in _DIGITS.finditer(n.text):
        if m.group(0) not in numbers:
            continue
        if len(m.group(0)) < 3:
            before, after = n.text[max(0, m.start() - 12):m.start()], n.text[m.end():m.end() + 3]
            if not (_UNIT_BEFORE.search(before) or _UNIT_AFTER.match(after)):
                continue
        spans.append((*n.span(m.start(), m.end() - 1), "***"))
    long = {x for x in numbers if len(x) >= 3}
    for m in _CHAIN.finditer(n.text):   # "1 2 0 3" for 1203
        if re.sub(r"\D", "", m.group(0)) in long:
            spans.append((*n.span(m.start(), m.end() - 1), "***"))
    return spans


def mask(text: str | None, secrets: Iterable[object] = ()) -> str:
    """``text`` as a group may see it: phone numbers masked ("139****78"), and the ``secrets``
    (the requester's or proxy's name, address and phone) replaced by "***" wherever and however
    they were typed in."""
    if not text:
        return ""
    secrets = [s for s in secrets if s]
    n = normalise(text)
    spans = sorted(_phone_spans(n) + _secret_spans(n, secrets) + _address_number_spans(n, secrets))
    if not spans:
        return text
    merged: list[tuple[int, int, str]] = []
    for a, b, shown in spans:
        if merged and a < merged[-1][1]:
            pa, pb, ps = merged[-1]
            merged[-1] = (pa, max(pb, b), ps if ps == shown else "***")
        else:
            merged.append((a, b, shown))
    out, pos = [], 0
    for a, b, shown in merged:
        out += [text[pos:a], shown]
        pos = b
    out.append(text[pos:])
    return _without_leading_mask(merged, text, "".join(out))


# What may follow a name that opens a text: "郭奶奶：", "Mrs Guo, ".
_AFTER_NAME = re.compile(r"[\s:：,，、.。;；\-—]*")


def _without_leading_mask(merged: list[tuple[int, int, str]], text: str, masked: str) -> str:
    """A text that opens with a masked name or address ("郭奶奶想买两个包子", typed by staff for her)
    reads without it ("想买两个包子"), not with a dangling "***" in front; a mask inside the text stays."""
    a, _b, shown = merged[0]
    if shown != "***" or text[:a].strip():
        return masked
    rest = masked[len(text[:a]) + len(shown):]
    rest = rest[_AFTER_NAME.match(rest).end():]  # type: ignore[union-attr]  # the pattern matches ""
    return rest if rest.strip() else masked
