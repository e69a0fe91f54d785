"""``linli report`` / ``linli export``: the staff reports for cron and administrators (all or one community)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Settings
from bot.i18n import translator
from storage.db import DatabaseError, open_database


def _fail(message: str) -> int:
    print(f"linli: {message}", file=sys.stderr)
    return 2


def period_label(start: datetime, end: datetime) -> str:
    """A period as people name it: ``2026-12`` for a whole month, else first and last day (inclusive)."""
    last = end - timedelta(days=1)
    if start.day == 1 and end.day == 1 and (end.year * 12 + end.month) - (start.year * 12 + start.month) == 1:
        return f"{start:%Y-%m}"
    if last.date() == start.date():
        return f"{start:%Y-%m-%d}"
    return f"{start:%Y-%m-%d}..{last:%Y-%m-%d}"


def cmd_report(settings: Settings, period: str, community: int | None, out: str | None, lang: str) -> int:
    """Print the summary; with --out DIR also write the four chart PNGs there."""
    from bot.report_files.charts import CHART_NAMES, render_charts
    from bot.report_files.summary import summary_text
    from bot.services import reports

    span = reports.parse_period(period, datetime.now(UTC), settings.tz)
    if span is None:
        return _fail(f"unknown period {period!r} (try week, month, 2026-05 or 2026-05-01..2026-05-31)")

    async def go() -> str:
        db = await open_database(settings.database_url)
        try:
            tz = await reports.zone(db, community, settings.tz)  # the community's days, as /report
            start, end = reports.parse_period(period, datetime.now(UTC), tz) or span
            st = await reports.compute_stats(db, community_id=community, start=start, end=end, tz=tz)
        finally:
            await db.close()
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            for name, png in zip(CHART_NAMES, render_charts(st, chinese=lang == "zh"), strict=True):
                (Path(out) / f"{name}.png").write_bytes(png)
        t = translator(lang)
        # The same heading as /report in Telegram: first and last day, both included.
        title = t("Report {a} to {b}", a=st.start.strftime("%Y-%m-%d"), b=(st.end - timedelta(days=1)).strftime("%Y-%m-%d"))
        return summary_text(t, st, title=title).replace("<b>", "").replace("</b>", "")

    try:
        print(asyncio.run(go()))
    except (DatabaseError, OSError) as exc:
        return _fail(f"report failed: {exc}")
    return 0


def cmd_export(settings: Settings, period: str, community: int | None, out: str | None, phones: bool) -> int:
    from bot.report_files.exports import write_exports
    from bot.services import reports

    span = reports.parse_period(period, datetime.now(UTC), settings.tz)
    if span is None:
        return _fail(f"unknown period {period!r} (try week, month, 2026-05 or 2026-05-01..2026-05-31)")
    folder = Path(out or f"linli-export-{period_label(span[0], span[1])}").expanduser().resolve()

    async def go() -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        db = await open_database(settings.database_url)
        try:
            return await write_exports(db, community_id=community, start=span[0], end=span[1], with_phone=phones,
                                       directory=folder)
        finally:
            await db.close()

    try:
        paths = asyncio.run(go())
    except (DatabaseError, OSError) as exc:
        return _fail(f"export failed: {exc}")
    print(f"wrote {len(paths)} files to {folder}")
    return 0
