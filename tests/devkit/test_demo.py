"""``linli demo``: the same story every run, told with button labels, the staff side, in the
chosen language, and written as a page a person can open."""

from __future__ import annotations

import asyncio
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.devkit.demo import TZ, play
from bot.devkit.demo_record import Entry, Recorder, entities_html, render_html, render_text
from bot.i18n import translator

# Clock times and durations (a few seconds more or less); nothing else may differ (the voucher's
# code and the merchant's invite link come from the demo's seeded source).
_NORMALISE = [
    (re.compile(r"\b\d{1,2}:\d{2}(:\d{2})?\b"), "HH:MM"),
    (re.compile(r"\d+ (min|分钟)"), r"N \1"),
]
STAND_IN = "http://127.0.0.1:8081/bot"


def normalise(text: str) -> str:
    for pattern, repl in _NORMALISE:
        text = pattern.sub(repl, text)
    return text


class _Checker(HTMLParser):
    """Every element that must be closed is closed, in order."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.timeout(900)
async def test_demo_twice_at_once_tells_the_same_story(tmp_path: Path) -> None:
    """Two runs at the same time (so one slows the other down) print the same transcript apart
    from times; the story has the staff side, button labels, Chinese names, and an HTML page."""
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        out.mkdir()
    (steps_a, refused_a, _), (steps_b, refused_b, _) = await asyncio.gather(*(play("zh", out) for out in outs))
    assert refused_a == [] and refused_b == []
    t = translator("zh")
    text_a, text_b = render_text(t, steps_a, TZ), render_text(t, steps_b, TZ)
    assert normalise(text_a) == normalise(text_b)

    # button labels, never the raw callback data
    assert "<callback" not in text_a and "李明 按了 [🙋 领取任务]" in text_a, text_a[:3000]
    assert not re.search(r"按了 \[(d|cl|cf|done|rw):", text_a)
    # Chinese names, the whole story including the staff side
    for piece in ("郭奶奶", "李明", "张爷爷", "/publish", "/closeevent", "陈老板", "/stats", "/report"):
        assert piece in text_a, piece
    group = [part for step in steps_a for part in step.chats if part.is_group]
    group_text = "\n".join(e.text for part in group for e in part.entries)
    assert "张爷爷" not in group_text and "13900001111" not in group_text and "5号楼2单元301室" not in group_text
    # the card's last state is the completed task (it once stayed "0/1 [Claim]")
    buns_card = [e for part in group for e in part.entries if e.from_bot and "包子" in e.text]
    assert buns_card and "[🙋" not in str(buns_card[-1].buttons) and buns_card[-1].buttons == [], buns_card[-1]
    # the next morning's digest, the closed event, the redeemed voucher, the charts
    day_two = [s for s in steps_a if s.clock.astimezone(TZ).day == 7]
    assert day_two and any("简报" in e.text for s in day_two for p in s.chats if p.is_group for e in p.entries)
    photos = sorted(p.name for p in outs[0].glob("photo-*.png"))
    assert len(photos) == 5 and all((outs[0] / p).read_bytes().startswith(b"\x89PNG") for p in photos)

    # the page: parses, holds every step's narration and the chats, shows the pictures
    from bot.devkit.demo import write_out

    write_out(outs[0], "zh", steps_a)
    page = (outs[0] / "index.html").read_text(encoding="utf-8")
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    shown = "".join(checker.text)
    for step in steps_a:
        assert step.narration in shown
    assert "郭奶奶" in shown and "请帮我买两斤包子送到家里，谢谢！" in shown
    assert sorted(checker.images) == photos
    assert (outs[0] / "transcript.txt").read_text(encoding="utf-8") == text_a


def test_names_and_narration_follow_the_language() -> None:
    zh, en = translator("zh"), translator("en")
    assert [zh(n) for n in ("Grandma Guo", "Li Ming", "Grandpa Zhang")] == ["郭奶奶", "李明", "张爷爷"]
    assert en("Grandma Guo") == "Grandma Guo"
    assert zh("{name} pressed [{label}]", name="李明", label="领取") == "李明 按了 [领取]"


def test_entities_become_html_and_user_text_is_escaped() -> None:
    text = "Hi <you> & 邻里 bold"
    entities = [{"type": "bold", "offset": 14, "length": 4}, {"type": "text_link", "offset": 0, "length": 2,
                                                              "url": "https://t.me/x?a=1&b=2"}]
    assert entities_html(text, entities) == (
        '<a href="https://t.me/x?a=1&amp;b=2">Hi</a> &lt;you&gt; &amp; 邻里 <b>bold</b>')
    # offsets count UTF-16 units: an emoji is two
    assert entities_html("🎉 ok", [{"type": "italic", "offset": 3, "length": 2}]) == "🎉 <i>ok</i>"


def test_the_order_of_messages_sent_together_does_not_matter() -> None:
    """Two outbox messages to one chat may arrive in either order; the step shows them by the
    order they were queued, numbered as shown, so both arrivals print the same."""
    from bot.devkit.demo_record import Step

    class _Chat:
        id, is_group = 5, False

    def arrange(first: int, second: int) -> list[Entry]:
        rec = Recorder.__new__(Recorder)
        rec.outbox_ids = {(5, first): 20, (5, second): 10}
        rec._numbers, rec._next_number, rec._shown = {}, {}, {}
        press = Entry("press", "李明", False, "是", message_id=1, when=1.0)
        a = Entry("message", "Linli", True, "queued second", message_id=first, when=2.0)
        b = Entry("message", "Linli", True, "queued first", message_id=second, when=3.0)
        return rec._number(_Chat(), rec._arrange(_Chat(), [b, press, a]))  # type: ignore[arg-type]

    one, two = arrange(7, 8), arrange(8, 7)
    assert [(e.text, e.message_id) for e in one] == [(e.text, e.message_id) for e in two]
    assert [e.text for e in one] == ["是", "queued first", "queued second"]
    html = render_html(translator("en"), [Step(1, "n", __import__("datetime").datetime.now(TZ), [])], TZ, "en")
    assert html.startswith("<!DOCTYPE html>")


async def test_settle_waits_for_due_messages_and_stale_cards(tmp_path: Path) -> None:
    """A step is cut only when the outbox has sent what is due, or held back a few seconds on
    purpose (the honours question after a first claim once fell into one step or the next, by
    the machine's speed), and every group card shows its task's state (quiet alone is not
    enough: a card edit may come seconds later)."""
    from datetime import UTC, datetime, timedelta

    from bot.devkit.demo_record import settle
    from bot.devkit.harness import TOKEN
    from bot.devkit.sandbox import FakeTelegram
    from storage.db import open_database
    from storage.outbox import enqueue
    from tests.factories import make_community, make_member
    from tests.factories_tasks import make_task

    path = str(tmp_path / "s.db")
    now = datetime.now(UTC)
    db = await open_database(path)
    try:
        cid = await make_community(db, now, group_chat_id=-100)
        staff = await make_member(db, now, cid, staff=True)
        tid = await make_task(db, now, cid, staff)
        async with db.transaction() as conn:
            await conn.execute("UPDATE tasks SET group_message_id = 7, card_version = 3, card_rendered = 2 WHERE id = ?",
                               (tid,))
            await enqueue(conn, chat_id=1, kind="x", now=now, dedupe_key="due")
            await enqueue(conn, chat_id=1, kind="x", now=now, dedupe_key="soon", not_before=now + timedelta(seconds=5))
            await enqueue(conn, chat_id=1, kind="x", now=now + timedelta(hours=1), dedupe_key="later")
        server = FakeTelegram()
        server.add_bot(token=TOKEN, username="b")

        def clock() -> datetime:
            return datetime.now(UTC)

        with pytest.raises(TimeoutError):
            await settle(server, path, clock, quiet=0.1, timeout=1.0)
        async with db.transaction() as conn:
            await conn.execute("UPDATE outbox SET state = 'sent' WHERE dedupe_key = 'due'")
        with pytest.raises(TimeoutError):
            await settle(server, path, clock, quiet=0.1, timeout=1.0)
        async with db.transaction() as conn:
            await conn.execute("UPDATE tasks SET card_rendered = 3 WHERE id = ?", (tid,))
        with pytest.raises(TimeoutError):
            await settle(server, path, clock, quiet=0.1, timeout=1.0)
        async with db.transaction() as conn:
            await conn.execute("UPDATE outbox SET state = 'sent' WHERE dedupe_key = 'soon'")
        await settle(server, path, clock, quiet=0.1, timeout=10.0)  # the row due in an hour does not hold it
    finally:
        await db.close()


async def test_settle_waits_for_updates_still_being_handled(tmp_path: Path) -> None:
    """The stand-in can be quiet while a handler still works (its transaction, then what it queues:
    a confirmation's honours): a step is cut only when every update the bot took is handled."""
    from datetime import UTC, datetime

    from bot.devkit.demo_record import settle
    from bot.devkit.harness import TOKEN
    from bot.devkit.sandbox import FakeTelegram
    from storage.db import open_database

    path = str(tmp_path / "s.db")
    db = await open_database(path)
    try:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO inbox (update_id, user_id, lane, digest, payload, status, received_at)"
                               " VALUES (1, 5, 'u5', 'd', '{}', 'working', '2026-06-06T00:00:00.000000Z')")
        server = FakeTelegram()
        server.add_bot(token=TOKEN, username="b")

        def clock() -> datetime:
            return datetime.now(UTC)

        with pytest.raises(TimeoutError):
            await settle(server, path, clock, quiet=0.1, timeout=1.0)
        async with db.transaction() as conn:
            await conn.execute("UPDATE inbox SET status = 'handled' WHERE update_id = 1")
        await settle(server, path, clock, quiet=0.1, timeout=10.0)
    finally:
        await db.close()


async def test_a_whole_sweep_is_remembered_for_the_demo(tmp_path: Path) -> None:
    """The demo waits each morning for the start-up sweep to have run to its end (digests, honours
    of the month), so what it queues never falls into one step or the next by the machine's speed."""
    from datetime import UTC, datetime

    from bot.jobs.sweeps import run_once
    from storage import readonly
    from storage.db import open_database
    from storage.readonly import open_readonly
    from storage.timeutil import from_db

    path = str(tmp_path / "s.db")
    db = await open_database(path)
    try:
        with open_readonly(path) as con:
            assert readonly.last_sweep(con) is None
        for now in (datetime(2026, 6, 6, 0, 0, tzinfo=UTC), datetime(2026, 6, 7, 0, 0, tzinfo=UTC)):
            await run_once(db, now)
            with open_readonly(path) as con:
                last = readonly.last_sweep(con)
            assert last is not None and from_db(last) == now
    finally:
        await db.close()


def test_clock_start_setting_runs_the_bot_clock_from_a_fixed_moment() -> None:
    from datetime import UTC, datetime

    from bot.clock import Clock
    from bot.config import ConfigError, load_settings

    clock = load_settings(BOT_CLOCK_START="2026-06-06T07:30:00+08:00", BOT_API_URL=STAND_IN).make_clock()
    started = datetime(2026, 6, 5, 23, 30, tzinfo=UTC)
    assert abs((clock.now() - started).total_seconds()) < 60
    assert type(load_settings().make_clock()) is Clock
    with pytest.raises(ConfigError, match=r"^BOT_CLOCK_START: needs a UTC offset"):
        load_settings(BOT_CLOCK_START="2026-06-06T07:30:00", BOT_API_URL=STAND_IN)


@pytest.mark.parametrize("name", ["BOT_CLOCK_START", "BOT_RANDOM_SEED"])
def test_replay_settings_are_refused_against_the_real_bot_api(name: str) -> None:
    """A fixed clock or seeded codes only ever run against a stand-in on this machine."""
    from bot.config import ConfigError, load_settings

    value = {"BOT_CLOCK_START": "2026-06-06T07:30:00+08:00", "BOT_RANDOM_SEED": "demo"}[name]
    with pytest.raises(ConfigError, match=rf"^{name}: only for `linli demo` and tests"):
        load_settings(**{name: value})
    with pytest.raises(ConfigError, match=rf"^{name}: only for"):
        load_settings(**{name: value, "BOT_API_URL": "https://tg-proxy.example/bot"})
    for local in (STAND_IN, "http://localhost:9/bot", "http://[::1]:9/bot"):
        assert load_settings(**{name: value, "BOT_API_URL": local})


def test_seeded_codes_repeat_and_unseeded_ones_do_not() -> None:
    from bot import codes
    from bot.services import communities, merchants

    def draw() -> list[str]:
        return [merchants.new_code(), merchants.new_code(12), communities.new_code(), codes.token_hex(4)]

    try:
        codes.use_seed("linli-demo")
        first = draw()
        codes.use_seed("linli-demo")
        assert draw() == first
        codes.use_seed("another day")
        assert draw() != first
    finally:
        codes.use_seed(None)
    assert draw() != draw()  # the secure source: about 49 bits in a voucher code alone
    assert all(len(c) == 10 and set(c) <= set(merchants.ALPHABET) for c in (merchants.new_code() for _ in range(50)))


def test_demo_out_folder_that_cannot_be_made_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"linli: --out {blocker / 'sub'}: cannot create the folder"), err


