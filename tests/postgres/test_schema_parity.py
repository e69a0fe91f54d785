"""The PostgreSQL schema (Alembic) and the SQLite schema (numbered migrations) are the same schema:
same tables, columns (name, NOT NULL, default), CHECK constraints (how many), indexes and unique
constraints (that every SQLite migration has its PostgreSQL twin is checked without a server:
tests/storage/test_pg.py)."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from storage import pg
from storage.db import open_database
from tests.postgres.schema import Schema, pg_schema, sqlite_schema


def _differences(lite: Schema, post: Schema) -> list[str]:
    out: list[str] = []
    for table in sorted(set(lite.columns) | set(post.columns)):
        if table not in post.columns or table not in lite.columns:
            out.append(f"table {table}: only on {'SQLite' if table in lite.columns else 'PostgreSQL'}")
            continue
        if lite.columns[table] != post.columns[table]:
            out.append(f"table {table} columns: SQLite {lite.columns[table]} PostgreSQL {post.columns[table]}")
        if lite.defaults[table] != post.defaults[table]:
            out.append(f"table {table} defaults: SQLite {lite.defaults[table]} PostgreSQL {post.defaults[table]}")
        if lite.checks[table] != post.checks[table]:
            out.append(f"table {table}: {lite.checks[table]} CHECK constraints on SQLite, {post.checks[table]} on PostgreSQL")
        if lite.uniques.get(table, set()) != post.uniques.get(table, set()):
            out.append(f"table {table} unique: SQLite {lite.uniques.get(table)} PostgreSQL {post.uniques.get(table)}")
    for name in sorted(set(lite.indexes) | set(post.indexes)):
        if lite.indexes.get(name) != post.indexes.get(name):
            out.append(f"index {name}: SQLite {lite.indexes.get(name)} PostgreSQL {post.indexes.get(name)}")
    return out


async def test_both_schemas_at_head_are_the_same(tmp_path: Path, pg_url: str) -> None:
    db = await open_database(str(tmp_path / "lite.db"))
    await db.close()
    before, after = await pg.upgrade(pg_url)
    assert (before, after) == (None, pg.head_revision())
    conn = await asyncpg.connect(pg_url)
    try:
        post = await pg_schema(conn)
    finally:
        await conn.close()
    lite = sqlite_schema(str(tmp_path / "lite.db"))
    assert len(lite.columns) > 20 and len(lite.indexes) > 20  # the reading itself works
    assert _differences(lite, post) == []


async def test_migrating_twice_changes_nothing(pg_url: str) -> None:
    await pg.upgrade(pg_url)
    assert await pg.upgrade(pg_url) == (pg.head_revision(), pg.head_revision())
