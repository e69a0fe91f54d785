"""Telegram's message budgets shared by several instances (bot/budget.py): one row per chat and
window (chat 0 is the whole bot), reserved with one portable statement each; a group's also
counted over its recent windows."""

from __future__ import annotations

import sqlite3

from storage.db import Database, dialect

OVERALL = 0

_RESERVE = (
    "INSERT INTO send_budget (chat_id, window_start, n) VALUES (:chat_id, :window_start, 1)"
    " ON CONFLICT (chat_id, window_start) DO UPDATE SET n = send_budget.n + 1"
    " WHERE send_budget.n < :limit RETURNING n"
)
_GIVE_BACK = "UPDATE send_budget SET n = n - 1 WHERE chat_id = :chat_id AND window_start = :window_start AND n > 0"
_USED_SINCE = "SELECT COALESCE(SUM(n), 0) FROM send_budget WHERE chat_id = :chat_id AND window_start >= :since"
_PRUNE = "DELETE FROM send_budget WHERE window_start < :before"
# PostgreSQL: reservations for one group follow each other, also across a window's edge (where they
# take two different rows); the key is the group's chat id, always negative (the inbox's and the
# upgrade's advisory keys are positive).
_GROUP_LOCK = "SELECT pg_advisory_xact_lock(:key)"

Window = tuple[int, int, int]   # chat id, window start (epoch seconds), limit


def _take(conn: sqlite3.Connection, window: Window) -> bool:
    chat_id, start, limit = window
    row = conn.execute(_RESERVE, {"chat_id": chat_id, "window_start": start, "limit": limit}).fetchone()
    return row is not None


def reserve_sync(conn: sqlite3.Connection, chat: Window, overall: Window) -> str | None:
    """One message for ``chat`` and one for the whole bot, both or neither (in the caller's
    ``Database.write`` transaction): None when reserved, else which is full ("chat" or "overall")."""
    if not _take(conn, chat):
        return "chat"
    if not _take(conn, overall):
        conn.execute(_GIVE_BACK, {"chat_id": chat[0], "window_start": chat[1]})
        return "overall"
    return None


async def reserve(db: Database, chat: Window, overall: Window) -> str | None:
    return await db.write(lambda conn: reserve_sync(conn, chat, overall))


def reserve_group_sync(conn: sqlite3.Connection, chat: Window, since: int, most: int,
                       overall: Window | None) -> str | None:
    """One message for a group: a place in its current window (``chat``), then at most ``most``
    in its windows since ``since`` (this one included), then one for the whole bot if ``overall``;
    all or none. None when reserved, else which is full ("chat", "span" or "overall"). On
    PostgreSQL the group is locked first (a transaction-scoped advisory lock), so reservations for
    one group count the span one at a time, also across a window's edge."""
    if dialect(conn) != "sqlite":
        conn.execute(_GROUP_LOCK, {"key": chat[0]})
    if not _take(conn, chat):
        return "chat"
    used = int(conn.execute(_USED_SINCE, {"chat_id": chat[0], "since": since}).fetchone()[0])
    full = "span" if used > most else ("overall" if overall is not None and not _take(conn, overall) else None)
    if full is not None:
        conn.execute(_GIVE_BACK, {"chat_id": chat[0], "window_start": chat[1]})
    return full


async def reserve_group(db: Database, chat: Window, since: int, most: int, overall: Window | None) -> str | None:
    return await db.write(lambda conn: reserve_group_sync(conn, chat, since, most, overall))


async def prune(db: Database, before: int) -> int:
    """Forget the windows that started before ``before`` (epoch seconds)."""
    return await db.write(lambda conn: conn.execute(_PRUNE, {"before": before}).rowcount or 0)
