"""Staff manage the points supermarket with buttons and plain questions: "🏷 Manage rewards" (or
/rewards manage) shows the community's rewards; staff add one, or open one to change its name, cost,
stock or kind, restock it, give it a photo (or take the photo away), withdraw it or offer it again.

The dialog is data, as /request's is: ``STEPS`` gives every step an ``ask`` (text and buttons) and an
``accept`` (a typed answer, a photo or a pressed button → ``Next``, ``Go(step)`` or ``Again(why)``);
``ORDER`` is the order of the questions when a reward is added (saved at the end, after a summary).
When a reward is being changed, each answer is saved at once and the reward is shown again. Every
question has ↩ Back and ✖ Cancel. The rules (who may manage, cost and stock ranges, kinds, reading
typed numbers) are the reward service's (``bot.services.rewards``); a refused answer changes nothing
and the question is asked again with the reason.

Buttons are dialog buttons (``d:<step>:<value>``): one pressed after the dialog moved on, or by
anyone who has no such dialog open, changes nothing. Who may manage is checked again at every answer.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from telegram import InlineKeyboardMarkup, Update

from bot import dialogs
from bot.context import LinliApp, LinliContext
from bot.conversations.rewards import KIND_LABELS
from bot.dialogs import Again, Dialog, Go, Input, Next, Outcome, Stop, button, flow
from bot.i18n import Translator
from bot.menu import main_menu, menu_item, staff
from bot.models import N_, DomainError, NotAllowed
from bot.numbers import parse_int
from bot.services import merchants, rewards
from bot.ui import error_text, esc, inline, reply, tr_for

FLOW = "rewards"
ORDER = ["name_zh", "name_en", "kind", "cost", "stock", "photo", "confirm"]  # adding a reward
SUB_STEP_OF = {"merchant": "kind"}  # a discount's merchant is part of its kind
LIST_MAX = 40  # rewards listed with a button


class RewardDraft(BaseModel):
    """The dialog's stored data: the reward being changed, or the answers so far for a new one."""

    model_config = ConfigDict(populate_by_name=True)

    reward_id: int | None = None     # the reward being changed; None while adding one
    name_zh: str | None = None
    name_en: str | None = None
    kind: str | None = None
    merchant_id: int | None = None
    cost: int | None = None
    stock: int | None = None         # None: unlimited
    photo: str | None = None         # a photo's file id
    key: str | None = None           # the new reward's one-time key: saving it twice adds one reward
    asked: int | None = Field(default=None, alias="_q")  # the message with the live buttons

    @property
    def adding(self) -> bool:
        return self.reward_id is None


@dataclass
class Turn:
    """One answer being handled."""

    update: Update
    ctx: LinliContext
    dialog: Dialog
    draft: RewardDraft
    t: Translator
    who: rewards.Manager
    now: datetime
    _shops: list[tuple[int, str]] | None = None

    @property
    def step(self) -> str:
        return self.dialog.step

    async def reward(self) -> rewards.Reward:
        """The reward being changed (NotFound if it is not the manager's community's)."""
        return await rewards.managed(self.ctx.db, self.who, int(self.draft.reward_id or 0))

    async def change(self, **fields: object) -> rewards.Reward:
        return await rewards.change_reward(self.ctx.db, self.who, int(self.draft.reward_id or 0), now=self.now,
                                           **fields)

    async def merchants(self) -> list[tuple[int, str]]:
        """The community's shops (id, name), for a merchant's discount."""
        if self._shops is None:
            shops = await merchants.list_merchants(self.ctx.db, self.who.community_id)
            self._shops = [(m.id, m.name) for m in shops[:20]]
        return self._shops


@dataclass(frozen=True)
class Question:
    text: str
    rows: list[list[tuple[str, str]]] = field(default_factory=list)
    back: bool = True  # a ↩ Back button beside ✖ Cancel


Asker = Callable[[Turn], Awaitable[Question]]
Accepter = Callable[[Turn, Input], Awaitable[Outcome]]


@dataclass(frozen=True)
class Step:
    ask: Asker
    accept: Accepter


