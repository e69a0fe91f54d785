"""Asking for help (/request, residents) and publishing tasks (/publish, staff): step-by-step
dialogs, buttons first, every step stored so a restart continues where the person was.

The dialog is data: ``STEPS`` (at the end of the questions and answers) names for every step how it
asks and how it accepts an answer (a typed one or a pressed button), returning the next step or
a polite re-ask; ``ORDER`` says which step follows which for each kind of dialog. The answers
so far are a typed ``RequestDraft``, stored as the dialog's data.

Steps of a resident's request: category → describe (text or voice) → when (→ typed time) →
where (→ typed address) → how many helpers → summary (Submit / Edit / Cancel).
The quick request: a voice note (or a resident's typed words: what they need) sent outside any
dialog, or in answer to the first question, goes straight to one summary with the service's defaults (``quick_request``: as soon as possible, at
home, one helper, the category used last or "other") and Submit / Change… / Cancel; Change… walks
the steps above with those answers ticked.
Staff first choose what to publish: a normal task (with an optional title), a request on behalf
of a resident without Telegram (name, phone, address: kept private), or an event (title,
category, description, places, start, end, points per volunteer).

Submit calls ``tasks.create_task`` with ``submit_key = "<tg user id>:<draft id>"``: a second
press, a redelivered update or a restart between the task and the end of the dialog never makes
a second task.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CommandHandler, filters

from bot import dialogs
from bot.context import LinliApp, LinliContext
from bot.dialogs import Again, Dialog, Go, Input, Next, Outcome, Stop, button, flow
from bot.i18n import Translator
from bot.menu import load_member, main_menu, menu_item, resident, staff
from bot.models import N_, DomainError, Member, NotAllowed, NotRegistered
from bot.numbers import parse_int
from bot.services import checkin, quick_request, series, tasks
from bot.services import communities as comm
from bot.services import members as member_svc
from bot.services.access import require_staff
from bot.services.tasks import POINTS_MAX, SLOTS_MAX
from bot.ui import error_text, esc, inline, reply, tr_for
from storage.timeutil import DEFAULT_TIMEZONE, from_db, to_db

FLOW = "request"
DESC_MAX = 500
TITLE_MAX = 80
NAME_MAX = 40
ADDRESS_MAX = 200

# The steps of each kind of dialog, in order ("at" follows "when", "addr" follows "where").
ORDER: dict[str, list[str]] = {
    "resident": ["cat", "desc", "when", "where", "helpers", "confirm"],
    "normal": ["title", "cat", "desc", "when", "where", "helpers", "org", "confirm"],
    "proxy": ["pname", "pphone", "paddr", "cat", "desc", "when", "helpers", "confirm"],
    "event": ["title", "cat", "desc", "slots", "start", "end", "repeat", "weeks", "points", "org", "confirm"],
}
SUB_STEP_OF = {"at": "when", "addr": "where", "days": "repeat"}
FIELD_LABELS = {
    "title": N_("Title"), "cat": N_("Category"), "desc": N_("Description"), "when": N_("Time"),
    "where": N_("Place"), "helpers": N_("Helpers"), "pname": N_("Resident's name"),
    "pphone": N_("Resident's phone"), "paddr": N_("Resident's address"), "slots": N_("Places"),
    "start": N_("Start time"), "end": N_("End time"), "points": N_("Points"), "org": N_("Who may claim"),
    "repeat": N_("Repeat"), "weeks": N_("Weeks"),
}
# Weekday names, Monday first (date.weekday()).
WEEKDAY_NAMES = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"),
                 N_("Sunday"))
REPEATS = ("once", "weekly", "weekdays", "days")
_PHONE_OK = re.compile(r"\+?\d{7,15}")
# Digits as bot.numbers reads them: ASCII (full-width ones are made ASCII first), not \d's other scripts.
_FULL_DT = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2}) +([0-9]{1,2}):([0-9]{2})")
_SHORT_DT = re.compile(r"([0-9]{1,2})-([0-9]{1,2}) +([0-9]{1,2}):([0-9]{2})")
_TIME_ONLY = re.compile(r"([0-9]{1,2}):([0-9]{2})")


# ---------------------------------------------------------------- small helpers
def _tz(draft: RequestDraft) -> ZoneInfo:
    try:
        return ZoneInfo(draft.tz or DEFAULT_TIMEZONE)
    except (KeyError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def _local(draft: RequestDraft, value: str | None) -> str:
    """A stored UTC time as the community's local "YYYY-MM-DD HH:MM"."""
    if not value:
        return ""
    return from_db(value).astimezone(_tz(draft)).strftime("%Y-%m-%d %H:%M")


def _normalise_time_text(text: str) -> str:
    """Be lenient with what people type: full-width characters, / and . as date separators."""
    table = str.maketrans({"：": ":", "／": "-", "/": "-", ".": "-", "－": "-", "\u3000": " ",
                           **{chr(0xFF10 + i): str(i) for i in range(10)}})  # full-width digits
    return " ".join(text.translate(table).split())


def parse_when(text: str, now: datetime, tz: ZoneInfo, *, day: datetime | None = None) -> datetime | None:
    """``YYYY-MM-DD HH:MM`` or ``MM-DD HH:MM`` in ``tz`` (and ``HH:MM`` on ``day`` if given) → aware UTC-able
    datetime; None if it is not a real time."""
    s = _normalise_time_text(re.sub(r"\b([ap])\.\s*m\.?", r"\1m", text, flags=re.IGNORECASE))  # 3 p.m. → 3 pm
    local_now = now.astimezone(tz)
    try:
        m = _FULL_DT.fullmatch(s)
        if m:
            y, mo, d, h, mi = (int(g) for g in m.groups())
            return datetime(y, mo, d, h, mi, tzinfo=tz)
        m = _SHORT_DT.fullmatch(s)
        if m:
            mo, d, h, mi = (int(g) for g in m.groups())
            value = datetime(local_now.year, mo, d, h, mi, tzinfo=tz)
            if value < local_now - timedelta(days=1):  # "01-05" typed in December: next January
                value = datetime(local_now.year + 1, mo, d, h, mi, tzinfo=tz)
            return value
        m = _TIME_ONLY.fullmatch(s)
        if m and day is not None:
            h, mi = (int(g) for g in m.groups())
            base = day.astimezone(tz)
            return datetime(base.year, base.month, base.day, h, mi, tzinfo=tz)
        return _spoken_time(s, local_now, tz, day)
    except ValueError:  # 02-30, 25:00 ...
        return None


# Times as people say them: 明天下午3点, 今天上午十点半, 后天 9:30, 下午两点一刻, tomorrow 3pm, today at 10:30 am.
_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_SPOKEN_ZH = re.compile(r"(今天|明天|后天)?\s*(早上|上午|中午|下午|傍晚|晚上)?\s*([0-9]{1,2}|[零一二两三四五六七八九十]{1,3})"
                        r"\s*(?:[点时]\s*(半|一刻|三刻|[0-9]{1,2}分?|[零一二三四五六七八九十]{1,3}分?)?|:([0-9]{2}))")
