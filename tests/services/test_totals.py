"""The leaderboard's running totals (migration 0080): kept by a trigger, equal to the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.services import ledger
from bot.services import points as p
from storage import migrate
from storage.db import Database, open_database
from tests.factories import make_community, make_member, returned_id

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai; the month began 16:00 UTC Nov 30


async def _credit(db: Database, member: int, amount: int, at: datetime, key: str, reason: str = "task_completed") -> None:
    async with db.transaction() as conn:
        if amount > 0:
            await ledger.credit(conn, member_id=member, amount=amount, reason=reason, key=key, now=at)
        else:
            await ledger.debit(conn, member_id=member, amount=-amount, reason=reason, key=key, now=at)


async def test_periods_follow_the_community_calendar(db: Database) -> None:
    cid = await make_community(db, NOW, timezone="Asia/Shanghai")
    a = await make_member(db, NOW, cid, tg_user_id=11, name="A", volunteer=True)
    b = await make_member(db, NOW, cid, tg_user_id=12, name="B", volunteer=True)
    # 23:30 on Monday 30 November in Shanghai (last month) and 00:30 on 1 December (this month).
    await _credit(db, a, 5, datetime(2026, 11, 30, 15, 30, tzinfo=UTC), "a1")
    await _credit(db, b, 2, datetime(2026, 11, 30, 16, 30, tzinfo=UTC), "b1")
    # Last week (Sunday 29 November in Shanghai) and spending, which never counts.
    await _credit(db, b, 4, datetime(2026, 11, 29, 12, 0, tzinfo=UTC), "b2")
    await _credit(db, b, -1, NOW - timedelta(minutes=5), "b3", reason="redeem")

    month = await p.leaderboard(db, tg_user_id=11, now=NOW, period="month")
    assert [(r.name, r.points) for r in month] == [("B", 2)]
    week = await p.leaderboard(db, tg_user_id=11, now=NOW, period="week")
    assert [(r.name, r.points, r.is_me) for r in week] == [("A", 5, True), ("B", 2, False)]
    alltime = await p.leaderboard(db, tg_user_id=11, now=NOW, period="all")
    assert [(r.name, r.points) for r in alltime] == [("B", 6), ("A", 5)]
    # A revoke is a negative earning in the period it is made; a member at zero drops off.
    await _credit(db, a, -5, NOW, "a-revoke", reason="revoke")
    week = await p.leaderboard(db, tg_user_id=11, now=NOW, period="week")
    assert [(r.name, r.points) for r in week] == [("B", 2)]
    assert await p.totals_mismatches(db) == []


async def test_organisations_and_other_communities(db: Database) -> None:
    c1 = await make_community(db, NOW)
    c2 = await make_community(db, NOW, timezone="Europe/London")
    async with db.transaction() as conn:
        org = await returned_id(await conn.execute("INSERT INTO organisations (community_id, name, invite_code,"
                                                   " created_at) VALUES (?, 'Bank', 'bank1', '2026-01-01') RETURNING id",
                                                   (c1,)))
    a = await make_member(db, NOW, c1, tg_user_id=21, name="A", volunteer=True)
    b = await make_member(db, NOW, c2, tg_user_id=22, name="B", volunteer=True)
    async with db.transaction() as conn:
        await conn.execute("UPDATE members SET organisation_id = ? WHERE id = ?", (org, a))
    await _credit(db, a, 3, NOW, "a1")
    await _credit(db, b, 7, NOW, "b1")
    orgs = await p.leaderboard(db, tg_user_id=21, now=NOW, period="all", by="org")
    assert [(r.name, r.points) for r in orgs] == [("Bank", 3)]
    people = await p.leaderboard(db, tg_user_id=21, now=NOW, period="month")
    assert [(r.name, r.points) for r in people] == [("A", 3)]        # B is in another community
    assert await p.totals_mismatches(db) == []
    # A tampered total is found.
    async with db.transaction() as conn:
        await conn.execute("UPDATE earning_totals SET pts = pts + 1 WHERE scope = 'o' AND period = 'all'")
    assert len(await p.totals_mismatches(db)) == 1


async def test_migration_adds_up_the_existing_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "old.db")
    every = migrate.load_migrations()
    monkeypatch.setattr(migrate, "load_migrations", lambda: [m for m in every if m.version < 80])
    db = await open_database(path)
    try:
        cid = await make_community(db, NOW)
        members = [await make_member(db, NOW, cid, tg_user_id=30 + i, name=f"M{i}", volunteer=True) for i in range(4)]
        for i in range(40):
            await _credit(db, members[i % 4], 1 + i % 3, NOW - timedelta(days=i), f"k{i}",
                          reason="revoke" if i == 7 else "task_completed")
        assert await db.fetchval("SELECT COUNT(*) FROM sqlite_master WHERE name = 'earning_totals'") == 0
    finally:
        await db.close()
    monkeypatch.setattr(migrate, "load_migrations", lambda: every)
    db = await open_database(path)
    try:
        assert await db.fetchval("SELECT COUNT(*) FROM earning_totals") > 0
        assert await p.totals_mismatches(db) == []
        board = await p.leaderboard(db, tg_user_id=30, now=NOW, period="all")
        expected = await db.fetchall(
            "SELECT m.display_name, SUM(l.delta) AS s FROM ledger l JOIN members m ON m.id = l.member_id"
            " GROUP BY m.id ORDER BY s DESC, m.id")
        assert [(r.name, r.points) for r in board] == [(e["display_name"], e["s"]) for e in expected]
    finally:
        await db.close()