def _lang(t: Translator) -> str:
    return str(getattr(t, "lang", "zh"))


def _stock_words(t: Translator, stock: int | None) -> str:
    return t("no limit") if stock is None else t("{n} in stock", n=stock)


def _please_press(turn: Turn) -> Again:
    return Again(turn.t("Please press one of the buttons."))


def _saved(turn: Turn) -> Next:
    return Next(turn.t("✅ Saved."))


# ---------------------------------------------------------------- the list and one reward
async def ask_list(turn: Turn) -> Question:
    t, lang = turn.t, _lang(turn.t)
    items = await rewards.list_rewards(turn.ctx.db, turn.who.community_id, include_inactive=True)
    items.sort(key=lambda r: (not r.active, r.cost, r.id))
    lines = [t("<b>Rewards in the points supermarket</b>")]
    rows = []
    for r in items[:LIST_MAX]:
        state = "" if r.active else " · " + t("withdrawn")
        lines.append(t("{name} · {cost} points · {stock}", name=esc(r.name(lang)), cost=r.cost,
                       stock=_stock_words(t, r.stock)) + state)
        rows.append([(("🚫 " if not r.active else "") + r.name(lang)[:30], button("list", str(r.id)))])
    if not items:
        lines.append(t("There are no rewards yet."))
    lines += ["", t("Press a reward to change it, or add a new one.")]
    rows.append([(t("➕ Add a reward"), button("list", "-add"))])
    return Question("\n".join(lines), rows, back=False)


async def accept_list(turn: Turn, inp: Input) -> Outcome:
    if inp.pressed("-add"):
        turn.draft = RewardDraft(_q=turn.draft.asked, key=secrets.token_hex(8))
        return Go(ORDER[0])
    chosen = parse_int(inp.text, strict=True) if inp.kind == "callback" else None
    if chosen is None:
        return _please_press(turn)
    await rewards.managed(turn.ctx.db, turn.who, chosen)  # NotFound for another community's
    turn.draft = RewardDraft(reward_id=chosen, _q=turn.draft.asked)
    return Go("item")


def describe(t: Translator, r: rewards.Reward, lang: str) -> list[str]:
    """A reward as staff read it (names in both languages, kind, cost, stock, photo, on offer or not)."""
    names = esc(r.name_zh) if r.name_en in ("", r.name_zh) else f"{esc(r.name_zh)} / {esc(r.name_en)}"
    return [f"<b>{names}</b>",
            t("Kind: {kind}", kind=t(KIND_LABELS[r.kind])),
            t("Cost: {n} points", n=r.cost),
            t("Stock: {stock}", stock=_stock_words(t, r.stock)),
            t("Photo: yes") if r.photo_file_id else t("Photo: none"),
            t("On offer: residents can redeem it.") if r.active else
            t("Withdrawn: residents do not see it. Vouchers already issued stay valid.")]


async def ask_item(turn: Turn) -> Question:
    t = turn.t
    r = await turn.reward()
    rows = [[(t("✏ Name"), button("item", "name_zh")), (t("💰 Cost"), button("item", "cost"))],
            [(t("📦 Stock"), button("item", "stock"))]
            + ([(t("➕ Restock"), button("item", "restock"))] if r.stock is not None else []),
            [(t("🏷 Kind"), button("item", "kind")), (t("🖼 Photo"), button("item", "photo"))],
            [(t("🚫 Withdraw"), button("item", "withdraw")) if r.active
             else (t("✅ Offer it again"), button("item", "-offer"))]]
    return Question("\n".join([*describe(t, r, _lang(t)), "", t("What would you like to change?")]), rows)


async def accept_item(turn: Turn, inp: Input) -> Outcome:
    if inp.pressed("-offer"):
        await turn.change(active=True)
        return Next(turn.t("✅ It is on offer again."))
    chosen = inp.pressed("name_zh", "cost", "stock", "restock", "kind", "photo", "withdraw")
    if chosen is None:
        return _please_press(turn)
    return Go(chosen)


