"""Asking for help (/request, residents) and publishing tasks (/publish, staff): step-by-step
dialogs, buttons first, every step stored so a restart continues where the person was.

Steps of a resident's request: category → describe (text or voice) → when (→ typed time) →
where (→ typed address) → how many helpers → summary (Submit / Edit / Cancel).
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
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import CommandHandler, filters

from bot import dialogs
from bot.context import LinliApp, LinliContext
from bot.dialogs import Dialog, Input, button, flow
from bot.i18n import Translator
from bot.menu import load_member, main_menu, menu_item, resident, staff
from bot.models import N_, DomainError, Member, NotAllowed, NotRegistered
from bot.numbers import parse_int
from bot.services import communities as comm
from bot.services import tasks
from bot.services.access import require_staff
from bot.ui import edit_or_send, error_text, esc, inline, reply, tr_for
from storage.timeutil import from_db, to_db

FLOW = "request"
DESC_MAX = 500
TITLE_MAX = 80
NAME_MAX = 40
ADDRESS_MAX = 200
MAX_AHEAD = timedelta(days=90)
SLOTS_MAX = 200
POINTS_MAX = 100

# The steps of each kind of dialog, in order ("at" follows "when", "addr" follows "where").
ORDER: dict[str, list[str]] = {
    "resident": ["cat", "desc", "when", "where", "helpers", "confirm"],
    "normal": ["title", "cat", "desc", "when", "where", "helpers", "org", "confirm"],
    "proxy": ["pname", "pphone", "paddr", "cat", "desc", "when", "helpers", "confirm"],
    "event": ["title", "cat", "desc", "slots", "start", "end", "points", "org", "confirm"],
}
SUB_STEP_OF = {"at": "when", "addr": "where"}
FIELD_LABELS = {
    "title": N_("Title"), "cat": N_("Category"), "desc": N_("Description"), "when": N_("Time"),
    "where": N_("Place"), "helpers": N_("Helpers"), "pname": N_("Resident's name"),
    "pphone": N_("Resident's phone"), "paddr": N_("Resident's address"), "slots": N_("Places"),
    "start": N_("Start time"), "end": N_("End time"), "points": N_("Points"), "org": N_("Who may claim"),
}
_PHONE_OK = re.compile(r"\+?\d{7,15}")
# Digits as bot.numbers reads them: ASCII (full-width ones are made ASCII first), not \d's other scripts.
_FULL_DT = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2}) +([0-9]{1,2}):([0-9]{2})")
_SHORT_DT = re.compile(r"([0-9]{1,2})-([0-9]{1,2}) +([0-9]{1,2}):([0-9]{2})")
_TIME_ONLY = re.compile(r"([0-9]{1,2}):([0-9]{2})")


# ---------------------------------------------------------------- small helpers
def _tz(dialog: Dialog) -> ZoneInfo:
    try:
        return ZoneInfo(str(dialog.data.get("tz") or "Asia/Shanghai"))
    except (KeyError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def _local(dialog: Dialog, value: str | None) -> str:
    """A stored UTC time as the community's local "YYYY-MM-DD HH:MM"."""
    if not value:
        return ""
    return from_db(value).astimezone(_tz(dialog)).strftime("%Y-%m-%d %H:%M")


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
    if m:
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
    else:
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
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if day is None or m.group(1):  # a day word counts from today; without one, the given day (or today)
        base = local_now.astimezone(tz) + timedelta(days=offset)
    return datetime(base.year, base.month, base.day, hour, minute, tzinfo=tz)


def clean_phone(text: str) -> str | None:
    value = re.sub(r"[\s\-()（）]", "", text)
    return value if _PHONE_OK.fullmatch(value) else None


def _clean_text(inp: Input, limit: int) -> str | None:
    if inp.kind != "text" or inp.text is None:
        return None
    value = inp.text.strip()
    return value if 1 <= len(value) <= limit else None


