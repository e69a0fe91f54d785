"""What a schema holds, read back from SQLite and from PostgreSQL in one shape, to compare them:
tables with their columns (name, NOT NULL), named indexes (table, columns, unique, partial) and
the unique column sets of each table (primary keys and UNIQUE constraints)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

# Each engine's own bookkeeping of applied migrations.
BOOKKEEPING = {"schema_migrations", "alembic_version"}


@dataclass
class Schema:
    columns: dict[str, dict[str, bool]] = field(default_factory=dict)  # table -> column -> NOT NULL
    indexes: dict[str, tuple[str, tuple[str, ...], bool, bool]] = field(default_factory=dict)
    uniques: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    defaults: dict[str, dict[str, str | None]] = field(default_factory=dict)  # table -> column -> DEFAULT
    checks: dict[str, int] = field(default_factory=dict)  # table -> how many CHECK constraints


def _pg_default(text: str | None) -> str | None:
    """PostgreSQL's spelling of a default ('{}'::text) in SQLite's ('{}')."""
    return None if text is None else re.sub(r"::[a-z ]+$", "", text)


def sqlite_schema(path: str) -> Schema:
    con = sqlite3.connect(path)
    try:
        schema = Schema()
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                            " AND name NOT LIKE 'sqlite_%'") if r[0] not in BOOKKEEPING]
        for table in tables:
            info = con.execute(f"PRAGMA table_info({table})").fetchall()
            # A primary key's columns cannot be NULL on PostgreSQL; SQLite only says so for rowids.
            schema.columns[table] = {r[1]: bool(r[3] or r[5]) for r in info}
            schema.defaults[table] = {r[1]: r[4] for r in info}
            sql = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
            schema.checks[table] = len(re.findall(r"\bCHECK\s*\(", re.sub(r"--[^\n]*", "", sql), re.IGNORECASE))
            uniques = schema.uniques.setdefault(table, set())
            pk = tuple(r[1] for r in sorted(info, key=lambda r: r[5]) if r[5])
            if pk:
                uniques.add(pk)
            for _, name, unique, origin, partial in con.execute(f"PRAGMA index_list({table})"):
                cols = tuple(r[2] for r in con.execute(f"PRAGMA index_info({name})"))
                if origin == "c":
                    schema.indexes[name] = (table, cols, bool(unique), bool(partial))
                else:
                    uniques.add(cols)
        return schema
    finally:
        con.close()


INDEXES_SQL = """
SELECT t.relname AS table_name, i.relname AS index_name, ix.indisunique AS is_unique,
       ix.indpred IS NOT NULL AS is_partial, con.contype AS contype,
       (SELECT array_agg(a.attname ORDER BY k.ord)
          FROM unnest(ix.indkey) WITH ORDINALITY AS k (attnum, ord)
          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum) AS cols
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
LEFT JOIN pg_constraint con ON con.conindid = ix.indexrelid AND con.contype IN ('p', 'u')
"""


async def pg_schema(conn: Any) -> Schema:
    schema = Schema()
    for r in await conn.fetch("SELECT table_name, column_name, is_nullable, column_default"
                              " FROM information_schema.columns WHERE table_schema = current_schema()"):
        if r["table_name"] not in BOOKKEEPING:
            schema.columns.setdefault(r["table_name"], {})[r["column_name"]] = r["is_nullable"] == "NO"
            schema.defaults.setdefault(r["table_name"], {})[r["column_name"]] = _pg_default(r["column_default"])
    for table in schema.columns:
        schema.uniques.setdefault(table, set())
        schema.checks[table] = 0
    for r in await conn.fetch("SELECT c.conrelid::regclass::text AS t, count(*) AS n FROM pg_constraint c"
                              " JOIN pg_namespace n ON n.oid = c.connamespace AND n.nspname = current_schema()"
                              " WHERE c.contype = 'c' GROUP BY 1"):
        schema.checks[r["t"]] = int(r["n"])
    for r in await conn.fetch(INDEXES_SQL):
        if r["table_name"] in BOOKKEEPING:
            continue
        cols = tuple(r["cols"])
        if r["contype"] is not None:
            schema.uniques[r["table_name"]].add(cols)
        else:
            schema.indexes[r["index_name"]] = (r["table_name"], cols, r["is_unique"], r["is_partial"])
    return schema
