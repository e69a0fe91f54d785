"""``linli demo``: the real bot process against the built-in Telegram stand-in, a scripted story.

No token and no network: a throw-away database (SQLite; or, with ``--database``, an empty PostgreSQL
database the story is written into), a loopback stand-in of the Bot API, the real
``python -m bot run`` process, and a neighbourhood of people who use it over two days: a grid
worker sets the community up, a grandmother asks for buns and a volunteer brings them, the grid
worker publishes a task for a grandfather without Telegram and an event for many, the next
morning the bot sends its digests, the event is closed with an attendance list, a volunteer
redeems points at a shop, and staff look at the numbers.

The bot's clock starts at fixed moments (``BOT_CLOCK_START``), its invite and voucher codes come
from a seeded source (``BOT_RANDOM_SEED``), and each step is printed only when the bot has
settled, so every run tells the same story; ``--lang`` picks Chinese or English
(names, what people type and the narration), ``--out DIR`` writes ``index.html`` (the chats as a
page to read), ``transcript.txt`` and the pictures the bot sent (charts, the voucher's QR code).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from bot.devkit.demo_record import Recorder, Step, bot_now, render_html, render_step_text, render_text, settle
from bot.devkit.harness import TOKEN, BotProcess
from bot.devkit.sandbox import FakeTelegram
from bot.devkit.sandbox.state import StoredMessage, User
from bot.i18n import Translator, translator
from storage import readonly
from storage.db import DatabaseError
from storage.readonly import ReadOnly, open_readonly
from storage.timeutil import DEFAULT_TIMEZONE, from_db

T = TypeVar("T")

ADMIN_ID = 10_001
TZ = ZoneInfo(DEFAULT_TIMEZONE)  # the zone a new community has (the story is told in its time)
DAY1 = datetime(2026, 6, 6, 7, 30, tzinfo=TZ)   # a Saturday morning
DAY2 = datetime(2026, 6, 7, 8, 0, tzinfo=TZ)    # the next morning, when the digest is due
WAIT = 30.0  # seconds for one answer of the bot: generous for a busy machine
# One sweep at start-up and none after (an hour later): reminders and digests happen when the
# story says so (the second morning), not when a slow machine happens to reach them. Each morning
# the story waits for that sweep to have run to its end (Story.swept) before anyone acts, so what
# it queues (reminders, digests, honours) always belongs to the same step. A start-up tick that
# completes no pass (its lease renewed late on a loaded machine, or the pass failed) is tried
# again within BOT_JOB_LEASE_RENEW seconds (bot/instance.py ``Passes``), not an hour later.
DEMO_ENV = {"BOT_SWEEP_INTERVAL": "3600"}


def _env(start: datetime) -> dict[str, str]:
    """The bot process's extra settings: its clock, and the stand-in reached directly even where
    HTTP(S)_PROXY is set (the bot honours the proxy variables, and a proxy cannot reach our loopback)."""
    env = {**DEMO_ENV, "BOT_CLOCK_START": start.isoformat(), "BOT_RANDOM_SEED": f"linli-demo-{start.isoformat()}"}
    for key in ("NO_PROXY", "no_proxy"):
        old = os.environ.get(key, "")
        env[key] = f"{old},127.0.0.1,localhost" if old else "127.0.0.1,localhost"
    return env


class DemoError(RuntimeError):
    pass


def _buttons(m: StoredMessage, prefix: str) -> bool:
    return any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


def _body(m: StoredMessage) -> str:
    return str(m.text or m.caption or "")


class Story:
    """The people and the helpers that make them act and wait as people would."""

    def __init__(self, server: FakeTelegram, lang: str, out: Path | None, db_path: str,
                 show: Callable[[Step], None]) -> None:
        self.server = server
        self.lang = lang
        self.t: Translator = translator(lang)
        self.db_path = db_path
        self.rec = Recorder(server, self.t, TZ, out)
        self.show = show
        self.now: Callable[[], datetime] = bot_now(DAY1, time.time())
        code = "zh-hans" if lang == "zh" else "en"
        t = self.t
        add = server.add_user
        # Ids in cast order; phone numbers fixed so every run shows the same ones.
        self.grid = add(t("Li Hong"), user_id=ADMIN_ID, language_code=code, phone_number="+8613800000001")
        self.granny = add(t("Grandma Guo"), user_id=10_002, language_code=code, phone_number="+8613912345678")
        self.ming = add(t("Li Ming"), user_id=10_003, language_code=code, phone_number="+8613800000003")
        self.fang = add(t("Wang Fang"), user_id=10_004, language_code=code, phone_number="+8613800000004")
        self.lei = add(t("Zhao Lei"), user_id=10_005, language_code=code, phone_number="+8613800000005")
        self.shop = add(t("Boss Chen"), user_id=10_006, language_code=code, phone_number="+8613800000006")
        self.cast = [self.grid, self.granny, self.ming, self.fang, self.lei, self.shop]
        self.group: Any = None
        self.event = 0

    # -- steps ---------------------------------------------------------------------------
    async def end(self, narration: str) -> None:
        """Wait for the bot to settle, then cut what happened into a step and show it."""
        await settle(self.server, self.db_path, self.now)
        step = self.rec.cut(narration, self.now(), self.db_path)
        self.show(step)

    async def calm(self) -> None:
        """A short quiet spell: the answer to the last thing said is complete."""
        await settle(self.server, self.db_path, self.now, quiet=0.3)

    def peek(self, read: Callable[[ReadOnly], T]) -> T:
        """A read-only look at the bot's database (``read`` is one of storage's reads)."""
        with open_readonly(self.db_path, timeout=10) as con:
            return read(con)

    def last_id(self, table: Literal["tasks", "merchants", "rewards"]) -> int:
        """The id of what was added to ``table`` last (the task just published, the shop just invited…)."""
        found = self.peek(lambda con: readonly.last_id(con, table))
        if found is None:
            raise DemoError(f"nothing in {table}")
        return found

    async def swept(self, since: datetime) -> None:
        """Wait until the bot's start-up sweep has run to its end (a whole pass, at ``since`` or later)."""
        def done() -> bool:
            try:
                last = self.peek(readonly.last_sweep)
            except (DatabaseError, readonly.ReadError):  # the bot is still creating the schema
                return False
            return last is not None and from_db(last) >= since

        await self.server.wait_for(done, timeout=WAIT * 2)

    # -- acting --------------------------------------------------------------------------
    def mark(self, user: User) -> int:
        chat = self.server.private_chat(user)
        return max((m.message_id for m in chat.messages), default=0) if chat is not None else 0

    async def next(self, user: User, after: int, button: str | None = None,
                   test: Callable[[StoredMessage], bool] | None = None) -> StoredMessage:
        def ok(m: StoredMessage) -> bool:
            return (button is None or _buttons(m, button)) and (test is None or test(m))

        return await self.server.wait_for_message(user, ok, timeout=WAIT, after_id=after)

    async def say(self, user: User, text: str, button: str | None = None,
                  test: Callable[[StoredMessage], bool] | None = None) -> StoredMessage:
        after = self.mark(user)
        await self.server.send_text(user, None, text)
        msg = await self.next(user, after, button, test)
        if button is None and test is None:
            await self.calm()
        return msg

    async def press(self, user: User, msg: StoredMessage, data: str, button: str | None = None) -> StoredMessage:
        """Press a button; the answer either replaces that message or comes as a new one."""
        after = self.mark(user)
        before = (_body(msg), repr(msg.inline_buttons))
        query = await self.server.press_button(user, msg, data)
        await self.server.wait_callback_answer(query, timeout=WAIT)

        def find() -> StoredMessage | None:
            if (_body(msg), repr(msg.inline_buttons)) != before and (button is None or _buttons(msg, button)):
                return msg
            chat = self.server.private_chat(user)
            return next((m for m in chat.messages if m.message_id > after and m.from_bot
                         and (button is None or _buttons(m, button))), None) if chat else None

        found: StoredMessage = await self.server.wait_for(find, timeout=WAIT)
        if button is None:
            await self.calm()
        return found

    async def card(self, task_id: int) -> StoredMessage:
        return await self.server.wait_for_message(self.group, lambda m: _buttons(m, f"cl:{task_id}"),
                                                  timeout=WAIT, after_id=0)

    # -- the story -----------------------------------------------------------------------
    async def day_one(self) -> None:
        await self.swept(DAY1)
        await self.set_up_community()
        await self.ask_and_help()
        await self.publish_for_grandpa()
        self.event = await self.publish_event()

    async def set_up_community(self) -> None:
        from bot.devkit import scenario

        t, s = self.t, self.server
        self.group = await scenario.setup_community(s, self.grid, title=t("Sunny Garden volunteers"),
                                                    name=t("Sunny Garden Community"))
        self.rec.rank_chats([self.group.id], self.cast)
        await self.end(t("Li Hong, the grid worker, adds the bot to the volunteers' group and sets up the community."))

        await asyncio.gather(
            scenario.register(s, self.grid, role="volunteer", area=t("Building 1")),
            scenario.register(s, self.granny, role="resident", area=t("Building 3, Room 502")),
            scenario.register(s, self.ming, role="volunteer", area=t("Building 3")),
            scenario.register(s, self.fang, role="volunteer", area=t("Building 5"), phone=False),
            scenario.register(s, self.lei, role="volunteer", area=t("Building 6"), phone=False))
        for person in (self.ming, self.fang, self.lei):
            s.add_member(self.group, person, announce=False)
        await self.end(t("People register in a private chat with the bot: buttons first, the phone number through "
                         "Telegram's share button (or skipped). Li Hong registers too, so staff messages reach him."))

    async def ask_and_help(self) -> None:
        from bot.devkit import scenario

        t, s = self.t, self.server
        await scenario.ask_for_help(s, self.granny, t("Please buy two jin of steamed buns and bring them to my home. Thank you!"))
        buns = self.last_id("tasks")
        card = await self.card(buns)
        await self.end(t("Grandma Guo asks for help. The card in the group shows no name, phone number or address."))

        await s.press_button(self.ming, card, f"cl:{buns}")
        details = await self.next(self.ming, 0, f"done:{buns}")
        await self.end(t("Li Ming claims it with one tap; the details come to him privately."))

        after = self.mark(self.granny)
        await s.press_button(self.ming, details, f"done:{buns}")
        question = await self.next(self.granny, after, f"cf:{buns}:")
        await self.end(t("Li Ming brings the buns and presses Done; the bot asks Grandma Guo."))

        yes = next(b["callback_data"] for b in question.inline_buttons if str(b["callback_data"]).endswith(":y"))
        await s.press_button(self.granny, question, yes)
        await self.end(t("Grandma Guo confirms. Li Ming earns his point, and the group hears of it."))

    async def publish_for_grandpa(self) -> None:
        # Grandpa Zhang has no Telegram: the grid worker publishes for him.
        t, s, g = self.t, self.server, self.grid
        msg = await self.say(g, "/publish", button="d:mode:")
        await self.press(g, msg, "d:mode:proxy")
        await self.say(g, t("Grandpa Zhang"))
        await self.say(g, "139 0000 1111")
        msg = await self.say(g, t("Building 5, Unit 2, Room 301"), button="d:cat:")
        await self.press(g, msg, "d:cat:escort")
        msg = await self.say(g, t("Walk with him to the community clinic for his blood pressure check. He walks slowly."),
                             button="d:when:")
        msg = await self.press(g, msg, "d:when:today", button="d:helpers:")
        summary = await self.press(g, msg, "d:helpers:1", button="d:confirm:")
        after = self.mark(g)
        await s.press_button(g, summary, "d:confirm:submit")
        await self.next(g, after)
        clinic = self.last_id("tasks")
        card = await self.card(clinic)
        await self.end(t("Grandpa Zhang has no Telegram. Li Hong publishes the task for him; his name, phone and "
                         "address stay out of the group."))

        await s.press_button(self.fang, card, f"cl:{clinic}")
        await self.next(self.fang, 0, f"done:{clinic}")
        await self.end(t("Wang Fang claims it and privately gets Grandpa Zhang's phone number and address."))

    async def publish_event(self) -> int:
        t, s, g = self.t, self.server, self.grid
        msg = await self.say(g, "/publish", button="d:mode:")
        await self.press(g, msg, "d:mode:event")
        msg = await self.say(g, t("Tidy the community garden"), button="d:cat:")
        msg = await self.press(g, msg, "d:cat:other", button="d:desc:")
        await self.press(g, msg, "d:desc:-skip")
        await self.say(g, "5")
        await self.say(g, "2026-06-06 09:00")
        msg = await self.say(g, "11:00", button="d:repeat:")
        await self.press(g, msg, "d:repeat:once")
        summary = await self.say(g, "10", button="d:confirm:")
        after = self.mark(g)
        await s.press_button(g, summary, "d:confirm:submit")
        await self.next(g, after)
        event = self.last_id("tasks")
        card = await self.card(event)
        await self.end(t("Li Hong publishes an event that recruits five volunteers for ten points each."))

        for person in (self.ming, self.fang, self.lei):
            query = await s.press_button(person, card, f"cl:{event}")
            await s.wait_callback_answer(query, timeout=WAIT)
        await self.end(t("Li Ming, Wang Fang and Zhao Lei sign up for the event from its card."))
        return event

    async def day_two(self) -> None:
        await self.morning_digests()
        await self.close_event()
        welcome = await self.open_supermarket()
        voucher = await self.redeem()
        await self.use_voucher(welcome, voucher)
        await self.look_at_numbers()

    async def morning_digests(self) -> None:
        t, s = self.t, self.server
        # The first sweep of the morning has run to its end, and decided every digest of the day (one row each).
        await self.swept(DAY2)
        day = DAY2.date().isoformat()
        expected = 1 + self.peek(readonly.digest_readers)
        await s.wait_for(lambda: self.peek(lambda con: readonly.digests_decided(con, day)) >= expected,
                         timeout=WAIT * 2)
        await self.end(t("The next morning at eight the bot posts the daily digest in the group, and sends a private "
                         "one to each volunteer with something to do that day."))

    async def close_event(self) -> None:
        t, s, g = self.t, self.server, self.grid
        sheet = await self.say(g, f"/closeevent {self.event}", button="d:att:")
        absent = next(b["callback_data"] for b in sheet.inline_buttons
                      if self.lei.first_name in str(b.get("text", "")) and str(b["callback_data"]).startswith("d:att:"))
        query = await s.press_button(g, sheet, absent)
        await s.wait_callback_answer(query, timeout=WAIT)
        query = await s.press_button(g, sheet, "d:att:close")
        await s.wait_callback_answer(query, timeout=WAIT)
        await self.end(t("Li Hong closes yesterday's event with its attendance list: Zhao Lei did not come. "
                         "Those who came get their points."))

    async def open_supermarket(self) -> StoredMessage:
        """The shop becomes a merchant and puts a reward up; returns the merchant's welcome message."""
        t, g = self.t, self.grid
        msg = await self.say(g, "/merchant new " + t("Happy Mart"), test=lambda m: "start=merchant_" in _body(m))
        found = re.search(r"start=(merchant_[A-Za-z0-9_-]+)", _body(msg))
        if found is None:
            raise DemoError("no merchant invite link")
        welcome = await self.say(self.shop, f"/start {found.group(1)}", test=lambda m: bool(m.keyboard_buttons))
        shop_id = self.last_id("merchants")
        await self.say(g, f"/rewards add discount:{shop_id} 5 20 " + t("A box of eggs"))
        await self.end(t("Li Hong invites the shop on the corner as a merchant and puts a reward in the points "
                         "supermarket: a box of eggs for five points."))
        return welcome

    async def redeem(self) -> StoredMessage:
        """Li Ming redeems his points; returns the voucher message."""
        t, s = self.t, self.server
        reward = self.last_id("rewards")
        listing = await self.say(self.ming, "/rewards", button=f"rw:r:{reward}")
        confirm = await self.press(self.ming, listing, f"rw:r:{reward}", button=f"rw:c:{reward}:")
        data = next(b["callback_data"] for b in confirm.inline_buttons if str(b["callback_data"]).startswith("rw:c:"))
        after = self.mark(self.ming)
        await s.press_button(self.ming, confirm, data)
        voucher = await self.next(self.ming, after, test=lambda m: "photo" in m.data)
        await self.end(t("Li Ming redeems five points for the eggs and gets a voucher with a QR code."))
        return voucher

    async def use_voucher(self, welcome: StoredMessage, voucher: StoredMessage) -> None:
        t, s = self.t, self.server
        code = re.search(r"[A-Z2-9]{10}", _body(voucher))
        if code is None:
            raise DemoError("no voucher code")
        check = next((b["text"] for b in welcome.keyboard_buttons if str(b["text"]).startswith("🏪")), None)
        if check is None:
            raise DemoError("the merchant has no check button")
        after = self.mark(self.shop)
        await s.press_reply_button(self.shop, None, check)
        await self.next(self.shop, after)
        await self.calm()
        valid = await self.say(self.shop, code.group(0), button="rw:u:")
        await self.press(self.shop, valid, valid.inline_buttons[0]["callback_data"])
        await self.end(t("At the shop, Boss Chen checks the voucher's code and marks it used; Li Ming is told."))

    async def look_at_numbers(self) -> None:
        t, s, g = self.t, self.server, self.grid
        await self.say(g, "/stats month")
        after = self.mark(g)
        await s.send_text(g, None, "/report")

        def report_done() -> bool:
            chat = s.private_chat(g)
            mine = [m for m in chat.messages if m.message_id > after and m.from_bot] if chat else []
            return sum("photo" in m.data for m in mine) >= 4 and bool(mine) and "text" in mine[-1].data

        await s.wait_for(report_done, timeout=WAIT * 4)
        await self.end(t("Li Hong looks at the month's numbers with /stats, and at the charts with /report."))


