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
    from bot import scenario

    grid_worker = server.add_user("Li", "Hong", username="grid_li", user_id=ADMIN_ID, language_code="zh-hans")
    grandma = server.add_user("Wang", "Nainai", language_code="zh-hans", phone_number="+8613912345678")
    volunteer = server.add_user("Chen", "Ming", username="chen_m", language_code="zh-hans")

    say("The grid worker adds the bot to the volunteers' group and sets the community up.")
    group = await scenario.setup_community(server, grid_worker, title="阳光花园志愿者群", name="阳光花园社区")
    say("A resident and a volunteer register in private chats (buttons first, phone via Telegram's share button).")
    await scenario.register(server, grandma, role="resident", area="3号楼")
    await scenario.register(server, volunteer, role="volunteer", area="3号楼")

    say("The resident asks for help: buy steamed buns, as soon as possible.")
    await scenario.ask_for_help(server, grandma, "请帮我买两个馒头送到家，谢谢！")
    card = await server.wait_for_message(group, lambda m: any(
        str(b.get("callback_data", "")).startswith("cl:") for b in m.inline_buttons), timeout=15)

    say("The volunteer taps Claim on the card in the group (the card shows no name, phone or address).")
    claim = next(b for b in card.inline_buttons if str(b.get("callback_data", "")).startswith("cl:"))
    await server.press_button(volunteer, card, claim["callback_data"])
    details = await server.wait_for_message(volunteer, lambda m: any(
        str(b.get("callback_data", "")).startswith("done:") for b in m.inline_buttons), timeout=15)

    say("Half an hour later the volunteer presses Done.")
    done = next(b for b in details.inline_buttons if str(b.get("callback_data", "")).startswith("done:"))
    await server.press_button(volunteer, details, done["callback_data"])
    question = await server.wait_for_message(grandma, lambda m: any(
        str(b.get("callback_data", "")).startswith("cf:") for b in m.inline_buttons), timeout=15)

    say("The resident confirms: yes, thank you. The volunteer's point is credited.")
    yes = next(b for b in question.inline_buttons if str(b.get("callback_data", "")).endswith(":y"))
    await server.press_button(grandma, question, yes["callback_data"])
    await settle(server, quiet=1.0)

    say("The volunteer checks their points.")
    await server.send_text(volunteer, None, "/points")
    await settle(server, quiet=1.0)


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
