"""Where the bot's CPU goes: summarise py-spy's collapsed stacks (``py-spy record --format raw``,
written by ``bench.throughput --profile FILE``) as tables of shares of the samples.

    .venv/bin/python -m bench.profile FILE [FILE ...]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")

# Where a sample's innermost frame is, by file (first match wins).
AREAS = [
    ("SQLite (sqlite3 calls in aiosqlite's threads)", ("sqlite3/", "aiosqlite/")),
    ("threads: handing work over / waiting (threading, queue, concurrent)", ("threading.py", "queue.py", "concurrent/")),
    ("HTTP client (aiohttp, yarl, multidict, urllib)", ("aiohttp/", "yarl/", "multidict/", "urllib/")),
    ("python-telegram-bot (objects, JSON, dispatch)", ("telegram/",)),
    ("JSON", ("json/",)),
    ("asyncio event loop and sockets", ("asyncio/", "selectors.py", "socket.py", "ssl.py")),
    ("logging", ("logging/",)),
    ("time formatting (datetime, zoneinfo, _strptime)", ("datetime.py", "zoneinfo/", "_strptime.py", "storage/timeutil.py")),
    ("gettext / i18n", ("gettext.py", "bot/i18n.py", "babel/")),
    ("pydantic", ("pydantic",)),
    ("Linli's own code (bot/, storage/)", ("bot/", "storage/")),
]
# Inclusive shares of a few functions named in issue 17.
NAMED = ["to_db", "from_db", "de_json", "Database.write", "Database.fetchone", "Database.fetchall",
         "AiohttpRequest.do_request", "Bot._post", "render", "enqueue"]


def parse(path: str) -> list[tuple[list[tuple[str, str]], int]]:
    out = []
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for part in stack.split(";"):
            m = FRAME.match(part)
            frames.append((m["func"], m["file"]) if m else (part, ""))
        out.append((frames, int(count)))
    return out


def area(file: str) -> str:
    for name, keys in AREAS:
        if any(k in file for k in keys):
            return name
    return "other (C builtins without a file, the standard library)"


def summarise(paths: list[str]) -> list[str]:
    samples = [s for p in paths for s in parse(p)]
    total = sum(c for _f, c in samples) or 1
    by_area: Counter[str] = Counter()
    by_func: Counter[str] = Counter()
    named: Counter[str] = Counter()
    for frames, count in samples:
        func, file = frames[-1]
        by_area[area(file)] += count
        by_func[f"{func} ({file})"] += count
        seen = {f for f, _ in frames}
        for name in NAMED:
            if any(f == name or f.endswith("." + name) for f in seen):
                named[name] += count
    lines = [f"Samples: {total} (py-spy, 200/s, busy threads only).", "",
             "| innermost frame in | share |", "|---|---|"]
    lines += [f"| {k} | {100 * v / total:.1f} % |" for k, v in by_area.most_common()]
    lines += ["", "| function (inclusive: it or what it calls) | share |", "|---|---|"]
    lines += [f"| `{k}` | {100 * named[k] / total:.1f} % |" for k in NAMED]
    lines += ["", "| top functions by own time | share |", "|---|---|"]
    lines += [f"| `{k}` | {100 * v / total:.1f} % |" for k, v in by_func.most_common(12)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+")
    print("\n".join(summarise(parser.parse_args().files)))


if __name__ == "__main__":
    main()