async def play(lang: str = "zh", out: Path | None = None, show: Callable[[Step], None] | None = None,
               progress: Callable[[str], None] | None = None,
               database: str | None = None) -> tuple[list[Step], list[str], str]:
    """Play the story; returns the steps, the Bot API calls the stand-in refused, and the bot's log.
    ``database``: an empty PostgreSQL database's URL (``empty_database`` checks it) instead of the
    story's own SQLite file."""
    say = progress or (lambda _text: None)
    server = FakeTelegram()
    server.add_bot(token=TOKEN, username="linli_demo_bot", first_name="Linli 邻里")
    await server.start()
    workdir = Path(tempfile.mkdtemp(prefix="linli-demo-"))
    db_path = database or str(workdir / "demo.db")
    log_path = str(workdir / "bot.log")
    story = Story(server, lang, out, db_path, show or (lambda _step: None))
    t = story.t
    proc = BotProcess(server, db_path, admins=(ADMIN_ID,), log_path=log_path, env=_env(DAY1))
    try:
        say(t("Starting the bot against the Telegram stand-in at {url}...", url=server.base_url))
        await proc.start()
        story.now = bot_now(DAY1, time.time())
        await story.day_one()
        say(t("Night falls: the bot stops, and starts again the next morning..."))
        await proc.stop()
        proc = BotProcess(server, db_path, admins=(ADMIN_ID,), log_path=log_path, env=_env(DAY2))
        await proc.start()
        story.now = bot_now(DAY2, time.time())
        await story.day_two()
        result = story.rec.steps, [f"{c.method}: {c.description}" for c in server.errors], proc.log()
    except Exception as exc:
        raise DemoError(f"{type(exc).__name__}: {exc}\n--- bot log ({_kept(workdir, database)}) ---\n"
                        f"{proc.log()[-4000:]}") from exc
    finally:
        await proc.stop()
        await server.stop()
        if database is not None:
            from storage.readonly_pg import close_all

            close_all()
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def _kept(workdir: Path, database: str | None) -> str:
    """Where a failed story's log and database are kept: its own SQLite file is with the log in a
    temporary folder; on PostgreSQL the story stays in the database it was given."""
    if database is None:
        return f"kept with its database in {workdir}"
    from storage.pg import shown_url

    return f"kept in {workdir}; the story's database is {shown_url(database)}"


