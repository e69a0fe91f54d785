"""What ``linli demo`` shows: the story cut into steps, each step the chats it touched.

The recorder reads the stand-in's log of Bot API calls (what the bot sent or edited, as it was at
that moment), the people's messages and their button presses. A step is cut only when the bot has
settled (:func:`settle`), so the same story gives the same steps on a fast or a busy machine: the
few things the bot does concurrently (outbox messages sent together, a group card refreshed while
people press its button) are put in a fixed order.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.devkit.sandbox import FakeTelegram
from bot.devkit.sandbox.state import ApiCall, Chat, User
from bot.i18n import Translator
from storage import cards as card_store
from storage import inbox as inbox_store
from storage import outbox as outbox_store
from storage.db import DatabaseError
from storage.readonly import ReadError, open_readonly

__all__ = ["Entry", "Recorder", "Step", "render_html", "render_text", "settle"]

_SENDS = {"sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendAudio", "sendVideo", "sendSticker",
          "sendAnimation", "sendContact", "sendLocation", "copyMessage", "forwardMessage"}
_EDITS = {"editMessageText", "editMessageCaption", "editMessageReplyMarkup", "editMessageMedia"}


# -- settling ------------------------------------------------------------------------------
# Outbox messages due this soon count as due: the bot holds some back a few seconds on purpose
# (the honours question after a first claim's details, a group's message behind its cards), and
# whether those made it into a step must not depend on how fast the machine is.
SOON = timedelta(seconds=30)


def _db_busy(db_path: str, now: datetime) -> bool:
    """Updates not yet handled to the end (what their handlers queue is not in the outbox yet),
    messages due (or soon due) in the outbox, or group cards not yet showing their task's state."""
    try:
        with open_readonly(db_path) as con:
            return bool(inbox_store.count_unhandled(con) or outbox_store.count_due(con, now + SOON)
                        or card_store.count_to_draw(con))
    except (DatabaseError, ReadError):  # not there yet, or the bot is creating the schema
        return True