async def _ask(update: Update, ctx: LinliContext, dialog: Dialog, text: str, markup: InlineKeyboardMarkup) -> None:
    """A question with buttons: after a button press it replaces the pressed message (no stale
    buttons left, one message per step), otherwise it is a new message and the previous
    question's buttons are taken off (so only one set of buttons is ever live)."""
    query = update.callback_query
    if query is not None and query.message is not None:
        await edit_or_send(query, text, markup)
        asked: int | None = query.message.message_id
    else:
        before = dialog.data.get("_q")
        chat = update.effective_chat
        if isinstance(before, int) and chat is not None:
            await _take_buttons_off(update, chat.id, before)
        sent = await reply(update, text, markup)
        asked = sent.message_id if sent is not None else None
    if asked != dialog.data.get("_q"):
        dialog.data["_q"] = asked
        # Only into the dialog as it still is: a Cancel pressed meanwhile (button presses run in a
        # lane of their own) must not be undone by writing the whole dialog back.
        async with ctx.db.transaction() as conn:
            await conn.execute("UPDATE dialogs SET data = json_set(data, '$._q', ?) WHERE tg_user_id = ? AND flow = ?"
                               " AND step = ?", (asked, dialog.tg_user_id, dialog.flow, dialog.step))


async def _close_buttons(update: Update) -> None:
    """Take the buttons off the message just pressed, so an old step cannot be pressed again."""
    query = update.callback_query
    if query is not None and query.message is not None:
        await _take_buttons_off(update, query.message.chat.id, query.message.message_id)


async def _take_buttons_off(update: Update, chat_id: int, message_id: int) -> None:
    try:
        # A plain request: the library would add the default parse_mode, which this method lacks.
        await update.get_bot().do_api_request(
            "editMessageReplyMarkup", api_kwargs={"chat_id": chat_id, "message_id": message_id})
    except TelegramError:
        pass


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


async def _typed_category(ctx: LinliContext, dialog: Dialog, text: str | None) -> str | None:
    """The one category whose code or name (either language, or a part of it like 买菜 in 买菜/跑腿) was typed."""
    said = _words(text)
    if not said:
        return None
    found = set()
    for c in await comm.categories(ctx.db, int(dialog.data["community_id"])):
        names = {str(c["code"]), str(c["name_zh"]), str(c["name_en"])}
        parts = {p for n in names for p in re.split(r"[/、,，&]|\band\b", n)}
        if said in {_words(n) for n in names | parts if _words(n)}:
            found.add(str(c["code"]))
    return found.pop() if len(found) == 1 else None


async def _category_names(ctx: LinliContext, dialog: Dialog, t: Translator) -> dict[str, str]:
    key = "name_zh" if t.lang == "zh" else "name_en"
    return {str(c["code"]): str(c[key]) for c in await comm.categories(ctx.db, int(dialog.data["community_id"]))}


async def _home(ctx: LinliContext, member: Member | None) -> str | None:
    """The member's registered address, or their area's name."""
    if member is None:
        return None
    if member.address:
        return member.address
    if member.area_id is not None:
        name = await ctx.db.fetchval("SELECT name FROM areas WHERE id = ?", (member.area_id,))
        return str(name) if name else None
    return None


# ---------------------------------------------------------------- starting
async def _begin(update: Update, ctx: LinliContext, member: Member, mode: str | None, *, as_staff: bool) -> None:
    user = update.effective_user
    assert user is not None and member.community_id is not None
    tz = await ctx.db.fetchval("SELECT timezone FROM communities WHERE id = ?", (member.community_id,))
    data: dict[str, Any] = {
        "draft": secrets.token_hex(6), "community_id": member.community_id, "staff": as_staff,
        "mode": mode, "tz": str(tz or ctx.settings.tz.key), "slots": 1,
    }
    first = "mode" if mode is None else ORDER[mode][0]
    dialog = await dialogs.start(ctx, user.id, FLOW, first, data)
    await prompt(update, ctx, dialog)


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


