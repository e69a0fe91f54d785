"""/help, and the private-chat router that runs last: menu buttons, the running dialog, what a
message may start (a voice note: a quick request), fallback."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import dialogs
from bot.context import LinliApp, LinliContext
from bot.deeplinks import link
from bot.i18n import both
from bot.menu import handle_menu_text, load_member, main_menu, menu_help
from bot.services import members
from bot.ui import answer, esc, reply, tr_for
from storage import communities as community_store


async def help_command(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    chat = update.effective_chat
    if chat is not None and chat.type != "private":
        # /help or /start in a group: a button to the private chat (registration for this group's community).
        code = await community_store.join_code_of_group(ctx.db, chat.id, active_only=True)
        markup = None
        if ctx.runtime.bot_username:
            url = link(ctx.runtime.bot_username, f"join_{code}") if code else f"https://t.me/{ctx.runtime.bot_username}"
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(t("💬 Open a private chat"), url=url)]])
        # Everyone in the group reads this: both languages, not only the asker's.
        await reply(
            update,
            both("I am Linli, the neighbourhood volunteer bot. Open a private chat with me to register, ask for help or see your points."),
            markup,
        )
        return
    user = update.effective_user
    assert user is not None
    member = await load_member(ctx, user.id)
    lines = [t("I am Linli (邻里). I help neighbours help each other.")]
    if member is None or not member.registered:
        lines.append(t("Send /start to register. It takes a minute."))
    else:
        lines.append(t("Press a button below:"))
        lines += menu_help(member, t)
        lines.append(t("Stuck in the middle of something? Press any button below, or send /cancel."))
        if member.is_staff:
            lines.append(t("Staff: /publish · /review on|off · /edittask · /canceltask · /categories · /closeevent ·"
                           " /entries · /revoke · /areas · /org · /rewards manage · /stats · /report · /export ·"
                           " /digest now"))
            lines.append(t("Staff: /reliability the score volunteers need to claim events"))
            lines.append(esc(t("Staff: /volunteers <event number> who is coming; take someone off the event")))
    await reply(update, "\n".join(lines), await main_menu(ctx, user.id, t))


async def myid_command(update: Update, ctx: LinliContext) -> None:
    """/myid in a private chat: anyone's own Telegram user id (what BOT_ADMIN_IDS needs)."""
    user = update.effective_user
    if user is None:
        return
    t = await tr_for(update, ctx)
    await reply(update, t("Your Telegram user id is <code>{id}</code>.\n"
                          "To make someone a super-admin, the bot's operator puts their id in BOT_ADMIN_IDS.",
                          id=user.id))


async def private_router(update: Update, ctx: LinliContext) -> None:
    if await handle_menu_text(update, ctx):
        return
    if await dialogs.handle_input(update, ctx) or await dialogs.handle_start(update, ctx):
        return
    user = update.effective_user
    if user is None:
        return
    t = await tr_for(update, ctx)
    member = await load_member(ctx, user.id)
    if member is None or not member.registered:
        await reply(update, t("Hello! To use Linli, please register first: send /start."))
        return
    await reply(update, t("Please choose from the buttons below."), await main_menu(ctx, user.id, t))


async def unknown_command(update: Update, ctx: LinliContext) -> None:
    t = await tr_for(update, ctx)
    await reply(update, t("Sorry, I do not know that command. Send /help to see what I can do."))


async def stale_button(update: Update, ctx: LinliContext) -> None:
    """A button nobody else recognised (old, forged or from a removed feature): answer anyway."""
    query = update.callback_query
    if query is None:
        return
    t = await tr_for(update, ctx)
    await answer(query, t("This button is out of date. Please use the latest message."))


async def note_private_chat(update: Update, ctx: LinliContext) -> None:
    """Someone writes to the bot in private: the bot may write to them (again) from now on."""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None or chat.type != "private" or update.my_chat_member is not None:
        return
    # bot.ui.member_language and bot.ui.member_of use what was read on the way
    ctx.seen_language, member = await members.note_private_chat(ctx.db, user.id)
    ctx.seen_member = (user.id, member)


PRIVATE_ONLY = ["request", "publish", "tasks", "mytasks", "points", "history", "leaderboard", "rewards", "vouchers",
                "profile", "language", "settings", "cancel", "deleteme", "stats", "report", "export", "review",
                "categories", "edittask", "canceltask", "closeevent", "entries", "revoke", "verify", "merchant",
                "digest", "join", "myid", "org", "areas", "reliability", "checkin",
                "volunteers"]


async def ignore_edit(update: Update, ctx: LinliContext) -> None:
    """An edited message is not a new answer (a resident fixing a typo in their description must not
    be taken as answering the next question); nothing handles it."""
    raise ApplicationHandlerStop


def register(app: LinliApp) -> None:
    app.add_handler(MessageHandler(filters.UpdateType.EDITED, ignore_edit), group=-2)
    app.add_handler(TypeHandler(Update, note_private_chat), group=-1)
    app.add_handler(CommandHandler("help", help_command))
    app.add_handler(CommandHandler("start", help_command, filters=filters.ChatType.GROUPS))
    # Private-chat commands typed in a group: point to the private chat (nothing personal in groups).
    app.add_handler(CommandHandler(PRIVATE_ONLY, help_command, filters=filters.ChatType.GROUPS))
    app.add_handler(CommandHandler("myid", myid_command, filters=filters.ChatType.PRIVATE))
    app.add_handler(CallbackQueryHandler(stale_button))
    private = filters.ChatType.PRIVATE
    app.add_handler(MessageHandler(private & ~filters.COMMAND, private_router))
    app.add_handler(MessageHandler(private & filters.COMMAND, unknown_command))
