"""The group card refresher: posts a card for each newly published task and edits cards whose
card_version moved past card_rendered. Bursts are coalesced (at most one edit per card every
few seconds). Cards come first in a group's 20-messages-a-minute budget: it is the one budget of
the rate limiter (bot.ratelimit.group_room), which the outbox reads too and leaves a part of to
cards (bot.jobs.outbox_drain.CARD_RESERVE), holding honours and summaries back while cards wait."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import time
from typing import Any

from telegram import InlineKeyboardMarkup
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.context import LinliContext
from bot.fit import fit
from bot.i18n import Translator, translator
from bot.models import N_
from bot.ratelimit import group_room
from bot.services import communities
from bot.services.tasks import public_text, secrets_of
from bot.ui import esc, inline, local_time
from storage import cards as card_store
from storage import tasks as task_store

log = logging.getLogger(__name__)

EDIT_GAP_S = 5.0          # at most one edit per card this often
_last_edit: dict[int, float] = {}
STALE_S = 60.0            # a press showing an earlier state of the card this soon after the latest drawing is stale
_KEEP_SHOWN = 4           # states remembered per card
# task id -> what the card showed lately, as a press shows it, when, and whether this process drew
# it (False: what a press found on it instead of what it should show, and had redrawn).
_shown: dict[int, list[tuple[Any, float, bool]]] = {}
# task id -> (the card row and default language it was drawn from, the drawing as a press shows it)
_should: dict[int, tuple[Any, Any]] = {}


def _has_budget(ctx: LinliContext, chat_id: int) -> bool:
    """A card goes out now only if the group's budget has room (the call would not wait): a card
    that would wait stays to do for the next run, and the run goes on to other groups."""
    room = group_room(ctx.bot, chat_id)
    return room is None or room > 0


def _who_and_where(t: Translator, task: Any) -> list[str]:
    """The card's area line, and who may claim when the task is open to one organisation only."""
    lines = [t("Area: {a}", a=esc(task["area_name"]))] if task["area_name"] else []
    org = task["organisation_name"] if "organisation_name" in task.keys() else None
    if org:
        lines.append(t("Only for members of {org}", org=esc(org)))
    return lines


def _card_translator(ctx: LinliContext, task: Any) -> Translator:
    """The community's language, read with the card row (no read of its own)."""
    return translator(task["community_language"] or ctx.settings.default_language)


def _waiting(task: Any) -> int:
    """How many wait for a place (a card row counts them; other rows may not)."""
    keys = task.keys() if hasattr(task, "keys") else ()
    return int(task["waiting"] or 0) if "waiting" in keys else 0


_CLOSED = {"completed": N_("✅ Completed. Thank you, everyone!"), "cancelled": N_("This task was cancelled."),
           "expired": N_("This task has expired.")}


def _state_part(t: Translator, task: Any, lines: list[str]) -> Any:
    """The card's lines and buttons for the task's state (appended to ``lines``); returns the buttons."""
    state, tid, waiting = task["state"], task["id"], _waiting(task)
    if state == "open":
        if waiting:
            lines.append(t("Waiting list: {n}", n=waiting))
        return inline([[(t("🙋 Claim"), f"cl:{tid}"), (t("Details"), f"dt:{tid}")]])
    if state == "full" and task["kind"] == "event":
        lines.append(t("All places are taken. Waiting list: {n}", n=waiting))
        return inline([[(t("🕒 Join the waiting list"), f"wl:{tid}"), (t("Details"), f"dt:{tid}")]])
    if state == "full":
        return inline([[(t("All places taken"), f"dt:{tid}"), (t("Details"), f"dt:{tid}")]])
    if state in ("in_progress", "awaiting_confirmation"):
        lines.append(t("A volunteer is on the way. Thank you!"))
    elif state in _CLOSED:
        lines.append(t(_CLOSED[state]))
    return None


def render_card(t: Translator, task: Any, taken: int) -> tuple[str, Any]:
    """The public card: never the exact address, phone or requester's name."""
    secrets = secrets_of(task)
    heading = public_text(task["title"], secrets) or t("Help wanted")
    lines = [f"<b>{esc(heading)}</b>"]
    category = (task["category_zh"] if t.lang == "zh" else task["category_en"]) or task["category"]
    lines.append(t("Category: {c}", c=esc(category)))
    if task["description"]:
        lines.append(esc(public_text(task["description"], secrets)[:500]))  # cut, then escape
    if task["voice_file_id"]:
        lines.append(t("(voice message: details for the volunteer who claims)"))
    lines += _who_and_where(t, task)
    when = {"asap": t("As soon as possible"), "today": t("Today"), "tomorrow": t("Tomorrow")}.get(task["when_kind"])
    lines.append(t("When: {w}", w=esc(when or local_time(task["starts_at"], task["community_tz"]))))
    lines.append(t("Places: {taken}/{slots} · Points: {points}", taken=taken, slots=task["slots"], points=task["points"]))
    markup = _state_part(t, task, lines)
    return fit("\n".join(lines), t), markup