# ---------------------------------------------------------------- questions
async def prompt(update: Update, ctx: LinliContext, dialog: Dialog, prefix: str = "") -> None:
    """Ask the question of the dialog's current step (``prefix``: why we ask again)."""
    t = await tr_for(update, ctx)
    head = prefix + "\n\n" if prefix else ""
    step = dialog.step
    event = dialog.data.get("mode") == "event"
    cancel_row = [(t("✖ Cancel"), button(step, "-cancel"))]
    if step == "mode":
        rows = [[(t("🙋 A normal task"), button("mode", "normal"))],
                [(t("👵 For a resident without Telegram"), button("mode", "proxy"))],
                [(t("🎪 An event (many volunteers)"), button("mode", "event"))], cancel_row]
        await _ask(update, ctx, dialog, head + t("What would you like to publish?"), inline(rows))
    elif step == "title":
        if event:
            text = t("Please type the title of the event, e.g. “Guard the cherry blossoms” (up to {n} characters).", n=TITLE_MAX)
            rows = [cancel_row]
        else:
            text = t("Please type a short title for the task (up to {n} characters), or press Skip.", n=TITLE_MAX)
            rows = [[(t("Skip"), button("title", "-skip"))], cancel_row]
        await _ask(update, ctx, dialog, head + text, inline(rows))
    elif step == "pname":
        await _ask(update, ctx, dialog, head + t("Who needs help? Please type the resident's name (up to {n} characters). "
                                     "It stays private: only the volunteer who takes the task sees it.", n=NAME_MAX),
                    inline([cancel_row]))
    elif step == "pphone":
        await _ask(update, ctx, dialog, head + t("Please type the resident's phone number (digits only, 7 to 15, may start with +). "
                                     "It is never shown in the group."), inline([cancel_row]))
    elif step == "paddr":
        await _ask(update, ctx, dialog, head + t("Please type the resident's address (up to {n} characters). "
                                     "It is never shown in the group.", n=ADDRESS_MAX), inline([cancel_row]))
    elif step == "cat":
        names = await _category_names(ctx, dialog, t)
        items = [(name, button("cat", code)) for code, name in names.items()]
        rows = [items[i:i + 2] for i in range(0, len(items), 2)]
        rows.append(cancel_row)
        text = t("What kind of help is it? Please press a button.")
        await _ask(update, ctx, dialog, head + text, inline(rows))
    elif step == "desc":
        if event:
            text = t("Please describe the event: what to do, where to meet, what to bring (up to {n} characters). "
                     "You may also send a voice message, or press Skip.", n=DESC_MAX)
            rows = [[(t("Skip"), button("desc", "-skip"))], cancel_row]
        else:
            text = t("Please tell us what you need, in a few words (up to {n} characters).\n"
                     "🎤 You can also hold the microphone button and speak: the volunteer will hear your voice message.",
                     n=DESC_MAX)
            # The typed words appear on the group card; the voice message goes only to the volunteer.
            text += "\n" + t("ℹ️ Volunteers in the group see these words, so please leave out your name, phone and"
                             " address: the volunteer who takes the task gets them from me in private.")
            rows = [cancel_row]
        await _ask(update, ctx, dialog, head + text, inline(rows))
    elif step == "when":
        rows = [[(t("⚡ As soon as possible"), button("when", "asap"))],
                [(t("Today"), button("when", "today")), (t("Tomorrow"), button("when", "tomorrow"))],
                [(t("🕒 Pick a time"), button("when", "pick"))], cancel_row]
        await _ask(update, ctx, dialog, head + t("When do you need help?"), inline(rows))
    elif step in ("at", "start", "end"):
        example = (ctx.now().astimezone(_tz(dialog)) + timedelta(days=1)).replace(hour=9, minute=30)
        if step == "end":
            text = t("When does the event end? Please type the time, e.g. {example}, or only the hour, e.g. 17:00.",
                     example=example.strftime("%Y-%m-%d 17:00"))
        elif step == "start":
            text = t("When does the event start? Please type the date and time, e.g. {example} or {short}.",
                     example=example.strftime("%Y-%m-%d %H:%M"), short=example.strftime("%m-%d %H:%M"))
        else:
            text = t("Please type the date and time, e.g. {example} or {short}.",
                     example=example.strftime("%Y-%m-%d %H:%M"), short=example.strftime("%m-%d %H:%M"))
        text += "\n" + t("Or as you would say it, e.g. 明天下午3点 or tomorrow 3pm.")
        await _ask(update, ctx, dialog, head + text, inline([cancel_row]))
    elif step == "where":
        user = update.effective_user
        home = await _home(ctx, await load_member(ctx, user.id)) if user else None
        if home is None:
            dialog.step = "addr"
            await dialogs.save(ctx, dialog)
            await prompt(update, ctx, dialog, prefix)
            return
        rows = [[(t("🏠 My registered address"), button("where", "home"))],
                [(t("📍 Another place"), button("where", "other"))], cancel_row]
        await _ask(update, ctx, dialog, head + t("Where should the volunteer come? Your registered address is: {home}",
                                     home=esc(home)), inline(rows))
    elif step == "addr":
        await _ask(update, ctx, dialog, head + t("Please type the address (up to {n} characters). "
                                     "Only the volunteer who takes the task will see it.", n=ADDRESS_MAX),
                    inline([cancel_row]))
    elif step == "helpers":
        rows = [[("1", button("helpers", "1")), ("2", button("helpers", "2")), ("3", button("helpers", "3"))],
                cancel_row]
        await _ask(update, ctx, dialog, head + t("How many helpers do you need? Most tasks need 1."), inline(rows))
    elif step == "slots":
        await _ask(update, ctx, dialog, head + t("How many volunteers do you need? Please type a number from 1 to {n}.", n=SLOTS_MAX),
                    inline([cancel_row]))
    elif step == "points":
        await _ask(update, ctx, dialog, head + t("How many points does each volunteer get? Please type a number from 0 to {n}.",
                                     n=POINTS_MAX), inline([cancel_row]))
    elif step == "org":
        orgs = await _organisations(ctx, dialog)
        if not orgs:  # nothing to choose: everyone may claim
            dialog.data["org"] = None
            await _done(update, ctx, dialog, "org")
            return
        rows = [[(t("👥 Every volunteer"), button("org", "all"))]]
        rows += [[(name[:40], button("org", str(oid)))] for oid, name in orgs]
        rows.append(cancel_row)
        await _ask(update, ctx, dialog, head + t("Who may claim it? Everyone, or only the members of one organisation?"), inline(rows))
    elif step == "confirm":
        rows = [[(t("✅ Submit"), button("confirm", "submit"))],
                [(t("✏ Edit"), button("confirm", "edit")), (t("✖ Cancel"), button("confirm", "-cancel"))]]
        await _ask(update, ctx, dialog, head + await summary(ctx, dialog, t) + "\n\n" + t("Is everything right?"), inline(rows))
    elif step == "edit":
        fields = [f for f in ORDER[str(dialog.data["mode"])] if f != "confirm"]
        items = [(t(FIELD_LABELS[f]), button("edit", f)) for f in fields]
        rows = [items[i:i + 2] for i in range(0, len(items), 2)]
        rows.append([(t("↩ Back to the summary"), button("edit", "-back"))])
        await _ask(update, ctx, dialog, head + t("What would you like to change?"), inline(rows))


