"""The database layer: one writer at a time, migrations recorded and idempotent, backup."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from storage.db import Database, DatabaseError, open_database, sqlite_path_from_url
from storage.migrate import apply_migrations, load_migrations
from tests.both import only_sqlite


async def test_two_concurrent_transactions_never_interleave(db: Database) -> None:
    only_sqlite(db, "one writer at a time (PostgreSQL locks rows instead: tests/storage/test_pg_runtime.py)")
    events: list[str] = []

    async def work(name: str) -> None:
        async with db.transaction() as conn:
            events.append(f"{name}:begin")
            await conn.execute("INSERT INTO kv (key, value) VALUES (?, '0')", (name,))
            await asyncio.sleep(0.02)  # give the other task every chance to cut in
            await conn.execute("UPDATE kv SET value = '1' WHERE key = ?", (name,))
            events.append(f"{name}:end")

    await asyncio.gather(work("a"), work("b"), work("c"))
    # Each begin is immediately followed by its own end.
    for i in range(0, len(events), 2):
        assert events[i].split(":")[0] == events[i + 1].split(":")[0]
        assert events[i].endswith("begin") and events[i + 1].endswith("end")
    assert await db.fetchval("SELECT COUNT(*) FROM kv WHERE value = '1'") == 3


async def test_failed_transaction_rolls_back(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES ('x', 'y')")
            raise RuntimeError("boom")
    assert await db.fetchval("SELECT COUNT(*) FROM kv") == 0


async def test_concurrent_increments_are_not_lost(db: Database) -> None:
    only_sqlite(db, "one writer at a time (PostgreSQL locks rows instead: tests/storage/test_pg_runtime.py)")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO kv (key, value) VALUES ('n', '0')")

    async def bump() -> None:
        async with db.transaction() as conn:
            async with conn.execute("SELECT value FROM kv WHERE key = 'n'") as cur:
                row = await cur.fetchone()
            await asyncio.sleep(0)
            await conn.execute("UPDATE kv SET value = ? WHERE key = 'n'", (str(int(row[0]) + 1),))

    await asyncio.gather(*(bump() for _ in range(50)))
    assert await db.fetchval("SELECT value FROM kv WHERE key = 'n'") == "50"


async def test_write_runs_in_one_transaction_and_rolls_back_on_error(db: Database) -> None:
    """``Database.write`` (the one-round-trip transaction claims use) commits what its function
    wrote, returns its result, and on an error keeps nothing of it."""
    def good(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO kv (key, value) VALUES ('a', '1')")
        return int(conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0])

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO kv (key, value) VALUES ('b', '2')")
        raise RuntimeError("boom")

    assert await db.write(good) == 1
    with pytest.raises(RuntimeError):
        await db.write(bad)
    assert [tuple(r) for r in await db.fetchall("SELECT key, value FROM kv")] == [("a", "1")]
    async with db.transaction() as conn:  # the writer is usable afterwards, in either style
        await conn.execute("INSERT INTO kv (key, value) VALUES ('c', '3')")
    assert await db.fetchval("SELECT COUNT(*) FROM kv") == 2


async def test_write_and_transaction_never_interleave(db: Database) -> None:
    """Increments through both kinds of write, all at once: none is lost."""
    only_sqlite(db, "one writer at a time (PostgreSQL locks rows instead: tests/storage/test_pg_runtime.py)")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO kv (key, value) VALUES ('n', '0')")

    def bump_sync(conn: sqlite3.Connection) -> None:
        value = conn.execute("SELECT value FROM kv WHERE key = 'n'").fetchone()[0]
        conn.execute("UPDATE kv SET value = ? WHERE key = 'n'", (str(int(value) + 1),))

    async def bump_async() -> None:
        async with db.transaction() as conn:
            row = (await conn.execute_fetchall("SELECT value FROM kv WHERE key = 'n'"))[0]
            await asyncio.sleep(0)
            await conn.execute("UPDATE kv SET value = ? WHERE key = 'n'", (str(int(row[0]) + 1),))

    await asyncio.gather(*(db.write(bump_sync) if i % 2 else bump_async() for i in range(60)))
    assert await db.fetchval("SELECT value FROM kv WHERE key = 'n'") == "60"


async def test_migrations_twice_is_a_no_op(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    first = await open_database(path)
    version = await first.schema_version()
    assert version == max(m.version for m in load_migrations())
    assert await apply_migrations(first.writer) == []
    await first.close()
    second = await open_database(path)
    assert await second.schema_version() == version
    assert await second.fetchval("SELECT COUNT(*) FROM schema_migrations") == len(load_migrations())
    await second.close()


async def test_ledger_is_append_only(db: Database) -> None:
    import sqlite3

    async with db.transaction() as conn:
        await conn.execute("INSERT INTO members (tg_user_id, created_at, updated_at) VALUES (1, 'x', 'x')")
        await conn.execute(
            "INSERT INTO ledger (member_id, delta, reason, idempotency_key, created_at) VALUES (1, 2, 't', 'k', 'x')"
        )
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as conn:
            await conn.execute("UPDATE ledger SET delta = 5")
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as conn:
            await conn.execute("DELETE FROM ledger")
    assert await db.fetchval("SELECT balance FROM members WHERE id = 1") == 2


async def test_backup_while_open(db: Database, tmp_path: Path) -> None:
    only_sqlite(db, "SQLite's online backup (PostgreSQL: linli backup runs pg_dump)")
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO kv (key, value) VALUES ('k', 'v')")
    target = tmp_path / "backup" / "copy.db"
    await db.backup(str(target))
    copy = await open_database(str(target), migrate=False)
    assert await copy.fetchval("SELECT value FROM kv WHERE key = 'k'") == "v"
    await copy.close()


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///data/linli.db", "data/linli.db"), ("sqlite:////tmp/x.db", "/tmp/x.db"), ("sqlite://:memory:", ":memory:")],
)
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path_from_url(url) == path


@pytest.mark.parametrize("url", ["postgres://x/y", "sqlite://host/x.db", "mysql:///x"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(DatabaseError):
        sqlite_path_from_url(url)