_SPOKEN_EN = re.compile(r"(today|tomorrow)?\s*(?:at\s*)?([0-9]{1,2})(?::([0-9]{2}))?\s*(am|pm)?",
                        re.IGNORECASE)


def _cn_number(text: str) -> int:
    digits = parse_int(text, low=0, high=99, strict=True)  # the pattern allows [0-9]{1,2} here
    if digits is not None:
        return digits
    if "十" in text:  # 十 10, 十二 12, 二十 20
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0)
    return _CN_DIGITS[text] if len(text) == 1 else -1


def _spoken_time(s: str, local_now: datetime, tz: ZoneInfo, day: datetime | None) -> datetime | None:
    base = (day or local_now).astimezone(tz)
    m = _SPOKEN_ZH.fullmatch(s)
    said = _spoken_zh(m) if m else _spoken_en(s)
    if said is None:
        return None
    day_word, offset, hour, minute = said
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if day is None or day_word:  # a day word counts from today; without one, the given day (or today)
        base = local_now.astimezone(tz) + timedelta(days=offset)
    return datetime(base.year, base.month, base.day, hour, minute, tzinfo=tz)


def _spoken_zh(m: re.Match[str]) -> tuple[str, int, int, int]:
    """(day word, days ahead, hour, minute) of 明天下午3点, 今天上午十点半, 后天 9:30 ..."""
    offset = {"今天": 0, "明天": 1, "后天": 2}.get(m.group(1) or "", 0)
    period, hour = m.group(2) or "", _cn_number(m.group(3))
    part = (m.group(4) or "").rstrip("分")
    quarters = {"半": 30, "一刻": 15, "三刻": 45}
    minute = quarters[part] if part in quarters else (_cn_number(part) if part else int(m.group(5) or 0))
    if (period in ("下午", "傍晚", "晚上") and 1 <= hour < 12) or (period == "中午" and 1 <= hour < 6):
        hour += 12
    elif period == "晚上" and hour == 12:  # 晚上12点: midnight, the start of the next day
        hour, offset = 0, offset + 1
    elif not period and 1 <= hour <= 6 and m.group(5) is None:
        hour += 12  # "3点" with no 上午/下午: people mean the afternoon (3:00 at night is typed 凌晨 or 03:00)
    return m.group(1) or "", offset, hour, minute


def _spoken_en(s: str) -> tuple[str, int, int, int] | None:
    """(day word, days ahead, hour, minute) of tomorrow 3pm, today at 10:30 am ...; None if not a time."""
    m = _SPOKEN_EN.fullmatch(s.lower().replace(" ", ""))
    if not m or not (m.group(3) or m.group(4)):  # a bare "3" is not a time
        return None
    offset = 1 if (m.group(1) or "").lower() == "tomorrow" else 0
    hour, minute = int(m.group(2)), int(m.group(3) or 0)
    suffix = (m.group(4) or "").lower()
    if suffix and not 1 <= hour <= 12:
        return None
    if suffix == "pm" and hour < 12:
        hour += 12
    if suffix == "am" and hour == 12:
        hour = 0
    return m.group(1) or "", offset, hour, minute


def clean_phone(text: str) -> str | None:
    value = re.sub(r"[\s\-()（）]", "", text)
    return value if _PHONE_OK.fullmatch(value) else None


def _clean_text(inp: Input, limit: int) -> str | None:
    if inp.kind != "text" or inp.text is None:
        return None
    value = inp.text.strip()
    return value if 1 <= len(value) <= limit else None


def _words(text: str | None) -> str:
    """Typed words as compared with button labels: full-width folded, lower case, no spaces or end marks."""
    return "".join(unicodedata.normalize("NFKC", text or "").casefold().split()).strip("。.!！?？~")


# What people type instead of pressing a button (the buttons stay the main way).
_WHEN_WORDS = {"asap": ("现在", "马上", "尽快", "立刻", "越快越好", "now", "asap", "assoonaspossible", "rightnow"),
               "today": ("今天", "today", "thismorning", "thisafternoon", "thisevening", "tonight"),
               "tomorrow": ("明天", "tomorrow")}
_WHEN_PARTS = ("", "上午", "下午", "晚上", "早上", "中午", "傍晚", "白天", "都行", "都可以", "就行", "吧",
               "morning", "afternoon", "evening", "night", "please", "isfine", "isok")
_WORD_NUMBERS = {"1": 1, "2": 2, "3": 3, "一": 1, "一个": 1, "一人": 1, "一个人": 1, "两": 2, "二": 2, "两个": 2,
                 "两人": 2, "两个人": 2, "三": 3, "三个": 3, "三人": 3, "三个人": 3, "one": 1, "two": 2, "three": 3}


def _typed_when(text: str | None) -> str | None:
    """"明天上午", "今天", "马上", "tomorrow morning" → tomorrow / today / asap; else None
    ("今天不行" is not "today")."""
    said = _words(text)
    for kind, words in _WHEN_WORDS.items():
        if said and any(said == w + part for w in words for part in _WHEN_PARTS):
            return kind
    return None


def _typed_category(categories: list[dict[str, object]], text: str | None) -> str | None:
    """The one category whose code or name (either language, or a part of it like 买菜 in 买菜/跑腿) was typed."""
    said = _words(text)
    if not said:
        return None
    found = set()
    for c in categories:
        names = {str(c["code"]), str(c["name_zh"]), str(c["name_en"])}
        parts = {p for n in names for p in re.split(r"[/、,，&]|\band\b", n)}
        if said in {_words(n) for n in names | parts if _words(n)}:
            found.add(str(c["code"]))
    return found.pop() if len(found) == 1 else None


# ---------------------------------------------------------------- the draft and one turn of the dialog
class RequestDraft(BaseModel):
    """What was answered so far (the dialog's stored data; the key names are those of older versions)."""

    model_config = ConfigDict(populate_by_name=True)

    draft: str = ""                  # the draft's id: submit_key "<tg user id>:<draft>"
    community_id: int = 0
    staff: bool = False
    mode: Literal["resident", "normal", "proxy", "event"] | None = None
    tz: str = DEFAULT_TIMEZONE
    title: str | None = None
    category: str | None = None
    desc: str | None = None
    voice: str | None = None         # a voice message's file id, instead of a description
    voice_s: int | None = None
    when: str | None = None          # asap / today / tomorrow / at
    starts_at: str | None = None     # UTC, as stored
    ends_at: str | None = None
    address: str | None = None       # None: the registered address
    proxy_name: str | None = None
    proxy_phone: str | None = None
    proxy_address: str | None = None
    slots: int | None = 1
    points: int | None = None
    org: int | None = None           # only members of this organisation may claim
    repeat: Literal["once", "weekly", "weekdays", "days"] | None = None  # an event: once or a series
    days: list[int] = Field(default_factory=list)  # "days": the chosen weekdays (0 Monday ... 6 Sunday)
    weeks: int | None = None         # a series: for how many weeks
    fix: bool | None = None          # changing one field from the summary: back to it next
    quick: bool = False              # started by a voice note or typed words: one summary, Submit / Change… / Cancel
    prefilled: bool = False          # "Change…" pressed: the steps show the answers so far
    asked: int | None = Field(default=None, alias="_q")  # the message with the live buttons


