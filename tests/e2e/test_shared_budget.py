"""Two bot processes behind the real nginx on one SQLite file (tests/e2e/test_several_instances.py's
set-up), the stand-in's flood limits ON: one person's quick dialog (each message sent as soon as
the last is answered) is handled by both instances,
and together they never send that private chat more than Telegram allows (bot/budget.py): no 429.
Each instance alone would have sent a burst of up to 8 replies."""

from __future__ import annotations

from pathlib import Path

from bot.devkit.harness import settle
from bot.devkit.sandbox import FakeTelegram
from tests.e2e.test_several_instances import T, _name, _read, _two_instances

MESSAGES = 16
UNHANDLED = "SELECT COUNT(*) FROM inbox WHERE status <> 'handled'"
SHARED = "other instances are live: Telegram's limits are kept together, in the database"


async def test_a_quick_dialog_across_two_instances_gets_no_429(fake: FakeTelegram, tmp_path: Path) -> None:
    path = str(tmp_path / "bot.db")
    person = fake.add_user("Quick", language_code="en")
    fake.private_chat(person, create=True)
    assert fake.flood_limits
    async with _two_instances(fake, tmp_path, path) as procs:
        for proc in procs:   # each has seen the other (its lease renewal): the shared budget is on
            await fake.wait_for(lambda proc=proc: SHARED in proc.log(), timeout=T)
        names = {_name(p) for p in procs}
        chat = fake.private_chat(person)
        for i in range(MESSAGES):   # each message as soon as the last one is answered
            await fake.send_text(person, None, "/myid")
            await fake.wait_for(lambda i=i: len(fake.bot_messages(chat)) > i, timeout=T)
            # and marked handled: the next one is free for whichever instance nginx gives it to
            await fake.wait_for(lambda: _read(path, UNHANDLED) == [(0,)], timeout=T)
        await settle(fake, quiet=1.0)
        owners = dict(_read(path, "SELECT owner, COUNT(*) FROM inbox WHERE status = 'handled' GROUP BY owner"))
    replies = fake.bot_messages(chat)
    assert len(replies) == MESSAGES
    assert all(f"Your Telegram user id is {person.id}." in str(m.text) for m in replies)
    assert set(owners) == names, owners             # the dialog went to both instances
    assert fake.stats.too_many_requests == 0, [c.description for c in fake.errors]
    assert fake.errors == []