async def _organisations(ctx: LinliContext, dialog: Dialog) -> list[tuple[int, str]]:
    """The active organisations of the publisher's community (id, name)."""
    rows = await ctx.db.fetchall(
        "SELECT o.id, o.name FROM organisations o JOIN members m ON m.community_id = o.community_id"
        " WHERE m.tg_user_id = ? AND m.deleted_at IS NULL AND o.active = 1 ORDER BY o.name LIMIT 20",
        (dialog.tg_user_id,))
    return [(int(r[0]), str(r[1])) for r in rows]


async def summary(ctx: LinliContext, dialog: Dialog, t: Translator) -> str:
    """The draft in plain words (private chat: it may show the address and the resident's phone)."""
    d = dialog.data
    mode = d.get("mode")
    lines = [t("<b>Please check your request:</b>") if mode == "resident" else t("<b>Please check the task:</b>")]
    if mode == "proxy":
        lines.append(t("For: {name}, phone {phone}", name=esc(d.get("proxy_name")), phone=esc(d.get("proxy_phone"))))
        lines.append(t("Address: {a}", a=esc(d.get("proxy_address"))))
    if d.get("title"):
        lines.append(t("Title: {x}", x=esc(d["title"])))
    names = await _category_names(ctx, dialog, t)
    lines.append(t("Category: {c}", c=esc(names.get(str(d.get("category")), d.get("category")))))
    if d.get("voice"):
        lines.append(t("Description: 🎤 a voice message ({s} s)", s=int(d.get("voice_s") or 0)))
    elif d.get("desc"):
        lines.append(t("Description: {x}", x=esc(d["desc"])))
    if d.get("org"):
        org_name = dict(await _organisations(ctx, dialog)).get(int(d["org"]), "?")
        lines.append(t("Only for members of: {o}", o=esc(org_name)))
    if mode == "event":
        lines.append(t("Places: {n}", n=d.get("slots")))
        lines.append(t("From {start} to {end}", start=_local(dialog, d.get("starts_at")), end=_local(dialog, d.get("ends_at"))))
        lines.append(t("Points per volunteer: {n}", n=d.get("points")))
        return "\n".join(lines)
    when = {"asap": t("As soon as possible"), "today": t("Today"), "tomorrow": t("Tomorrow")}.get(str(d.get("when")))
    lines.append(t("When: {w}", w=esc(when or _local(dialog, d.get("starts_at")))))
    if mode != "proxy":
        if d.get("address"):
            lines.append(t("Where: {a}", a=esc(d["address"])))
        else:
            user = dialog.tg_user_id
            home = await _home(ctx, await load_member(ctx, user))
            lines.append(t("Where: your registered address ({a})", a=esc(home or "")))
    lines.append(t("Helpers: {n}", n=d.get("slots") or 1))
    return "\n".join(lines)