@dataclass
class Turn:
    """One answer being handled: the dialog, its draft and what the handlers need."""

    update: Update
    ctx: LinliContext
    dialog: Dialog
    draft: RequestDraft
    t: Translator
    now: datetime
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> str:
        return self.dialog.step

    async def categories(self) -> list[dict[str, object]]:
        if "cats" not in self._cache:
            self._cache["cats"] = await comm.categories(self.ctx.db, self.draft.community_id)
        return list(self._cache["cats"])

    async def category_names(self) -> dict[str, str]:
        key = "name_zh" if self.t.lang == "zh" else "name_en"
        return {str(c["code"]): str(c[key]) for c in await self.categories()}

    async def organisations(self) -> list[tuple[int, str]]:
        """The active organisations of the publisher's community (id, name)."""
        if "orgs" not in self._cache:
            rows = await member_svc.organisations(self.ctx.db, self.draft.community_id)
            self._cache["orgs"] = [(int(r["id"]), str(r["name"])) for r in rows[:20]]
        return list(self._cache["orgs"])

    async def home(self) -> str | None:
        """The member's registered address, or their area's name."""
        member = await load_member(self.ctx, self.dialog.tg_user_id)
        if member is None:
            return None
        if member.address:
            return member.address
        return await comm.area_name(self.ctx.db, member.area_id) if member.area_id is not None else None


async def _turn(update: Update, ctx: LinliContext, dialog: Dialog) -> Turn | None:
    try:
        draft = RequestDraft.model_validate(dialog.data)
    except ValidationError:
        return None
    return Turn(update, ctx, dialog, draft, await tr_for(update, ctx), ctx.now())


# ---------------------------------------------------------------- what a step returns
@dataclass(frozen=True)
class Question:
    text: str
    rows: list[list[tuple[str, str]]] = field(default_factory=list)
    cancel: bool = True  # a ✖ Cancel row under the buttons


Asker = Callable[[Turn], Awaitable[Question | Outcome]]
Accepter = Callable[[Turn, Input], Awaitable[Outcome]]


@dataclass(frozen=True)
class Step:
    ask: Asker       # the question (text and buttons), or an outcome when there is nothing to ask
    accept: Accepter  # a typed answer, a pressed button, a voice note... → what comes next


def _please_press(turn: Turn) -> Again:
    return Again(turn.t("Please press one of the buttons."))


def _mark(turn: Turn, label: str, chosen: bool) -> str:
    """A button's label, ticked when it is the answer so far of a draft being changed ("Change…")."""
    return "✓ " + label if chosen and turn.draft.prefilled else label


# ---------------------------------------------------------------- the steps: ask, then accept
async def ask_mode(turn: Turn) -> Question:
    t = turn.t
    return Question(t("What would you like to publish?"),
                    [[(t("🙋 A normal task"), button("mode", "normal"))],
                     [(t("👵 For a resident without Telegram"), button("mode", "proxy"))],
                     [(t("🎪 An event (many volunteers)"), button("mode", "event"))]])


async def accept_mode(turn: Turn, inp: Input) -> Outcome:
    mode = inp.pressed("normal", "proxy", "event")
    if mode is None:
        return _please_press(turn)
    turn.draft.mode = mode  # type: ignore[assignment]  # one of the three pressed
    return Go(ORDER[mode][0])


async def ask_title(turn: Turn) -> Question:
    t = turn.t
    if turn.draft.mode == "event":
        return Question(t("Please type the title of the event, e.g. “Guard the cherry blossoms” (up to {n} characters).",
                          n=TITLE_MAX))
    return Question(t("Please type a short title for the task (up to {n} characters), or press Skip.", n=TITLE_MAX),
                    [[(t("Skip"), button("title", "-skip"))]])


def _typed_into(name: str, limit: int, problem: str) -> Accepter:
    """A step that takes 1 to ``limit`` typed characters into the draft's ``name``, else says ``problem``."""

    async def accept(turn: Turn, inp: Input) -> Outcome:
        value = _clean_text(inp, limit)
        if value is None:
            return Again(turn.t(problem, n=limit))
        setattr(turn.draft, name, value)
        return Next()

    return accept


_accept_typed_title = _typed_into("title", TITLE_MAX, N_("Please type the title as text, up to {n} characters."))
accept_pname = _typed_into("proxy_name", NAME_MAX, N_("Please type the name as text, up to {n} characters."))
_ADDRESS_PROBLEM = N_("Please type the address as text, up to {n} characters.")
accept_paddr = _typed_into("proxy_address", ADDRESS_MAX, _ADDRESS_PROBLEM)
accept_addr = _typed_into("address", ADDRESS_MAX, _ADDRESS_PROBLEM)


async def accept_title(turn: Turn, inp: Input) -> Outcome:
    if inp.pressed("-skip") and turn.draft.mode != "event":
        turn.draft.title = None
        return Next()
    return await _accept_typed_title(turn, inp)


async def ask_pname(turn: Turn) -> Question:
    return Question(turn.t("Who needs help? Please type the resident's name (up to {n} characters). "
                           "It stays private: only the volunteer who takes the task sees it.", n=NAME_MAX))


async def ask_pphone(turn: Turn) -> Question:
    return Question(turn.t("Please type the resident's phone number (digits only, 7 to 15, may start with +). "
                           "It is never shown in the group."))


async def accept_pphone(turn: Turn, inp: Input) -> Outcome:
    phone = clean_phone(inp.text or "") if inp.kind == "text" else None
    if inp.kind == "contact" and inp.phone:
        phone = clean_phone(inp.phone)
    if phone is None:
        return Again(turn.t("That does not look like a phone number. Please type 7 to 15 digits, e.g. 13812345678."))
    turn.draft.proxy_phone = phone
    return Next()


async def ask_paddr(turn: Turn) -> Question:
    return Question(turn.t("Please type the resident's address (up to {n} characters). "
                           "It is never shown in the group.", n=ADDRESS_MAX))


async def ask_addr(turn: Turn) -> Question:
    return Question(turn.t("Please type the address (up to {n} characters). "
                           "Only the volunteer who takes the task will see it.", n=ADDRESS_MAX))


async def ask_cat(turn: Turn) -> Question:
    names = await turn.category_names()
    items = [(_mark(turn, name, code == turn.draft.category), button("cat", code)) for code, name in names.items()]
    text = turn.t("What kind of help is it? Please press a button.")
    if turn.draft.mode == "resident" and not turn.draft.prefilled:
        text += "\n" + turn.t("🎤 Or simply hold the microphone button and say what you need.")
    return Question(text, [items[i:i + 2] for i in range(0, len(items), 2)])


