"""Throughput: the real bot process fed N updates (Claim and Withdraw taps, /points, /tasks), flood
limits off, against two references fed the same updates on the same stand-in in the same run: the
floor (bench/floor_bot.py: python-telegram-bot with Linli's HTTP client, answers only) and a bare
aiohttp + sqlite3 client (bench/bare_client.py: one write and one answer per update).

    .venv/bin/python -m bench.throughput [--updates 5000] [--window 100] [--repeat 3] [--no-pin]
                                         [--profile FILE] [--database sqlite|postgresql|sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import (
    PG_NOTE,
    Databases,
    PinnedBot,
    add_database_option,
    cpu_seconds,
    fresh_db,
    loadavg,
    migrate_async,
    ms,
    percentile,
    pin_driver,
    read,
    report,
    rss_kb,
    section_name,
    seed,
    stand_in,
    users_with_chats,
    write_section,
)
from bench.driver import Step, Timing, drive
from bot.devkit.harness import TOKEN, settle
from bot.devkit.sandbox import FakeTelegram, StoredMessage, User
from bot.jobs.cards import EDIT_GAP_S
from bot.services.tasks import ASK_AFTER_CLAIM

OPEN_TASKS = 200
TAP_USERS = 1000


async def post_cards(fake: FakeTelegram, group_id: int, task_ids: list[int]) -> dict[int, StoredMessage]:
    """Group cards with a Claim button (``cl:<task_id>``), posted through the stand-in's own API."""
    cards = {}
    group = fake.groups[group_id]
    for tid in task_ids:
        await fake.call_api(None, "sendMessage", {
            "chat_id": group_id, "text": f"Task {tid}",
            "reply_markup": {"inline_keyboard": [[{"text": "Claim", "callback_data": f"cl:{tid}"}]]}})
        cards[tid] = group.messages[-1]
    return cards


def link_cards(path: str, cards: dict[int, StoredMessage]) -> None:
    """Point each task's group_message_id at its card in the stand-in (so card edits land), and leave
    the card to be drawn: the bot draws its own card over the placeholder when it starts, before
    anything is timed. (Otherwise the first press on each card, showing the placeholder, had it
    redrawn in the middle of the run: about 200 redraws per throughput run that were the bench's.)"""
    con = sqlite3.connect(path)
    with con:
        con.executemany("UPDATE tasks SET group_message_id = ?, card_hash = NULL,"
                        " card_rendered = MIN(card_rendered, card_version - 1) WHERE id = ?",
                        [(m.message_id, tid) for tid, m in cards.items()])
    con.close()


def _private_button(fake: FakeTelegram, user: User, data: str) -> StoredMessage | None:
    chat = fake.private_chat(user)
    if chat is None:
        return None
    return next((m for m in reversed(chat.messages)
                 if any(b.get("callback_data") == data for b in m.inline_buttons)), None)


