"""The bot's runtime database on PostgreSQL (storage/db_pg.py): the claim race between two
instances, the waiting list's promotion and a redemption's stock under the same race, the
driver's errors as the project's, and what a claim costs in statements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy.util import await_only

from bot.models import DomainError
from bot.services import rewards, tasks
from bot.services import waitlist as waitlist_svc
from storage import inbox as inbox_store
from storage import ledger, pg
from storage.db import Database, DriverError, open_database
from storage.db_pg import translate
from storage.timeutil import to_db
from tests.factories import insert, make_community, make_member

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
async def two(pg_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two Database objects on one PostgreSQL database: two instances of the bot."""
    first = await open_database(pg_url)
    second = await open_database(pg_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def _event(db: Database, slots: int, volunteers: int) -> tuple[int, list[int]]:
    cid = await make_community(db, NOW)
    staff = await make_member(db, NOW, cid, staff=True)
    tid = await tasks.create_task(db, NOW, staff, tasks.NewTask("other", title="Guard the blossoms", kind="event",
                                                                slots=slots, points=5), staff=True)
    return tid, [await make_member(db, NOW, cid, volunteer=True) for _ in range(volunteers)]


async def test_fifty_claims_from_two_instances_take_exactly_the_three_places(two: tuple[Database, Database]) -> None:
    a, b = two
    tid, vols = await _event(a, 3, 50)
    results = await asyncio.gather(*(tasks.claim(a if i % 2 else b, NOW, v, tid) for i, v in enumerate(vols)),
                                   return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 3 and all(isinstance(r, DomainError) for r in refused), refused[:3]
    assert await a.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t AND state = 'active'", {"t": tid}) == 3
    assert await b.fetchval("SELECT state FROM tasks WHERE id = :t", {"t": tid}) == "full"


async def test_places_added_to_a_full_event_go_once_each_down_the_list_when_two_instances_fill_it(
        two: tuple[Database, Database]) -> None:
    a, b = two
    tid, vols = await _event(a, 1, 10)
    await tasks.claim(a, NOW, vols[0], tid)
    for v in vols[1:]:
        await waitlist_svc.join(b, NOW, v, tid)
    async with a.transaction() as conn:  # staff gave the event three more places
        await conn.execute("UPDATE tasks SET slots = 4, state = 'open' WHERE id = :t", {"t": tid})
    results = await asyncio.gather(*(waitlist_svc.fill(b if i % 2 else a, NOW, tid) for i in range(10)),
                                   return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sorted(m for r in results if isinstance(r, list) for m in r) == vols[1:4]
    assert await a.fetchval("SELECT COUNT(*) FROM claims WHERE task_id = :t AND state IN ('active', 'done')",
                            {"t": tid}) == 4


async def _reward(db: Database, cid: int, *, stock: int, monthly_limit: int | None) -> int:
    return await insert(db, "rewards", {"community_id": cid, "name_zh": "米", "name_en": "Rice", "kind": "goods",
                                        "cost": 10, "stock": stock, "monthly_limit": monthly_limit, "valid_days": 30,
                                        "created_at": "2026-05-01T00:00:00.000000Z"})


async def _funded(db: Database, cid: int, n: int, points: int) -> list[int]:
    members = [await make_member(db, NOW, cid, volunteer=True) for _ in range(n)]
    async with db.transaction() as conn:
        for m in members:
            await ledger.append(conn, member_id=m, delta=points, reason="admin_adjust", key=f"seed:{m}", now=NOW)
    return members


async def test_redemptions_racing_on_two_instances_keep_stock_monthly_limit_and_balance(
        two: tuple[Database, Database]) -> None:
    a, b = two
    cid = await make_community(a, NOW)
    members = await _funded(a, cid, 8, 10)
    last_one = await _reward(a, cid, stock=1, monthly_limit=None)
    results = await asyncio.gather(*(rewards.redeem(a if i % 2 else b, member_id=m, reward_id=last_one, now=NOW)
                                     for i, m in enumerate(members)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, DomainError) for r in results if isinstance(r, BaseException))
    assert await a.fetchval("SELECT stock FROM rewards WHERE id = :r", {"r": last_one}) == 0
    # One member taps eight times on both instances: once a month means once.
    rich = (await _funded(a, cid, 1, 100))[0]
    monthly = await _reward(a, cid, stock=5, monthly_limit=1)
    results = await asyncio.gather(*(rewards.redeem(a if i % 2 else b, member_id=rich, reward_id=monthly, now=NOW)
                                     for i in range(8)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert await a.fetchval("SELECT stock FROM rewards WHERE id = :r", {"r": monthly}) == 4
    assert await ledger.balance(a.reader, rich) == 90


async def test_driver_errors_come_out_as_on_sqlite(two: tuple[Database, Database]) -> None:
    a, _ = two
    cid = await make_community(a, NOW)
    member = (await _funded(a, cid, 1, 10))[0]
    async with a.transaction() as conn:  # the balance CHECK comes out as the project's Overdraft
        with pytest.raises(ledger.Overdraft):
            await ledger.append(conn, member_id=member, delta=-11, reason="redeem", key="x", now=NOW)
    with pytest.raises(DriverError):  # a unique key refused: the same exception class as on SQLite
        async with a.transaction() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES ('k', '1')")
            await conn.execute("INSERT INTO kv (key, value) VALUES ('k', '2')")
    assert await a.fetchval("SELECT COUNT(*) FROM kv") == 0


def _update(update_id: int, lane: str = "u:7") -> dict[str, Any]:
    return {"update_id": update_id, "user_id": 7, "lane": lane, "digest": f"d{update_id}", "payload": "{}",
            "received_at": to_db(NOW)}


async def test_an_instance_never_takes_a_row_of_a_lane_another_instance_is_handling(
        two: tuple[Database, Database], pg_url: str) -> None:
    """A claims the lane's first two updates and has not committed yet; a third arrives; B claims
    meanwhile. B must not take the third while A holds the two before it (the lane's order)."""
    a, b = two
    await a.write(lambda conn: inbox_store.store(conn, [_update(1), _update(2)]))
    gate = asyncio.Event()
    claimed = asyncio.Event()

    def claim_and_hold(conn: Any) -> list[inbox_store.InboxRow]:
        rows = inbox_store.claim(conn, owner="A", now=to_db(NOW), lease_until=to_db(NOW + timedelta(minutes=5)),
                                 limit=10)
        claimed.set()
        await_only(gate.wait())  # the transaction stays open (in a real instance: a slow commit)
        return rows

    holder = asyncio.ensure_future(a.write(claim_and_hold))
    await claimed.wait()
    await b.write(lambda conn: inbox_store.store(conn, [_update(3)]))
    taker = asyncio.ensure_future(b.write(lambda conn: inbox_store.claim(
        conn, owner="B", now=to_db(NOW), lease_until=to_db(NOW + timedelta(minutes=5)), limit=10)))
    watcher = await asyncpg.connect(pg_url)
    try:  # B's claim is waiting for a lock (whichever) before A commits
        while not await watcher.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                         " AND datname = current_database()"):
            assert not taker.done(), taker.result()
            await asyncio.sleep(0.01)
    finally:
        await watcher.close()
    gate.set()
    assert [r.update_id for r in await holder] == [1, 2]
    assert [r.update_id for r in await taker] == []


def test_placeholders_are_rewritten_outside_literals_and_casts() -> None:
    assert translate("SELECT :a, ':b', x::text, :a, \"c:d\" WHERE y = :c") == (
        "SELECT $1, ':b', x::text, $1, \"c:d\" WHERE y = $2", ("a", "c"))
    assert translate("VALUES (?, ?, ?1)") == ("VALUES ($1, $2, $1)", ())
    assert translate("SELECT * FROM outbox INDEXED BY outbox_pending_next WHERE 1")[0] == "SELECT * FROM outbox WHERE 1"


async def test_instances_starting_together_upgrade_the_schema_once(pg_url: str) -> None:
    opened = await asyncio.gather(*(open_database(pg_url) for _ in range(4)))
    try:
        assert {await db.schema_version() for db in opened} == {int(pg.head_revision())}
    finally:
        for db in opened:
            await db.close()


async def test_sums_and_averages_come_back_as_on_sqlite(pg_url: str) -> None:
    db = await open_database(pg_url)
    try:
        row = await db.fetchone("SELECT SUM(x), AVG(x), COUNT(*) FROM (VALUES (1), (2)) AS v (x)")
        assert tuple(row) == (3, 1.5, 2) and type(row[0]) is int and type(row[1]) is float
    finally:
        await db.close()


async def test_a_parameter_of_another_type_is_compared_as_sqlite_would(pg_url: str) -> None:
    """SQLite compares 5 and '5' loosely; asyncpg refuses an int for a text column. The parameter
    is converted to the column's type, inside a transaction too (which goes on)."""
    db = await open_database(pg_url)
    try:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES (:k, :v)", {"k": 5, "v": 7})
            assert [tuple(r) for r in await conn.execute_fetchall("SELECT key, value FROM kv")] == [("5", "7")]
        assert await db.fetchval("SELECT COUNT(*) FROM kv WHERE key = :k", {"k": 5}) == 1
    finally:
        await db.close()


async def test_a_claim_is_nine_round_trips_to_the_server(pg_url: str) -> None:
    """Every query the driver sends for one claim, counted by asyncpg's query logger on the one
    pooled connection: the glance, then BEGIN, the task locked and read, the member and their
    place, the claim, the task's new state, the audit row, the details, COMMIT; and nothing when a
    connection goes back to the pool (asyncpg's default reset was one query at each release)."""
    from storage.db_pg import PgDatabase

    pooled = PgDatabase(pg_url, pool_size=1)
    await pooled.open()
    db = cast(Database, pooled)  # the same interface
    try:
        cid = await make_community(db, NOW)
        staff = await make_member(db, NOW, cid, staff=True)
        vols = [await make_member(db, NOW, cid, volunteer=True, announce_asked_at=to_db(NOW)) for _ in range(2)]
        event = await tasks.create_task(db, NOW, staff, tasks.NewTask("other", title="Sweep the lane", kind="event",
                                                                      slots=5, points=2), staff=True)
        await tasks.claim(db, NOW, vols[0], event)  # statements prepared once
        sent: list[str] = []
        async with pooled.pool.acquire() as raw:
            raw.add_query_logger(lambda logged: sent.append(logged.query))
        sent.clear()
        await tasks.claim(db, NOW, vols[1], event)
        assert len(sent) == 9, sent
    finally:
        await db.close()


async def test_the_bots_pool_holds_as_many_connections_as_database_pool_size(pg_url: str) -> None:
    """DATABASE_POOL_SIZE sets how many connections one instance keeps to the server (default 10)."""
    from bot.app import open_runtime_database
    from bot.config import load_settings

    for size in (3, 10):
        db = await open_runtime_database(load_settings(DATABASE_URL=pg_url, DATABASE_POOL_SIZE=size))
        try:
            assert db.pool.get_max_size() == size  # type: ignore[attr-defined]
        finally:
            await db.close()