async def accept_cat(turn: Turn, inp: Input) -> Outcome:
    if inp.kind == "voice" and inp.file_id and turn.draft.mode == "resident":
        return await quick(turn, inp)  # 🆘, then a voice note: straight to the summary
    pressed = inp.pressed(*(await turn.category_names()))
    typed = _typed_category(await turn.categories(), inp.text) if inp.kind == "text" else None
    if not (pressed or typed) and _says_what(turn, inp):
        return await quick(turn, inp)  # 🆘, then what they need typed: the same summary
    if not (pressed or typed):
        return Again(turn.t("Please choose the kind of help with one of the buttons."))
    turn.draft.category = pressed or typed
    return Next()


def _says_what(turn: Turn, inp: Input) -> bool:
    """A resident typed what they need at the first question of 🆘 (not a category's name)."""
    return (inp.kind == "text" and turn.draft.mode == "resident" and not turn.draft.prefilled
            and quick_request.typed_intent(inp.text) == "request")


async def ask_desc(turn: Turn) -> Question:
    t = turn.t
    if turn.draft.mode == "event":
        return Question(t("Please describe the event: what to do, where to meet, what to bring (up to {n} characters). "
                          "You may also send a voice message, or press Skip.", n=DESC_MAX),
                        [[(t("Skip"), button("desc", "-skip"))]])
    if turn.draft.mode == "proxy":  # staff publishing for a resident: speak to them about her
        name = esc(turn.draft.proxy_name or "")
        text = t("What does {name} need? A few words (up to {n} characters), or a voice message for the volunteer.",
                 name=name, n=DESC_MAX)
        return Question(text + "\n" + t("ℹ️ Volunteers in the group see these words: please leave out {name}'s name,"
                                        " phone and address. The volunteer who takes the task gets them from me in"
                                        " private.", name=name))
    text = t("Please tell us what you need, in a few words (up to {n} characters).\n"
             "🎤 You can also hold the microphone button and speak: the volunteer will hear your voice message.",
             n=DESC_MAX)
    keep = [[(t("🎤 Keep my voice message"), button("desc", "-keep"))]] if turn.draft.voice else []
    # The typed words appear on the group card; the voice message goes only to the volunteer.
    return Question(text + "\n" + t("ℹ️ Volunteers in the group see these words, so please leave out your name, phone and"
                                    " address: the volunteer who takes the task gets them from me in private."), keep)


async def accept_desc(turn: Turn, inp: Input) -> Outcome:
    d, t = turn.draft, turn.t
    if inp.kind == "voice" and inp.file_id:
        d.voice, d.voice_s, d.desc = inp.file_id, inp.duration or 0, None
        return Next()
    if inp.pressed("-skip") and d.mode == "event":
        d.voice, d.desc = None, None
        return Next()
    if inp.pressed("-keep") and d.voice:
        return Next()
    if inp.kind != "text":
        return Again(t("Thank you! I can only use text or a voice message here. "
                       "Please type what you need, or hold the 🎤 button and speak."))
    value = (inp.text or "").strip()
    if not value:
        return Again(t("Please type a few words about what you need."))
    if len(value) > DESC_MAX:
        return Again(_too_long(t, value))
    d.desc, d.voice = value, None
    return Next()


def _too_long(t: Translator, value: str) -> str:
    return t("That is a bit long ({n} characters). Please keep it under {max}, or send a voice message.",
             n=len(value), max=DESC_MAX)


async def ask_when(turn: Turn) -> Question:
    t, when = turn.t, turn.draft.when

    def choice(label: str, value: str) -> tuple[str, str]:  # label: already translated
        return _mark(turn, label, when == value or (value == "pick" and when == "at")), button("when", value)

    return Question(t("When do you need help?"),
                    [[choice(t("⚡ As soon as possible"), "asap")],
                     [choice(t("Today"), "today"), choice(t("Tomorrow"), "tomorrow")],
                     [choice(t("🕒 Pick a time"), "pick")]])


async def accept_when(turn: Turn, inp: Input) -> Outcome:
    d = turn.draft
    spoken = parse_when(inp.text or "", turn.now, _tz(d)) if inp.kind == "text" else None
    if spoken is not None and tasks.time_allowed(spoken, turn.now):  # "明天下午3点": the time itself
        d.when, d.starts_at = "at", to_db(spoken)
        return Next()
    said = inp.pressed("asap", "today", "tomorrow") or (_typed_when(inp.text) if inp.kind == "text" else None)
    if said:
        d.when, d.starts_at = said, None
        return Next()
    if inp.pressed("pick"):
        return Go("at")
    return _please_press(turn)


async def ask_time(turn: Turn) -> Question:
    """The typed time of "at" (a request), "start" and "end" (an event)."""
    t = turn.t
    example = (turn.now.astimezone(_tz(turn.draft)) + timedelta(days=1)).replace(hour=9, minute=30)
    full, short = example.strftime("%Y-%m-%d %H:%M"), example.strftime("%m-%d %H:%M")
    if turn.step == "end":
        text = t("When does the event end? Please type the time, e.g. {example}, or only the hour, e.g. 17:00.",
                 example=example.strftime("%Y-%m-%d 17:00"))
    elif turn.step == "start":
        text = t("When does the event start? Please type the date and time, e.g. {example} or {short}.",
                 example=full, short=short)
    else:
        text = t("Please type the date and time, e.g. {example} or {short}.", example=full, short=short)
    return Question(text + "\n" + t("Or as you would say it, e.g. 明天下午3点 or tomorrow 3pm."))


async def accept_time(turn: Turn, inp: Input) -> Outcome:
    d, end = turn.draft, turn.step == "end"
    start = from_db(d.starts_at) if end and d.starts_at else None
    when = parse_when(inp.text or "", turn.now, _tz(d), day=start) if inp.kind == "text" else None
    if when is None:
        return Again(turn.t("Sorry, I could not read that time."))
    try:  # the task's time window is the service's rule
        tasks.check_time(when, turn.now, start=(start or when) if end else None, start_text=_local(d, d.starts_at))
    except DomainError as err:
        return Again(error_text(turn.t, err))
    if end:
        d.ends_at = to_db(when)
    else:
        d.starts_at = to_db(when)
        if turn.step == "at":
            d.when = "at"
    return Next()


async def ask_where(turn: Turn) -> Question | Outcome:
    home = await turn.home()
    if home is None:
        return Go("addr")
    t = turn.t
    other = turn.draft.address is not None
    return Question(t("Where should the volunteer come? Your registered address is: {home}", home=esc(home)),
                    [[(_mark(turn, t("🏠 My registered address"), not other), button("where", "home"))],
                     [(_mark(turn, t("📍 Another place"), other), button("where", "other"))]])