# ---------------------------------------------------------------- moving on
def _next_step(dialog: Dialog, done: str) -> str:
    """The step after ``done`` (back to the summary when a single field was being changed)."""
    done = SUB_STEP_OF.get(done, done)
    if done == "start" and dialog.data.get("fix"):
        return "end"  # a new start needs a matching end
    if dialog.data.pop("fix", None):
        return "confirm"
    order = ORDER[str(dialog.data["mode"])]
    return order[order.index(done) + 1]


async def _go(update: Update, ctx: LinliContext, dialog: Dialog, step: str, prefix: str = "") -> None:
    dialog.step = step
    await dialogs.save(ctx, dialog)
    await prompt(update, ctx, dialog, prefix)


async def _done(update: Update, ctx: LinliContext, dialog: Dialog, done: str) -> None:
    await _go(update, ctx, dialog, _next_step(dialog, done))


# ---------------------------------------------------------------- the flow
@flow(FLOW)
async def request_flow(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input) -> None:
    t = await tr_for(update, ctx)
    step = dialog.step
    d = dialog.data
    pressed = inp.kind == "callback"
    if pressed and inp.text == "-cancel":
        await _close_buttons(update)
        await dialogs.finish(ctx, dialog.tg_user_id)
        await reply(update, t("Cancelled. Nothing was sent."), await main_menu(ctx, dialog.tg_user_id, t))
        return
    press_please = t("Please press one of the buttons.")

    if step == "mode":
        if pressed and inp.text in ("normal", "proxy", "event"):
            d["mode"] = inp.text
            await _go(update, ctx, dialog, ORDER[inp.text][0])
            return
        await prompt(update, ctx, dialog, press_please)
    elif step == "title":
        if pressed and inp.text == "-skip" and d.get("mode") != "event":
            d["title"] = None
            await _done(update, ctx, dialog, step)
            return
        value = _clean_text(inp, TITLE_MAX)
        if value is None:
            await prompt(update, ctx, dialog, t("Please type the title as text, up to {n} characters.", n=TITLE_MAX))
            return
        d["title"] = value
        await _done(update, ctx, dialog, step)
    elif step == "pname":
        value = _clean_text(inp, NAME_MAX)
        if value is None:
            await prompt(update, ctx, dialog, t("Please type the name as text, up to {n} characters.", n=NAME_MAX))
            return
        d["proxy_name"] = value
        await _done(update, ctx, dialog, step)
    elif step == "pphone":
        phone = clean_phone(inp.text or "") if inp.kind == "text" else None
        if inp.kind == "contact" and inp.phone:
            phone = clean_phone(inp.phone)
        if phone is None:
            await prompt(update, ctx, dialog, t("That does not look like a phone number. Please type 7 to 15 digits, e.g. 13812345678."))
            return
        d["proxy_phone"] = phone
        await _done(update, ctx, dialog, step)
    elif step in ("paddr", "addr"):
        value = _clean_text(inp, ADDRESS_MAX)
        if value is None:
            await prompt(update, ctx, dialog, t("Please type the address as text, up to {n} characters.", n=ADDRESS_MAX))
            return
        d["proxy_address" if step == "paddr" else "address"] = value
        await _done(update, ctx, dialog, step)
    elif step == "cat":
        names = await _category_names(ctx, dialog, t)
        typed = await _typed_category(ctx, dialog, inp.text) if inp.kind == "text" else None
        if (pressed and inp.text in names) or typed:
            d["category"] = inp.text if pressed else typed
            await _done(update, ctx, dialog, step)
            return
        await prompt(update, ctx, dialog, t("Please choose the kind of help with one of the buttons."))
    elif step == "desc":
        if inp.kind == "voice" and inp.file_id:
            d["voice"], d["voice_s"], d["desc"] = inp.file_id, inp.duration or 0, None
            await _done(update, ctx, dialog, step)
            return
        if pressed and inp.text == "-skip" and d.get("mode") == "event":
            d["voice"], d["desc"] = None, None
            await _done(update, ctx, dialog, step)
            return
        if inp.kind == "text":
            value = (inp.text or "").strip()
            if not value:
                await prompt(update, ctx, dialog, t("Please type a few words about what you need."))
                return
            if len(value) > DESC_MAX:
                await prompt(update, ctx, dialog, t("That is a bit long ({n} characters). Please keep it under {max}, "
                                                    "or send a voice message.", n=len(value), max=DESC_MAX))
                return
            d["desc"], d["voice"] = value, None
            await _done(update, ctx, dialog, step)
            return
        await prompt(update, ctx, dialog, t("Thank you! I can only use text or a voice message here. "
                                            "Please type what you need, or hold the 🎤 button and speak."))
    elif step == "when":
        spoken = parse_when(inp.text or "", ctx.now(), _tz(dialog)) if inp.kind == "text" else None
        if spoken is not None and ctx.now() < spoken <= ctx.now() + MAX_AHEAD:  # "明天下午3点": the time itself
            d["when"], d["starts_at"] = "at", to_db(spoken)
            await _done(update, ctx, dialog, step)
            return
        said = _typed_when(inp.text) if inp.kind == "text" else None
        if (pressed and inp.text in ("asap", "today", "tomorrow")) or said:
            d["when"], d["starts_at"] = (inp.text if pressed else said), None
            await _done(update, ctx, dialog, step)
            return
        if pressed and inp.text == "pick":
            await _go(update, ctx, dialog, "at")
            return
        await prompt(update, ctx, dialog, press_please)
    elif step in ("at", "start", "end"):
        await _time_step(update, ctx, dialog, inp, t)
    elif step == "where":
        if pressed and inp.text == "home":
            d["address"] = None
            await _done(update, ctx, dialog, step)
            return
        if pressed and inp.text == "other":
            await _go(update, ctx, dialog, "addr")
            return
        await prompt(update, ctx, dialog, press_please)
    elif step == "helpers":
        count = _WORD_NUMBERS.get(_words(inp.text)) if inp.kind == "text" else None
        if (pressed and inp.text in ("1", "2", "3")) or count:
            d["slots"] = int(inp.text or 1) if pressed else int(count or 1)
            await _done(update, ctx, dialog, step)
            return
        await prompt(update, ctx, dialog, press_please)
    elif step in ("slots", "points"):
        low, high = (1, SLOTS_MAX) if step == "slots" else (0, POINTS_MAX)
        n = parse_int(inp.text, low=low, high=high) if inp.kind == "text" else None
        if n is None:
            await prompt(update, ctx, dialog, t("Please type a number from 1 to {n}.", n=high) if step == "slots"
                         else t("Please type a number from 0 to {n}.", n=high))
            return
        d[step] = n
        await _done(update, ctx, dialog, step)
    elif step == "org":
        orgs = dict(await _organisations(ctx, dialog))
        if pressed and inp.text == "all":
            d["org"] = None
        elif pressed and (org := parse_int(inp.text, strict=True)) is not None and org in orgs:
            d["org"] = org
        else:
            await prompt(update, ctx, dialog, press_please)
            return
        await _done(update, ctx, dialog, step)
    elif step == "confirm":
        if pressed and inp.text == "submit":
            await _close_buttons(update)
            await _submit(update, ctx, dialog, t)
            return
        if pressed and inp.text == "edit":
            await _go(update, ctx, dialog, "edit")
            return
        await prompt(update, ctx, dialog, press_please)
    elif step == "edit":
        fields = [f for f in ORDER[str(d["mode"])] if f != "confirm"]
        if pressed and inp.text == "-back":
            await _go(update, ctx, dialog, "confirm")
            return
        if pressed and inp.text in fields:
            d["fix"] = True
            await _go(update, ctx, dialog, str(inp.text))
            return
        await prompt(update, ctx, dialog, press_please)
    else:  # a step this version does not know (an older dialog): start again cleanly
        await dialogs.finish(ctx, dialog.tg_user_id)
        await reply(update, t("Sorry, let us start again: please send /request."), await main_menu(ctx, dialog.tg_user_id, t))


