"""Double taps on the ⚙ Settings buttons through the real bot: a person who taps "Hide my name on the
leaderboard" (or staff who tap "Turn off points expiry") twice before the message changes gets what
the button said, once; the second tap does not undo the first."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from bot.services import expiry
from storage.db import open_database
from tests.e2e.people import community_with_group
from tests.factories import make_member

T = 10


async def test_double_tap_on_settings_toggles_acts_once(fake: FakeTelegram, bot_process: BotProcess) -> None:
    db = await open_database(bot_process.database)
    try:
        now = datetime.now(UTC)
        _group, cid = await community_with_group(fake, db, now, language="en")
        vol_u, staff_u = fake.add_user("Vic", language_code="en"), fake.add_user("Sam", language_code="en")
        vol = await make_member(db, now, cid, tg_user_id=vol_u.id, volunteer=True, language="en", name="Vic")
        await make_member(db, now, cid, tg_user_id=staff_u.id, staff=True, language="en", name="Sam")
        assert not await expiry.is_on(db, cid)

        await fake.send_text(vol_u, None, "/settings")
        shown = await fake.wait_for_message(vol_u, lambda m: "leaderboard" in str(m.text), timeout=T)
        hide = next(b["callback_data"] for b in shown.inline_buttons if b["text"] == "Hide my name on the leaderboard")
        digest = next(b["callback_data"] for b in shown.inline_buttons if "digest" in b["text"])
        honours = next(b["callback_data"] for b in shown.inline_buttons if "honours" in b["text"])
        taps = [await fake.press_button(vol_u, shown, data) for data in (hide, hide, digest, digest, honours, honours)]

        await fake.send_text(staff_u, None, "/settings")
        staff_view = await fake.wait_for_message(staff_u, lambda m: "expire" in str(m.text), timeout=T)
        turn_on = next(b["callback_data"] for b in staff_view.inline_buttons if b["text"] == "Turn on points expiry")
        taps += [await fake.press_button(staff_u, staff_view, turn_on) for _ in range(2)]

        for qid in taps:
            await fake.wait_callback_answer(qid, timeout=T)
        await settle(fake)
        row = await db.fetchone("SELECT leaderboard_opt_out, digest_enabled, announce_consent FROM members WHERE id = ?",
                                (vol,))
        assert row is not None
        assert tuple(row) == (1, 0, 0)  # hidden, digest off, honours not announced: as the buttons said
        assert await expiry.is_on(db, cid)
        # The second tap draws the same view again: an edit Telegram refuses as "not modified" (handled).
        refused = [(c.method, c.description) for c in fake.errors if "message is not modified" not in c.description]
        assert refused == [], refused
        assert "Traceback" not in bot_process.log()
    finally:
        await db.close()