async def accept_where(turn: Turn, inp: Input) -> Outcome:
    if inp.pressed("home"):
        turn.draft.address = None
        return Next()
    if inp.pressed("other"):
        return Go("addr")
    return _please_press(turn)


async def ask_helpers(turn: Turn) -> Question:
    return Question(turn.t("How many helpers do you need? Most tasks need 1."),
                    [[(_mark(turn, str(n), turn.draft.slots == n), button("helpers", str(n))) for n in (1, 2, 3)]])


async def accept_helpers(turn: Turn, inp: Input) -> Outcome:
    pressed = inp.pressed("1", "2", "3")
    count = int(pressed) if pressed else (_WORD_NUMBERS.get(_words(inp.text)) if inp.kind == "text" else None)
    if not count:
        return _please_press(turn)
    turn.draft.slots = count
    return Next()


async def ask_slots(turn: Turn) -> Question:
    return Question(turn.t("How many volunteers do you need? Please type a number from 1 to {n}.", n=SLOTS_MAX))


async def ask_points(turn: Turn) -> Question:
    return Question(turn.t("How many points does each volunteer get? Please type a number from 0 to {n}.",
                           n=POINTS_MAX))


async def accept_number(turn: Turn, inp: Input) -> Outcome:
    """Places or points per volunteer, as the task service allows (tasks.check_slots, tasks.check_points)."""
    places = turn.step == "slots"
    typed = parse_int(inp.text, low=-(10**9), high=10**9) if inp.kind == "text" else None
    try:
        n = (tasks.check_slots if places else tasks.check_points)(typed)
    except DomainError as err:
        return Again(error_text(turn.t, err))
    if places:
        turn.draft.slots = n
    else:
        turn.draft.points = n
    return Next()


async def ask_org(turn: Turn) -> Question | Outcome:
    orgs = await turn.organisations()
    if not orgs:  # nothing to choose: everyone may claim
        turn.draft.org = None
        return Next()
    rows = [[(turn.t("👥 Every volunteer"), button("org", "all"))]]
    rows += [[(name[:40], button("org", str(oid)))] for oid, name in orgs]
    return Question(turn.t("Who may claim it? Everyone, or only the members of one organisation?"), rows)


async def accept_org(turn: Turn, inp: Input) -> Outcome:
    if inp.pressed("all"):
        turn.draft.org = None
        return Next()
    org = parse_int(inp.text, strict=True) if inp.kind == "callback" else None
    if org is None or org not in dict(await turn.organisations()):
        return _please_press(turn)
    turn.draft.org = org
    return Next()


def _start_weekday(draft: RequestDraft) -> int:
    start = from_db(draft.starts_at) if draft.starts_at else None
    return start.astimezone(_tz(draft)).weekday() if start else 0


async def ask_repeat(turn: Turn) -> Question:
    t, chosen = turn.t, turn.draft.repeat

    def choice(label: str, value: str) -> tuple[str, str]:
        return _mark(turn, label, chosen == value), button("repeat", value)

    day = t(WEEKDAY_NAMES[_start_weekday(turn.draft)])
    return Question(t("Does the event repeat?"),
                    [[choice(t("Only once"), "once")],
                     [choice(t("Every week on {day}", day=day), "weekly")],
                     [choice(t("Every weekday (Monday to Friday)"), "weekdays")],
                     [choice(t("Every week on chosen days…"), "days")]])


async def accept_repeat(turn: Turn, inp: Input) -> Outcome:
    d, chosen = turn.draft, inp.pressed(*REPEATS)
    if chosen is None:
        return _please_press(turn)
    d.repeat = chosen  # type: ignore[assignment]  # one of REPEATS
    if chosen == "once":
        d.weeks, d.days = None, []
        return Next()
    if chosen == "days":
        d.days = d.days or [_start_weekday(d)]
        return Go("days")
    return Go("weeks")


async def ask_days(turn: Turn) -> Question:
    t, chosen = turn.t, set(turn.draft.days)
    items = [(("✓ " if n in chosen else "") + t(WEEKDAY_NAMES[n]), button("days", str(n))) for n in range(7)]
    return Question(t("Which days of the week? Press a day to choose it or take it away, then press ✅ Done."),
                    [items[:4], items[4:], [(t("✅ Done"), button("days", "-done"))]])


async def accept_days(turn: Turn, inp: Input) -> Outcome:
    d = turn.draft
    if inp.pressed("-done"):
        return Go("weeks") if d.days else Again(turn.t("Please choose at least one day."))
    pressed = inp.pressed(*(str(n) for n in range(7)))
    if pressed is None:
        return _please_press(turn)
    day = int(pressed)
    d.days = sorted(set(d.days) ^ {day})
    return Go("days")  # the same question, with the days ticked as they are now


async def ask_weeks(turn: Turn) -> Question | Outcome:
    d, t = turn.draft, turn.t
    if d.repeat in (None, "once"):
        return Next()
    return Question(t("For how many weeks? Press a button, or type a number from 1 to {n}.", n=series.WEEKS_MAX),
                    [[(_mark(turn, str(n), d.weeks == n), button("weeks", str(n))) for n in (4, 8, 12)]])


async def accept_weeks(turn: Turn, inp: Input) -> Outcome:
    n = parse_int(inp.text, low=-(10**9), high=10**9) if inp.kind in ("text", "callback") else None
    try:
        if n is None:
            raise DomainError(N_("Please type a number of weeks from 1 to {n}."), n=series.WEEKS_MAX)
        series.check_weeks(n)
    except DomainError as err:
        return Again(error_text(turn.t, err))
    turn.draft.weeks = n
    return Next()


def repeat_mask(draft: RequestDraft) -> int:
    """The weekdays of a series as the service stores them."""
    if draft.repeat == "weekdays":
        return series.WEEKDAYS
    if draft.repeat == "days" and draft.days:
        return series.mask_of(draft.days)
    return series.mask_of([_start_weekday(draft)])


def is_series(draft: RequestDraft) -> bool:
    return draft.mode == "event" and draft.repeat in ("weekly", "weekdays", "days")


def repeat_words(t: Translator, mask: int) -> str:
    """"every Saturday", "every weekday (Monday to Friday)", "every Tuesday, Thursday"."""
    if mask == series.WEEKDAYS:
        return t("every weekday (Monday to Friday)")
    names = [t(WEEKDAY_NAMES[n]) for n in series.days_of(mask)]
    return t("every {days}", days=t.join(names))


async def ask_confirm(turn: Turn) -> Question:
    t = turn.t
    if turn.draft.quick:
        return Question(await summary(turn) + "\n\n" + t("If this is right, press ✅ Submit. To change something, "
                                                          "press ✏ Change…."),
                        [[(t("✅ Submit"), button("confirm", "submit"))],
                         [(t("✏ Change…"), button("confirm", "change")), (t("✖ Cancel"), button("confirm", "-cancel"))]],
                        cancel=False)
    return Question(await summary(turn) + "\n\n" + t("Is everything right?"),
                    [[(t("✅ Submit"), button("confirm", "submit"))],
                     [(t("✏ Edit"), button("confirm", "edit")), (t("✖ Cancel"), button("confirm", "-cancel"))]],
                    cancel=False)


