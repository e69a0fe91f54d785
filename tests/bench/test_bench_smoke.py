"""Each benchmark's core runs on a tiny size, so the benchmarks do not rot. No timed assertions:
only that the harness measures what it says (every update answered, the storm's exact count)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import common
from bench.broadcast import broadcast
from bench.claim_storm import storm
from bench.scale import TARGETS, measure, pg_plans, plans, seed_waitlist
from bench.throughput import reference_run, run_floor, run_linli


@pytest.fixture(autouse=True)
def _out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "OUT", tmp_path)  # never touch bench/out or bench/RESULTS.md


async def test_throughput_core_answers_every_update() -> None:
    floor = await run_floor(30, 10, False)
    assert (floor.answered, floor.unanswered) == (30, 0)
    linli, extra = await run_linli(40, 10, False)
    assert (linli.answered, linli.unanswered) == (40, 0)
    assert extra["errors"] == 0
    assert len(linli.latencies) == 40 and all(x >= 0 for x in linli.latencies)
    run = extra["run"]  # counted to quiescence: nothing left unsent, no digest during the run
    assert run.quiet_at >= linli.last_answer and extra["outbox_unsent"] == 0 and extra["digests"] == 0
    bare = await reference_run(30, 10, False, "bare")
    assert (bare.timing.answered, bare.timing.unanswered) == (30, 0)


async def test_claim_storm_core_gives_exactly_the_places() -> None:
    r = await storm(12, 3, 0.2)
    assert r["claims"] == 3
    assert r["answered"] == r["taps"] == 12
    assert r["errors"] == []


async def test_broadcast_core_delivers_one_digest_each() -> None:
    r = await broadcast(8, 20)
    assert r["distinct"] == 8
    assert r["errors"] == []


async def test_scale_core_measures_every_call(tmp_path: Path) -> None:
    path = common.fresh_db("scale-smoke.db")
    await common.migrate_async(path)
    common.seed(path, members=50, tasks=200, open_tasks=20, ledger=500)
    seed_waitlist(path, 300, 200)
    results = await measure(path, 50, 3)
    assert set(results) == set(TARGETS)
    assert all(len(v) >= 3 for v in results.values())
    found = plans(path)
    assert len(found) == 5
    assert "waitlist_offers" in next(p for p in found if "waitlist sweep" in p)  # idle: the open offers only


def test_sweeps_core_compares_the_same_selections() -> None:
    from bench.sweeps import measure

    # measure() itself asserts that the old and new statements pick the same cards and batch, and
    # that an idle digest sweep queues nothing.
    rows, notes = measure(members=300, communities=3, tasks=200, pending=300, history=100, repeat=2, repeat_slow=1)
    assert len(rows) == 11 and any("outbox_pending_next" in n for n in notes)


async def test_city_core_idle_sweeps_and_a_digest_with_claims() -> None:
    from bench.city import add_ledger, digest_day, idle_sweeps
    from bench.sweeps import fill, settle_digests

    path = common.fresh_db("city-smoke.db")
    await common.migrate_async(path)
    fill(path, communities=3, members=60, tasks=50, pending=0, history=20)
    add_ledger(path, 200, 60, 3)
    settle_digests(path, 60)
    idle = await idle_sweeps(path, 2)  # asserts that nothing is due: no digest, card or batch
    assert set(idle) == {"digest sweep", "card job selection", "reminder sweep", "outbox next batch"}
    d = await digest_day(20, 4.0, 100, False)
    # (the bench posts placeholder cards, which the bot redraws at once: those edits may meet the
    # group's flood limit; nothing else may be refused)
    assert d["all_digests"] >= 20 and [e for e in d["errors"] if "Too Many Requests" not in e] == []
    assert d["answers"] and len(d["answers"]) == len(d["details"])
    assert all(x != float("inf") for x in d["details"])  # every claim's details reached the volunteer


def test_the_database_option_takes_sqlite_postgresql_or_both() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    common.add_database_option(parser)
    assert parser.parse_args([]).database == ["sqlite"]
    assert parser.parse_args(["--database", "postgresql"]).database == ["postgresql"]
    assert parser.parse_args(["--database", "sqlite,postgresql"]).database == ["sqlite", "postgresql"]
    for wrong in ("mysql", "sqlite,sqlite", ""):
        with pytest.raises(SystemExit):
            parser.parse_args(["--database", wrong])
    assert common.section_name("Scale", ["sqlite"]) == "Scale"
    assert common.section_name("Scale", ["sqlite", "postgresql"]) == "Scale, sqlite and postgresql"


@pytest.mark.postgres
async def test_each_core_runs_on_a_postgresql_copy() -> None:
    from tests.pg import Unavailable

    try:
        dbs = await common.Databases(["postgresql"]).__aenter__()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        r = await storm(12, 3, 0.2, database="postgresql", dbs=dbs)
        assert (r["claims"], r["answered"], r["errors"]) == (3, 12, [])
        linli, extra = await run_linli(30, 10, False, database="postgresql", dbs=dbs)
        assert (linli.answered, linli.unanswered, extra["errors"], extra["outbox_unsent"]) == (30, 0, 0, 0)
        assert extra["run"].server_cpu > 0  # the server's processes are found and counted
        path = common.fresh_db("scale-smoke-pg.db")
        await common.migrate_async(path)
        common.seed(path, members=50, tasks=200, open_tasks=20, ledger=500)
        seed_waitlist(path, 300, 200)
        url = await dbs.publish(path, "postgresql")
        assert url.startswith("postgresql://")
        assert await common.read(url, "SELECT COUNT(*) FROM ledger") == [(500,)]
        results = await measure(url, 50, 3)
        assert set(results) == set(TARGETS) and all(len(v) >= 3 for v in results.values())
        assert len(await pg_plans(url)) == 5
    finally:
        await dbs.__aexit__(None, None, None)