def test_demo_bot_reaches_the_stand_in_directly_behind_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """With HTTP(S)_PROXY set (the bot honours them) the bot asked the proxy for 127.0.0.1 and
    the demo failed at getMe; loopback is added to NO_PROXY, keeping what was there."""
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    from bot.devkit.demo import DAY1, _env

    monkeypatch.setenv("NO_PROXY", "corp.example")
    monkeypatch.delenv("no_proxy", raising=False)
    env = _env(DAY1)
    assert env["NO_PROXY"] == "corp.example,127.0.0.1,localhost" and env["no_proxy"] == "127.0.0.1,localhost"
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:9")
    monkeypatch.setenv("NO_PROXY", env["NO_PROXY"])
    with pytest.raises(LookupError):
        get_env_proxy_for_url(URL("http://127.0.0.1:8081"))
    assert env["BOT_CLOCK_START"] == "2026-06-06T07:30:00+08:00"


@pytest.mark.parametrize("database", [None, "postgresql://demo:s3cret@127.0.0.1:5/linli_demo"])
async def test_a_failed_demo_says_where_its_log_and_database_are(
        database: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """On its own SQLite file the story's database is kept with the bot's log in a temporary folder;
    on PostgreSQL (``--database``) the log is there but the story is in that database, named (without
    its password)."""
    from bot.devkit.demo import DemoError
    from bot.devkit.harness import BotProcess

    async def no_start(self: BotProcess, *_: object, **__: object) -> None:
        raise RuntimeError("the bot did not start")

    monkeypatch.setattr(BotProcess, "start", no_start)
    with pytest.raises(DemoError) as failed:
        await play("en", database=database)
    said = str(failed.value)
    folder = re.search(r"kept (?:with its database )?in (\S+?)[;)]", said)
    assert "the bot did not start" in said and folder is not None, said
    assert Path(folder.group(1)).is_dir()
    shutil.rmtree(folder.group(1))
    if database is None:
        assert "kept with its database in" in said, said
    else:
        assert "kept with its database" not in said and "s3cret" not in said, said
        assert "the story's database is postgresql://demo:***@127.0.0.1:5/linli_demo" in said, said
