"""Copy a community's SQLite database into PostgreSQL (``linli migrate-data``).

The target must be migrated to the same schema head and empty. Every table is copied in foreign-key
order, in one transaction, with its ids; the identity sequences then move past them. The ledger's
balance and running-total triggers are switched off for the copy (inside the same transaction, so
they are on again whatever happens): the copied balances and totals are the source's, and
replaying every ledger row through them would update the same few total rows once per ledger row
in one transaction, which PostgreSQL makes slower and slower (minutes at 100,000 rows). Before the
commit the copy is verified: rows per table equal, every balance equal to its ledger sum, and the
running totals equal to the ledger's sums recomputed by PostgreSQL's own linli_month/linli_week.
Anything else rolls the whole copy back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage import pg
from storage.migrate import load_migrations

BOOKKEEPING = {"schema_migrations", "alembic_version"}
# The ledger's triggers that write elsewhere (the append-only ones stay on).
QUIET_TRIGGERS = ("ledger_balance", "ledger_earning_totals")
EARNED = "('task_completed', 'task_auto_confirmed', 'event_attended', 'case_resolved', 'revoke')"
CHUNK = 5000


class CopyRefused(RuntimeError):
    """The copy cannot start or did not verify (one sentence for the operator); nothing was kept."""


@dataclass
class CopyReport:
    revision: str
    counts: list[tuple[str, int]] = field(default_factory=list)  # table, rows (equal on both)
    balances: int = 0  # members whose balance was checked against the ledger
    totals: int = 0  # running-total rows checked against the ledger


def open_source(path: str) -> sqlite3.Connection:
    """The SQLite database, read-only, at the newest numbered migration, in one read transaction
    (one snapshot of every table, even if the bot is still writing)."""
    try:
        con = sqlite3.connect(f"{Path(path).expanduser().resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CopyRefused(f"cannot open the SQLite database {path} ({exc})") from None
    try:
        con.execute("BEGIN")
        has = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
        applied = {int(r[0]) for r in con.execute("SELECT version FROM schema_migrations")} if has else set()
        if not applied:
            raise CopyRefused(f"{path} is not a Linli database (no schema_migrations)")
        if missing := [m.version for m in load_migrations() if m.version not in applied]:
            raise CopyRefused(f"the SQLite database {path} is not at the newest schema ({len(missing)} migration(s) "
                              "to apply): run `linli migrate` on it first (with the bot stopped)")
    except (sqlite3.Error, CopyRefused) as exc:
        con.close()
        if isinstance(exc, CopyRefused):
            raise
        raise CopyRefused(f"cannot read the SQLite database {path} ({exc})") from None
    return con


def tables_in_order(con: sqlite3.Connection) -> list[str]:
    """Every table, each after the tables its foreign keys point to."""
    names = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%'") if r[0] not in BOOKKEEPING)
    needs = {t: {r[2] for r in con.execute(f"PRAGMA foreign_key_list({t})")} - {t} for t in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [t for t in names if t not in ordered and needs[t] <= set(ordered)]
        if not ready:
            raise CopyRefused(f"the foreign keys of {sorted(set(names) - set(ordered))} form a cycle")
        ordered += ready
    return ordered


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def _rows(con: sqlite3.Connection, table: str, columns: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    """The table's rows in the order they were written (by primary key without a rowid), in chunks."""
    without_rowid = con.execute("SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = ?",
                                (table,)).fetchone()[0]
    order = ", ".join(r[1] for r in sorted(con.execute(f"PRAGMA table_info({table})"), key=lambda r: r[5])
                      if r[5]) if without_rowid else "rowid"
    cur = con.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
    while chunk := cur.fetchmany(CHUNK):
        yield chunk


async def _check_target(conn: Any, tables: list[str]) -> str:
    revision = await conn.fetchval("SELECT version_num FROM alembic_version LIMIT 1") \
        if await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL") else None
    head = pg.head_revision()
    if revision != head:
        raise CopyRefused(f"the PostgreSQL database is at schema revision {revision or 'none'}, this Linli expects "
                          f"{head}: run `linli migrate` with DATABASE_URL set to it first")
    for table in tables:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            raise CopyRefused(f"the PostgreSQL database is not empty (table {table} has rows): "
                              "copy into a freshly migrated, empty database")
    return head