async def settle(server: FakeTelegram, db_path: str, now: Any, *, quiet: float = 0.4, timeout: float = 120.0) -> None:
    """Wait until the bot has nothing left to do for what people did so far: every update fetched
    and handled to the end (the stand-in may be quiet while a handler still works), every button press answered, every outbox message due within ``SOON`` sent, every group card showing its
    task's state, and no call to the Bot API for ``quiet`` seconds. ``now()`` is the bot's time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last, quiet_since = -1, loop.time()
    while True:
        count = len(server.calls)
        if count != last:
            last, quiet_since = count, loop.time()
        busy = (bool(server.pending_updates())
                or any(r.answer is None and not r.answered for r in server.callbacks.values())
                or _db_busy(db_path, now()))
        if busy:
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= quiet:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"the bot did not settle within {timeout:.0f} s")
        await asyncio.sleep(0.05)


# -- what a step holds ---------------------------------------------------------------------
@dataclass
class Entry:
    """One line of a chat: a message (new or edited), or a button press."""

    kind: str                      # "message" | "edit" | "press" | "deleted"
    sender: str
    from_bot: bool
    text: str = ""
    entities: list[dict[str, Any]] = field(default_factory=list)
    buttons: list[list[str]] = field(default_factory=list)
    keyboard: list[list[str]] = field(default_factory=list)
    message_id: int = 0
    photo: str | None = None       # file name under --out
    answer: str = ""               # a press: the toast or alert the presser saw
    alert: bool = False
    when: float = 0.0
    buttons_only: bool = False     # an edit that changed only the buttons


@dataclass
class ChatPart:
    chat_id: int
    title: str
    is_group: bool
    entries: list[Entry]


@dataclass
class Step:
    number: int
    narration: str
    clock: datetime
    chats: list[ChatPart]


def _rows(markup: dict[str, Any] | None, key: str) -> list[list[str]]:
    if not markup or key not in markup:
        return []
    return [[str(b["text"] if isinstance(b, dict) else b) for b in row] for row in markup[key]]


def _markup(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


# What a message that is not text shows before its caption (a photo shows itself: no label).
_LABELS: dict[str, Callable[[dict[str, Any]], str] | None] = {
    "document": lambda d: f"📎 {d.get('file_name', '')}",
    "voice": lambda v: f"🎤 {v.get('duration', 0)} s",
    "contact": lambda c: f"📇 {c.get('first_name', '')} {c.get('phone_number', '')}",
    "sticker": lambda s: str(s.get("emoji", "")),
    "location": lambda _: "📍",
    "photo": None,
}


def _content(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    if "text" in data:
        return str(data["text"]), list(data.get("entities") or [])
    caption = str(data.get("caption") or "")
    entities = list(data.get("caption_entities") or [])
    kind = next((k for k in _LABELS if k in data), None)
    show = _LABELS[kind] if kind is not None else None
    if kind is not None and show is None:
        return caption, entities
    label = show(data[kind]) if show is not None and kind is not None else ""
    if label:
        if caption:
            shift = len(label.encode("utf-16-le")) // 2 + 1
            return f"{label}\n{caption}", [{**e, "offset": e["offset"] + shift} for e in entities]
        return label, []
    if "new_chat_members" in data:
        return "➕ " + ", ".join(m.get("first_name", "?") for m in data["new_chat_members"]), []
    if "pinned_message" in data:
        return "📌", []
    return "", []


def _call_results(call: ApiCall) -> list[dict[str, Any]]:
    """The messages a successful send or edit returned (none for other methods)."""
    if call.method in _SENDS or call.method in _EDITS:
        return [call.result] if isinstance(call.result, dict) else []
    if call.method == "sendMediaGroup" and isinstance(call.result, list):
        return list(call.result)
    return []


class Recorder:
    """Cuts what happened in the stand-in since the last cut into one :class:`Step`."""

    def __init__(self, server: FakeTelegram, t: Translator, tz: ZoneInfo, out: Path | None) -> None:
        self.server = server
        self.t = t
        self.tz = tz
        self.out = out
        self.steps: list[Step] = []
        self._calls = 0
        self._presses: set[str] = set()
        self._seen_user: dict[int, int] = {}
        self._photos = 0
        self._order: dict[int, int] = {}   # chat id -> rank (group first, then people in cast order)
        self.outbox_ids: dict[tuple[int, int], int] = {}
        # Messages are numbered per chat in the order shown (Telegram's ids follow arrival, which
        # varies for messages sent together), and the last text shown of each is remembered.
        self._numbers: dict[tuple[int, int], int] = {}
        self._next_number: dict[int, int] = {}
        self._shown: dict[tuple[int, int], str] = {}

    def rank_chats(self, group_ids: list[int], users: list[User]) -> None:
        self._order = {gid: i for i, gid in enumerate(group_ids)}
        for i, user in enumerate(users):
            self._order[user.id] = 100 + i

    def _photo(self, data: dict[str, Any]) -> str | None:
        sizes = data.get("photo") or []
        if not sizes:
            return None
        self._photos += 1
        name = f"photo-{self._photos:02d}.png"
        if self.out is not None:
            try:
                (self.out / name).write_bytes(self.server.file_bytes(sizes[-1]["file_id"]))
            except (KeyError, OSError):
                return None
        return name

    def cut(self, narration: str, clock: datetime, db_path: str) -> Step:
        server = self.server
        self._load_outbox(db_path)
        per_chat: dict[int, list[Entry]] = {}
        self._bot_calls(per_chat)
        chats: dict[int, Chat] = {c.id: c for c in [*server.private_chats.values(), *server.groups.values()]}
        self._people_messages(chats, per_chat)
        self._presses_since(per_chat)
        parts = []
        for chat_id, entries in per_chat.items():
            where = chats.get(chat_id)
            if where is None:
                continue
            parts.append(ChatPart(chat_id, self._title(where), where.is_group,
                                  self._number(where, self._arrange(where, entries))))
        parts.sort(key=lambda p: (self._order.get(p.chat_id, 10_000), p.chat_id))
        step = Step(len(self.steps) + 1, narration, clock, [p for p in parts if p.entries])
        self.steps.append(step)
        return step

    def _bot_calls(self, per_chat: dict[int, list[Entry]]) -> None:
        """What the bot sent, edited or deleted since the last cut, as it was at that moment."""
        server = self.server
        bot_name = server.bot.user.first_name
        for call in server.calls[self._calls:]:
            if not call.ok:
                continue
            if call.method in ("deleteMessage", "deleteMessages"):
                ids = call.params.get("message_ids") or [call.params.get("message_id")]
                for mid in ids:
                    per_chat.setdefault(int(call.params["chat_id"]), []).append(
                        Entry("deleted", bot_name, True, message_id=int(mid or 0), when=call.time))
                continue
            for data in _call_results(call):
                per_chat.setdefault(int(data["chat"]["id"]), []).append(self._bot_entry(call, data, bot_name))
        self._calls = len(server.calls)

    def _bot_entry(self, call: ApiCall, data: dict[str, Any], bot_name: str) -> Entry:
        text, entities = _content(data)
        kind = "edit" if call.method in _EDITS else "message"
        photo = self._photo(data) if kind == "message" else None
        return Entry(
            kind, bot_name, True, text, entities, _rows(data.get("reply_markup"), "inline_keyboard"),
            _rows(_markup(call.params.get("reply_markup")), "keyboard"),
            message_id=int(data["message_id"]), photo=photo, when=call.time)

    def _people_messages(self, chats: dict[int, Chat], per_chat: dict[int, list[Entry]]) -> None:
        """What people wrote since the last cut."""
        for chat in chats.values():
            floor = self._seen_user.get(chat.id, 0)
            for message in chat.messages:
                if message.message_id <= floor or message.from_bot:
                    continue
                text, entities = _content(message.data)
                per_chat.setdefault(chat.id, []).append(Entry(
                    "message", message.sender.first_name, False, text, entities, message_id=message.message_id,
                    when=message.date))
            self._seen_user[chat.id] = max((m.message_id for m in chat.messages), default=0)

    def _presses_since(self, per_chat: dict[int, list[Entry]]) -> None:
        """The buttons people pressed since the last cut."""
        for record in list(self.server.callbacks.values()):
            if record.id in self._presses:
                continue
            self._presses.add(record.id)
            if record.message is None:  # a press on an inline message: no chat to show it in
                continue
            answer = record.answer or {}
            per_chat.setdefault(record.message.chat.id, []).append(Entry(
                "press", record.user.first_name, False, record.label or record.data,
                message_id=record.message.message_id, answer=str(answer.get("text") or ""),
                alert=bool(answer.get("show_alert")), when=record.wall_time))

    def _number(self, chat: Chat, entries: list[Entry]) -> list[Entry]:
        for e in entries:
            key = (chat.id, e.message_id)
            if key not in self._numbers:
                self._next_number[chat.id] = self._next_number.get(chat.id, 0) + 1
                self._numbers[key] = self._next_number[chat.id]
            if e.kind == "edit" and self._shown.get(key) == e.text:
                e.buttons_only = True
            if e.kind in ("message", "edit"):
                self._shown[key] = e.text
            e.message_id = self._numbers[key]
        return entries

    def _load_outbox(self, db_path: str) -> None:
        try:
            with open_readonly(db_path) as con:
                self.outbox_ids = outbox_store.sent_messages(con)
        except (DatabaseError, ReadError):
            return

    def _title(self, chat: Chat) -> str:
        if chat.is_group:
            return str(chat.title or "")
        user = chat.user
        return self.t("{name} ↔ the bot", name=user.first_name if user else "?")

    def _arrange(self, chat: Chat, entries: list[Entry]) -> list[Entry]:
        """People's actions in the order they did them; after each, what the bot did in answer,
        in a fixed order: edits first (only the last one of each message), then messages the bot
        sent directly, then outbox messages in the order they were queued. In a group, card edits
        are shown once, at the end of the step (the card job refreshes them on its own time)."""
        entries.sort(key=lambda e: e.when)
        out: list[Entry] = []
        burst: list[Entry] = []
        late_edits: dict[int, Entry] = {}

        def flush() -> None:
            edits: dict[int, Entry] = {}
            news: list[Entry] = []
            for e in burst:
                if e.kind in ("edit", "deleted"):
                    edits.pop(e.message_id, None)
                    edits[e.message_id] = e
                else:
                    news.append(e)
            for mid in sorted(edits):
                if chat.is_group and edits[mid].kind == "edit":
                    late_edits.pop(mid, None)
                    late_edits[mid] = edits[mid]
                else:
                    out.append(edits[mid])
            news.sort(key=lambda e: (self.outbox_ids.get((chat.id, e.message_id), 0), e.message_id))
            out.extend(news)
            burst.clear()

        for e in entries:
            if e.from_bot:
                burst.append(e)
            else:
                flush()
                out.append(e)
        flush()
        out.extend(late_edits[mid] for mid in sorted(late_edits))
        return out


# -- rendering -----------------------------------------------------------------------------
def _stamp(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _indent(text: str, pad: str) -> str:
    return text.replace("\n", "\n" + pad)


def render_entry_text(t: Translator, e: Entry) -> str:
    if e.kind == "press":
        line = t("{name} pressed [{label}]", name=e.sender, label=e.text)
        if e.answer:
            line += " → " + (t("alert: {text}", text=e.answer) if e.alert else t("note: {text}", text=e.answer))
        return "    · " + _indent(line, "      ")
    if e.kind == "deleted":
        return "    " + t("{name} deleted message #{id}", name=e.sender, id=e.message_id)
    if e.buttons_only:
        if not e.buttons:
            return "    " + t("{name} took the buttons off message #{id}", name=e.sender, id=e.message_id)
        return ("    " + t("{name} changed the buttons of message #{id}:", name=e.sender, id=e.message_id)
                + "".join("\n        " + " ".join(f"[{b}]" for b in row) for row in e.buttons))
    head = f"#{e.message_id} {e.sender}"
    if e.kind == "edit":
        head = t("{name} changed message #{id}", name=e.sender, id=e.message_id)
    body = e.text
    if e.photo:
        body = f"🖼 {e.photo}" + (f"\n{body}" if body else "")
    line = f"    {head}: {_indent(body, '        ')}"
    for row in e.buttons:
        line += "\n        " + " ".join(f"[{b}]" for b in row)
    for row in e.keyboard:
        line += "\n        " + " ".join(f"‹{b}›" for b in row)
    return line


def render_step_text(t: Translator, step: Step, tz: ZoneInfo) -> str:
    lines = [f"── {step.number}. [{_stamp(step.clock, tz)}] {step.narration}"]
    for part in step.chats:
        lines.append(f"  === {part.title} ===")
        lines += [render_entry_text(t, e) for e in part.entries]
    return "\n".join(lines) + "\n"


def render_text(t: Translator, steps: list[Step], tz: ZoneInfo) -> str:
    return "\n".join(render_step_text(t, s, tz) for s in steps)


_TAGS = {"bold": "b", "italic": "i", "underline": "u", "strikethrough": "s", "code": "code", "pre": "pre",
         "spoiler": "span", "blockquote": "blockquote", "expandable_blockquote": "blockquote"}


def entities_html(text: str, entities: list[dict[str, Any]]) -> str:
    """The message as Telegram shows it: its entities (offsets in UTF-16 units) as HTML tags."""
    units = text.encode("utf-16-le")
    opens: dict[int, list[str]] = {}
    closes: dict[int, list[str]] = {}
    n = len(units) // 2
    for e in sorted(entities, key=lambda e: (e["offset"], -e["length"])):
        start, end = min(int(e["offset"]), n), min(int(e["offset"]) + int(e["length"]), n)
        kind = e.get("type")
        if kind in _TAGS:
            tag = _TAGS[kind]
            opens.setdefault(start, []).append(f"<{tag}>")
            closes.setdefault(end, []).insert(0, f"</{tag}>")
        elif kind in ("text_link", "url"):
            url = e.get("url") or units[start * 2:end * 2].decode("utf-16-le", errors="replace")
            opens.setdefault(start, []).append(f'<a href="{html.escape(url)}">')
            closes.setdefault(end, []).insert(0, "</a>")
    out: list[str] = []
    i = 0
    while i <= n:
        out += closes.get(i, [])
        out += opens.get(i, [])
        if i == n:
            break
        j = i + 1
        while j < n and j not in opens and j not in closes:
            j += 1
        out.append(html.escape(units[i * 2:j * 2].decode("utf-16-le", errors="replace")))
        i = j
    return "".join(out)


_CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;background:#e9eef3;margin:0;color:#17212b}
main{max-width:760px;margin:0 auto;padding:16px}
h1{font-size:1.5em}
.step{margin:28px 0 8px}
.step h2{font-size:1.05em;background:#fff3c4;border-radius:8px;padding:8px 12px;margin:0}
.step .when{color:#777;font-weight:normal;font-size:.85em;margin-left:6px}
.chat{background:#d5e3c8;border-radius:12px;margin:10px 0;padding:8px 10px}
.chat.group{background:#c8d9e8}
.chat h3{font-size:.9em;margin:2px 4px 8px;color:#333}
.msg{max-width:85%;margin:6px 0;clear:both}
.msg .bubble{background:#fff;border-radius:12px;padding:7px 11px;white-space:pre-wrap;word-wrap:break-word}
.msg.person{margin-left:auto}
.msg.person .bubble{background:#effdde}
.msg .who{font-size:.75em;color:#3a6d99;margin:0 4px 2px}
.msg.edit .bubble{border:1px dashed #999}
.kb{display:flex;gap:4px;margin-top:4px}
.kb span{flex:1;text-align:center;background:rgba(255,255,255,.6);border-radius:8px;padding:5px;font-size:.85em}
.kb.reply span{background:#f4f4f4;border:1px solid #ccc}
.press{text-align:center;font-size:.8em;color:#444;margin:6px 0}
.press .answer{display:block;color:#666}
img{max-width:100%;border-radius:8px;display:block;margin-bottom:4px}
"""