async def _time_step(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input, t: Translator) -> None:
    d = dialog.data
    step = dialog.step
    tz = _tz(dialog)
    now = ctx.now()
    start = from_db(d["starts_at"]) if step == "end" and d.get("starts_at") else None
    when = parse_when(inp.text or "", now, tz, day=start) if inp.kind == "text" else None
    if when is None:
        await prompt(update, ctx, dialog, t("Sorry, I could not read that time."))
        return
    if when <= now:
        await prompt(update, ctx, dialog, t("That time has already passed. Please type a time in the future."))
        return
    if when > now + MAX_AHEAD:
        await prompt(update, ctx, dialog, t("That is too far ahead. Please choose a time within the next 90 days."))
        return
    if step == "end":
        if start is None or when <= start:
            await prompt(update, ctx, dialog, t("The end must be after the start ({start}).", start=_local(dialog, d.get("starts_at"))))
            return
        d["ends_at"] = to_db(when)
    else:
        d["starts_at"] = to_db(when)
        if step == "at":
            d["when"] = "at"
    await _done(update, ctx, dialog, step)


async def _submit(update: Update, ctx: LinliContext, dialog: Dialog, t: Translator) -> None:
    d = dialog.data
    mode = str(d["mode"])
    user_id = dialog.tg_user_id
    member = await load_member(ctx, user_id)
    if member is None or not member.registered:
        await dialogs.finish(ctx, user_id)
        await reply(update, error_text(t, NotRegistered()))
        return
    event = mode == "event"
    new = tasks.NewTask(
        category=str(d["category"]),
        description=d.get("desc"),
        voice_file_id=d.get("voice"),
        title=d.get("title"),
        when_kind="at" if event else str(d.get("when") or "asap"),
        starts_at=from_db(d["starts_at"]) if d.get("starts_at") else None,
        ends_at=from_db(d["ends_at"]) if event and d.get("ends_at") else None,
        address=d.get("address") if mode in ("resident", "normal") else None,
        slots=int(d.get("slots") or 1),
        points=int(d["points"]) if event and d.get("points") is not None else None,
        kind="event" if event else "request",
        is_proxy=mode == "proxy",
        proxy_name=d.get("proxy_name") if mode == "proxy" else None,
        proxy_phone=d.get("proxy_phone") if mode == "proxy" else None,
        proxy_address=d.get("proxy_address") if mode == "proxy" else None,
        organisation_id=int(d["org"]) if d.get("org") and mode in ("normal", "event") else None,
        submit_key=f"{user_id}:{d['draft']}",
    )
    try:
        task_id = await tasks.create_task(ctx.db, ctx.now(), member.id, new, staff=bool(d.get("staff")))
    except DomainError as exc:
        await dialogs.finish(ctx, user_id)
        await reply(update, error_text(t, exc), await main_menu(ctx, user_id, t))
        return
    await dialogs.finish(ctx, user_id)
    state = await ctx.db.fetchval("SELECT state FROM tasks WHERE id = ?", (task_id,))
    if state == "pending_review":
        text = t("Thank you! Your request is waiting for staff review. I will tell you when it is published.")
    elif event:
        text = t("The event is published in the group (#{id}). Volunteers can claim their places now.", id=task_id)
    elif mode == "resident":
        text = t("Your request is sent (#{id}). I will tell you when a volunteer takes it. "
                 "You can see it any time with /mytasks.", id=task_id)
    else:
        text = t("The task is published in the group (#{id}). I will tell you when a volunteer takes it.", id=task_id)
    await reply(update, text, await main_menu(ctx, user_id, t))


# ---------------------------------------------------------------- menu and registration
@menu_item("request", N_("🆘 Ask for help"), visible=resident, order=10)
async def _menu_request(update: Update, ctx: LinliContext) -> None:
    await request_command(update, ctx)


@menu_item("publish", N_("📢 Publish a task"), visible=staff, order=15)
async def _menu_publish(update: Update, ctx: LinliContext) -> None:
    await publish_command(update, ctx)


def register(app: LinliApp) -> None:
    """Add the /request and /publish dialogs."""
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("request", request_command, filters=private))
    app.add_handler(CommandHandler("publish", publish_command, filters=private))
