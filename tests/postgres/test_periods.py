"""linli_month and linli_week in PostgreSQL give what storage/periods.py gives in Python, for a
spread of moments (year ends, daylight-saving changes, the edges of weeks) and of time zones
(half and quarter hours, both date lines, an unknown name and none, which fall back to Shanghai)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import asyncpg

from storage import pg
from storage.periods import _sql_month, _sql_week
from storage.timeutil import to_db

ZONES = ["Asia/Shanghai", "UTC", "America/New_York", "Europe/London", "Europe/Berlin", "Australia/Lord_Howe",
         "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu", "America/St_Johns", "Asia/Kolkata",
         "America/Sao_Paulo", "Etc/GMT+8", "Japan", "EST5EDT", "Mars/Olympus", "", None]


def moments() -> list[datetime]:
    rng = random.Random(18)
    start = datetime(1995, 1, 1, tzinfo=UTC)
    out = [start + timedelta(seconds=rng.randrange(40 * 365 * 86400), microseconds=rng.randrange(10**6))
           for _ in range(300)]
    # Just either side of local midnights, year ends and daylight-saving changes.
    for base in (datetime(2025, 12, 31, 16, 0, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
                 datetime(2026, 11, 1, 6, 0, tzinfo=UTC), datetime(2027, 1, 3, 15, 59, 59, tzinfo=UTC),
                 datetime(2026, 5, 31, 16, 0, tzinfo=UTC), datetime(2024, 2, 29, 10, 15, tzinfo=UTC)):
        out += [base + timedelta(minutes=m) for m in range(-61, 62, 15)] + [base - timedelta(microseconds=1)]
    return out


async def test_month_and_week_keys_equal_pythons(pg_url: str) -> None:
    await pg.upgrade(pg_url)
    pairs = [(to_db(m), tz) for m in moments() for tz in ZONES]
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch(
            "SELECT linli_month(t, z) AS m, linli_week(t, z) AS w"
            " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p (t, z, n) ORDER BY n",
            [t for t, _ in pairs], [z for _, z in pairs])
        assert await conn.fetchval("SELECT linli_month(NULL, 'UTC')") is None
    finally:
        await conn.close()
    assert len(rows) == len(pairs) > 5000
    wrong = [(t, z, (r["m"], r["w"]), (_sql_month(t, z), _sql_week(t, z)))
             for (t, z), r in zip(pairs, rows, strict=True)
             if (r["m"], r["w"]) != (_sql_month(t, z), _sql_week(t, z))]
    assert wrong == []