async def cards_waiting(ctx: LinliContext, chat_id: int) -> bool:
    """Whether the group has a new card or a card edit waiting for the card job."""
    return await card_store.waiting(ctx.db, chat_id)


def _plain(html_text: str) -> str:
    """What Telegram shows of a card's HTML: tags gone, entities read, spacing as one space."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", html_text)).split())


def _buttons(markup: Any) -> list[list[tuple[str, str | None, str | None]]]:
    if markup is None:
        return []
    return [[(b.text, b.callback_data if isinstance(b.callback_data, str) else None, b.url) for b in row]
            for row in markup.inline_keyboard]


def _as_shown(text: str, markup: Any) -> Any:
    """A card as a press shows it (plain text, buttons): what ``check_shown`` compares."""
    return " ".join(text.split()), _buttons(markup)


def _note_shown(tid: int, shown: Any, ours: bool) -> None:
    """Remember a state of a card: a drawing Telegram took (posted or edited), or what a press found
    on it before it was redrawn."""
    if len(_shown) > 20_000:
        _shown.clear()
    kept = [s for s in _shown.get(tid, []) if s[0] != shown]
    _shown[tid] = [*kept, (shown, time.monotonic(), ours)][-_KEEP_SHOWN:]


def _note_drawn(tid: int, text: str, markup: Any) -> None:
    _note_shown(tid, _as_shown(_plain(text), markup), True)


def _stale_press(tid: int, pressed: Any) -> bool:
    """The press shows a state the card had before this process's latest drawing, made only moments
    ago: the press left the person's app before the edit reached it (in a claim storm, most presses).
    The card shows the latest drawing; redrawing it would change nothing. Also true when a redraw was
    already asked for this very state and the card job has not drawn since (presses in the same burst)."""
    states = _shown.get(tid, [])
    if not states or time.monotonic() - states[-1][1] > STALE_S:
        return False
    latest, _, ours = states[-1]
    if not ours:
        return bool(latest == pressed)
    return any(shown == pressed for shown, _, _ in states[:-1])


def _should_show(ctx: LinliContext, task: Any) -> Any:
    """The card as a press would show it if it is as it should be. Drawn again only when the card row
    changed since the last press on that card (a claim storm presses one unchanged card hundreds of
    times): keyed by the whole row just read, so it is never older than that read."""
    tid, key = int(task["id"]), (tuple(task), ctx.settings.default_language)
    known = _should.get(tid)
    if known is not None and known[0] == key:
        return known[1]
    want_text, want_markup = render_card(_card_translator(ctx, task), task, int(task["taken"]))
    shown = _as_shown(_plain(want_text), want_markup)
    if len(_should) > 20_000:
        _should.clear()
    _should[tid] = (key, shown)
    return shown


async def check_shown(ctx: LinliContext, task: Any, text: str | None, markup: Any) -> int | None:
    """A button was pressed on a message of a group whose card row (``storage.cards.pressed``) is
    ``task``: if it is a task's card and Telegram shows it other than it should be (someone or
    something overwrote it), the card job redraws it.

    Returns the id of the task whose card it is (None when it is no card). A card already waiting for
    the card job is left to it, and so is a press made just before the card's latest edit (in a claim
    storm most presses see a card one edit behind).
    """
    if task is None:
        return None
    tid = int(task["id"])
    if int(task["card_version"]) > int(task["card_rendered"]):
        return tid
    pressed = _as_shown(text or "", markup)
    if _should_show(ctx, task) == pressed or _stale_press(tid, pressed):
        return tid
    log.warning("card %s in %s shows something else; it will be redrawn", tid, task["group_chat_id"])
    _note_shown(tid, pressed, False)  # before the write: presses of the same burst do not ask again
    try:
        await card_store.redraw(ctx.db, tid)
    except BaseException:
        _shown.pop(tid, None)  # not asked after all: the next press asks
        raise
    _last_edit.pop(tid, None)
    return tid


async def refresh_cards(ctx: LinliContext) -> None:
    """Post or edit every card to draw. One card never holds the others, nor its group's honours
    (they wait while the group has a card to draw): a group that became a supergroup is followed, a
    group that refuses for good has the card given up (``_post_card``), and a card that cannot be drawn
    is given up for that version."""
    rows = await card_store.to_draw(ctx.db)
    for task in rows:
        tid = int(task["id"])
        try:
            await _draw(ctx, task)
        except RetryAfter as exc:
            log.info("card refresh told to wait %s", exc.retry_after)
            return
        except ChatMigrated as exc:  # the group became a supergroup: everything follows, the card is tried there
            await _follow(ctx, _chat_of(task), int(exc.new_chat_id))
        except TelegramError as exc:
            log.warning("card %s failed: %s", tid, exc)


def _chat_of(task: Any) -> int:
    """The group the card is (or is to be) in."""
    return int(task["group_chat_id"] if task["group_message_id"] is not None else task["community_chat"])


async def _follow(ctx: LinliContext, old_chat_id: int, new_chat_id: int) -> None:
    from bot.jobs.outbox_drain import migrate_chat

    log.info("group %s became the supergroup %s: its cards follow", old_chat_id, new_chat_id)
    async with ctx.db.transaction() as conn:
        await migrate_chat(conn, old_chat_id, new_chat_id)


async def _draw(ctx: LinliContext, task: Any) -> None:
    tid, version = int(task["id"]), int(task["card_version"])
    try:
        text, markup = render_card(_card_translator(ctx, task), task, int(task["taken"]))
    except Exception:  # a row the card cannot show: given up for this version, not tried every run
        log.exception("card %s cannot be drawn; given up", tid)
        if task["group_message_id"] is None:
            await task_store.card_given_up(ctx.db, tid, int(task["community_chat"]), version)
        else:
            await task_store.card_drawn(ctx.db, tid, version, task["card_hash"])
        return
    shown = hashlib.sha1((text + "\0" + (markup.to_json() if markup else "")).encode()).hexdigest()[:16]
    if task["group_message_id"] is None:
        await _post_card(ctx, task, text, markup, shown)
    else:
        await _edit_card(ctx, task, text, markup, shown)


# What Telegram says when the group itself will not take a message (rather than the message's own
# text, entities or buttons being wrong, which is Linli's fault and no business of the group's staff).
_GROUP_REFUSALS = ("chat not found", "rights", "forbidden", "kicked", "not a member", "chat_write", "deactivated",
                   "chat was upgraded", "topic_closed", "not enough")


def _group_refused(exc: Exception) -> bool:
    return isinstance(exc, Forbidden) or any(word in str(exc).lower() for word in _GROUP_REFUSALS)


async def _post_card(ctx: LinliContext, task: Any, text: str, markup: InlineKeyboardMarkup | None, shown: str) -> None:
    """Post a task's first card in its community's group (when the group's budget allows)."""
    tid, version = int(task["id"]), int(task["card_version"])
    chat_id = int(task["community_chat"])
    if not _has_budget(ctx, chat_id):
        return
    try:
        msg = await ctx.bot.send_message(chat_id, text, reply_markup=markup)
    except (BadRequest, Forbidden) as exc:   # the group is gone or the bot was removed
        await task_store.card_given_up(ctx.db, tid, chat_id, version)  # 0: given up, do not retry every run
        if not _group_refused(exc):  # the card's own text or buttons: nothing staff can do in the group
            log.error("card %s was refused for what it says: %s", tid, exc)
            return
        log.warning("card %s cannot be posted in %s: %s", tid, chat_id, exc)
        await communities.card_refused(ctx.db, community_id=int(task["community_id"]), task_id=tid,
                                       group_chat_id=chat_id, now=ctx.now())
        return
    await task_store.card_posted(ctx.db, tid, chat_id, msg.message_id, version, shown)
    _last_edit[tid] = time.monotonic()
    _note_drawn(tid, text, markup)


async def _edit_card(ctx: LinliContext, task: Any, text: str, markup: InlineKeyboardMarkup | None, shown: str) -> None:
    """Redraw a posted card if what a reader sees has changed (not too often per card and group)."""
    tid, version = int(task["id"]), int(task["card_version"])
    if shown == task["card_hash"]:  # nothing a reader would see has changed
        await task_store.card_drawn(ctx.db, tid, version, None, keep_hash=True)
        return
    if time.monotonic() - _last_edit.get(tid, 0.0) < EDIT_GAP_S:
        return
    chat_id = int(task["group_chat_id"])
    if not _has_budget(ctx, chat_id):
        return
    _last_edit[tid] = time.monotonic()
    done: str | None = shown
    try:
        await ctx.bot.edit_message_text(text, chat_id=chat_id, message_id=int(task["group_message_id"]),
                                        reply_markup=markup)
    except (BadRequest, Forbidden) as exc:
        if "not modified" not in str(exc).lower():
            log.warning("card %s not edited: %s", tid, exc)
            done = task["card_hash"]  # not shown: a later change (or the bot's return) tries again
    if done == shown:
        _note_drawn(tid, text, markup)
    await task_store.card_drawn(ctx.db, tid, version, done)
