"""The ``linli`` command with a PostgreSQL DATABASE_URL, through real processes: migrate (Alembic),
doctor, backup (pg_dump), migrate-data (an SQLite database copied in and compared row by row), and
inbox and report through the storage layer (``run``: tests/postgres/test_bot_on_pg.py). The
password is never printed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from bench.common import migrate_async, seed
from storage import pg
from storage.periods import register
from tests.app.test_cli import Result, linli, one_line_failure
from tests.pg import PASSWORD

NOW = "2026-05-04T09:00:00.000000Z"


def no_password(result: Result) -> Result:
    assert PASSWORD not in result.text and "Test-pw" not in result.text, result.text
    result.assert_clean()
    return result


async def test_migrate_builds_the_schema_once_and_says_so(tmp_path: Path, pg_url: str) -> None:
    first = no_password(await linli(["migrate"], tmp_path, DATABASE_URL=pg_url))
    assert first.code == 0, first.err
    assert f"database {pg.shown_url(pg_url)}: schema revision none -> {pg.head_revision()}" in first.out
    again = no_password(await linli(["migrate"], tmp_path, DATABASE_URL=pg_url))
    assert again.code == 0 and "nothing to do" in again.out


async def test_doctor_reports_version_revision_and_the_poller(tmp_path: Path, pg_url: str) -> None:
    empty = no_password(await linli(["doctor"], tmp_path, DATABASE_URL=pg_url))
    assert empty.code == 1 and "database: EMPTY (postgresql://postgres:***@" in empty.out
    await pg.upgrade(pg_url)
    ready = no_password(await linli(["doctor"], tmp_path, DATABASE_URL=pg_url))
    assert ready.code == 1  # the Bot API is not reachable from the tests
    assert f"database: ok ({pg.shown_url(pg_url)}, PostgreSQL 1" in ready.out
    assert f"schema revision {pg.head_revision()})" in ready.out
    assert "polling: nobody (no instance has polled this database)" in ready.out
    assert "NOT YET" not in ready.out
    assert "lease: nobody (no instance has run the timed jobs on this database)" in ready.out
    conn = await asyncpg.connect(pg_url)
    try:   # an instance holding the outbox (the statement of storage/leases.py, as the bot writes it)
        await conn.execute("INSERT INTO leases (name, holder, host, pid, taken_at, expires_at) VALUES"
                           " ('outbox', 'web1:8443', 'web1', 4242, '2026-05-04T09:00:00.000000Z', '2999-01-01T00:00:00.000000Z')")
    finally:
        await conn.close()
    held = no_password(await linli(["doctor"], tmp_path, DATABASE_URL=pg_url))
    assert "lease: outbox job: instance web1:8443 (host web1, pid 4242, renewed to 2999-01-01 00:00:00 UTC)" in held.out
    wrong = no_password(await linli(["doctor"], tmp_path, DATABASE_URL=pg_url.replace(PASSWORD, "nope-nope")))
    assert "database: FAILED (postgresql://postgres:***@" in wrong.out and "password" in wrong.out


@pytest.mark.parametrize("command", [["report"], ["export", "--out", "out"]])
async def test_a_report_of_a_database_without_the_schema_says_to_migrate_in_one_line(
        tmp_path: Path, pg_url: str, command: list[str]) -> None:
    line = one_line_failure(no_password(await linli(command, tmp_path, DATABASE_URL=pg_url)),
                            "DATABASE_URL", "create it with `linli migrate`")
    assert "postgresql://postgres:***@127.0.0.1" in line


async def test_inbox_and_report_read_through_the_storage_layer(tmp_path: Path, pg_url: str) -> None:
    await pg.upgrade(pg_url)
    inbox = no_password(await linli(["inbox"], tmp_path, DATABASE_URL=pg_url))
    assert inbox.code == 0 and "waiting: 0" in inbox.out, inbox.text
    report = no_password(await linli(["report", "--lang", "en"], tmp_path, DATABASE_URL=pg_url))
    assert report.code == 0 and "Report" in report.out, report.text
    export = no_password(await linli(["export", "--out", str(tmp_path / "csv")], tmp_path, DATABASE_URL=pg_url))
    assert export.code == 0 and "wrote 7 files" in export.out, export.text


async def test_backup_runs_pg_dump_or_prints_its_command(tmp_path: Path, pg_url: str) -> None:
    await pg.upgrade(pg_url)
    dump = tmp_path / "linli.dump"
    done = no_password(await linli(["backup", str(dump)], tmp_path, DATABASE_URL=pg_url))
    if done.code == 0:
        assert f"backup written to {dump}" in done.out and dump.stat().st_size > 1000
    else:  # a pg_dump older than the server refuses; it still must say so in one line
        one_line_failure(done, "pg_dump failed")
    bare = tmp_path / "no-tools"
    bare.mkdir()
    line = one_line_failure(no_password(await linli(["backup", str(dump)], tmp_path, DATABASE_URL=pg_url, PATH=str(bare))),
                            "pg_dump was not found")
    where = pg.Target.parse(pg_url)
    assert (f"PGPASSWORD=<the password> pg_dump --format=custom --file={dump} --host=127.0.0.1 --port={where.port}"
            f" --username=postgres --no-password {where.database}") in line


# -- migrate-data ------------------------------------------------------------------------------------

def seeded_sqlite(path: Path) -> None:
    """A realistic community (the benchmarks' seed) plus a second one in another time zone and a
    row in every table the seed leaves empty."""
    asyncio.run(migrate_async(str(path)))
    seed(str(path), members=120, tasks=200, open_tasks=15, ledger=3000)
    con = sqlite3.connect(path, isolation_level=None)
    register(con)
    con.executescript(f"""
        BEGIN;
        INSERT INTO communities (id, name, join_code, timezone, created_at) VALUES (2, 'Elm St', 'j2', 'America/New_York', '{NOW}');
        INSERT INTO members (id, tg_user_id, community_id, created_at, updated_at) VALUES (500, 7500, 2, '{NOW}', '{NOW}');
        INSERT INTO ledger (community_id, member_id, delta, reason, idempotency_key, created_at)
            VALUES (2, 500, 9, 'task_completed', 'ny:1', '2026-05-01T02:00:00.000000Z'),
                   (2, 500, -4, 'redeem', 'ny:2', '2026-05-02T02:00:00.000000Z'),
                   (1, 1, 3, 'revoke', 'rv:1', '2026-05-03T02:00:00.000000Z');
        INSERT INTO ledger (community_id, member_id, delta, reason, note, idempotency_key, created_at)
            VALUES (1, 2, 2, 'task_completed', 'typed by staff', 'note:1', '{NOW}');
        UPDATE ledger SET note = NULL WHERE idempotency_key = 'note:1';
        INSERT INTO merchants (id, community_id, name, member_id, invite_code, created_at) VALUES (1, 1, 'Shop', 3, 'm1', '{NOW}');
        INSERT INTO rewards (id, community_id, name_zh, name_en, kind, cost, stock, merchant_id, created_at)
            VALUES (1, 1, '米', 'Rice', 'goods', 2, 10, 1, '{NOW}');
        INSERT INTO vouchers (community_id, reward_id, member_id, code, cost, state, issued_at, expires_at, request_key)
            VALUES (1, 1, 4, 'V1', 2, 'issued', '{NOW}', '{NOW}', 'rq1');
        INSERT INTO outbox (dedupe_key, chat_id, member_id, kind, payload, not_before, created_at)
            VALUES ('o1', 1001, 4, 'digest_volunteer', '{{"a": "邻里"}}', '{NOW}', '{NOW}');
        INSERT INTO audit_log (community_id, actor_id, action, details, created_at) VALUES (1, 1, 'setup', '{{}}', '{NOW}');
        INSERT INTO dialogs (tg_user_id, flow, step, data, updated_at, version) VALUES (7500, 'request', 'when', '{{}}', '{NOW}', 3);
        INSERT INTO processed_updates (update_key, processed_at) VALUES ('u1', '{NOW}');
        INSERT INTO kv (key, value) VALUES ('bot_username', 'linli_bot');
        INSERT INTO task_submissions (submit_key, task_id, created_at) VALUES ('s1', 1, '{NOW}');
        INSERT INTO cases (community_id, task_id, opened_by, created_at) VALUES (1, 2, 1, '{NOW}');
        INSERT INTO no_shows (community_id, task_id, member_id, created_at) VALUES (1, 2, 5, '{NOW}');
        INSERT INTO honours (community_id, member_id, code, created_at) VALUES (1, 1, 'first_task', '{NOW}');
        INSERT INTO checkin_codes (task_id, token, short_code, opened_by, opened_at) VALUES (2, 't1', 'ABCDEF', 1, '{NOW}');
        INSERT INTO checkins (task_id, member_id, via, checked_in_at) VALUES (2, 5, 'qr', '{NOW}');
        INSERT INTO event_series (id, community_id, created_by, category, slots, weekdays, start_time, minutes, first_day,
                                  last_day, created_at, updated_at)
            VALUES (1, 1, 1, 'event', 5, 32, '09:00', 120, '2026-05-09', '2026-06-27', '{NOW}', '{NOW}');
        INSERT INTO series_occurrences (series_id, day, task_id, posted_at) VALUES (1, '2026-05-09', 2, '{NOW}');
        INSERT INTO waitlist (community_id, task_id, member_id, joined_at, updated_at) VALUES (1, 2, 5, '{NOW}', '{NOW}');
        INSERT INTO late_withdrawals (community_id, task_id, member_id, starts_at, created_at) VALUES (1, 2, 5, '{NOW}', '{NOW}');
        INSERT INTO leases (name, holder, host, pid, taken_at, expires_at) VALUES ('poll', 'h1', 'box', 42, '{NOW}', '{NOW}');
        INSERT INTO send_budget (chat_id, window_start, n) VALUES (-1001234567890, 1777867200, 2);
        INSERT INTO sent_notifications (key, created_at) VALUES ('digest:group:1:2026-05-04', '{NOW}');
        INSERT INTO voucher_verify_attempts (actor_id, ok, created_at) VALUES (3, 1, '{NOW}');
        INSERT INTO inbox (update_id, user_id, lane, digest, payload, status, received_at)
            VALUES (9001, 7500, 'm:7500', 'd', '{{}}', 'waiting', '{NOW}');
        COMMIT;""")
    con.close()


async def _pg_rows(url: str, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(columns)}")]
    finally:
        await conn.close()


async def test_migrate_data_copies_every_row_and_checks_the_balances(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "linli.db"
    await asyncio.to_thread(seeded_sqlite, source)
    await pg.upgrade(pg_url)
    done = no_password(await linli(["migrate-data", "--from", f"sqlite:///{source}", "--to", pg_url], tmp_path))
    assert done.code == 0, done.err
    assert f"copied {source} -> {pg.shown_url(pg_url)}" in done.out
    assert "  ledger                       3,004" in done.out and "balances equal their ledger sums" in done.out

    con = sqlite3.connect(source)
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                        " AND name NOT IN ('schema_migrations', 'sqlite_sequence')")]
    assert len(tables) > 20
    for table in tables:
        columns = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        lite = con.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(columns)}").fetchall()
        assert lite, f"the seed left {table} empty"
        assert await _pg_rows(pg_url, table, columns) == lite, table
    con.close()

    conn = await asyncpg.connect(pg_url)
    try:  # the ids go on after the copied ones
        new_id = await conn.fetchval(f"INSERT INTO members (created_at, updated_at) VALUES ('{NOW}', '{NOW}') RETURNING id")
        assert new_id == 501
        before = await conn.fetchval("SELECT balance FROM members WHERE id = 1")
        await conn.execute("INSERT INTO ledger (community_id, member_id, delta, reason, idempotency_key, created_at)"
                           f" VALUES (1, 1, 5, 'task_completed', 'after-the-copy', '{NOW}')")
        assert await conn.fetchval("SELECT balance FROM members WHERE id = 1") == before + 5  # the triggers work again
    finally:
        await conn.close()

    again = no_password(await linli(["migrate-data", "--from", f"sqlite:///{source}", "--to", pg_url], tmp_path))
    one_line_failure(again, "nothing copied", "not empty", "has rows")


async def test_migrate_data_refuses_a_target_without_the_schema_and_a_source_out_of_date(
        tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "linli.db"
    await migrate_async(str(source))
    args = ["migrate-data", "--from", f"sqlite:///{source}", "--to", pg_url]
    one_line_failure(no_password(await linli(args, tmp_path)), "nothing copied", "schema revision none",
                     f"expects {pg.head_revision()}", "linli migrate")
    await pg.upgrade(pg_url)
    with sqlite3.connect(source) as con:
        con.execute("DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)")
    one_line_failure(no_password(await linli(args, tmp_path)), "nothing copied", "not at the newest schema")
    one_line_failure(no_password(await linli(["migrate-data", "--from", f"sqlite:///{tmp_path}/none.db", "--to", pg_url],
                                             tmp_path)), "--from", "no SQLite database")
    wrong = pg_url.replace(PASSWORD, "nope-nope")
    await migrate_async(str(tmp_path / "fresh.db"))
    one_line_failure(no_password(await linli(["migrate-data", "--from", f"sqlite:///{tmp_path}/fresh.db", "--to", wrong],
                                             tmp_path)), "nothing copied", "password")


@pytest.mark.parametrize(("damage", "complaint"), [
    ("UPDATE members SET balance = balance + 1 WHERE id = 7", "1 member balance(s) differ from their ledger sum"),
    ("UPDATE earning_totals SET pts = pts + 1 WHERE subject_id = 7 AND period = 'all'", "running total(s) differ"),
])
async def test_a_copy_that_does_not_verify_leaves_the_target_empty(
        tmp_path: Path, pg_url: str, damage: str, complaint: str) -> None:
    source = tmp_path / "linli.db"
    await asyncio.to_thread(seeded_sqlite, source)
    with sqlite3.connect(source) as con:  # what the SQLite database says disagrees with its ledger
        con.execute(damage)
    await pg.upgrade(pg_url)
    failed = await linli(["migrate-data", "--from", f"sqlite:///{source}", "--to", pg_url], tmp_path)
    one_line_failure(no_password(failed), "nothing copied", complaint)
    for table in ("members", "ledger", "tasks", "earning_totals"):
        assert await _pg_rows(pg_url, table, ["count(*)"]) == [(0,)]
    conn = await asyncpg.connect(pg_url)
    try:  # the ledger's triggers are on again
        assert await conn.fetchval("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ledger'::regclass"
                                   " AND NOT tgisinternal AND tgenabled = 'O'") == 5
    finally:
        await conn.close()


@pytest.mark.parametrize("command", [["migrate"], ["doctor"], ["migrate-data", "--from", "sqlite:///x.db", "--to", "URL"]])
async def test_no_server_there_is_one_line_without_the_password(tmp_path: Path, command: list[str]) -> None:
    url = f"postgresql://linli:{PASSWORD}@127.0.0.1:9/linli"  # nothing listens on the discard port
    if command[0] == "migrate-data":
        await migrate_async(str(tmp_path / "x.db"))
        command = [c.replace("URL", url) for c in command]
    result = no_password(await linli(command, tmp_path, DATABASE_URL=url))
    if command[0] == "doctor":
        assert "database: FAILED (postgresql://linli:***@127.0.0.1:9/linli:" in result.out
    else:
        one_line_failure(result, "postgresql://linli:***@127.0.0.1:9/linli" if command[0] == "migrate" else "nothing copied")