# ---------------------------------------------------------------- names
async def ask_name_zh(turn: Turn) -> Question:
    t = turn.t
    text = t("What is the reward called? Please type its name in Chinese (up to {n} characters), e.g. 大米 5 斤.",
             n=rewards.NAME_MAX)
    if not turn.draft.adding:
        text = t("Now: {name}", name=esc((await turn.reward()).name_zh)) + "\n" + text
    return Question(text)


async def accept_name_zh(turn: Turn, inp: Input) -> Outcome:
    turn.draft.name_zh = rewards.read_name(inp.text if inp.kind == "text" else None)
    return Next()


async def ask_name_en(turn: Turn) -> Question:
    t = turn.t
    text = t("And in English? Please type the English name (up to {n} characters), or press “No English name”: "
             "English readers then see the Chinese one.", n=rewards.NAME_MAX)
    rows = [[(t("No English name"), button("name_en", "-none"))]]
    if not turn.draft.adding:
        r = await turn.reward()
        if r.name_en and r.name_en != r.name_zh:
            rows.insert(0, [(t("Keep “{name}”", name=r.name_en[:40]), button("name_en", "-keep"))])
    return Question(text, rows)


async def accept_name_en(turn: Turn, inp: Input) -> Outcome:
    d = turn.draft
    if inp.pressed("-none"):
        d.name_en = ""
    elif inp.pressed("-keep") and not d.adding:
        d.name_en = (await turn.reward()).name_en
    elif inp.kind == "text":
        d.name_en = rewards.read_name(inp.text)
    else:
        return Again(turn.t("Please type the English name, or press a button."))
    if d.adding:
        return Next()
    await turn.change(name_zh=d.name_zh, name_en=d.name_en or d.name_zh)
    return _saved(turn)


# ---------------------------------------------------------------- kind and merchant
async def ask_kind(turn: Turn) -> Question:
    t = turn.t
    items = [(t(KIND_LABELS[k]), button("kind", k)) for k in rewards.KINDS]
    return Question(t("What kind of reward is it?"), [items[i:i + 2] for i in range(0, len(items), 2)])


async def accept_kind(turn: Turn, inp: Input) -> Outcome:
    kind = inp.pressed(*rewards.KINDS)
    if kind is None:
        return _please_press(turn)
    if kind == "discount":
        if not await turn.merchants():
            return Again(turn.t("There are no merchants yet. To add a shop, send: /merchant new NAME"))
        return Go("merchant")
    turn.draft.kind, turn.draft.merchant_id = kind, None
    if turn.draft.adding:
        return Next()
    await turn.change(kind=kind)
    return _saved(turn)


async def ask_merchant(turn: Turn) -> Question:
    rows = [[(name[:40], button("merchant", str(mid)))] for mid, name in await turn.merchants()]
    return Question(turn.t("Which shop gives the discount?"), rows)


async def accept_merchant(turn: Turn, inp: Input) -> Outcome:
    chosen = parse_int(inp.text, strict=True) if inp.kind == "callback" else None
    if chosen is None or chosen not in dict(await turn.merchants()):
        return _please_press(turn)
    turn.draft.kind, turn.draft.merchant_id = "discount", chosen
    if turn.draft.adding:
        return Next()
    await turn.change(kind="discount", merchant_id=chosen)
    return _saved(turn)


# ---------------------------------------------------------------- cost, stock, restock
async def ask_cost(turn: Turn) -> Question:
    t = turn.t
    text = t("How many points does it cost? Please type a number from 1 to {high}, e.g. 50.", high=rewards.COST_MAX)
    if not turn.draft.adding:
        text = t("Now: {n} points", n=(await turn.reward()).cost) + "\n" + text
    return Question(text)


async def accept_cost(turn: Turn, inp: Input) -> Outcome:
    cost = rewards.read_cost(inp.text if inp.kind == "text" else None)
    if turn.draft.adding:
        turn.draft.cost = cost
        return Next()
    await turn.change(cost=cost)
    return Next(turn.t("✅ Saved. Vouchers already issued keep the points they cost."))


