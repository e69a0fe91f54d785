"""Entity parsing for message text, following Telegram's HTML and MarkdownV2 rules.

``parse_text(text, parse_mode)`` returns the visible text and the list of entities
(offsets and lengths in UTF-16 code units, as Telegram reports them), or raises
:class:`EntityParseError` with a Telegram-like description.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["EntityParseError", "parse_html", "parse_markdown_v2", "parse_text", "utf16_len"]


class EntityParseError(ValueError):
    """The text could not be parsed; ``str(exc)`` is the part after "can't parse entities: "."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTR_RE = re.compile(r"""\s*([a-zA-Z_-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]+);")


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _unescape(raw: str) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED_ENTITIES.get(name.lower(), match.group(0))

    return _ENTITY_RE.sub(repl, raw)


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    return _HtmlParser(text).run()


class _Output:
    """The visible text being built, its UTF-16 length and the entities found so far."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.out: list[str] = []
        self.out_len = 0  # UTF-16 length of the output so far
        self.entities: list[dict[str, Any]] = []

    def emit(self, piece: str) -> None:
        self.out.append(piece)
        self.out_len += utf16_len(piece)


class _HtmlParser(_Output):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.stack: list[tuple[str, int, dict[str, Any]]] = []

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        n = len(self.text)
        while self.i < n:
            ch = self.text[self.i]
            if ch == "&":
                self._char_reference()
            elif ch != "<":
                self._plain()
            else:
                self._tag()
        if self.stack:
            raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{self.stack[-1][0]}"')
        return "".join(self.out), _html_entities(self.entities)

    def _char_reference(self) -> None:
        match = _ENTITY_RE.match(self.text, self.i)
        if match:
            piece = _unescape(match.group(0))
            self.i = match.end()
        else:
            piece = "&"
            self.i += 1
        self.emit(piece)

    def _plain(self) -> None:
        text, j = self.text, self.i
        while j < len(text) and text[j] not in "<&":
            j += 1
        self.emit(text[self.i : j])
        self.i = j

    def _tag(self) -> None:
        close = self.text.find(">", self.i)
        if close == -1:
            raise EntityParseError(f"Unclosed start tag at byte offset {self._at()}")
        inner = self.text[self.i + 1 : close]
        if inner.startswith("/"):
            self._end_tag(inner[1:].strip().lower())
        else:
            self._start_tag(inner)
        self.i = close + 1

    def _at(self) -> int:
        return _byte_offset(self.text, self.i)

    def _end_tag(self, name: str) -> None:
        if not self.stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {self._at()}")
        open_name, start, attrs_open = self.stack.pop()
        if name != open_name:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {self._at()}, expected "</{open_name}>", '
                f'found "</{name}>"'
            )
        length = self.out_len - start
        if length > 0:
            entity = {"type": _SIMPLE_TAGS[open_name], "offset": start, "length": length, **attrs_open}
            if entity.pop("expandable", False):
                entity["type"] = "expandable_blockquote"
            self.entities.append(entity)

    def _start_tag(self, inner: str) -> None:
        match = re.match(r"([a-zA-Z][a-zA-Z0-9-]*)", inner)
        name = match.group(1).lower() if match else ""
        if name not in _SIMPLE_TAGS:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {self._at()}')
        attrs = _tag_attributes(inner[len(name) :].rstrip("/"))
        extra = self._tag_extra(name, attrs)
        self.stack.append((name, self.out_len, extra))

    def _tag_extra(self, name: str, attrs: dict[str, str]) -> dict[str, Any]:
        """What a start tag adds to its entity (a link's url, an emoji's id...), after checking it."""
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {self._at()}')
        if name == "tg-emoji" and "emoji-id" not in attrs:
            raise EntityParseError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {self._at()}')
        if name == "a":
            return _link_extra(attrs.get("href", ""))
        if name == "tg-emoji":
            return {"custom_emoji_id": attrs["emoji-id"]}
        if name == "blockquote" and "expandable" in attrs:
            return {"expandable": True}
        if name == "code":
            self._code_language(attrs)
        return {}

    def _code_language(self, attrs: dict[str, str]) -> None:
        """``<pre><code class="language-x">``: the language belongs to the enclosing pre."""
        if self.stack and self.stack[-1][0] == "pre" and attrs.get("class", "").startswith("language-"):
            self.stack[-1][2]["language"] = attrs["class"][len("language-") :]


def _tag_attributes(rest: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for attr in _ATTR_RE.finditer(rest):
        if not attr.group(0).strip():
            continue
        value = attr.group(2) if attr.group(2) is not None else attr.group(3)
        if value is None:
            value = attr.group(4) or ""
        attrs[attr.group(1).lower()] = _unescape(value)
    return attrs


def _link_extra(href: str) -> dict[str, Any]:
    if href.startswith("tg://user?id="):
        return {"type_override": "text_mention", "user_id": href.split("=", 1)[1]}
    return {"url": href} if href else {}


def _html_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Links to users become mentions, links without a url are dropped; sorted as Telegram sends them."""
    for entity in entities:
        if entity.pop("type_override", None):
            entity["type"] = "text_mention"
            entity["user"] = {"id": int(entity.pop("user_id")), "is_bot": False, "first_name": ""}
        elif entity["type"] == "text_link" and "url" not in entity:
            entity["type"] = "_drop"
    result = [e for e in entities if e["type"] != "_drop"]
    result.sort(key=lambda e: (e["offset"], -e["length"]))
    return result


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD2_MARKS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """A faithful-enough MarkdownV2 parser: enforces escaping of reserved characters."""
    return _MarkdownV2Parser(text).run()


