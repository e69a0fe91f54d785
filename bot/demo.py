"""``linli demo``: the real bot process against the built-in Telegram stand-in, a scripted story.

No token and no network: a throw-away database, a loopback stand-in of the Bot API, the real
``python -m bot run`` process, and a few neighbours who use it. The chats are printed as a
transcript at the end.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from bot.harness import TOKEN, BotProcess, settle
from bot.sandbox import FakeTelegram, transcript

ADMIN_ID = 10_001


async def _story(server: FakeTelegram, say: Narrator) -> None:
    grid_worker = server.add_user("Li", "Hong", username="grid_li", user_id=ADMIN_ID, language_code="zh-hans")

    say("A grid worker asks the bot what it can do.")
    await server.send_text(grid_worker, None, "/help")
    await settle(server)


class Narrator:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, text: str) -> None:
        if not self.quiet:
            print(f"· {text}", flush=True)


async def _main(quiet: bool) -> int:
    say = Narrator(quiet)
    server = FakeTelegram()
    server.add_bot(token=TOKEN, username="linli_demo_bot", first_name="Linli 邻里")
    await server.start()
    workdir = Path(tempfile.mkdtemp(prefix="linli-demo-"))
    proc = BotProcess(server, str(workdir / "demo.db"), admins=(ADMIN_ID,), log_path=str(workdir / "bot.log"))
    try:
        say(f"Telegram stand-in listening at {server.base_url}; starting the bot process...")
        await proc.start()
        await _story(server, say)
        print()
        print(transcript(server))
        bad = server.errors
        if bad:
            print(f"\nThe stand-in refused {len(bad)} call(s) from the bot:", file=sys.stderr)
            for call in bad[:10]:
                print(f"  {call.method}: {call.description}", file=sys.stderr)
            return 1
        return 0
    except Exception as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        print(proc.log()[-4000:], file=sys.stderr)
        return 1
    finally:
        await proc.stop()
        await server.stop()


def run_demo(quiet: bool = False) -> int:
    return asyncio.run(_main(quiet))
