"""The database's own guarantees on PostgreSQL, with raw SQL as any client could send it: the ledger
is append-only (a note may be emptied), a balance never goes negative, the running totals and the
digest schedule follow, the idempotency keys refuse a second row, also from two connections at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from storage import pg
from storage.db import open_database

NOW = "2026-05-04T09:00:00.000000Z"
CREDIT = ("INSERT INTO ledger (community_id, member_id, delta, reason, organisation_id, idempotency_key, created_at)"
          " VALUES (1, $1, $2, $3, $4, $5, $6)")


@pytest.fixture
async def conn(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    await pg.upgrade(pg_url)
    connection = await asyncpg.connect(pg_url)
    await connection.execute(
        f"""INSERT INTO communities (id, name, join_code, created_at) VALUES (1, 'Sunny Lane', 'j1', '{NOW}');
        INSERT INTO organisations (id, community_id, name, invite_code, created_at) VALUES (1, 1, 'Red Cross', 'o1', '{NOW}');
        INSERT INTO members (id, tg_user_id, community_id, is_volunteer, organisation_id, registered_at, created_at, updated_at)
        VALUES (1, 101, 1, 1, 1, '{NOW}', '{NOW}', '{NOW}'), (2, 102, 1, 1, NULL, '{NOW}', '{NOW}', '{NOW}');
        UPDATE members SET digest_next_at = '2026-05-05T00:00:00.000000Z';""")
    try:
        yield connection
    finally:
        await connection.close()


async def credit(conn: asyncpg.Connection, member: int, delta: int, key: str, *, reason: str = "task_completed",
                 org: int | None = None, at: str = NOW) -> None:
    await conn.execute(CREDIT, member, delta, reason, org, key, at)


async def balance(conn: asyncpg.Connection, member: int) -> int:
    return int(await conn.fetchval("SELECT balance FROM members WHERE id = $1", member))


async def test_ledger_rows_cannot_be_changed_or_removed_but_a_note_can_be_emptied(conn: asyncpg.Connection) -> None:
    await conn.execute(CREDIT.replace("created_at)", "created_at, note)").replace("$6)", "$6, 'typed by staff')"),
                       1, 5, "task_completed", None, "k1", NOW)
    for sql in ("UPDATE ledger SET delta = 50", "UPDATE ledger SET created_at = '2020-01-01T00:00:00.000000Z'",
                "UPDATE ledger SET note = 'rewritten'", "DELETE FROM ledger", "TRUNCATE ledger CASCADE"):
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
            await conn.execute(sql)
    assert await conn.fetchval("SELECT note FROM ledger") == "typed by staff"
    await conn.execute("UPDATE ledger SET note = NULL")  # erasure (/deleteme)
    assert await conn.fetchval("SELECT count(*) FROM ledger WHERE note IS NULL AND delta = 5") == 1
    assert await balance(conn, 1) == 5


async def test_a_balance_never_goes_negative(conn: asyncpg.Connection) -> None:
    await credit(conn, 1, 5, "earn")
    await credit(conn, 1, -3, "spend-1", reason="redeem")
    with pytest.raises(asyncpg.CheckViolationError):
        await credit(conn, 1, -3, "spend-2", reason="redeem")
    assert await balance(conn, 1) == 2
    assert await conn.fetchval("SELECT sum(delta) FROM ledger WHERE member_id = 1") == 2
    assert await conn.fetchval("SELECT count(*) FROM ledger") == 2  # the refused row is not there


async def test_the_idempotency_keys_refuse_a_second_row(conn: asyncpg.Connection) -> None:
    await credit(conn, 1, 5, "task:1:1")
    with pytest.raises(asyncpg.UniqueViolationError):
        await credit(conn, 1, 5, "task:1:1")
    assert await conn.fetchval(CREDIT + " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
                               1, 5, "task_completed", None, "task:1:1", NOW) is None
    assert await balance(conn, 1) == 5
    await conn.execute(f"INSERT INTO sent_notifications (key, created_at) VALUES ('digest:1', '{NOW}')")
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(f"INSERT INTO sent_notifications (key, created_at) VALUES ('digest:1', '{NOW}')")
    await conn.execute(f"""INSERT INTO tasks (id, community_id, created_by, category, state, created_at, updated_at)
                           VALUES (1, 1, 1, 'other', 'open', '{NOW}', '{NOW}')""")
    await conn.execute(f"INSERT INTO cases (community_id, task_id, opened_by, created_at) VALUES (1, 1, 1, '{NOW}')")
    with pytest.raises(asyncpg.UniqueViolationError):  # one open case per task (a partial unique index)
        await conn.execute(f"INSERT INTO cases (community_id, task_id, opened_by, created_at) VALUES (1, 1, 2, '{NOW}')")
    await conn.execute("UPDATE cases SET state = 'resolved'")
    await conn.execute(f"INSERT INTO cases (community_id, task_id, opened_by, created_at) VALUES (1, 1, 2, '{NOW}')")


LEDGER_ROWS = [  # member, delta, reason, organisation, created_at
    (1, 5, "task_completed", 1, "2026-05-03T15:59:59.999999Z"),   # Sunday 23:59 in Shanghai
    (1, 3, "event_attended", 1, "2026-05-03T16:00:00.000000Z"),   # Monday 00:00: a new week
    (1, -2, "revoke", 1, "2026-05-31T16:30:00.000000Z"),          # June in Shanghai, May in UTC
    (1, -4, "redeem", None, "2026-06-01T02:00:00.000000Z"),       # spending does not count
    (2, 7, "case_resolved", None, "2026-04-30T23:00:00.000000Z"),
    (2, 1, "task_auto_confirmed", None, "2026-05-04T09:00:00.000000Z"),
    (2, 2, "refund", None, "2026-05-04T09:00:00.000000Z"),
]


async def _sqlite_totals(tmp_path: Path) -> tuple[set[tuple[Any, ...]], list[tuple[int, int]]]:
    db = await open_database(str(tmp_path / "lite.db"))
    try:
        async with db.transaction() as c:
            await c.execute(f"INSERT INTO communities (id, name, join_code, created_at) VALUES (1, 'S', 'j1', '{NOW}')")
            await c.execute(f"INSERT INTO organisations (id, community_id, name, invite_code, created_at) VALUES (1, 1, 'R', 'o1', '{NOW}')")
            await c.execute(f"INSERT INTO members (id, community_id, created_at, updated_at) VALUES (1, 1, '{NOW}', '{NOW}'), (2, 1, '{NOW}', '{NOW}')")
            for n, (member, delta, reason, org, at) in enumerate(LEDGER_ROWS):
                await c.execute(CREDIT.replace("$1", "?").replace("$2", "?").replace("$3", "?").replace("$4", "?")
                                .replace("$5", "?").replace("$6", "?"), (member, delta, reason, org, f"k{n}", at))
        totals = {tuple(r) for r in await db.fetchall("SELECT community_id, scope, subject_id, period, pts FROM earning_totals")}
        balances = [tuple(r) for r in await db.fetchall("SELECT id, balance FROM members ORDER BY id")]
        return totals, balances  # type: ignore[return-value]
    finally:
        await db.close()


async def test_the_running_totals_follow_the_ledger_as_on_sqlite(conn: asyncpg.Connection, tmp_path: Path) -> None:
    for n, (member, delta, reason, org, at) in enumerate(LEDGER_ROWS):
        await credit(conn, member, delta, f"k{n}", reason=reason, org=org, at=at)
    totals = {tuple(r) for r in await conn.fetch("SELECT community_id, scope, subject_id, period, pts FROM earning_totals")}
    lite_totals, lite_balances = await _sqlite_totals(tmp_path)
    assert totals == lite_totals
    assert (1, "m", 1, "W2026-05-04", 3) in totals and (1, "m", 1, "M2026-06", -2) in totals
    assert (1, "o", 1, "all", 6) in totals and (1, "m", 2, "all", 8) in totals
    assert [tuple(r) for r in await conn.fetch("SELECT id, balance FROM members ORDER BY id")] == lite_balances == [(1, 2), (2, 10)]


async def test_the_digest_schedule_is_reset_by_what_it_depends_on(conn: asyncpg.Connection) -> None:
    due = "SELECT digest_next_at FROM members WHERE id = $1"
    await conn.execute("UPDATE members SET display_name = 'Li', balance = balance WHERE id = 1")
    assert await conn.fetchval(due, 1) != ""
    await conn.execute("UPDATE members SET is_staff = 1 WHERE id = 1")
    assert await conn.fetchval(due, 1) == "" and await conn.fetchval(due, 2) != ""
    await conn.execute("UPDATE members SET digest_hour = NULL WHERE id = 2")  # unchanged value: no reset
    assert await conn.fetchval(due, 2) != ""
    await conn.execute("UPDATE communities SET digest_next_at = 'x'; UPDATE members SET digest_next_at = 'x'")
    await conn.execute("UPDATE communities SET timezone = 'Europe/Berlin'")
    assert await conn.fetchval("SELECT digest_next_at FROM communities") == ""
    assert [r[0] for r in await conn.fetch("SELECT digest_next_at FROM members")] == ["", ""]


# -- two connections at once -------------------------------------------------------------------

async def _waits_for_a_lock(watch: asyncpg.Connection, pid: int, timeout: float = 30) -> None:
    """Until the backend ``pid`` is blocked on a lock (polled; the test does not guess a delay)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await watch.fetchval("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid) != "Lock":
        assert loop.time() < deadline, "the second connection never waited for the first"
        await asyncio.sleep(0.01)


async def _race(pg_url: str, first_sql: tuple[Any, ...], second_sql: tuple[Any, ...]) -> Awaitable[Any]:
    """The first connection writes in an open transaction; the second's write waits for it; the
    first commits; the second's outcome is returned (as an awaitable that raises its error)."""
    a, b, watch = [await asyncpg.connect(pg_url) for _ in range(3)]
    try:
        ta = a.transaction()
        await ta.start()
        await a.execute(*first_sql)
        second = asyncio.create_task(b.execute(*second_sql))
        await _waits_for_a_lock(watch, b.get_server_pid())
        await ta.commit()
        result = await asyncio.gather(second, return_exceptions=True)
    finally:
        for c in (a, b, watch):
            await c.close()

    async def outcome() -> Any:
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    return outcome()


async def test_two_spends_at_once_cannot_overdraw(conn: asyncpg.Connection, pg_url: str) -> None:
    await credit(conn, 1, 10, "earn")
    spend = (CREDIT, 1, -10, "redeem", None)
    second = await _race(pg_url, (*spend, "spend-a", NOW), (*spend, "spend-b", NOW))
    with pytest.raises(asyncpg.CheckViolationError):
        await second
    assert await balance(conn, 1) == 0
    assert await conn.fetchval("SELECT count(*) FROM ledger WHERE reason = 'redeem'") == 1


async def test_one_key_from_two_connections_at_once_is_one_row(conn: asyncpg.Connection, pg_url: str) -> None:
    row = (CREDIT, 2, 4, "task_completed", None, "task:9:2", NOW)
    second = await _race(pg_url, row, row)
    with pytest.raises(asyncpg.UniqueViolationError):
        await second
    assert await balance(conn, 2) == 4
    assert await conn.fetchval("SELECT pts FROM earning_totals WHERE subject_id = 2 AND scope = 'm' AND period = 'all'") == 4


async def test_many_credits_from_two_connections_add_up(conn: asyncpg.Connection, pg_url: str) -> None:
    async def writer(worker: int) -> None:
        c = await asyncpg.connect(pg_url)
        try:
            for n in range(60):
                await c.execute(CREDIT, 1 + n % 2, 1 + n % 3, "task_completed", 1 if n % 2 == 0 else None,
                                f"w{worker}:{n}", NOW)
        finally:
            await c.close()

    await asyncio.gather(writer(1), writer(2))
    sums = {r["member_id"]: r["s"] for r in await conn.fetch("SELECT member_id, sum(delta) AS s FROM ledger GROUP BY member_id")}
    assert {1: await balance(conn, 1), 2: await balance(conn, 2)} == sums
    totals = {(r["scope"], r["subject_id"]): r["pts"] for r in await conn.fetch(
        "SELECT scope, subject_id, pts FROM earning_totals WHERE period = 'all'")}
    assert totals == {("m", 1): sums[1], ("m", 2): sums[2], ("o", 1): sums[1]}
