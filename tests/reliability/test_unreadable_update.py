"""An update python-telegram-bot cannot read (here a poll shaped as an older Bot API sent it, without
the fields version 9.6 made required) made every getUpdates fail to parse: the offset never moved,
the same batch came back at once, and the bot answered nobody again, logging the failure hundreds of
times a second. Now, asked for again, the batch comes with the unreadable update reduced to its id
(handled as nothing, with a warning; its inbox row keeps what Telegram sent); everyone else is
answered."""

from __future__ import annotations

from pathlib import Path

from bot.devkit.harness import BotProcess, settle
from bot.devkit.sandbox import FakeTelegram
from tests.e2e.people import send_unreadable_poll

T = 15


async def test_an_unreadable_update_does_not_stop_the_bot(fake: FakeTelegram, bot_process: BotProcess) -> None:
    user = fake.add_user("Wang", language_code="en")
    fake.private_chat(user, create=True)
    send_unreadable_poll(fake, user)
    start = await fake.send_text(user, None, "/start")
    await fake.wait_for_message(user, lambda m: "Linli" in str(m.text), timeout=T, after_id=start.message_id)
    await settle(fake)
    log = Path(bot_process.log_path).read_text(encoding="utf-8", errors="replace")
    assert log.count("Error while parsing updates") <= 2, log[-3000:]
    assert "cannot be read" in log, log[-3000:]
    # What the person sent stays out of the log (python-telegram-bot logged the batch whole, at CRITICAL).
    assert "Tea or coffee" not in log and "Wang" not in log and "CRITICAL" not in log, log[-3000:]
