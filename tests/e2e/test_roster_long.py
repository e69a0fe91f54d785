"""/volunteers of a full page of places and a long waiting list, names as long as Telegram allows and
full of ``&<>`` (through the real bot and the stand-in, which refuses a broken tag or entity and more
than 4,096 characters once parsed): every place is named, names are shortened, the waiting are named
as far as they fit and the rest counted, with the button that pages through them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import tasks, waitlist
from storage.db import open_database
from tests.e2e.people import community_with_group
from tests.factories import make_member

pytestmark = pytest.mark.unpaced  # the texts, not Telegram's pacing (tests/conftest.py)

T = 15
LIMIT = 4096


def _starts(prefix: str) -> Any:
    return lambda m: any(str(b.get("callback_data", "")).startswith(prefix) for b in m.inline_buttons)


def _errors(fake: FakeTelegram) -> list[tuple[str, str | None]]:
    """Messages Telegram refused for their text (a broken tag or entity, too long)."""
    return [(c.method, c.description) for c in fake.errors
            if any(why in (c.description or "") for why in ("parse entities", "too long", "text must be"))]


async def test_a_long_list_of_volunteers_reaches_staff_with_what_is_left_out_said(
        fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        group, cid = await community_with_group(fake, db, now, language="en")
        boss = fake.add_user("Staff", language_code="en")
        staff = await make_member(db, now, cid, tg_user_id=boss.id, language="en", staff=True, name="Staff")
        fake.private_chat(boss, create=True)
        ev = await tasks.create_task(db, now, staff, tasks.NewTask(
            "other", title="Clean-up & <spring> campaign", kind="event", slots=30, points=5,
            starts_at=now + timedelta(days=3)), staff=True)
        await fake.wait_for_message(group, _starts(f"cl:{ev}"), timeout=T)
        people = []
        for i in range(70):   # 30 take the places (a page), 40 wait; names as long as Telegram allows, full of & < >
            name = f"Li & Wang <Building {i:02}> " + "neighbourhood & helpers " * 4 + f"#{i:02}"
            people.append(await make_member(db, now, cid, language="en", volunteer=True, name=name))
        for member in people[:30]:
            await tasks.claim(db, now, member, ev)
        for member in people[30:]:
            await waitlist.join(db, now, member, ev)

        await fake.send_text(boss, None, f"/volunteers {ev}")
        listing = await fake.wait_for_message(boss, _starts(f"vr:{ev}:"), timeout=T, after_id=0)
        text = listing.text or ""
        assert text.startswith("Volunteers of “Clean-up & <spring> campaign”") and len(text) <= LIMIT, text[:200]
        assert "30. Li & Wang <Building 29>" in text, text              # every place on the page named
        assert "more: press “🕒 Whole waiting list” below" in text, text  # the waiting named as far as they fit
        assert text.split("\n")[-1].startswith("“🚫 Not coming” (until the start)"), text[-300:]
        assert _starts(f"vw:{ev}:")(listing)
        await settle(fake, quiet=0.5)
        assert _errors(fake) == []
    finally:
        await db.close()