_MD2_KINDS = {"[": "TextUrl", "*": "Bold", "_": "Italic", "__": "Underline", "~": "Strikethrough", "||": "Spoiler"}


class _MarkdownV2Parser(_Output):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.stack: list[tuple[str, int]] = []

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        # Each step looks at the character at self.i and says whether it took it; the first that
        # does wins, in this order (escapes before code, links before emphasis marks...).
        steps = (self._escape, self._backtick, self._open_link, self._close_link, self._mark, self._quote)
        while self.i < len(self.text):
            ch = self.text[self.i]
            if not any(step(ch) for step in steps):
                self._plain(ch)
        if self.stack:
            mark, _ = self.stack[-1]
            raise EntityParseError(
                f"Can't find end of {_MD2_KINDS.get(mark, 'Entity')} entity at byte offset {len(self.text.encode())}"
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def _escape(self, ch: str) -> bool:
        if ch != "\\":
            return False
        text, i = self.text, self.i
        if i + 1 < len(text) and (text[i + 1] in _MD2_RESERVED or text[i + 1] == "\\" or ord(text[i + 1]) < 127):
            self.emit(text[i + 1])
            self.i += 2
        else:
            self.emit(ch)
            self.i += 1
        return True

    def _backtick(self, ch: str) -> bool:
        if ch != "`":
            return False
        if self.text.startswith("```", self.i):
            self._pre_block()
        else:
            self._inline_code()
        return True

    def _pre_block(self) -> None:
        text, i = self.text, self.i
        end = text.find("```", i + 3)
        if end == -1:
            raise EntityParseError(f"Can't find end of PreCode entity at byte offset {_byte_offset(text, i)}")
        body = text[i + 3 : end]
        language = ""
        if "\n" in body:
            first, rest = body.split("\n", 1)
            if first and " " not in first:
                language, body = first, rest
        body = re.sub(r"\\([`\\])", r"\1", body)
        start = self.out_len
        self.emit(body)
        entity: dict[str, Any] = {"type": "pre", "offset": start, "length": self.out_len - start}
        if language:
            entity["language"] = language
        self.entities.append(entity)
        self.i = end + 3

    def _inline_code(self) -> None:
        text, i, n = self.text, self.i, len(self.text)
        end = i + 1
        while end < n and text[end] != "`":
            end += 2 if text[end] == "\\" else 1
        if end >= n:
            raise EntityParseError(f"Can't find end of Code entity at byte offset {_byte_offset(text, i)}")
        body = re.sub(r"\\([`\\])", r"\1", text[i + 1 : end])
        start = self.out_len
        self.emit(body)
        self.entities.append({"type": "code", "offset": start, "length": self.out_len - start})
        self.i = end + 1

    def _open_link(self, ch: str) -> bool:
        if ch != "[":
            return False
        self.stack.append(("[", self.out_len))
        self.i += 1
        return True

    def _close_link(self, ch: str) -> bool:
        if ch != "]" or not self.stack or self.stack[-1][0] != "[":
            return False
        text, i = self.text, self.i
        _, start = self.stack.pop()
        if not text.startswith("(", i + 1):
            raise EntityParseError("Character ']' is reserved and must be escaped with the preceding '\\'")
        end = text.find(")", i + 2)
        if end == -1:
            raise EntityParseError(f"Can't find end of a url at byte offset {_byte_offset(text, i)}")
        url = text[i + 2 : end].replace("\\)", ")").replace("\\\\", "\\")
        if self.out_len > start:
            self.entities.append({"type": "text_link", "offset": start, "length": self.out_len - start, "url": url})
        self.i = end + 1
        return True

    def _mark(self, ch: str) -> bool:
        mark = next((m for m in ("__", "||", "*", "_", "~") if self.text.startswith(m, self.i)), None)
        if mark is None:
            return False
        if self.stack and self.stack[-1][0] == mark:
            _, start = self.stack.pop()
            if self.out_len > start:
                self.entities.append({"type": _MD2_MARKS[mark], "offset": start, "length": self.out_len - start})
        else:
            self.stack.append((mark, self.out_len))
        self.i += len(mark)
        return True

    def _quote(self, ch: str) -> bool:
        if ch == ">" and (self.i == 0 or self.text[self.i - 1] == "\n"):
            self.i += 1
            return True
        return False

    def _plain(self, ch: str) -> None:
        if ch in _MD2_RESERVED:
            raise EntityParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")
        self.emit(ch)
        self.i += 1


_MD_MARKS = {"*": "bold", "_": "italic", "`": "code"}


def parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: *bold*, _italic_, `code`, [text](url); no escaping rules to speak of."""
    out: list[str] = []
    out_len = 0
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in _MD_MARKS:
            end = text.find(ch, i + 1)
            if end == -1:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
            body = text[i + 1 : end]
            entities.append({"type": _MD_MARKS[ch], "offset": out_len, "length": utf16_len(body)})
            out.append(body)
            out_len += utf16_len(body)
            i = end + 1
            continue
        if ch == "[":
            close = text.find("](", i)
            end = text.find(")", close + 2) if close != -1 else -1
            if close != -1 and end != -1:
                body = text[i + 1 : close]
                entities.append(
                    {"type": "text_link", "offset": out_len, "length": utf16_len(body), "url": text[close + 2 : end]}
                )
                out.append(body)
                out_len += utf16_len(body)
                i = end + 1
                continue
        out.append(ch)
        out_len += utf16_len(ch)
        i += 1
    return "".join(out), [e for e in entities if e["length"] > 0]


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Return (visible text, entities) for ``text`` sent with ``parse_mode``."""
    if not parse_mode:
        return text, []
    mode = parse_mode.lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise EntityParseError(f"Unsupported parse_mode {parse_mode!r}")
