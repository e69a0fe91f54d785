"""/setup in a group, /start registration in private, /profile, /language, /deleteme."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, ChatMemberHandler, CommandHandler, MessageHandler, filters

from bot import dialogs
from bot.context import LinliApp, LinliContext
from bot.conversations import reliability as reliability_ui
from bot.deeplinks import dispatch, link, start_payload
from bot.dialogs import Again, Dialog, Input, Next, Outcome, Stop, button, flow
from bot.i18n import Translator, both, normalise_language, translator
from bot.menu import load_member, main_menu, menu_item, participant, registered
from bot.models import N_, DomainError, InvalidInput
from bot.numbers import parse_int
from bot.services import communities as comm
from bot.services import members as svc
from bot.services.access import require_staff
from bot.ui import Markup as ReplyMarkup
from bot.ui import answer, community_translator, edit_or_send, error_text, esc, inline, reply, shown, tr_for
from storage import areas as area_store
from storage import communities as community_store
from storage import members as member_store
from storage import organisations as org_store

FLOW = "register"
TEXT_LIMIT = 200


# ---------------------------------------------------------------- /setup in a group
async def setup_command(update: Update, ctx: LinliContext) -> None:
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return
    t = await tr_for(update, ctx)
    if chat.type == "private":
        await reply(update, t("Please send /setup in the volunteer group, not here."))
        return
    allowed = ctx.settings.is_admin(user.id)
    if not allowed and ctx.settings.self_service_setup:
        try:
            cm = await ctx.bot.get_chat_member(chat.id, user.id)
            allowed = cm.status == "creator"
        except TelegramError:
            allowed = False
    if not allowed:
        await reply(update, t("Sorry, only the operator of Linli can set up a community here."))
        return
    name = " ".join(ctx.args or [])
    lang = normalise_language(user.language_code, ctx.settings.default_language)
    try:
        result = await comm.setup_community(ctx.db, name=name, group_chat_id=chat.id, tg_user_id=user.id, language=lang,
                                           now=ctx.now(), timezone=ctx.settings.timezone)
    except DomainError as err:
        await reply(update, error_text(t, err))
        return
    t = translator(lang)  # the group hears the community language
    url = link(ctx.runtime.bot_username, f"join_{result.join_code}")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton(t("📝 Register"), url=url)]])
    text = t(
        "Welcome to the volunteer group of {name}! Neighbours help neighbours here. "
        "Press the button below to register with Linli in a private chat.",
        name=esc(result.name),
    )
    msg = await reply(update, text, markup)
    if msg is not None:
        await comm.set_welcome_message(ctx.db, result.community_id, msg.message_id)
        try:
            await ctx.bot.pin_chat_message(chat.id, msg.message_id, disable_notification=True)
        except TelegramError:
            await reply(update, t("Please make me an administrator so I can pin the welcome message."))
    # Staff messages (problems reported, reviews, escalations) reach registered staff only.
    if await member_store.unregistered(ctx.db, user.id):
        await reply(update, t("Whoever set this up is its staff: please press Register too, so that staff messages"
                              " (problems reported, requests to review) reach you."))


# ---------------------------------------------------------------- /start
async def start_command(update: Update, ctx: LinliContext) -> None:
    user = update.effective_user
    if user is None:
        return
    if ctx.args and await dispatch(update, ctx, ctx.args[0]):
        return
    member = await load_member(ctx, user.id)
    if member is not None and member.community_id is not None:
        await begin(update, ctx, int(member.community_id))
        return
    active = await comm.active_communities(ctx.db)
    t = await tr_for(update, ctx)
    if not active:
        await reply(update, t("Hello! Your community has not set up Linli yet. Please ask your community staff."))
        return
    if len(active) == 1:
        await begin(update, ctx, int(str(active[0]["id"])))
        return
    await dialogs.start(ctx, user.id, FLOW, "community", {})
    rows = [[(str(c["name"]), button("community", str(c["id"])))] for c in active[:40]]
    await reply(update, t("Which community do you live in?"), inline(rows))


@start_payload("join_")
async def join_payload(update: Update, ctx: LinliContext, code: str) -> None:
    found = await comm.by_join_code(ctx.db, code)
    if found is None:
        t = await tr_for(update, ctx)
        await reply(update, t("Sorry, this registration link is not valid any more. Please ask your community staff for a new one."))
        return
    await begin(update, ctx, int(str(found["id"])))


async def begin(update: Update, ctx: LinliContext, community_id: int, org_code: str | None = None) -> None:
    user = update.effective_user
    assert user is not None
    lang = normalise_language(user.language_code, ctx.settings.default_language)
    member = await load_member(ctx, user.id)
    data: dict[str, Any] = {"community_id": community_id, "lang": (member.language if member and member.language else lang)}
    if member is not None and member.registered and member.community_id not in (None, community_id):
        t = translator(str(data["lang"]))
        await reply(update, error_text(t, await svc.in_another_community(ctx.db.reader, member.community_id,
                                                                          community_id)))
        return
    if member is not None and member.registered:
        data["editing"] = True
    if org_code:
        data["org_code"] = org_code
    dialog = await dialogs.start(ctx, user.id, FLOW, "lang", data)
    await prompt(update, ctx, dialog)


def _t(dialog: Dialog) -> Translator:
    return translator(str(dialog.data.get("lang") or "zh"))


# ---------------------------------------------------------------- registration as a table of steps
class RegisterDraft(BaseModel):
    """What was answered so far (the dialog's stored data; only the keys answered are stored)."""

    community_id: int | None = None
    lang: str = "zh"
    editing: bool | None = None      # a registered member changing their profile
    org_code: str | None = None      # joined through an organisation's link: join it at the end
    role: Literal["resident", "volunteer", "both"] | None = None
    name: str | None = None
    phone: str | None = None
    area_id: int | None = None
    address: str | None = None
    skills: list[str] | None = None
    availability: str | None = None

    def data(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


@dataclass
class RegTurn:
    update: Update
    ctx: LinliContext
    dialog: Dialog
    draft: RegisterDraft
    t: Translator

    @property
    def step(self) -> str:
        return self.dialog.step

    async def categories(self) -> list[dict[str, object]]:
        return await comm.categories(self.ctx.db, int(self.draft.community_id or 0))

    async def areas(self) -> list[dict[str, object]]:
        return await comm.areas(self.ctx.db, int(self.draft.community_id or 0))


Question = tuple[str, ReplyMarkup]
Ask = Callable[[RegTurn], Awaitable[Question]]
Accept = Callable[[RegTurn, Input], Awaitable[Outcome]]


async def ask_community(turn: RegTurn) -> Question:
    rows = [[(str(c["name"]), button("community", str(c["id"])))] for c in (await comm.active_communities(turn.ctx.db))[:40]]
    return turn.t("Which community do you live in?"), inline(rows)


async def accept_community(turn: RegTurn, inp: Input) -> Outcome:
    community_id = parse_int(inp.text, strict=True) if inp.kind == "callback" else None
    if community_id is not None and community_id in {int(str(c["id"])) for c in await comm.active_communities(turn.ctx.db)}:
        await begin(turn.update, turn.ctx, community_id)
        return Stop()
    await reply(turn.update, turn.t("Please choose your community with one of the buttons above."))
    return Stop()


async def ask_lang(turn: RegTurn) -> Question:
    t, cur = turn.t, turn.draft.lang
    rows = [[("✅ 中文" if cur == "zh" else "中文", button("lang", "zh")),
             ("✅ English" if cur == "en" else "English", button("lang", "en"))]]
    intro = t("Welcome! Let us update your profile.") if turn.draft.editing else t("Welcome to Linli! Registration takes a minute.")
    return intro + "\n" + t("Which language do you prefer?"), inline(rows)


def _plain(text: str | None) -> str:
    """Letters and digits only, full-width folded, lower case: typed words as compared with a button's."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


def _typed(inp: Input, choices: dict[str, tuple[str, ...]]) -> str | None:
    """The button whose words were typed instead of tapped (the label in either language, or a
    plain synonym), None for anything else."""
    if inp.kind != "text":
        return None
    said = _plain(inp.text)
    for value, words in choices.items():
        if said in {_plain(translator(lang)(word)) for word in words for lang in ("zh", "en")}:
            return value
    return None


LANG_WORDS = {"zh": ("中文", "汉语", "中国话", "普通话", "Chinese"), "en": ("English", "英文", "英语")}
ROLE_WORDS = {  # the labels of ask_role's buttons (in either language), and plain words for them
    "resident": (N_("🙋 I need help"), "需要帮助", "求助", "我要求助", "居民", "resident"),
    "volunteer": (N_("💪 I want to volunteer"), "志愿者", "当志愿者", "我是志愿者", "volunteer"),
    "both": (N_("🤝 Both"), "都是", "两个都要", "都要"),
}


async def accept_lang(turn: RegTurn, inp: Input) -> Outcome:
    lang = inp.pressed("zh", "en") or _typed(inp, LANG_WORDS)
    if lang is None:
        return Again(turn.t("Please press one of the buttons."))
    turn.draft.lang = lang
    return Next()


async def ask_role(turn: RegTurn) -> Question:
    t = turn.t
    return t("How would you like to take part?"), inline([[(t("🙋 I need help"), button("role", "resident"))],
                                                          [(t("💪 I want to volunteer"), button("role", "volunteer"))],
                                                          [(t("🤝 Both"), button("role", "both"))]])


async def accept_role(turn: RegTurn, inp: Input) -> Outcome:
    role = inp.pressed("resident", "volunteer", "both") or _typed(inp, ROLE_WORDS)
    if role is None:
        return Again(turn.t("Please press one of the buttons."))
    turn.draft.role = role  # type: ignore[assignment]  # one of the three pressed
    return Next()


async def ask_name(turn: RegTurn) -> Question:
    return turn.t("What should we call you? Please type your name (up to 40 characters)."), ReplyKeyboardRemove()


async def accept_name(turn: RegTurn, inp: Input) -> Outcome:
    if inp.kind != "text":
        return Again(turn.t("Please type your name as text."))
    try:
        turn.draft.name = svc.clean_name(inp.text)
    except DomainError as err:
        return Again(error_text(turn.t, err))
    return Next()


async def ask_phone(turn: RegTurn) -> Question:
    t = turn.t
    kb_rows = [[KeyboardButton(t("📱 Share my phone number"), request_contact=True)], [KeyboardButton(t("Skip"))]]
    if turn.draft.role == "volunteer":  # nobody helps a volunteer-only member: say who sees it for them
        text = t("Please press the button below to share your phone number. Only community staff will see it, "
                 "so they can reach you about a task.") + "\n" + t("You may skip this.")
    else:
        text = t("Please press the button below to share your phone number. Volunteers you ask for help will see it.")
        text += "\n" + t("You may skip this: then a volunteer can only find you at your address.")
    return text, ReplyKeyboardMarkup(kb_rows, resize_keyboard=True, one_time_keyboard=True)


def _skipped(typed: str) -> bool:
    return typed in SKIP_WORDS or typed in {translator(lang)("Skip").casefold() for lang in ("zh", "en")}


async def accept_phone(turn: RegTurn, inp: Input) -> Outcome:
    t = turn.t
    if inp.kind == "contact" and inp.contact_user_id == turn.dialog.tg_user_id and inp.phone:
        turn.draft.phone = inp.phone[:32]
        return Next(t("Thank you, {name}.", name=esc(turn.draft.name)))
    typed = (inp.text or "").strip().casefold()
    if inp.kind == "text" and _skipped(typed):
        turn.draft.phone = None
        return Next(t("No problem, you can add it later: 👤 My profile, then ✏ Change my details."))
    if inp.kind == "contact":
        return Again(t("Please share your own number with the button below, not someone else's contact."))
    if inp.kind == "text" and not any(ch.isdigit() for ch in typed):
        return Again(t("Please press “📱 Share my phone number” below, or “Skip” if you prefer not to give it."))
    return Again(t("Please do not type the number. Press the button “📱 Share my phone number” below, so we know it is really yours."))


async def ask_area(turn: RegTurn) -> Question:
    t = turn.t
    rows = [[(str(a["name"])[:40], button("area", str(a["id"])))] for a in (await turn.areas())[:30]]
    if not rows:
        return t("Which building or area do you live in? Please type it, e.g. Building 3."), ReplyKeyboardRemove()
    return t("Which building or area do you live in? Choose below or type it."), inline(rows)


async def accept_area(turn: RegTurn, inp: Input) -> Outcome:
    t, d = turn.t, turn.draft
    if inp.kind == "text":
        try:
            d.area_id, d.address = svc.place_from_typed(await turn.areas(), svc.clean_name(inp.text, limit=TEXT_LIMIT))
        except DomainError:
            return Again(t("Please type your building or area in up to 200 characters."))
        return Next()
    area_id = parse_int(inp.text, strict=True) if inp.kind == "callback" else None
    if area_id is None or area_id not in {int(str(a["id"])) for a in await turn.areas()}:
        return Again(t("Please choose an area from the list, or type it."))
    d.area_id, d.address = area_id, None
    return Next()


async def ask_skills(turn: RegTurn) -> Question:
    return turn.t("What can you help with? Tap to choose, then press Done (optional)."), await _skills_markup(turn)


async def accept_skills(turn: RegTurn, inp: Input) -> Outcome:
    if inp.pressed("-done"):
        return Next()
    code = inp.pressed(*(str(c["code"]) for c in await turn.categories()))
    if code is None:
        return Again(turn.t("Please tap the buttons, then press Done."))
    chosen = list(turn.draft.skills or [])
    chosen.remove(code) if code in chosen else chosen.append(code)
    turn.draft.skills = chosen
    await _save(turn)  # the same step, one more skill ticked: only the buttons change
    q = turn.update.callback_query
    if q is not None and q.message is not None:
        try:
            await q.edit_message_reply_markup(reply_markup=await _skills_markup(turn))
        except TelegramError:
            pass
    return Stop()


async def _skills_markup(turn: RegTurn) -> InlineKeyboardMarkup:
    chosen = set(turn.draft.skills or [])
    key = "name_zh" if turn.draft.lang == "zh" else "name_en"
    rows = [[(("✅ " if c["code"] in chosen else "") + str(c[key]), button("skills", str(c["code"])))]
            for c in await turn.categories()]
    rows.append([(turn.t("Done"), button("skills", "-done"))])
    return inline(rows)


AVAIL_WORDS = {"weekdays": (N_("Weekdays"),), "weekends": (N_("Weekends"),), "evenings": (N_("Evenings"),),
               "any": (N_("Any time"), "随时", "都可以"), "skip": (N_("Skip"), "不选")}


async def ask_avail(turn: RegTurn) -> Question:
    t = turn.t
    rows = [[(t("Weekdays"), button("avail", "weekdays")), (t("Weekends"), button("avail", "weekends"))],
            [(t("Evenings"), button("avail", "evenings")), (t("Any time"), button("avail", "any"))],
            [(t("Skip"), button("avail", "skip"))]]
    return t("When are you usually free? (optional)"), inline(rows)


async def accept_avail(turn: RegTurn, inp: Input) -> Outcome:
    chosen = inp.pressed("weekdays", "weekends", "evenings", "any", "skip") or _typed(inp, AVAIL_WORDS)
    if chosen is None:
        return Again(turn.t("Please press one of the buttons."))
    turn.draft.availability = None if chosen == "skip" else chosen
    return Next()


async def ask_consent(turn: RegTurn) -> Question:
    t = turn.t
    text = t(
        "Privacy, in plain words: we store your name, phone number, area and role. "
        "Only community staff and the volunteer or resident of a task you share see your phone and address; "
        "they are never posted in the group. To erase your data at any time: 👤 My profile, then 🗑 Erase my data."
    )
    return text, inline([[(t("✅ I agree"), button("consent", "yes"))], [(t("Cancel"), button("consent", "no"))]])


CONSENT_WORDS = {"yes": (N_("✅ I agree"), "同意", "我同意", "好", "好的", "可以", "是", "是的", "agree", "yes", "ok"),
                 "no": (N_("Cancel"), "不同意", "不要", "不", "no")}


async def accept_consent(turn: RegTurn, inp: Input) -> Outcome:
    typed = _typed(inp, CONSENT_WORDS)
    if inp.pressed("yes") or typed == "yes":
        await _register(turn)
        return Stop()
    if inp.pressed("no") or typed == "no":
        await dialogs.finish(turn.ctx, turn.dialog.tg_user_id)
        await reply(turn.update, turn.t("Cancelled. Nothing was saved."), await main_menu(turn.ctx, turn.dialog.tg_user_id, turn.t))
        return Stop()
    return Again(turn.t("Please press one of the buttons."))


async def _register(turn: RegTurn) -> None:
    ctx, t, d, user_id = turn.ctx, turn.t, turn.draft, turn.dialog.tg_user_id
    try:
        await svc.save_registration(ctx.db, tg_user_id=user_id, community_id=int(d.community_id or 0),
                                    data=d.data(), now=ctx.now())
    except DomainError as err:
        await dialogs.finish(ctx, user_id)
        await reply(turn.update, error_text(t, err), await main_menu(ctx, user_id, t))
        return
    await dialogs.finish(ctx, user_id)
    joined = None
    if d.org_code:
        try:
            joined = await svc.join_organisation(ctx.db, tg_user_id=user_id, now=ctx.now(), code=d.org_code)
        except DomainError:
            pass
    text = t("Your profile is saved. Thank you!") if d.editing else t("You are registered. Welcome, {name}!", name=esc(d.name))
    if joined and not d.editing:  # came through an organisation's invite: say which one they joined
        text = t("You are registered and have joined {org}. Welcome, {name}!", org=esc(joined), name=esc(d.name))
    await reply(turn.update, text, await main_menu(ctx, user_id, t))


# Every step of registration (/start): how it asks, how it accepts, which step comes next.
STEPS: dict[str, tuple[Ask, Accept]] = {
    "community": (ask_community, accept_community),  # more than one community: which one
    "lang": (ask_lang, accept_lang),                 # 中文 / English
    "role": (ask_role, accept_role),                 # resident, volunteer or both
    "name": (ask_name, accept_name),                 # typed
    "phone": (ask_phone, accept_phone),              # shared contact (their own), or skipped
    "area": (ask_area, accept_area),                 # a listed area, or typed
    "skills": (ask_skills, accept_skills),           # volunteers: categories ticked, then Done
    "avail": (ask_avail, accept_avail),              # volunteers: when free (or skip)
    "consent": (ask_consent, accept_consent),        # agree (registers) or cancel
}
NEXT = {"lang": "role", "role": "name", "name": "phone", "phone": "area", "skills": "avail", "avail": "consent"}
SKIP_WORDS = {"skip", "no", "跳过", "不", "不要", "不给", "不想给", "不用", "算了", "略过"}


def next_step(draft: RegisterDraft, done: str) -> str:
    if done == "area":  # volunteers say what they can do and when; residents go on to consent
        return "skills" if draft.role in ("volunteer", "both") else "consent"
    return NEXT[done]


def _reg_turn(update: Update, ctx: LinliContext, dialog: Dialog) -> RegTurn:
    try:
        draft = RegisterDraft.model_validate(dialog.data)
    except ValidationError:  # odd stored values: taken as they are, as the steps always did
        draft = RegisterDraft.model_construct(**dialog.data)
    return RegTurn(update, ctx, dialog, draft, translator(draft.lang))


async def _save(turn: RegTurn) -> None:
    turn.dialog.data = turn.draft.data()
    await dialogs.save(turn.ctx, turn.dialog)


async def prompt(update: Update, ctx: LinliContext, dialog: Dialog, prefix: str = "") -> None:
    """Ask the question of the dialog's current step."""
    if dialog.step not in STEPS:
        return
    turn = _reg_turn(update, ctx, dialog)
    text, markup = await STEPS[dialog.step][0](turn)
    await reply(update, (prefix + "\n\n" if prefix else "") + text, markup)


@flow(FLOW, ask=lambda update, ctx, dialog, prefix: prompt(update, ctx, dialog, prefix))
async def register_flow(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input) -> None:
    if dialog.step not in STEPS:
        return
    turn = _reg_turn(update, ctx, dialog)
    outcome = await STEPS[dialog.step][1](turn, inp)
    if isinstance(outcome, Again):
        await prompt(update, ctx, dialog, outcome.why)
    elif isinstance(outcome, Next):
        dialog.step = next_step(turn.draft, dialog.step)
        await _save(turn)
        await prompt(update, ctx, dialog, outcome.say)



# ---------------------------------------------------------------- profile, language, deleteme
ROLE_NAMES = {"resident": "resident", "volunteer": "volunteer"}


@menu_item("profile", N_("👤 My profile"), visible=participant, order=80,
           about=N_("see, change or erase your details."))
async def profile_command(update: Update, ctx: LinliContext) -> None:
    user = update.effective_user
    assert user is not None
    t = await tr_for(update, ctx)
    m = await load_member(ctx, user.id)
    if m is None or not m.registered:
        await reply(update, t("You are not registered yet. Send /start to register."))
        return
    roles = [t("resident")] if m.is_resident else []
    roles += [t("volunteer")] if m.is_volunteer else []
    roles += [t("staff")] if m.is_staff else []
    area = m.address or ""
    if m.area_id is not None:
        area = await area_store.name_of(ctx.db, m.area_id) or ""
    lines = [
        t("Your profile"),
        t("Name: {v}", v=esc(m.display_name or "")),
        t("Phone: {v}", v=esc(m.phone or t("not given"))),
        t("Area: {v}", v=esc(area or t("not given"))),
        t("Role: {v}", v=esc(t.join(roles))),
        t("Points: {v}", v=m.balance),
        t("To change or erase it, press a button below."),
    ]
    await reply(update, "\n".join(lines), inline([[(t("✏ Change my details"), "pf:edit")],
                                                  [(t("🗑 Erase my data"), "pf:erase")]]))


async def on_profile_button(update: Update, ctx: LinliContext) -> None:
    """The profile's buttons: change one's details (registration again) or erase them."""
    query = update.callback_query
    if query is None:
        return
    await answer(query)
    if query.data == "pf:edit":
        await start_command(update, ctx)
    elif query.data == "pf:erase":
        await deleteme_command(update, ctx)


@menu_item("language", N_("🌐 中文 / English"), visible=registered, order=90)
async def language_command(update: Update, ctx: LinliContext) -> None:
    user = update.effective_user
    assert user is not None
    m = await load_member(ctx, user.id)
    t = await tr_for(update, ctx)
    if m is None:
        await reply(update, t("You are not registered yet. Send /start to register."))
        return
    wanted = normalise_language(ctx.args[0], "") if ctx.args else ""
    if wanted:  # /language en, /language 中文
        await _set_language(update, ctx, wanted)
        return
    current = m.language or "zh"
    rows = [[(("✅ " if current == "zh" else "") + "中文", "lg:zh"), (("✅ " if current == "en" else "") + "English", "lg:en")]]
    await reply(update, both(N_("Choose your language")), inline(rows))  # each language named in itself


async def on_language(update: Update, ctx: LinliContext) -> None:
    query = update.callback_query
    if query is None:
        return
    if query.data not in ("lg:zh", "lg:en"):  # "lg:fr", "lg:": only a forged press has these
        t = await tr_for(update, ctx)
        await answer(query, t("This button is out of date. Please use the latest message."))
        return
    await answer(query)
    if await load_member(ctx, query.from_user.id) is None:
        return
    await edit_or_send(query, "中文" if query.data == "lg:zh" else "English")
    await _set_language(update, ctx, query.data[3:])


async def _set_language(update: Update, ctx: LinliContext, lang: str) -> None:
    user = update.effective_user
    assert user is not None
    await svc.set_language(ctx.db, tg_user_id=user.id, language=lang, now=ctx.now())
    t = translator(lang)
    await reply(update, t("I will speak English with you now."), await main_menu(ctx, user.id, t))


async def deleteme_command(update: Update, ctx: LinliContext) -> None:
    user = update.effective_user
    assert user is not None
    t = await tr_for(update, ctx)
    m = await load_member(ctx, user.id)
    if m is None:
        await reply(update, t("There is no data about you to erase."))
        return
    await dialogs.start(ctx, user.id, "deleteme", "confirm", {"lang": m.language or "zh"})
    rows = [[(t("Yes, erase my data"), button("confirm", "yes"))], [(t("No, keep it"), button("confirm", "no"))]]
    await reply(update, t("This erases your name, phone number and address. Your points history stays, without your name. Are you sure?"), inline(rows))


@flow("deleteme")
async def deleteme_flow(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input) -> None:
    t = _t(dialog)
    user = update.effective_user
    assert user is not None
    if inp.kind == "callback" and inp.text == "yes":
        await svc.erase(ctx.db, tg_user_id=user.id, now=ctx.now())
        await reply(update, t("Your personal data has been erased. Goodbye, and thank you."), ReplyKeyboardRemove())
        return
    if inp.kind == "callback" and inp.text == "no":
        await dialogs.finish(ctx, user.id)
        await reply(update, t("Nothing was erased."), await main_menu(ctx, user.id, t))
        return
    await reply(update, t("Please press one of the buttons."))


# ---------------------------------------------------------------- organisations, staff, areas
async def _staff_community(update: Update, ctx: LinliContext, *, in_group_too: bool = True) -> int | None:
    """The community the sender manages (by the group, else their own), or None after a polite refusal.
    ``in_group_too``: the command also works in the volunteer group (/staff by reply)."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    t = await tr_for(update, ctx)
    cid: int | None = None
    if chat.type != "private":
        cid = await community_store.id_of_group(ctx.db, chat.id)
    else:
        m = await load_member(ctx, user.id)
        cid = m.community_id if m is not None else None
    if cid is None:
        await reply(update, t("Please do this in the volunteer group of your community, or register first.")
                    if in_group_too else t("Please register first: send /start."))
        return None
    try:
        await require_staff(ctx.db, user.id, ctx.settings.admin_ids, cid)
    except DomainError as err:
        await reply(update, error_text(t, err))
        return None
    return cid


async def org_command(update: Update, ctx: LinliContext) -> None:
    user = update.effective_user
    assert user is not None
    t = await tr_for(update, ctx)
    args = list(ctx.args or [])
    sub = args[0].lower() if args else ""
    if sub not in ("new", "list", "invite"):
        await choose_org(update, ctx)
        return
    cid = await _staff_community(update, ctx, in_group_too=False)
    if cid is None:
        return
    if sub == "new":
        try:
            _oid, code = await svc.create_organisation(ctx.db, community_id=cid, name=" ".join(args[1:]), actor_id=None, now=ctx.now())
        except DomainError as err:
            await reply(update, error_text(t, err) + "\n" + t("Example: /org new City Bank volunteers"))
            return
        url = link(ctx.runtime.bot_username, f"org_{code}")
        await reply(update, t("Organisation created. Invite code: <code>{code}</code>\nInvite link: {url}", code=code, url=url))
        return
    orgs = await svc.organisations(ctx.db, cid)
    if not orgs:
        await reply(update, t("There are no organisations yet. Create one with /org new &lt;name&gt;."))
        return
    lines = [t("Organisations:")]
    for o in orgs[:50]:
        lines.append(f"• {esc(o['name'])}: <code>{esc(o['invite_code'])}</code> {link(ctx.runtime.bot_username, 'org_' + str(o['invite_code']))}")
    await reply(update, "\n".join(lines))


async def choose_org(update: Update, ctx: LinliContext) -> None:
    user = update.effective_user
    assert user is not None
    t = await tr_for(update, ctx)
    m = await load_member(ctx, user.id)
    if m is None or not m.registered or m.community_id is None:
        await reply(update, t("You are not registered yet. Send /start to register."))
        return
    orgs = await svc.organisations(ctx.db, m.community_id)
    if not orgs:
        await reply(update, t("Your community has no organisations yet."))
        return
    await dialogs.start(ctx, user.id, "org", "org", {"lang": m.language or "zh"})
    rows = [[(str(o["name"])[:40], button("org", str(o["id"])))] for o in orgs[:30]]
    await reply(update, t("Which organisation do you belong to? Choose below, or send /join and your invite code."), inline(rows))


@flow("org")
async def org_flow(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input) -> None:
    t = _t(dialog)
    user = update.effective_user
    assert user is not None
    organisation_id = parse_int(inp.text, strict=True) if inp.kind == "callback" else None
    if organisation_id is not None:
        await dialogs.finish(ctx, user.id)
        await _join(update, ctx, organisation_id=organisation_id)
        return
    await reply(update, t("Please press one of the buttons."))


async def _join(update: Update, ctx: LinliContext, *, code: str | None = None, organisation_id: int | None = None) -> None:
    user = update.effective_user
    assert user is not None
    t = await tr_for(update, ctx)
    try:
        name = await svc.join_organisation(ctx.db, tg_user_id=user.id, now=ctx.now(), code=code, organisation_id=organisation_id)
    except DomainError as err:
        await reply(update, error_text(t, err))
        return
    await reply(update, t("You joined {name}. Your tasks and points now count for it too.", name=esc(name)), await main_menu(ctx, user.id, t))


async def join_command(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    if not ctx.args:
        await reply(update, t("Please send /join and your invite code, e.g. /join a1b2c3d4."))
        return
    await _join(update, ctx, code=ctx.args[0][:64])


@start_payload("org_")
async def org_payload(update: Update, ctx: LinliContext, code: str) -> None:
    user = update.effective_user
    assert user is not None
    m = await load_member(ctx, user.id)
    if m is None or not m.registered:
        community_id = await org_store.community_of_code(ctx.db, code)
        if community_id is None:
            t = await tr_for(update, ctx)
            await reply(update, t("Sorry, this invite code is not valid. Please check it with your organisation."))
            return
        await begin(update, ctx, community_id, org_code=code)
        return
    await _join(update, ctx, code=code)


STAFF_HELP = N_("In the group: reply to a member's message with /staff add or /staff remove.\n"
                "In private: /staff find &lt;name&gt; shows member numbers; then /staff add &lt;number&gt;"
                " or /staff remove &lt;number&gt;.")


async def staff_command(update: Update, ctx: LinliContext) -> None:
    """/staff: list staff; find members; add or remove staff by reply (group) or member number (private)."""
    t = await tr_for(update, ctx)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return
    args = list(ctx.args or [])
    verb = args[0].lower() if args else ""
    cid = await _staff_community(update, ctx)
    if cid is None:
        return
    private = update.effective_chat is not None and update.effective_chat.type == "private"
    if verb == "find" and len(args) > 1:
        await _staff_find(update, ctx, t, cid, " ".join(args[1:]), private)
    elif verb not in ("add", "remove"):
        rows = await svc.staff_members(ctx.db, community_id=cid)
        names = t.join(f"#{r.id} {esc(r.display_name or '?')}" for r in rows)
        text = t("Staff: {list}", list=names or "—") if private else ""
        sent = await reply(update, (text + "\n" if text else "") + t(STAFF_HELP))
        if private:
            await shown(ctx, sent, [r.id for r in rows])
    else:
        await _staff_change(update, ctx, t, cid, args)


async def _staff_find(update: Update, ctx: LinliContext, t: Translator, cid: int, text: str, private: bool) -> None:
    """/staff find <name>: member numbers, in private only (names of residents never go to the group)."""
    if not private:
        await reply(update, t(STAFF_HELP))
        return
    found = await svc.find_members(ctx.db, community_id=cid, text=text)
    scores = await reliability_ui.staff_labels(ctx, t, [m.id for m in found])
    lines = [f"#{m.id} {esc(m.display_name or '?')}" + (" ⭐" if m.is_staff else "") + scores.get(m.id, "")
             for m in found]
    await shown(ctx, await reply(update, "\n".join(lines) if lines else t("Nobody registered here has that name.")),
                [m.id for m in found])


async def _staff_change(update: Update, ctx: LinliContext, t: Translator, cid: int, args: list[str]) -> None:
    """/staff add|remove, by reply to the person's message or by member number."""
    msg, user = update.effective_message, update.effective_user
    assert msg is not None and user is not None
    verb = args[0].lower()
    actor = await load_member(ctx, user.id)
    actor_id = actor.id if actor is not None and actor.community_id == cid else None
    replied = msg.reply_to_message.from_user if msg.reply_to_message is not None else None
    try:
        if replied is not None and not replied.is_bot:
            target = await svc.staff_candidate(ctx.db, community_id=cid, tg_user_id=replied.id,
                                               first_name=replied.first_name)
        elif len(args) == 2 and (member_no := parse_int(args[1], hash_ok=True)) is not None:
            target = await svc.staff_candidate(ctx.db, community_id=cid, member_id=member_no)
        else:
            target = None
        if target is None:
            await reply(update, t("I could not find that member.") + "\n" + t(STAFF_HELP))
            return
        changed = await svc.set_staff(ctx.db, community_id=cid, member_id=target.member_id, staff=verb == "add",
                                      actor_id=actor_id, now=ctx.now())
    except DomainError as err:
        await reply(update, error_text(t, err))
        return
    name = esc(target.name)
    if not changed:
        text = (t("{name} is already community staff. Nothing changed.", name=name) if verb == "add"
                else t("{name} is not community staff. Nothing changed.", name=name))
    elif verb == "add":
        text = t("{name} is now community staff.", name=name)
    else:
        text = t("{name} is no longer community staff.", name=name)
    await shown(ctx, await reply(update, text), [target.member_id])


AREAS_HELP = N_("Add one with /areas add &lt;name&gt;. Rename: /areas rename Old name = New name."
                " Remove from the list: /areas remove &lt;name&gt; (people already there keep it).")


async def areas_command(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    cid = await _staff_community(update, ctx, in_group_too=False)
    if cid is None:
        return
    args = list(ctx.args or [])
    verb = args[0].lower() if args else ""
    rest = " ".join(args[1:])
    try:
        if verb == "add":
            try:
                await svc.add_area(ctx.db, community_id=cid, name=rest, now=ctx.now())
            except DomainError:
                await reply(update, t("Please give the area a name, e.g. /areas add Building 3."))
                return
        elif verb == "rename" and "=" in rest:
            old, new = rest.split("=", 1)
            await svc.rename_area(ctx.db, community_id=cid, old=old, new=new, now=ctx.now())
        elif verb == "remove" and rest.strip():
            await svc.remove_area(ctx.db, community_id=cid, name=rest, now=ctx.now())
        elif verb:
            raise InvalidInput()
    except DomainError as err:
        await reply(update, error_text(t, err) + "\n" + t(AREAS_HELP))
        return
    names = [str(a["name"]) for a in await comm.areas(ctx.db, cid)]
    text = t("Areas: {list}", list=esc(t.join(names))) if names else t("No areas yet.")
    await reply(update, text + "\n" + t(AREAS_HELP))


# ---------------------------------------------------------------- group life
async def bot_membership(update: Update, ctx: LinliContext) -> None:
    cmu = update.my_chat_member
    if cmu is None or cmu.chat.type not in ("group", "supergroup"):
        return
    if cmu.new_chat_member.status in ("left", "kicked", "banned"):
        await comm.bot_removed(ctx.db, group_chat_id=cmu.chat.id, now=ctx.now())
        return
    if cmu.new_chat_member.status in ("member", "administrator") and cmu.old_chat_member.status in ("left", "kicked", "banned"):
        back = await comm.bot_readded(ctx.db, group_chat_id=cmu.chat.id, now=ctx.now())
        if back is not None:
            t = await community_translator(ctx, back[0])
            await reply(update, t("Linli is back in the volunteer group of {name}. New tasks are posted there again.",
                                  name=esc(back[1])))


async def migrated(update: Update, ctx: LinliContext) -> None:
    msg = update.effective_message
    if msg is None or msg.migrate_to_chat_id is None:
        return
    from bot.jobs import outbox_drain as job

    async with ctx.db.transaction() as conn:
        await job.migrate_chat(conn, msg.chat.id, msg.migrate_to_chat_id)


def register(app: LinliApp) -> None:
    app.add_handler(CommandHandler("setup", setup_command, filters=filters.ChatType.GROUPS | filters.ChatType.PRIVATE))
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("start", start_command, filters=private))
    async def profile_cmd(update: Update, ctx: LinliContext) -> None:
        await profile_command(update, ctx)

    async def language_cmd(update: Update, ctx: LinliContext) -> None:
        await language_command(update, ctx)

    app.add_handler(CommandHandler("profile", profile_cmd, filters=private))
    app.add_handler(CommandHandler("language", language_cmd, filters=private))
    app.add_handler(CallbackQueryHandler(on_language, pattern=r"^lg:"))
    app.add_handler(CommandHandler("deleteme", deleteme_command, filters=private))
    app.add_handler(CallbackQueryHandler(on_profile_button, pattern=r"^pf:"))
    app.add_handler(CommandHandler("org", org_command, filters=private))  # in a group: bot.conversations.core
    app.add_handler(CommandHandler("join", join_command, filters=private))
    app.add_handler(CommandHandler("staff", staff_command))
    app.add_handler(CommandHandler("areas", areas_command, filters=private))  # staff work: not in the group
    app.add_handler(ChatMemberHandler(bot_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, migrated))