async def accept_confirm(turn: Turn, inp: Input) -> Outcome:
    if inp.pressed("submit"):
        await dialogs.close_buttons(turn.update)
        await _submit(turn)
        return Stop()
    if inp.pressed("edit"):
        return Go("edit")
    if inp.pressed("change") and turn.draft.quick:  # the full dialog, step by step, with the answers so far
        turn.draft.quick, turn.draft.prefilled = False, True
        return Go(ORDER[str(turn.draft.mode)][0])
    return _please_press(turn)


def _fields(draft: RequestDraft) -> list[str]:
    return [f for f in ORDER[str(draft.mode)] if f != "confirm"]


async def ask_edit(turn: Turn) -> Question:
    t = turn.t
    items = [(t(FIELD_LABELS[f]), button("edit", f)) for f in _fields(turn.draft)]
    rows = [items[i:i + 2] for i in range(0, len(items), 2)]
    rows.append([(t("↩ Back to the summary"), button("edit", "-back"))])
    return Question(t("What would you like to change?"), rows, cancel=False)


async def accept_edit(turn: Turn, inp: Input) -> Outcome:
    if inp.pressed("-back"):
        return Go("confirm")
    chosen = inp.pressed(*_fields(turn.draft))
    if chosen is None:
        return _please_press(turn)
    turn.draft.fix = True
    return Go(chosen)


# Every step of /request and /publish: how it asks, how it accepts. Which follows which: ORDER.
STEPS: dict[str, Step] = {
    "mode": Step(ask_mode, accept_mode),            # staff: a normal task, for a resident, an event
    "title": Step(ask_title, accept_title),         # typed (Skip unless an event)
    "pname": Step(ask_pname, accept_pname),         # for a resident: their name,
    "pphone": Step(ask_pphone, accept_pphone),      # phone (typed, or a shared contact)
    "paddr": Step(ask_paddr, accept_paddr),         # and address
    "cat": Step(ask_cat, accept_cat),               # a category button, or its name typed
    "desc": Step(ask_desc, accept_desc),            # text or a voice message
    "when": Step(ask_when, accept_when),            # asap / today / tomorrow / pick, or a time as said
    "at": Step(ask_time, accept_time),              # "pick": a typed time
    "where": Step(ask_where, accept_where),         # home (skipped when there is none) or another place
    "addr": Step(ask_addr, accept_addr),            # another place, typed
    "helpers": Step(ask_helpers, accept_helpers),   # 1 / 2 / 3, pressed or typed
    "slots": Step(ask_slots, accept_number),        # an event's places, typed
    "start": Step(ask_time, accept_time),           # an event's start
    "end": Step(ask_time, accept_time),             # and end
    "points": Step(ask_points, accept_number),      # points per volunteer
    "org": Step(ask_org, accept_org),               # everyone or one organisation (skipped when none)
    "repeat": Step(ask_repeat, accept_repeat),      # an event: once, every week, every weekday, chosen days
    "days": Step(ask_days, accept_days),            # "chosen days": weekday buttons, then Done
    "weeks": Step(ask_weeks, accept_weeks),         # a series: for how many weeks (skipped when once)
    "confirm": Step(ask_confirm, accept_confirm),   # the summary: Submit / Edit / Cancel
    "edit": Step(ask_edit, accept_edit),            # which field to change (then back to the summary)
}


def next_step(draft: RequestDraft, done: str) -> str:
    """The step after ``done`` (back to the summary when a single field was being changed)."""
    done = SUB_STEP_OF.get(done, done)
    if done == "start" and draft.fix:
        return "end"  # a new start needs a matching end
    if draft.fix:
        draft.fix = None
        return "confirm"
    order = ORDER[str(draft.mode)]
    return order[order.index(done) + 1]


# ---------------------------------------------------------------- running the steps
@flow(FLOW, ask=lambda update, ctx, dialog, prefix: prompt(update, ctx, dialog, prefix))
async def request_flow(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input) -> None:
    turn = await _turn(update, ctx, dialog)
    if inp.kind == "callback" and inp.text == "-cancel":
        await dialogs.close_buttons(update)
        await dialogs.finish(ctx, dialog.tg_user_id)
        t = await tr_for(update, ctx)
        await reply(update, t("Cancelled. Nothing was sent."), await main_menu(ctx, dialog.tg_user_id, t))
        return
    step = STEPS.get(dialog.step)
    if turn is None or step is None:
        await _start_again(update, ctx, dialog)
        return
    await _follow(turn, await step.accept(turn, inp))


async def _start_again(update: Update, ctx: LinliContext, dialog: Dialog) -> None:
    """A step or draft this version does not know (an older dialog): start again cleanly."""
    t = await tr_for(update, ctx)
    await dialogs.finish(ctx, dialog.tg_user_id)
    await reply(update, t("Sorry, let us start again: please send /request."), await main_menu(ctx, dialog.tg_user_id, t))


async def _follow(turn: Turn, outcome: Outcome, prefix: str = "") -> None:
    """Do what a step returned: move on (saving the draft with the new step) or ask again."""
    if isinstance(outcome, Stop):
        return
    if isinstance(outcome, Again):
        await _prompt(turn, outcome.why)
        return
    turn.dialog.step = outcome.step if isinstance(outcome, Go) else next_step(turn.draft, turn.step)
    turn.dialog.data = turn.draft.model_dump(by_alias=True)
    await dialogs.save(turn.ctx, turn.dialog)
    await _prompt(turn, prefix)


async def prompt(update: Update, ctx: LinliContext, dialog: Dialog, prefix: str = "") -> None:
    """Ask the question of the dialog's current step (``prefix``: why we ask again)."""
    turn = await _turn(update, ctx, dialog)
    if turn is None or dialog.step not in STEPS:
        await _start_again(update, ctx, dialog)
        return
    await _prompt(turn, prefix)


async def _prompt(turn: Turn, prefix: str = "") -> None:
    asked = await STEPS[turn.step].ask(turn)
    if not isinstance(asked, Question):  # nothing to ask here (no home address, no organisations)
        await _follow(turn, asked, prefix)
        return
    rows = list(asked.rows)
    if asked.cancel:
        rows.append([(turn.t("✖ Cancel"), button(turn.step, "-cancel"))])
    await _ask(turn, (prefix + "\n\n" if prefix else "") + asked.text, inline(rows))


async def _ask(turn: Turn, text: str, markup: InlineKeyboardMarkup) -> None:
    turn.draft.asked = await dialogs.ask(turn.update, turn.ctx, turn.dialog, turn.draft.asked, text, markup)


