"""``linli report`` / ``linli export``: the staff reports for cron and administrators (all or one community)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Settings
from bot.i18n import translator
from storage.db import DatabaseError, open_database


def _fail(message: str) -> int:
    print(f"linli: {message}", file=sys.stderr)
    return 2


def cmd_report(settings: Settings, period: str, community: int | None, out: str | None, lang: str) -> int:
    """Print the summary; with --out DIR also write the four chart PNGs there."""
    from bot.reports.charts import render_charts
    from bot.reports.summary import summary_text
    from bot.services import reports

    span = reports.parse_period(period, datetime.now(UTC), settings.tz)
    if span is None:
        return _fail(f"unknown period {period!r} (try week, month, 2026-05 or 2026-05-01..2026-05-31)")

    async def go() -> str:
        db = await open_database(settings.database_url)
        try:
            st = await reports.compute_stats(db, community_id=community, start=span[0], end=span[1])
        finally:
            await db.close()
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            for i, png in enumerate(render_charts(st, chinese=lang == "zh")):
                (Path(out) / f"chart{i + 1}.png").write_bytes(png)
        title = f"{span[0]:%Y-%m-%d} – {span[1]:%Y-%m-%d}"
        return summary_text(translator(lang), st, title=title).replace("<b>", "").replace("</b>", "")

    try:
        print(asyncio.run(go()))
    except (DatabaseError, OSError) as exc:
        return _fail(f"report failed: {exc}")
    return 0


def cmd_export(settings: Settings, period: str, community: int | None, out: str, phones: bool) -> int:
    from bot.reports.exports import write_exports
    from bot.services import reports

    span = reports.parse_period(period, datetime.now(UTC), settings.tz)
    if span is None:
        return _fail(f"unknown period {period!r} (try week, month, 2026-05 or 2026-05-01..2026-05-31)")

    async def go() -> list[Path]:
        Path(out).mkdir(parents=True, exist_ok=True)
        db = await open_database(settings.database_url)
        try:
            return await write_exports(db, community_id=community, start=span[0], end=span[1], with_phone=phones,
                                       directory=Path(out))
        finally:
            await db.close()

    try:
        paths = asyncio.run(go())
    except (DatabaseError, OSError) as exc:
        return _fail(f"export failed: {exc}")
    print(f"wrote {len(paths)} files to {out}")
    return 0