def build_steps(fake: FakeTelegram, n: int, cards: dict[int, StoredMessage], cmd_users: list[User],
                tap_users: list[User], rng: random.Random) -> list[Step]:
    steps: list[Step] = []
    task_ids = list(cards)
    n_cmd = min(len(cmd_users), n // 5)
    holding: dict[int, int] = {}  # tap user -> task it claimed last (its next tap withdraws)
    for i in range(n):
        if i % 5 == 4 and n_cmd:
            user = cmd_users[(i // 5) % len(cmd_users)]
            text = "/points" if (i // 5) % 2 == 0 else "/tasks"

            async def command(user: User = user, text: str = text) -> tuple[str, Any]:
                await fake.send_text(user, None, text)
                return "msg", user.id
            steps.append(command)
        else:
            slot = i % len(tap_users)
            user = tap_users[slot]
            held = holding.pop(slot, None)
            if held is not None:
                tid, data = held, f"wd:{held}"
            else:
                tid = rng.choice(task_ids)
                data = f"cl:{tid}"
                holding[slot] = tid

            async def tap(user: User = user, tid: int = tid, data: str = data) -> tuple[str, Any]:
                # Withdraw is pressed where the bot puts it: the volunteer's private details message
                # (on the group card it would be refused); if that has not arrived yet (or the bot
                # sends none, as the references), on the card.
                target = _private_button(fake, user, data) if data.startswith("wd:") else None
                return "cb", await fake.press_raw_callback(user, target or cards[tid], data)
            steps.append(tap)
    return steps


@dataclass
class Run:
    """One bot fed the mix: answers timed by the driver, then waited for until it sends nothing more."""

    name: str
    timing: Timing
    quiet_at: float = 0.0  # wall time of the last call the bot made that was not getUpdates
    messages_at: float = 0.0  # ... of its last call that was not getUpdates nor into a group (private messages)
    cards_at: float | None = None  # ... of its last group card edit (None: it edited none)
    card_edits: int = 0  # group card edits from the first update to quiescence
    not_modified: int = 0  # of which the stand-in refused as "message is not modified"
    cpu: float = float("nan")  # CPU seconds the bot process used from the first update to quiescence
    server_cpu: float = 0.0  # ... and the PostgreSQL server's processes (0: SQLite, inside the bot)
    load_before: str = ""
    load_after: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def quiescent_rate(self) -> float:
        span = self.quiet_at - self.timing.first_sent
        return self.timing.answered / span if span > 0 else float("nan")

    def seconds_to(self, at: float | None) -> float:
        return at - self.timing.first_sent if at is not None else float("nan")

    @property
    def messages_rate(self) -> float:
        span = self.messages_at - self.timing.first_sent
        return self.timing.answered / span if span > 0 else float("nan")

    @property
    def cpu_ms_per_update(self) -> float:
        return 1000 * self.cpu / self.timing.sent if self.timing.sent else float("nan")


async def _world(n: int) -> tuple[FakeTelegram, int, list[User], list[User]]:
    fake = await stand_in(flood_limits=False)
    bot_user = fake.users[int(TOKEN.split(":")[0])]
    group = fake.add_group("Bench volunteers", members=[bot_user])
    cmd_count = max(1, n // 5)
    users = users_with_chats(fake, cmd_count + TAP_USERS)
    for u in users[cmd_count:]:
        fake.add_member(group, u, announce=False)
    return fake, group.id, users[:cmd_count], users[cmd_count:]


async def _measure(name: str, fake: FakeTelegram, proc: PinnedBot, cards: dict[int, StoredMessage],
                   cmd_users: list[User], tap_users: list[User], n: int, window: int,
                   profile: str | None = None, unsent: Callable[[], Awaitable[int]] | None = None,
                   server_cpu: Callable[[], float] = lambda: 0.0) -> Run:
    await proc.start()
    await drive(fake, build_steps(fake, 10, cards, cmd_users, tap_users, random.Random(1)))  # warm-up, not timed
    await settle(fake, quiet=0.5, timeout=60)
    steps = build_steps(fake, n, cards, cmd_users, tap_users, random.Random(9))
    spy = _py_spy(proc.pid, profile) if profile else None
    load_before, cpu0, server0, mark = loadavg(), cpu_seconds(proc.pid), server_cpu(), len(fake.calls)
    pressed_from = len(fake.callbacks)
    timing = await drive(fake, steps, window=window)
    await settle(fake, quiet=1.0, timeout=300)  # quiescence: every message the updates caused is out
    deadline = time.monotonic() + 300
    while unsent is not None and await unsent() and time.monotonic() < deadline:
        # A second without calls is not enough on a busy machine (or for a message held back a few
        # seconds on purpose): the bot's own outbox says whether anything is still to go.
        await settle(fake, quiet=1.0, timeout=300)
    cpu, load_after = cpu_seconds(proc.pid) - cpu0, loadavg()
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    run = Run(name, timing, cpu=cpu, server_cpu=server_cpu() - server0, load_before=load_before, load_after=load_after)
    _ends(run, fake, mark, {m.chat.id for m in cards.values()})
    run.extra["peak_rss_kb"] = rss_kb(proc.pid)[1]
    run.extra["withdraws"] = _withdraws(list(fake.callbacks.values())[pressed_from:])
    return run


def _withdraws(pressed: list[Any]) -> tuple[int, int]:
    """Withdraw taps made on the private details message, and on the group card (the details had not
    arrived yet; refused there). The mix depends on timing: a bot that sends the details sooner gets
    more real withdrawals, which cost more than a refusal, so compare runs with this in view."""
    taps = [c for c in pressed if c.data.startswith("wd:") and c.message is not None]
    private = sum(1 for c in taps if c.message.chat.type == "private")
    return private, len(taps) - private


def _ends(run: Run, fake: FakeTelegram, mark: int, groups: set[int]) -> None:
    """When the bot's last call, its last call not into a group (answers and private messages: what the
    updates caused besides the cards) and its last card edit were made (stand-in records from ``mark``
    on), and how many card edits it made. A group message (an honour queued at start and held behind
    the cards, say) counts only in the last call."""
    names = {str(g) for g in groups}

    def card_edit(call: Any) -> bool:
        return call.method in ("editMessageText", "editMessageReplyMarkup") and str(call.params.get("chat_id")) in names

    calls = [c for c in fake.calls[mark:] if c.method != "getUpdates"]
    edits = [c for c in calls if card_edit(c)]
    run.quiet_at = max((c.time for c in calls), default=run.timing.last_answer)
    run.messages_at = max((c.time for c in calls if str(c.params.get("chat_id")) not in names),
                          default=run.timing.last_answer)
    run.cards_at = max((c.time for c in edits), default=None)
    run.card_edits = len(edits)
    run.not_modified = sum(1 for c in edits if not c.ok and "not modified" in (c.description or ""))


def _py_spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy (a dev tool, not a dependency) sampling the bot as collapsed stacks."""
    exe = os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(exe):
        exe = shutil.which("py-spy") or exe  # installed elsewhere (pip install --target …, on PATH)
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                             "--nonblocking", "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def digest_moment(now: datetime) -> datetime:
    """The next 08:00 Shanghai at least 12 hours ahead: the digest is never due during a run."""
    local = (now + timedelta(hours=12)).astimezone(ZoneInfo("Asia/Shanghai"))
    at = local.replace(hour=8, minute=0, second=0, microsecond=0)
    return at if at >= local else at + timedelta(days=1)


async def _unsent(database: str) -> int:
    """Messages in the bot's outbox not sent yet (read-only, beside the running bot)."""
    return int((await read(database, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"))[0][0])


async def run_linli(n: int, window: int, pin: bool, flood_control: bool = False,
                    profile: str | None = None, *, database: str = "sqlite",
                    dbs: Databases | None = None) -> tuple[Timing, dict[str, Any]]:
    run = await linli_run(n, window, pin, flood_control, profile, database=database, dbs=dbs)
    return run.timing, {**run.extra, "run": run}


async def linli_run(n: int, window: int, pin: bool, flood_control: bool = False, profile: str | None = None, *,
                    database: str = "sqlite", dbs: Databases | None = None) -> Run:
    """Linli fed the mix, on the seeded SQLite file or (``database`` "postgresql") its copy on ``dbs``'s server."""
    fake, group_id, cmd_users, tap_users = await _world(n)
    path = fresh_db("throughput.db")
    await migrate_async(path)
    now = datetime.now(UTC)
    seeded = seed(path, members=len(cmd_users) + len(tap_users), tasks=OPEN_TASKS * 5, open_tasks=OPEN_TASKS,
                  ledger=20_000, group_chat_id=group_id, open_slots=20, now=now, digest_next=digest_moment(now))
    cards = await post_cards(fake, group_id, seeded.open_task_ids)
    link_cards(path, cards)
    url = await dbs.publish(path, database) if dbs is not None else path
    env = {"BOT_SWEEP_INTERVAL": "3600", "BOT_FLOOD_CONTROL": "true" if flood_control else "false"}
    bot = PinnedBot(fake, url, pin=pin, env=env)
    try:
        run = await _measure("Linli" if database == "sqlite" else f"Linli, {database}", fake, bot, cards, cmd_users,
                             tap_users, n, window, profile, unsent=lambda: _unsent(url),
                             server_cpu=dbs.server_cpu if dbs is not None and database != "sqlite" else lambda: 0.0)
        run.extra.update({
            "errors": len(fake.errors),
            "calls": {k: v for k, v in fake.stats.by_method.items() if k != "getUpdates"},
            "sample_answers": [c.params.get("text") for c in fake.calls if c.method == "answerCallbackQuery"][-3:],
            "error_list": sorted({f"{e.method}: {e.description}" for e in fake.errors}),
        })
    finally:
        await bot.stop()
        await fake.stop()
    run.extra["outbox_unsent"] = await _unsent(url)
    run.extra["digests"] = (await read(url, "SELECT COUNT(*) FROM outbox WHERE kind LIKE 'digest%'"))[0][0]
    run.extra["outbox_ends"] = _outbox_ends(
        await read(url, "SELECT kind, created_at, not_before, sent_at FROM outbox WHERE sent_at IS NOT NULL"),
        run.timing.first_sent)
    return run


def _outbox_ends(sent: list[Any], since: float) -> dict[str, Any]:
    """From the bot's outbox: the messages the run queued, split into those due at once and those
    held on purpose (due later than queued: the honours question after a first claim, ...), with
    the seconds from ``since`` to the last sent of each, and the kinds held."""
    def at(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    out: dict[str, Any] = {"now": 0, "now_last": float("nan"), "held": 0, "held_last": float("nan"), "held_kinds": {}}
    for kind, created, due, sent_at in sent:
        if at(created) < since:
            continue
        key = "held" if at(due) > at(created) + 0.5 else "now"
        out[key] += 1
        last = out[f"{key}_last"]
        out[f"{key}_last"] = at(sent_at) - since if math.isnan(last) else max(last, at(sent_at) - since)
        if key == "held":
            out["held_kinds"][kind] = out["held_kinds"].get(kind, 0) + 1
    return out


async def reference_run(n: int, window: int, pin: bool, kind: str) -> Run:
    """``kind``: "floor" (bench/floor_bot.py with Linli's client), "httpx" (the same, stock client)
    or "bare" (bench/bare_client.py)."""
    fake, group_id, cmd_users, tap_users = await _world(n)
    cards = await post_cards(fake, group_id, list(range(OPEN_TASKS * 4 + 1, OPEN_TASKS * 5 + 1)))
    if kind == "bare":
        command = [sys.executable, "-m", "bench.bare_client", "--token", TOKEN, "--base-url", fake.base_url,
                   "--db", fresh_db("bare.db")]
    else:
        command = [sys.executable, "-m", "bench.floor_bot", "--token", TOKEN, "--base-url", fake.base_url,
                   "--request", "httpx" if kind == "httpx" else "aiohttp"]
    proc = PinnedBot(fake, fresh_db("floor-unused.db"), pin=pin, command=command)
    try:
        return await _measure(kind, fake, proc, cards, cmd_users, tap_users, n, window)
    finally:
        await proc.stop()
        await fake.stop()


async def run_floor(n: int, window: int, pin: bool, request: str = "aiohttp") -> Timing:
    return (await reference_run(n, window, pin, "httpx" if request == "httpx" else "floor")).timing


NAMES = {
    "floor": "floor: bench/floor_bot.py, python-telegram-bot + Linli's HTTP client, answers only",
    "bare": "bare client: bench/bare_client.py, aiohttp + sqlite3, one write + one answer",
    "httpx": "floor with python-telegram-bot's default client (httpx), for reference only",
    "Linli": "Linli: `python -m bot run`, BOT_FLOOD_CONTROL=false",
    "Linli, postgresql": "Linli on PostgreSQL: `python -m bot run`, DATABASE_URL=postgresql://…, BOT_FLOOD_CONTROL=false",
}


def row(run: Run, i: int) -> str:
    t = run.timing
    return (f"| {NAMES[run.name]} | {i} | {t.answered}/{t.sent} | {t.rate:.0f} | {run.quiescent_rate:.0f} |"
            f" {ms(percentile(t.latencies, 50))} | {ms(percentile(t.latencies, 99))} |"
            f" {run.cpu_ms_per_update:.2f} ms | {run.load_before} -> {run.load_after} |")


def ends_row(run: Run, i: int) -> str:
    t = run.timing
    cards = (f"{run.seconds_to(run.cards_at):.1f} s" if run.cards_at is not None else "no card edits")
    return (f"| {run.name} | {i} | {run.seconds_to(t.last_answer):.1f} s | {run.seconds_to(run.messages_at):.1f} s |"
            f" {cards} | {run.seconds_to(run.quiet_at):.1f} s | {run.card_edits} ({run.not_modified}) |")


def span(values: list[float], fmt: str = "{:.2f}") -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


def linli_key(database: str) -> str:
    """The name of Linli's runs on ``database`` (the runs' ``name``, the key in NAMES)."""
    return "Linli" if database == "sqlite" else f"Linli, {database}"


async def collect(args: argparse.Namespace, pin: bool) -> dict[str, list[Run]]:
    """Every round: the floor, the bare client, then Linli on each database asked for."""
    kinds: list[str] = list(args.database)
    runs: dict[str, list[Run]] = {"floor": [], "bare": [], **{linli_key(k): [] for k in kinds}, "httpx": []}
    async with Databases(kinds) as dbs:
        for i in range(args.repeat):  # interleaved, so each round meets the same machine load
            runs["floor"].append(await reference_run(args.updates, args.window, pin, "floor"))
            runs["bare"].append(await reference_run(args.updates, args.window, pin, "bare"))
            for kind in kinds:
                profile = f"{args.profile}.{i}" + ("" if kind == "sqlite" else f".{kind}") if args.profile else None
                runs[linli_key(kind)].append(await linli_run(args.updates, args.window, pin, profile=profile,
                                                             database=kind, dbs=dbs))
        if args.httpx:
            runs["httpx"].append(await reference_run(args.updates, args.window, pin, "httpx"))
    return runs


def _ratios(runs: dict[str, list[Run]], key: str) -> tuple[list[str], bool, bool]:
    """Rows of the ratio table for Linli's runs under ``key``, and whether each target was met."""
    linli, label = runs[key], "" if key == "Linli" else f" ({key})"
    ratios: dict[str, dict[str, list[float]]] = {"answered": {}, "messages": {}, "quiescent": {}}
    for ref in ("floor", "bare"):
        ratios["answered"][ref] = [a.timing.rate / b.timing.rate for a, b in zip(linli, runs[ref], strict=True)]
        ratios["messages"][ref] = [a.messages_rate / b.messages_rate for a, b in zip(linli, runs[ref], strict=True)]
        ratios["quiescent"][ref] = [a.quiescent_rate / b.quiescent_rate for a, b in zip(linli, runs[ref], strict=True)]
    rows = [
        f"| answered{label} | {span(ratios['answered']['floor'])} | {span(ratios['answered']['bare'])} |",
        f"| to the last private message (answers, claim details, replies; no group call){label}"
        f" | {span(ratios['messages']['floor'])} | {span(ratios['messages']['bare'])} |",
        f"| quiescent (card edits included){label} | {span(ratios['quiescent']['floor'])}"
        f" | {span(ratios['quiescent']['bare'])} |",
    ]
    return rows, min(ratios["quiescent"]["floor"]) >= 0.5, min(ratios["quiescent"]["bare"]) >= 0.5


def _linli_notes(runs: dict[str, list[Run]], key: str) -> list[str]:
    """What Linli's runs under ``key`` left behind: targets, CPU, outbox ends, RSS, answers."""
    linli, last = runs[key], runs[key][-1].extra
    _, floor_met, bare_met = _ratios(runs, key)
    return [
        f"- {key}: target >= 0.5 of the floor (quiescent): **{'met' if floor_met else 'missed'}**;"
        f" >= 0.5 of the bare client (quiescent): **{'met' if bare_met else 'missed'}**.",
        f"- {key} CPU per update {span([r.cpu_ms_per_update for r in linli])} ms; floor"
        f" {span([r.cpu_ms_per_update for r in runs['floor']])} ms; bare client"
        f" {span([r.cpu_ms_per_update for r in runs['bare']])} ms (user + system time of the process, from /proc)"
        + (f"; the PostgreSQL server's processes {span([1000 * r.server_cpu / r.timing.sent for r in linli])} ms"
           " per update besides" if key != "Linli" else "") + ".",
        *[f"- {key} round {i + 1}, from its outbox: {e['now']} messages due at once, the last sent"
          f" {e['now_last']:.1f} s after the first update; {e['held']} held on purpose ({e['held_kinds']}),"
          f" the last sent {e['held_last']:.1f} s after it." for i, e in enumerate(r.extra['outbox_ends'] for r in linli)],
        f"- {key} Withdraw taps on the private details message / on the card (refused there, the details not"
        f" arrived yet; the mix depends on timing): {[r.extra['withdraws'] for r in linli]}.",
        f"- {key} messages left in the outbox when stopped: {[r.extra['outbox_unsent'] for r in linli]};"
        f" digests queued during the runs: {[r.extra['digests'] for r in linli]}.",
        f"- {key} peak RSS: {max(r.extra['peak_rss_kb'] for r in linli) / 1024:.0f} MiB; refused calls:"
        f" {last['error_list'] or 'none'}; calls recorded by the stand-in in the last round (warm-up and the"
        f" {OPEN_TASKS} cards the bench posts included): {last['calls']}.",
        f"- {key}, sample tap answers (last round): {last['sample_answers']}.",
    ]


async def main_async(args: argparse.Namespace) -> None:
    pin = pin_driver(args.pin)  # the driver and stand-in on CPU 1, the bot alone on CPU 0
    runs = await collect(args, pin)
    keys = [linli_key(k) for k in args.database]
    lines = [
        "Measured (each row one run; rounds interleaved floor, bare, Linli; the same updates in the same order):",
        "",
        "| bot | round | answered/sent | answered updates/s | quiescent updates/s | p50 | p99 | CPU per update | load before -> after |",
        "|---|---|---|---|---|---|---|---|---|",
        *[row(r, i + 1) for key in ("floor", "bare", *keys, "httpx") for i, r in enumerate(runs[key])],
        "",
        "Ratios, Linli / reference, per round (measured):",
        "",
        "| | / floor | / bare client |",
        "|---|---|---|",
        *[line for key in keys for line in _ratios(runs, key)[0]],
        "",
        "Where each run ends (measured; seconds from the first update queued to the stand-in's record of the"
        " bot's last answer, its last call not into a group (answers and private messages: what the updates"
        " caused besides the cards), its last card edit, its last call of any kind (group messages included);"
        " card edits counted from the first update, those refused as 'message is not modified' in brackets):",
        "",
        "| bot | round | last answer | last private message | last card edit (cards settled) | quiescent | card edits |",
        "|---|---|---|---|---|---|---|",
        *[ends_row(r, i + 1) for key in ("floor", "bare", *keys) for i, r in enumerate(runs[key])],
        "",
        *[line for key in keys for line in _linli_notes(runs, key)],
        "",
        "Description (fixed text, not measured):",
        "",
        f"- Mix: 4 of 5 updates are Claim or Withdraw taps (each volunteer withdraws the task it claimed"
        f" last) on {OPEN_TASKS} open tasks' group cards by {TAP_USERS:,} volunteers (Withdraw on the"
        " volunteer's private details message when the bot sent one, else on the card); 1 of 5 is"
        f" /points or /tasks in a private chat. At most {args.window} updates unanswered at any moment"
        " (closed loop).",
        "- answered: updates / (first update queued -> last answer recorded by the stand-in);"
        " quiescent: updates / (first update queued -> the bot's last call other than getUpdates, after"
        " it had sent nothing for 1 s), so every message the updates caused (claim details, card"
        " edits) is counted. p50/p99: update queued -> its answerCallbackQuery, or the first"
        " sendMessage into that chat.",
        f"- Card settle is bounded by design, not by CPU: the card job runs every second and edits a card at"
        f" most once every {EDIT_GAP_S:g} s (`EDIT_GAP_S`, bot/jobs/cards.py), so a card tapped near the end of"
        f" a run is redrawn up to about {EDIT_GAP_S + 1:g} s after its last tap however fast the bot is; the"
        " references edit no cards, so their three end times are their last answer. The last private message"
        f" includes what is held on purpose, such as the honours question {ASK_AFTER_CLAIM.total_seconds():g} s after"
        " a volunteer's first claim (`ASK_AFTER_CLAIM`, bot/services/tasks.py): the outbox line says when the"
        " messages due at once were all out. Quiescence also waits for group messages not caused by the updates"
        " (a monthly honour the seed's ledger earns, queued at start and held while cards wait). The quiescent ratio"
        " therefore compares Linli's card pacing with the references' answers; the ratio to the last private"
        " message leaves the group out.",
        "- The stand-in's flood limits are off and so is Linli's own pacing (BOT_FLOOD_CONTROL=false);"
        " the references do not pace either.",
        "- The seed stores the next digest as 08:00 Shanghai at least 12 hours ahead, so no run sends"
        " digests whatever the time of day.",
        f"- Bot pinned: {'yes, taskset -c 0 (the driver and stand-in on CPU 1)' if pin else 'no'}.",
        *([PG_NOTE] if "postgresql" in args.database else []),
    ]
    write_section(section_name("Throughput", args.database), report(lines), "bench.throughput")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--httpx", action="store_true", help="also run the floor with httpx (reference only)")
    parser.add_argument("--profile", help="record py-spy collapsed stacks of Linli to FILE.<round>")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    add_database_option(parser)
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
