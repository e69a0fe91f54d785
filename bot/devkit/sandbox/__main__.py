"""Run the sandbox standalone: ``python -m bot.devkit.sandbox --port 8081``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from bot.devkit.sandbox.server import FakeTelegram


async def _serve(args: argparse.Namespace) -> None:
    server = FakeTelegram(strict=not args.lenient, flood_limits=not args.no_flood_limits)
    bot = server.add_bot(token=args.token, username=args.username, first_name=args.first_name)
    users = [
        server.add_user("Mei", "Wang", username="mei_wang", user_id=10_001),
        server.add_user("Jun", "Li", username="jun_li", user_id=10_002),
    ]
    await server.start(host=args.host, port=args.port)
    print(f"base_url      {server.base_url}", flush=True)
    print(f"base_file_url {server.base_file_url}", flush=True)
    print(f"token         {bot.token}", flush=True)
    print(f"control       {server.url}/_sandbox/<action>", flush=True)
    for user in users:
        print(f"user          {user.id} {user.full_name} @{user.username}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
        print("sandbox stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.devkit.sandbox", description="Loopback Telegram Bot API stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST")
    parser.add_argument("--username", default="linli_test_bot")
    parser.add_argument("--first-name", default="Linli")
    parser.add_argument("--lenient", action="store_true", help="ignore unknown parameters like Telegram does")
    parser.add_argument("--no-flood-limits", action="store_true")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