async def empty_database(url: str) -> str | None:
    """Why the demo may not play on the PostgreSQL database ``url`` (one line), None when it may: the
    story writes a community, people and points, so only into a database without tables."""
    from storage.pg import is_postgres_url, server_info, shown_url

    if not is_postgres_url(url):
        return "--database: give a postgresql://user:password@host/db URL (without it the demo plays on its own SQLite file)"
    try:
        info = await server_info(url)
    except Exception as exc:  # the server's or the network's reason, in one line
        return f"--database: cannot reach {shown_url(url)} ({type(exc).__name__}: {exc}): check the URL and the server"
    if info.tables:
        return (f"--database: {shown_url(url)} is not empty ({info.tables} tables): the demo writes a community,"
                " people and points of its own, so give it an empty database (e.g. createdb linli_demo)")
    return None


def write_out(out: Path, lang: str, steps: list[Step]) -> None:
    t = translator(lang)
    (out / "index.html").write_text(render_html(t, steps, TZ, lang), encoding="utf-8")
    (out / "transcript.txt").write_text(render_text(t, steps, TZ), encoding="utf-8")


async def _main(lang: str, quiet: bool, out: Path | None, database: str | None = None) -> int:
    t = translator(lang)
    if database is not None and (problem := await empty_database(database)):
        print(f"linli: {problem}", file=sys.stderr)
        return 2

    def show(step: Step) -> None:
        print(render_step_text(t, step, TZ), flush=True)

    def progress(text: str) -> None:
        if not quiet:
            print(f"· {text}", flush=True)

    try:
        steps, refused, _log = await play(lang, out, show, progress, database)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    if out is not None:
        write_out(out, lang, steps)
        progress(t("The story is in {path}: open it in a browser.", path=out / "index.html"))
    if refused:
        print(f"\nThe stand-in refused {len(refused)} call(s) from the bot:", file=sys.stderr)
        for line in refused[:10]:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def run_demo(quiet: bool = False, lang: str = "zh", out: str | None = None, database: str | None = None) -> int:
    folder: Path | None = None
    if out is not None:
        folder = Path(out)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"linli: --out {out}: cannot create the folder ({exc.strerror})", file=sys.stderr)
            return 2
    return asyncio.run(_main(lang, quiet, folder, database))