async def ask_stock(turn: Turn) -> Question:
    t = turn.t
    text = t("How many are there to give out? Please type a number (0 to {high}), or press “No limit” if it never "
             "runs out.", high=rewards.STOCK_MAX)
    if not turn.draft.adding:
        text = t("Now: {stock}", stock=_stock_words(t, (await turn.reward()).stock)) + "\n" + text
    return Question(text, [[(t("♾ No limit"), button("stock", "-unlimited"))]])


async def accept_stock(turn: Turn, inp: Input) -> Outcome:
    if inp.pressed("-unlimited"):
        stock = None
    elif inp.kind == "text":
        stock = rewards.read_stock(inp.text)
    else:
        return Again(turn.t("Please type a number, or press a button."))
    if turn.draft.adding:
        turn.draft.stock = stock
        return Next()
    await turn.change(stock=stock)
    return _saved(turn)


async def ask_restock(turn: Turn) -> Question:
    t = turn.t
    r = await turn.reward()
    return Question(t("Now: {stock}", stock=_stock_words(t, r.stock)) + "\n"
                    + t("How many more came in? Please type a number, e.g. 10."))


async def accept_restock(turn: Turn, inp: Input) -> Outcome:
    add = rewards.read_restock(inp.text if inp.kind == "text" else None)
    stock = await rewards.restock(turn.ctx.db, turn.who, int(turn.draft.reward_id or 0), add=add, now=turn.now)
    return Next(turn.t("✅ Restocked: {n} in stock now.", n=stock))


# ---------------------------------------------------------------- photo
async def ask_photo(turn: Turn) -> Question:
    t = turn.t
    text = t("Please send a photo of the reward: residents will see it in the points supermarket.")
    if turn.draft.adding:
        return Question(text + "\n" + t("No photo? Press Skip."), [[(t("Skip"), button("photo", "-skip"))]])
    if (await turn.reward()).photo_file_id:
        return Question(text + "\n" + t("It has a photo now; a new one replaces it."),
                        [[(t("🗑 Remove the photo"), button("photo", "-remove"))]])
    return Question(text)


async def accept_photo(turn: Turn, inp: Input) -> Outcome:
    t, d = turn.t, turn.draft
    if inp.pressed("-skip") and d.adding:
        d.photo = None
        return Next()
    if inp.pressed("-remove") and not d.adding:
        await turn.change(photo_file_id=None)
        return Next(t("✅ The photo is removed."))
    if inp.kind != "photo" or not inp.file_id:
        return Again(t("Please send a photo (with the 📎 button, as a photo, not as a file), or press a button."))
    if d.adding:
        d.photo = inp.file_id
        return Next()
    await turn.change(photo_file_id=inp.file_id)
    return Next(t("✅ Photo saved. Residents see it in the points supermarket."))


# ---------------------------------------------------------------- withdraw
async def ask_withdraw(turn: Turn) -> Question:
    t = turn.t
    r = await turn.reward()
    return Question(t("Withdraw “{name}” from the points supermarket? Residents will no longer see it. Vouchers "
                      "already issued stay valid.", name=esc(r.name(_lang(t)))),
                    [[(t("🚫 Yes, withdraw it"), button("withdraw", "yes")),
                      (t("No, keep it"), button("withdraw", "no"))]])


async def accept_withdraw(turn: Turn, inp: Input) -> Outcome:
    if inp.pressed("no"):
        return Go("item")
    if not inp.pressed("yes"):
        return _please_press(turn)
    await turn.change(active=False)
    return Next(turn.t("✅ Withdrawn. Residents no longer see it; vouchers already issued stay valid."))


