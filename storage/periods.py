"""Calendar periods of a stored UTC time, in a community's time zone, as SQL functions.

The ledger's running totals (``earning_totals``, migration 0080) are kept by a trigger that names
each credit's week and month in the community's local calendar. SQLite knows no time zones, so the
trigger calls ``linli_month(created_at, tz)`` and ``linli_week(created_at, tz)``, registered on
every connection the storage layer opens (``register``). A tool that writes ledger rows through a
plain connection must call ``register`` first; reading needs nothing.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import aiosqlite

from storage.timeutil import DEFAULT_TIMEZONE as DEFAULT_TZ
from storage.timeutil import from_db

ALL = "all"


@lru_cache(maxsize=64)
def _zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or DEFAULT_TZ)
    except (ValueError, KeyError):  # an unknown name: fall back rather than fail a credit
        return ZoneInfo(DEFAULT_TZ)


def month_key(moment: datetime, tz: str | None) -> str:
    """'M2026-11': the local calendar month of ``moment``."""
    return "M" + moment.astimezone(_zone(tz)).strftime("%Y-%m")


def week_key(moment: datetime, tz: str | None) -> str:
    """'W2026-11-23': the local date of the Monday starting ``moment``'s week."""
    local = moment.astimezone(_zone(tz)).date()
    return "W" + (local - timedelta(days=local.weekday())).isoformat()


def _sql_month(created_at: str | None, tz: str | None) -> str | None:
    return None if created_at is None else month_key(from_db(created_at), tz)


def _sql_week(created_at: str | None, tz: str | None) -> str | None:
    return None if created_at is None else week_key(from_db(created_at), tz)


def register(conn: sqlite3.Connection) -> None:
    """Make ``linli_month`` and ``linli_week`` available on a plain sqlite3 connection."""
    conn.create_function("linli_month", 2, _sql_month, deterministic=True)
    conn.create_function("linli_week", 2, _sql_week, deterministic=True)


async def register_async(conn: aiosqlite.Connection) -> None:
    await conn.create_function("linli_month", 2, _sql_month, deterministic=True)
    await conn.create_function("linli_week", 2, _sql_week, deterministic=True)