def _entry_html(t: Translator, e: Entry) -> str:
    esc = html.escape
    if e.kind == "press":
        answer = ""
        if e.answer:
            answer = f'<span class="answer">{esc(t("alert: {text}", text=e.answer) if e.alert else t("note: {text}", text=e.answer))}</span>'
        return f'<div class="press">👆 {esc(t("{name} pressed [{label}]", name=e.sender, label=e.text))}{answer}</div>'
    if e.kind == "deleted":
        return f'<div class="press">🗑 {esc(t("{name} deleted message #{id}", name=e.sender, id=e.message_id))}</div>'
    if e.buttons_only:
        if not e.buttons:
            return f'<div class="press">{esc(t("{name} took the buttons off message #{id}", name=e.sender, id=e.message_id))}</div>'
        kb = "".join('<div class="kb">' + "".join(f"<span>{esc(b)}</span>" for b in row) + "</div>" for row in e.buttons)
        return (f'<div class="msg bot edit"><div class="who">'
                f'{esc(t("{name} changed the buttons of message #{id}:", name=e.sender, id=e.message_id))}</div>{kb}</div>')
    who = f"#{e.message_id} {esc(e.sender)}" if e.kind == "message" else esc(
        t("{name} changed message #{id}", name=e.sender, id=e.message_id))
    body = entities_html(e.text, e.entities)
    photo = f'<img src="{esc(e.photo)}" alt="photo">' if e.photo else ""
    kb = "".join('<div class="kb">' + "".join(f"<span>{esc(b)}</span>" for b in row) + "</div>" for row in e.buttons)
    kb += "".join('<div class="kb reply">' + "".join(f"<span>{esc(b)}</span>" for b in row) + "</div>"
                  for row in e.keyboard)
    cls = "msg " + ("bot" if e.from_bot else "person") + (" edit" if e.kind == "edit" else "")
    return (f'<div class="{cls}"><div class="who">{who}</div><div class="bubble">{photo}{body}</div>{kb}</div>')


def render_html(t: Translator, steps: list[Step], tz: ZoneInfo, lang: str) -> str:
    esc = html.escape
    title = t("Linli demo: two days in a neighbourhood")
    parts = [f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
             f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
             f"<style>{_CSS}</style></head><body><main><h1>{esc(title)}</h1>"]
    for step in steps:
        parts.append(f'<section class="step" id="step-{step.number}"><h2>{step.number}. {esc(step.narration)}'
                     f'<span class="when">{esc(_stamp(step.clock, tz))}</span></h2>')
        for part in step.chats:
            parts.append(f'<div class="chat{" group" if part.is_group else ""}"><h3>{esc(part.title)}</h3>')
            parts += [_entry_html(t, e) for e in part.entries]
            parts.append("</div>")
        parts.append("</section>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def bot_now(start: datetime, wall_start: float) -> Any:
    """The bot's clock as the demo sees it (started at ``start`` when the wall clock read ``wall_start``)."""
    return lambda: start + timedelta(seconds=time.time() - wall_start)