# ---------------------------------------------------------------- adding: the summary
async def ask_confirm(turn: Turn) -> Question:
    t, d = turn.t, turn.draft
    shops = dict(await turn.merchants()) if d.kind == "discount" else {}
    kind = t(KIND_LABELS[str(d.kind)]) + (f" · {esc(shops.get(d.merchant_id or 0, ''))}" if shops else "")
    names = esc(d.name_zh) + (f" / {esc(d.name_en)}" if d.name_en else "")
    lines = [t("<b>Please check the new reward:</b>"), f"<b>{names}</b>", t("Kind: {kind}", kind=kind),
             t("Cost: {n} points", n=d.cost), t("Stock: {stock}", stock=_stock_words(t, d.stock)),
             t("Photo: yes") if d.photo else t("Photo: none"), "", t("Put it in the points supermarket?")]
    return Question("\n".join(lines), [[(t("✅ Yes, offer it"), button("confirm", "save"))]])


async def accept_confirm(turn: Turn, inp: Input) -> Outcome:
    d = turn.draft
    if not inp.pressed("save"):
        return _please_press(turn)
    rid = await rewards.create_reward(
        turn.ctx.db, community_id=turn.who.community_id, name_zh=str(d.name_zh), name_en=d.name_en or "",
        kind=str(d.kind), cost=int(d.cost or 0), stock=d.stock, merchant_id=d.merchant_id, now=turn.now,
        actor_id=turn.who.member_id, photo_file_id=d.photo, add_key=d.key)
    d.reward_id = rid
    return Next(turn.t("✅ Added. Residents can redeem it in the points supermarket now."))


# Every step: how it asks, how it accepts. Adding follows ORDER; changing goes back to "item".
STEPS: dict[str, Step] = {
    "list": Step(ask_list, accept_list),           # the community's rewards: one to change, or ➕ Add
    "item": Step(ask_item, accept_item),           # one reward: what to change (or offer it again)
    "name_zh": Step(ask_name_zh, accept_name_zh),  # typed
    "name_en": Step(ask_name_en, accept_name_en),  # typed, or none (or keep it)
    "kind": Step(ask_kind, accept_kind),           # a kind button (a discount: then the shop)
    "merchant": Step(ask_merchant, accept_merchant),
    "cost": Step(ask_cost, accept_cost),           # typed number
    "stock": Step(ask_stock, accept_stock),        # typed number, or no limit
    "restock": Step(ask_restock, accept_restock),  # typed number added to the stock
    "photo": Step(ask_photo, accept_photo),        # a photo; skip (adding) or remove (changing)
    "withdraw": Step(ask_withdraw, accept_withdraw),  # yes / no
    "confirm": Step(ask_confirm, accept_confirm),  # adding: the summary, then saved
}


def next_step(draft: RewardDraft, done: str) -> str:
    """The step after ``done`` was answered."""
    done = SUB_STEP_OF.get(done, done)
    if done == "withdraw":
        return "list"
    if not draft.adding:
        return "name_en" if done == "name_zh" else "item"
    return ORDER[ORDER.index(done) + 1]


def back_step(draft: RewardDraft, at: str) -> str:
    """Where ↩ Back goes: the question before (adding), the reward (changing it), the list (from the reward)."""
    if at in SUB_STEP_OF:  # the shop of a discount: back to the kinds
        return SUB_STEP_OF[at]
    if at == "item" or (draft.adding and at == ORDER[0]):
        return "list"
    if draft.adding and at in ORDER:
        return ORDER[ORDER.index(at) - 1]
    return "item" if not draft.adding else "list"


# ---------------------------------------------------------------- running the steps
async def _turn(update: Update, ctx: LinliContext, dialog: Dialog) -> Turn | None:
    """This answer's turn; None (the dialog closed, the person told) when they may not manage any more."""
    t = await tr_for(update, ctx)
    try:
        who = await rewards.manager(ctx.db, dialog.tg_user_id, ctx.settings.admin_ids)
        draft = RewardDraft.model_validate(dialog.data)
    except (NotAllowed, ValidationError) as exc:
        await dialogs.finish(ctx, dialog.tg_user_id)
        text = error_text(t, exc) if isinstance(exc, DomainError) else t("Sorry, let us start again.")
        await reply(update, text, await main_menu(ctx, dialog.tg_user_id, t))
        return None
    return Turn(update, ctx, dialog, draft, t, who, ctx.now())