# ---------------------------------------------------------------- the summary and submitting
async def summary(turn: Turn) -> str:
    """The draft in plain words (private chat: it may show the address and the resident's phone)."""
    d, t = turn.draft, turn.t
    lines = [t("<b>Please check your request:</b>") if d.mode == "resident" else t("<b>Please check the task:</b>")]
    if d.quick:
        lines = [t("<b>Thank you, I have your voice message.</b> I will ask the volunteers for help like this:")
                 if d.voice else t("<b>Thank you, I have your message.</b> I will ask the volunteers for help like this:")]
    if d.mode == "proxy":
        lines.append(t("For: {name}, phone {phone}", name=esc(d.proxy_name), phone=esc(d.proxy_phone)))
        lines.append(t("Address: {a}", a=esc(d.proxy_address)))
    if d.title:
        lines.append(t("Title: {x}", x=esc(d.title)))
    names = await turn.category_names()
    lines.append(t("Category: {c}", c=esc(names.get(str(d.category), d.category))))
    if d.voice and d.quick:
        lines.append(t("What: 🎤 your voice message ({s} s). Only the volunteer who takes it will hear it.",
                       s=int(d.voice_s or 0)))
    elif d.voice:
        lines.append(t("Description: 🎤 a voice message ({s} s)", s=int(d.voice_s or 0)))
    elif d.desc:
        lines.append(t("Description: {x}", x=esc(d.desc)))
        if d.quick:
            lines.append(t("ℹ️ Volunteers in the group see these words, with phone numbers hidden; your name, phone "
                           "and address go only to the volunteer who takes it."))
    if d.org:
        lines.append(t("Only for members of: {o}", o=esc(dict(await turn.organisations()).get(d.org, "?"))))
    lines += _event_lines(turn) if d.mode == "event" else await _request_lines(turn)
    return "\n".join(lines)


def _event_lines(turn: Turn) -> list[str]:
    d, t = turn.draft, turn.t
    lines = [t("Places: {n}", n=d.slots),
             t("From {start} to {end}", start=_local(d, d.starts_at), end=_local(d, d.ends_at)),
             t("Points per volunteer: {n}", n=d.points)]
    if is_series(d):
        lines.append(t("Repeats: {how}, for {n} weeks. Each event is posted in the group a few days before it starts.",
                       how=repeat_words(t, repeat_mask(d)), n=d.weeks))
    return lines


async def _request_lines(turn: Turn) -> list[str]:
    d, t = turn.draft, turn.t
    when = {"asap": t("As soon as possible"), "today": t("Today"), "tomorrow": t("Tomorrow")}.get(str(d.when))
    lines = [t("When: {w}", w=esc(when or _local(d, d.starts_at)))]
    if d.mode != "proxy":
        if d.address:
            lines.append(t("Where: {a}", a=esc(d.address)))
        else:
            lines.append(t("Where: your registered address ({a})", a=esc(await turn.home() or "")))
    lines.append(t("Helpers: {n}", n=d.slots or 1))
    return lines


def new_task(draft: RequestDraft, tg_user_id: int) -> tasks.NewTask:
    """The task the finished draft asks for."""
    d, mode = draft, str(draft.mode)
    event, proxy = mode == "event", mode == "proxy"
    return tasks.NewTask(
        category=str(d.category), description=d.desc, voice_file_id=d.voice, title=d.title,
        when_kind="at" if event else str(d.when or "asap"),
        starts_at=from_db(d.starts_at) if d.starts_at else None,
        ends_at=from_db(d.ends_at) if event and d.ends_at else None,
        address=d.address if mode in ("resident", "normal") else None,
        slots=int(d.slots or 1),
        points=d.points if event else None,
        kind="event" if event else "request",
        is_proxy=proxy,
        proxy_name=d.proxy_name if proxy else None,
        proxy_phone=d.proxy_phone if proxy else None,
        proxy_address=d.proxy_address if proxy else None,
        organisation_id=d.org if d.org and mode in ("normal", "event") else None,
        submit_key=f"{tg_user_id}:{d.draft}",
    )


async def _submit(turn: Turn) -> None:
    ctx, t, user_id = turn.ctx, turn.t, turn.dialog.tg_user_id
    member = await load_member(ctx, user_id)
    if member is None or not member.registered:
        await dialogs.finish(ctx, user_id)
        await reply(turn.update, error_text(t, NotRegistered()))
        return
    if is_series(turn.draft):
        await _submit_series(turn, member)
        return
    try:
        task_id = await tasks.create_task(ctx.db, ctx.now(), member.id, new_task(turn.draft, user_id),
                                          staff=turn.draft.staff)
    except DomainError as exc:
        await dialogs.finish(ctx, user_id)
        await reply(turn.update, error_text(t, exc), await main_menu(ctx, user_id, t))
        return
    await dialogs.finish(ctx, user_id)
    await reply(turn.update, await _submitted_text(turn, task_id), await main_menu(ctx, user_id, t))


async def _submit_series(turn: Turn, member: Member) -> None:
    """Save the series; the occurrences due now are posted at once (the series job posts the rest)."""
    ctx, t, user_id, d = turn.ctx, turn.t, turn.dialog.tg_user_id, turn.draft
    new = series.NewSeries(new_task(d, user_id), repeat_mask(d), int(d.weeks or 1))
    try:
        series_id = await series.create_series(ctx.db, ctx.now(), member.id, new)
        await series.post_due(ctx.db, ctx.now())
        saved = await series.load(ctx.db, series_id)
        ahead = await series.days_ahead(ctx.db, int(d.community_id))
    except DomainError as exc:
        await dialogs.finish(ctx, user_id)
        await reply(turn.update, error_text(t, exc), await main_menu(ctx, user_id, t))
        return
    await dialogs.finish(ctx, user_id)
    count = series.occurrence_count(saved) if saved is not None else 0
    text = t("The series is saved: {n} events, {how}. Each one is published in the group {days} days before it "
             "starts, with its own places; those starting sooner are published now. To change the places or the "
             "time, or to stop the series, send /series.",
             n=count, how=repeat_words(t, new.weekdays), days=ahead)
    await reply(turn.update, text, await main_menu(ctx, user_id, t))


async def _submitted_text(turn: Turn, task_id: int) -> str:
    t, mode = turn.t, turn.draft.mode
    if await tasks.state_of(turn.ctx.db, task_id) == "pending_review":
        return t("Thank you! Your request is waiting for staff review. I will tell you when it is published.")
    if not await tasks.reaches_volunteers(turn.ctx.db, task_id):
        if mode == "resident":
            return t("Your request is saved (#{id}), but the volunteers' group cannot be reached just now, so I have"
                     " told the community staff: they will find a helper or call you.", id=task_id)
        return t("The task is saved (#{id}), but Linli is not in the volunteer group now, so nobody sees it yet. Add me"
                 " back to the group and it is posted there.", id=task_id)
    if mode == "event":
        return t("The event is published in the group (#{id}). Volunteers can claim their places now.", id=task_id)
    if mode == "resident":
        return t("Your request is sent (#{id}). I will tell you when a volunteer takes it. "
                 "You can see it any time: press 🗂 My tasks.", id=task_id)
    return t("The task is published in the group (#{id}). I will tell you when a volunteer takes it.", id=task_id)


