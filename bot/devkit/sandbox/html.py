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
    out: list[str] = []
    out_len = 0  # UTF-16 length of the output so far
    stack: list[tuple[str, int, dict[str, Any]]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "&":
            match = _ENTITY_RE.match(text, i)
            if match:
                piece = _unescape(match.group(0))
                i = match.end()
            else:
                piece = "&"
                i += 1
            out.append(piece)
            out_len += utf16_len(piece)
            continue
        if ch != "<":
            j = i
            while j < n and text[j] not in "<&":
                j += 1
            piece = text[i:j]
            out.append(piece)
            out_len += utf16_len(piece)
            i = j
            continue
        close = text.find(">", i)
        if close == -1:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
        inner = text[i + 1 : close]
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, i)}")
            open_name, start, attrs_open = stack.pop()
            if name != open_name:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {_byte_offset(text, i)}, expected "</{open_name}>", '
                    f'found "</{name}>"'
                )
            length = out_len - start
            if length > 0:
                entity = {"type": _SIMPLE_TAGS[open_name], "offset": start, "length": length, **attrs_open}
                if entity.pop("expandable", False):
                    entity["type"] = "expandable_blockquote"
                entities.append(entity)
            i = close + 1
            continue
        match = re.match(r"([a-zA-Z][a-zA-Z0-9-]*)", inner)
        name = match.group(1).lower() if match else ""
        if name not in _SIMPLE_TAGS:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, i)}')
        attrs: dict[str, str] = {}
        rest = inner[len(name) :].rstrip("/")
        for attr in _ATTR_RE.finditer(rest):
            if not attr.group(0).strip():
                continue
            value = attr.group(2) if attr.group(2) is not None else attr.group(3)
            if value is None:
                value = attr.group(4) or ""
            attrs[attr.group(1).lower()] = _unescape(value)
        extra: dict[str, Any] = {}
        if name == "span":
            if attrs.get("class") != "tg-spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, i)}'
                )
        elif name == "a":
            href = attrs.get("href", "")
            if href.startswith("tg://user?id="):
                extra = {"type_override": "text_mention", "user_id": href.split("=", 1)[1]}
            elif href:
                extra = {"url": href}
        elif name == "tg-emoji":
            if "emoji-id" not in attrs:
                raise EntityParseError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset '
                                       f"{_byte_offset(text, i)}")
            extra = {"custom_emoji_id": attrs["emoji-id"]}
        elif name == "blockquote" and "expandable" in attrs:
            extra = {"expandable": True}
        elif name == "code" and stack and stack[-1][0] == "pre" and attrs.get("class", "").startswith("language-"):
            stack[-1][2]["language"] = attrs["class"][len("language-") :]
        stack.append((name, out_len, extra))
        i = close + 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    for entity in entities:
        if entity.pop("type_override", None):
            entity["type"] = "text_mention"
            entity["user"] = {"id": int(entity.pop("user_id")), "is_bot": False, "first_name": ""}
        elif entity["type"] == "text_link" and "url" not in entity:
            entity["type"] = "_drop"
    result = [e for e in entities if e["type"] != "_drop"]
    result.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), result


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD2_MARKS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """A faithful-enough MarkdownV2 parser: enforces escaping of reserved characters."""
    out: list[str] = []
    out_len = 0
    stack: list[tuple[str, int]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(text)

    def emit(piece: str) -> None:
        nonlocal out_len
        out.append(piece)
        out_len += utf16_len(piece)

    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 < n and (text[i + 1] in _MD2_RESERVED or text[i + 1] == "\\" or ord(text[i + 1]) < 127):
                emit(text[i + 1])
                i += 2
                continue
            emit(ch)
            i += 1
            continue
        if ch == "`":
            if text.startswith("```", i):
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
                start = out_len
                emit(body)
                entity: dict[str, Any] = {"type": "pre", "offset": start, "length": out_len - start}
                if language:
                    entity["language"] = language
                entities.append(entity)
                i = end + 3
                continue
            end = i + 1
            while end < n and text[end] != "`":
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                raise EntityParseError(f"Can't find end of Code entity at byte offset {_byte_offset(text, i)}")
            body = re.sub(r"\\([`\\])", r"\1", text[i + 1 : end])
            start = out_len
            emit(body)
            entities.append({"type": "code", "offset": start, "length": out_len - start})
            i = end + 1
            continue
        if ch == "[":
            stack.append(("[", out_len))
            i += 1
            continue
        if ch == "]" and stack and stack[-1][0] == "[":
            _, start = stack.pop()
            if not text.startswith("(", i + 1):
                raise EntityParseError("Character ']' is reserved and must be escaped with the preceding '\\'")
            end = text.find(")", i + 2)
            if end == -1:
                raise EntityParseError(f"Can't find end of a url at byte offset {_byte_offset(text, i)}")
            url = text[i + 2 : end].replace("\\)", ")").replace("\\\\", "\\")
            if out_len > start:
                entities.append({"type": "text_link", "offset": start, "length": out_len - start, "url": url})
            i = end + 1
            continue
        mark = None
        for candidate in ("__", "||", "*", "_", "~"):
            if text.startswith(candidate, i):
                mark = candidate
                break
        if mark is not None:
            if stack and stack[-1][0] == mark:
                _, start = stack.pop()
                if out_len > start:
                    entities.append({"type": _MD2_MARKS[mark], "offset": start, "length": out_len - start})
            else:
                stack.append((mark, out_len))
            i += len(mark)
            continue
        if ch == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
            continue
        if ch in _MD2_RESERVED:
            raise EntityParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")
        emit(ch)
        i += 1
    if stack:
        mark, _ = stack[-1]
        kind = {"[": "TextUrl", "*": "Bold", "_": "Italic", "__": "Underline", "~": "Strikethrough", "||": "Spoiler"}
        raise EntityParseError(f"Can't find end of {kind.get(mark, 'Entity')} entity at byte offset {len(text.encode())}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


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