@flow(FLOW, ask=lambda update, ctx, dialog, prefix: prompt(update, ctx, dialog, prefix))
async def reward_flow(update: Update, ctx: LinliContext, dialog: Dialog, inp: Input) -> None:
    turn = await _turn(update, ctx, dialog)
    if turn is None:
        return
    if inp.pressed("-cancel"):
        await _close(turn)
        return
    step = STEPS.get(dialog.step)
    if step is None:
        outcome: Outcome = Go("list")
    elif inp.pressed("-back"):
        outcome = Go(back_step(turn.draft, turn.step))
    else:
        try:
            outcome = await step.accept(turn, inp)
        except DomainError as err:  # a rule said no: nothing changed; the same question again, with why
            outcome = Again(error_text(turn.t, err))
    await _follow(turn, outcome)


async def _close(turn: Turn) -> None:
    t, user_id = turn.t, turn.dialog.tg_user_id
    await dialogs.close_buttons(turn.update)
    await dialogs.finish(turn.ctx, user_id)
    text = t("Cancelled. The new reward was not added.") if turn.draft.adding and turn.step in ORDER \
        else t("Closed. What you saved stays saved.")
    await reply(turn.update, text, await main_menu(turn.ctx, user_id, t))


async def _follow(turn: Turn, outcome: Outcome) -> None:
    """Do what a step returned: move on (saving the dialog with its new step) or ask again."""
    if isinstance(outcome, Stop):
        return
    if isinstance(outcome, Again):
        await _prompt(turn, outcome.why)
        return
    turn.dialog.step = outcome.step if isinstance(outcome, Go) else next_step(turn.draft, turn.step)
    turn.dialog.data = turn.draft.model_dump(by_alias=True, exclude_none=True)
    await dialogs.save(turn.ctx, turn.dialog)
    await _prompt(turn, outcome.say if isinstance(outcome, Next) else "")


async def prompt(update: Update, ctx: LinliContext, dialog: Dialog, prefix: str = "") -> None:
    """Ask the question of the dialog's current step (``prefix``: why it is asked again)."""
    turn = await _turn(update, ctx, dialog)
    if turn is not None:
        await _prompt(turn, prefix)


async def _prompt(turn: Turn, prefix: str = "") -> None:
    t = turn.t
    try:
        asked = await STEPS[turn.step].ask(turn)
    except DomainError as err:  # the reward is gone (another community's, or a forged id): the list
        if turn.step == "list":
            raise
        turn.dialog.step = "list"
        await dialogs.save(turn.ctx, turn.dialog)
        await _prompt(turn, error_text(t, err))
        return
    rows = list(asked.rows)
    close = (t("✖ Close") if turn.step in ("list", "item") or not turn.draft.adding else t("✖ Cancel"),
             button(turn.step, "-cancel"))
    rows.append([(t("↩ Back"), button(turn.step, "-back")), close] if asked.back else [close])
    await _ask(turn, (prefix + "\n\n" if prefix else "") + asked.text, inline(rows))


async def _ask(turn: Turn, text: str, markup: InlineKeyboardMarkup) -> None:
    turn.draft.asked = await dialogs.ask(turn.update, turn.ctx, turn.dialog, turn.draft.asked, text, markup)


# ---------------------------------------------------------------- starting
@menu_item("manage_rewards", N_("🏷 Manage rewards"), visible=staff, order=65,
           about=N_("add, change or withdraw what points can buy."))
async def open_rewards(update: Update, ctx: LinliContext) -> None:
    """The staff menu's button and /rewards manage: the community's rewards (staff only)."""
    user = update.effective_user
    if user is None:
        return
    t = await tr_for(update, ctx)
    try:
        await rewards.manager(ctx.db, user.id, ctx.settings.admin_ids)
    except NotAllowed as exc:
        await reply(update, error_text(t, exc))
        return
    dialog = await dialogs.start(ctx, user.id, FLOW, "list")
    await prompt(update, ctx, dialog)


def register(app: LinliApp) -> None:
    """Nothing to add: the dialog and its menu button register when this module is imported, and
    /rewards manage is read by bot.conversations.rewards."""
