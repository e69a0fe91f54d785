"""The main menu: a reply keyboard in the private chat with the few things each role does most.

Features register their items (label, who sees it, what it does); a press of a menu button is a
plain text message equal to the label, in either language, and it always wins over a dialog, so
an elderly resident can never get stuck in one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import KeyboardButton, ReplyKeyboardMarkup, Update

from bot.context import LinliContext
from bot.i18n import Translator, translator
from bot.models import Member
from storage import members as member_store

MenuAction = Callable[[Update, LinliContext], Awaitable[None]]


@dataclass(frozen=True)
class MenuItem:
    key: str
    label: str                          # message id, e.g. "🆘 Ask for help"
    action: MenuAction
    visible: Callable[[Member | None], bool]
    order: int = 50
    about: str | None = None            # message id: what it is for, in a few words (/help)


ITEMS: dict[str, MenuItem] = {}


def menu_item(key: str, label: str, *, visible: Callable[[Member | None], bool], order: int = 50,
              about: str | None = None) -> Callable[[MenuAction], MenuAction]:
    def deco(fn: MenuAction) -> MenuAction:
        ITEMS[key] = MenuItem(key, label, fn, visible, order, about)
        return fn

    return deco


def anyone(member: Member | None) -> bool:
    return True


def registered(member: Member | None) -> bool:
    return member is not None and member.registered


def resident(member: Member | None) -> bool:
    return member is not None and member.registered and member.is_resident


def participant(member: Member | None) -> bool:
    """Takes part in the points scheme: a resident, volunteer or staff member (not only a merchant)."""
    return member is not None and member.registered and (member.is_resident or member.is_volunteer or member.is_staff)


def merchant(member: Member | None) -> bool:
    return member is not None and member.registered and member.is_merchant


def volunteer(member: Member | None) -> bool:
    return member is not None and member.registered and member.is_volunteer


def staff(member: Member | None) -> bool:
    return member is not None and member.registered and member.is_staff


async def load_member(ctx: LinliContext, tg_user_id: int) -> Member | None:
    return await member_store.by_tg_with_merchant(ctx.db, tg_user_id)


def _visible(member: Member | None) -> list[MenuItem]:
    return sorted((i for i in ITEMS.values() if i.visible(member)), key=lambda i: (i.order, i.key))


def menu_help(member: Member | None, t: Translator) -> list[str]:
    """What each of this person's menu buttons is for, one line each, in the menu's order (/help):
    the buttons are named as they read, so the help can never send anyone looking for another."""
    return [t("“{label}”: {about}", label=t(i.label), about=t(i.about)) for i in _visible(member) if i.about]


async def main_menu(ctx: LinliContext, tg_user_id: int, t: Translator) -> ReplyKeyboardMarkup | None:
    """The reply keyboard for this person (two buttons a row, big and plain)."""
    member = await load_member(ctx, tg_user_id)
    items = _visible(member)
    if not items:
        return None
    labels = [KeyboardButton(t(i.label)) for i in items]
    rows = [labels[i : i + 2] for i in range(0, len(labels), 2)]
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, is_persistent=True)


def _lookup(text: str) -> MenuItem | None:
    for item in ITEMS.values():
        if text in (item.label, translator("zh")(item.label), translator("en")(item.label)):
            return item
    return None


async def handle_menu_text(update: Update, ctx: LinliContext) -> bool:
    """Run the menu item whose label is this text (ending any dialog); False if it is none."""
    msg = update.effective_message
    user = update.effective_user
    if msg is None or msg.text is None or user is None:
        return False
    item = _lookup(msg.text.strip())
    if item is None:
        return False
    from bot import dialogs

    open_dialog = await dialogs.load(ctx, user.id)
    flow = open_dialog.flow if open_dialog is not None else None
    await dialogs.finish(ctx, user.id)
    if flow in ("request", "register") and item.key != flow:  # say what was put aside
        from bot.ui import reply, tr_for

        t = await tr_for(update, ctx)
        if flow == "request":
            await reply(update, t("Your unfinished request was not sent. To start it again, press 🆘 or send /request."))
        elif open_dialog is not None and open_dialog.data.get("editing"):
            await reply(update, t("Your profile changes were not saved. To try again, open 👤 My profile and press ✏ Change my details."))
    await item.action(update, ctx)
    return True
