"""The outbox's reset of rows left ``sending`` with several instances (storage/outbox.py
reset_in_flight, migration 0230): a row goes back to ``pending`` only when the instance that marked
it is this one restarting (its own name), no longer holds the outbox lease (expired or given up), or
marked it before instances had names; never while a live sender holds the lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import leases
from storage import outbox as outbox_store
from storage.db import Database
from storage.outbox import enqueue

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


async def _sending(db: Database, key: str, by: str | None) -> None:
    async with db.transaction() as conn:
        await enqueue(conn, chat_id=7, kind="text", now=NOW, payload={"message": key}, dedupe_key=key)
    row = await db.fetchone("SELECT id FROM outbox WHERE dedupe_key = :k", {"k": key})
    assert row is not None
    await db.write(lambda conn: outbox_store.mark_sending(conn, int(row[0]), by))


async def _states(db: Database) -> dict[str, tuple[str, str | None]]:
    rows = await db.fetchall("SELECT dedupe_key, state, sending_by FROM outbox ORDER BY id")
    return {str(r[0]): (str(r[1]), r[2]) for r in rows}


async def _reset(db: Database, me: str, at: datetime = NOW, *, mine: bool = True) -> int:
    return await outbox_store.reset_in_flight(db, me=me, lease="outbox", now=at, mine=mine)


async def test_a_starting_instance_leaves_a_live_senders_rows_alone(db: Database) -> None:
    await leases.take(db, "outbox", "web1:11", "web1", 11, NOW, TTL)      # web1 sends, lease running
    await _sending(db, "live", "web1:11")
    await _sending(db, "mine", "web2:22")                                 # web2's own, from before its restart
    await _sending(db, "old", None)                                       # marked before 0230
    assert await _reset(db, "web2:22") == 2
    assert await _states(db) == {"live": ("sending", "web1:11"), "mine": ("pending", "web2:22"),
                                 "old": ("pending", None)}
    assert await db.write(outbox_store.sending_by) == {"web1:11": 1}
    # a third instance starting now leaves web1's row too
    assert await _reset(db, "web3:33", NOW + timedelta(seconds=29)) == 0
    assert (await _states(db))["live"] == ("sending", "web1:11")


async def test_the_rows_of_a_sender_whose_lease_ran_out_go_back(db: Database) -> None:
    await leases.take(db, "outbox", "web1:11", "web1", 11, NOW, TTL)
    await _sending(db, "a", "web1:11")
    await _sending(db, "b", "web1:11")
    assert await _reset(db, "web2:22", NOW + TTL) == 2                     # expired at NOW + TTL
    assert set((await _states(db)).values()) == {("pending", "web1:11")}


async def test_a_sender_that_gave_the_lease_up_or_never_held_it_loses_its_rows(db: Database) -> None:
    await leases.take(db, "outbox", "web1:11", "web1", 11, NOW, TTL)
    await _sending(db, "given-up", "web1:11")
    await _sending(db, "stray", "web9:99")                                 # an instance that holds nothing
    assert await _reset(db, "web2:22") == 1
    assert (await _states(db))["stray"] == ("pending", "web9:99")
    assert await leases.release(db, "outbox", "web1:11")                  # a clean stop
    assert await _reset(db, "web2:22") == 1
    assert (await _states(db))["given-up"] == ("pending", "web1:11")


async def test_taking_the_lease_over_while_running_keeps_this_instances_own_rows(db: Database) -> None:
    # web2 takes the outbox over from web1 (expired): web1's rows go back, web2's own stay on their way
    await leases.take(db, "outbox", "web1:11", "web1", 11, NOW, TTL)
    await _sending(db, "theirs", "web1:11")
    later = NOW + TTL + timedelta(seconds=1)
    assert (await leases.take(db, "outbox", "web2:22", "web2", 22, later, TTL)).holder == "web2:22"
    await _sending(db, "ours", "web2:22")
    assert await _reset(db, "web2:22", later, mine=False) == 1
    assert await _states(db) == {"theirs": ("pending", "web1:11"), "ours": ("sending", "web2:22")}
    # and another instance starting now cannot take web2's row: web2 holds the lease
    assert await _reset(db, "web3:33", later) == 0


async def test_a_row_another_sender_took_is_not_marked_again(db: Database) -> None:
    # web1 hung with a row in its batch; web2 took the outbox over and sent that row meanwhile
    await _sending(db, "taken", "web2:22")
    row = await db.fetchone("SELECT id FROM outbox WHERE dedupe_key = 'taken'")
    assert row is not None
    assert await db.write(lambda conn: outbox_store.mark_sending(conn, [int(row[0])], "web1:11")) == []
    assert (await _states(db))["taken"] == ("sending", "web2:22")
    await _sending(db, "free", None)
    free = await db.fetchone("SELECT id FROM outbox WHERE dedupe_key = 'free'")
    assert free is not None
    async with db.transaction() as conn:
        await conn.execute("UPDATE outbox SET state = 'pending' WHERE id = :id", {"id": int(free[0])})
    assert await db.write(lambda conn: outbox_store.mark_sending(conn, [int(free[0])], "web1:11")) == [int(free[0])]