# ---------------------------------------------------------------- starting
async def _open(update: Update, ctx: LinliContext, member: Member, mode: str | None, *, as_staff: bool) -> Dialog:
    """A new dialog at the first step of ``mode`` (None: staff choose what to publish)."""
    user = update.effective_user
    assert user is not None and member.community_id is not None
    tz = await comm.timezone(ctx.db, member.community_id)
    draft = RequestDraft(draft=secrets.token_hex(6), community_id=member.community_id, staff=as_staff,
                         mode=mode, tz=str(tz or ctx.settings.tz.key), slots=1)  # type: ignore[arg-type]
    first = "mode" if mode is None else ORDER[mode][0]
    return await dialogs.start(ctx, user.id, FLOW, first, draft.model_dump(by_alias=True))


async def _begin(update: Update, ctx: LinliContext, member: Member, mode: str | None, *, as_staff: bool) -> None:
    await prompt(update, ctx, await _open(update, ctx, member, mode, as_staff=as_staff))


# ---------------------------------------------------------------- the quick request: one voice note
async def quick(turn: Turn, inp: Input) -> Outcome:
    """A resident's voice note, or what they typed, with the service's defaults (as soon as possible,
    at home, one helper, the category used last or "other"): straight to the summary (by the typed
    address if there is no home)."""
    d, member = turn.draft, await load_member(turn.ctx, turn.dialog.tg_user_id)
    if inp.kind == "text" and len((inp.text or "").strip()) > DESC_MAX:
        return Again(_too_long(turn.t, (inp.text or "").strip()))
    codes = [str(c["code"]) for c in await turn.categories()]
    chosen = await quick_request.defaults(turn.ctx.db, member.id if member else 0, codes)  # none: Submit says so
    d.category, d.when, d.starts_at, d.slots, d.address = chosen.category, chosen.when, None, chosen.slots, None
    if inp.kind == "text":
        d.voice, d.voice_s, d.desc = None, None, (inp.text or "").strip()
    else:
        d.voice, d.voice_s, d.desc = inp.file_id, inp.duration or 0, None
    d.quick = True
    if await turn.home() is None:
        d.fix = True  # the typed place, then back to the summary
        return Go("addr")
    return Go("confirm")


@dialogs.starter("voice-request")
async def voice_request(update: Update, ctx: LinliContext) -> bool:
    """A voice note sent in private outside any dialog: a resident's quick request; anyone else a
    polite word. (A voice note in the middle of a dialog is that dialog's answer: this never sees it.)"""
    msg, user = update.effective_message, update.effective_user
    if msg is None or msg.voice is None or user is None:
        return False
    t = await tr_for(update, ctx)
    try:
        member = quick_request.may_ask(await load_member(ctx, user.id))
    except NotRegistered:
        await reply(update, t("Thank you for your voice message. To ask for help, please register first: "
                              "send /start. It takes a minute."))
        return True
    except DomainError as err:
        await reply(update, error_text(t, err), await main_menu(ctx, user.id, t))
        return True
    turn = await _turn(update, ctx, await _open(update, ctx, member, "resident", as_staff=False))
    assert turn is not None  # a draft just made
    await _follow(turn, await quick(turn, dialogs.input_from_message(update)))
    return True


@dialogs.starter("typed-request")
async def typed_request(update: Update, ctx: LinliContext) -> bool:
    """A registered resident types what they need in private outside any dialog: the quick request's
    summary, as for a voice note ("I need help" alone: the first question). Thanks, "ok", an emoji,
    and anyone not a resident: left to the polite fallback."""
    msg, user = update.effective_message, update.effective_user
    if msg is None or msg.text is None or user is None:
        return False
    if msg.reply_to_message is not None and msg.reply_to_message.from_user is not None \
            and msg.reply_to_message.from_user.is_bot:
        return False  # an answer to one of the bot's messages ("是的，他来过了"), not a new request
    if await checkin.is_code(ctx.db, msg.text):
        return False  # an event's check-in code (bot/conversations/checkin.py checks them in)
    intent = quick_request.typed_intent(msg.text)
    member = await load_member(ctx, user.id) if intent != "chatter" else None
    if member is None or not member.registered or member.community_id is None or not member.is_resident:
        return False
    if intent == "help":
        await _begin(update, ctx, member, "resident", as_staff=False)
        return True
    if len(msg.text.strip()) > DESC_MAX:
        await reply(update, _too_long(await tr_for(update, ctx), msg.text.strip()))
        return True
    turn = await _turn(update, ctx, await _open(update, ctx, member, "resident", as_staff=False))
    assert turn is not None  # a draft just made
    await _follow(turn, await quick(turn, dialogs.input_from_message(update)))
    return True


async def request_command(update: Update, ctx: LinliContext) -> None:
    """/request and the "Ask for help" menu button: registered residents only."""
    user = update.effective_user
    if user is None:
        return
    t = await tr_for(update, ctx)
    member = await load_member(ctx, user.id)
    if member is None or not member.registered or member.community_id is None:
        await reply(update, t("Hello! To ask for help, please register first: send /start."))
        return
    if not member.is_resident:
        await reply(update, t("Asking for help is for residents. You are registered as a volunteer: "
                              "see open tasks with /tasks. If you also need help yourself, send /start "
                              "and choose “Both”."), await main_menu(ctx, user.id, t))
        return
    await _begin(update, ctx, member, "resident", as_staff=False)


async def publish_command(update: Update, ctx: LinliContext) -> None:
    """/publish and the "Publish a task" menu button: community staff."""
    user = update.effective_user
    if user is None:
        return
    t = await tr_for(update, ctx)
    try:
        member = await require_staff(ctx.db, user.id, ctx.settings.admin_ids)
    except NotAllowed:
        await reply(update, t("Sorry, only community staff can publish tasks. To ask for help, send /request."))
        return
    if member is None or not member.registered or member.community_id is None:
        await reply(update, t("Please register in your community first (send /start), so I know where to publish."))
        return
    await _begin(update, ctx, member, None, as_staff=True)


# ---------------------------------------------------------------- menu and registration
@menu_item("request", N_("🆘 Ask for help"), visible=resident, order=10,
           about=N_("tell me what you need. You can also simply send me a voice message."))
async def _menu_request(update: Update, ctx: LinliContext) -> None:
    await request_command(update, ctx)


@menu_item("publish", N_("📢 Publish a task"), visible=staff, order=15,
           about=N_("a task for a resident (also one without Telegram), or an event that recruits many."))
async def _menu_publish(update: Update, ctx: LinliContext) -> None:
    await publish_command(update, ctx)


def register(app: LinliApp) -> None:
    """Add the /request and /publish dialogs."""
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("request", request_command, filters=private))
    app.add_handler(CommandHandler("publish", publish_command, filters=private))