async def _target_columns(conn: Any, table: str) -> list[str]:
    rows = await conn.fetch("SELECT column_name FROM information_schema.columns"
                            " WHERE table_schema = current_schema() AND table_name = $1", table)
    return [r[0] for r in rows]


async def _copy_table(conn: Any, con: sqlite3.Connection, table: str) -> int:
    columns = _columns(con, table)
    target = await _target_columns(conn, table)
    if sorted(columns) != sorted(target):
        raise CopyRefused(f"table {table} has different columns on PostgreSQL ({sorted(set(columns) ^ set(target))}):"
                          " the two schemas do not match")
    copied = 0
    for chunk in _rows(con, table, columns):
        await conn.copy_records_to_table(table, records=chunk, columns=columns)
        copied += len(chunk)
    return copied


async def _reset_sequences(conn: Any) -> None:
    """Identity columns continue after the highest copied id."""
    rows = await conn.fetch("SELECT table_name, column_name FROM information_schema.columns"
                            " WHERE table_schema = current_schema() AND is_identity = 'YES'")
    for table, column in rows:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 1),"
            f" MAX({column}) IS NOT NULL) FROM {table}")


# What the running totals should be, from the ledger (as migration 0080 first filled them).
TOTALS_FROM_LEDGER = f"""
SELECT community_id, scope, subject_id, period, SUM(delta)::integer AS pts FROM (
    SELECT l.community_id, s.scope, s.subject_id, p.period, l.delta
    FROM ledger l JOIN communities c ON c.id = l.community_id
    CROSS JOIN LATERAL (VALUES ('m', l.member_id), ('o', l.organisation_id)) AS s (scope, subject_id)
    CROSS JOIN LATERAL (VALUES ('all'), (linli_month(l.created_at, c.timezone)),
                               (linli_week(l.created_at, c.timezone))) AS p (period)
    WHERE l.reason IN {EARNED} AND s.subject_id IS NOT NULL) AS credits
GROUP BY community_id, scope, subject_id, period"""


async def _verify(conn: Any, con: sqlite3.Connection, tables: list[str], report: CopyReport) -> None:
    for table in tables:
        source = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        target = await conn.fetchval(f"SELECT COUNT(*) FROM {table}")
        if source != target:
            raise CopyRefused(f"table {table}: {source} rows in SQLite but {target} on PostgreSQL after the copy")
        report.counts.append((table, int(target)))
    off = await conn.fetchval("SELECT COUNT(*) FROM members m WHERE balance <> COALESCE("
                              "(SELECT SUM(delta) FROM ledger l WHERE l.member_id = m.id), 0)")
    if off:
        raise CopyRefused(f"{off} member balance(s) differ from their ledger sum (in the SQLite database already)")
    report.balances = int(await conn.fetchval("SELECT COUNT(*) FROM members"))
    stored = "SELECT community_id, scope, subject_id, period, pts FROM earning_totals"
    differ = await conn.fetchval(f"SELECT COUNT(*) FROM (({stored} EXCEPT {TOTALS_FROM_LEDGER})"
                                 f" UNION ALL ({TOTALS_FROM_LEDGER} EXCEPT {stored})) AS d")
    if differ:
        raise CopyRefused(f"{differ} running total(s) differ from the ledger's sums (in the SQLite database already)")
    report.totals = report.counts[tables.index("earning_totals")][1] if "earning_totals" in tables else 0


async def copy_to_postgres(sqlite_path: str, url: str) -> CopyReport:
    """Copy everything; raises ``CopyRefused`` (nothing kept) when it cannot or does not verify."""
    import asyncpg

    con = open_source(sqlite_path)
    try:
        tables = tables_in_order(con)
        conn = await asyncpg.connect(pg.plain_url(url), timeout=10)
        try:
            async with conn.transaction():
                report = CopyReport(await _check_target(conn, tables))
                for trigger in QUIET_TRIGGERS:
                    await conn.execute(f"ALTER TABLE ledger DISABLE TRIGGER {trigger}")
                for table in tables:
                    await _copy_table(conn, con, table)
                for trigger in QUIET_TRIGGERS:
                    await conn.execute(f"ALTER TABLE ledger ENABLE TRIGGER {trigger}")
                await _reset_sequences(conn)
                await _verify(conn, con, tables, report)
            return report
        finally:
            await conn.close()
    finally:
        con.close()
