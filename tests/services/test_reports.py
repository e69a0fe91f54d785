"""Reports: stats on a seeded database with known answers, CSV/XLSX exports, charts, periods."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from PIL import Image

from bot.report_files.charts import DPI, SIZE, cjk_font, render_charts
from bot.report_files.exports import write_exports
from bot.services import reports
from storage.db import Database
from storage.timeutil import to_db
from tests.factories import make_community, make_member, returned_id

START = datetime(2026, 5, 1, tzinfo=UTC)
END = datetime(2026, 6, 1, tzinfo=UTC)


async def _task(db: Database, cid: int, by: int, state: str, *, published: datetime | None, claim_after: int | None = None,
                done_after: int | None = None, category: str = "shopping", area: int | None = None,
                cancelled: bool = False) -> int:
    first = None if published is None or claim_after is None else to_db(published + timedelta(minutes=claim_after))
    completed = None if published is None or done_after is None else to_db(published + timedelta(minutes=done_after))
    created = to_db(published or START + timedelta(days=1))
    async with db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO tasks (community_id, created_by, category, title, state, area_id, address, created_at,"
            " published_at, first_claim_at, completed_at, cancelled_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
            (cid, by, category, "买菜 王阿姨", state, area, "3号楼 502", created,
             to_db(published) if published else None, first, completed,
             to_db(published + timedelta(hours=1)) if cancelled and published else None,
             to_db((published or START) + timedelta(hours=2))))
        return await returned_id(cur)


async def _claim(db: Database, task: int, member: int, state: str, at: datetime) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO claims (task_id, member_id, state, claimed_at, updated_at) VALUES (?,?,?,?,?)",
                           (task, member, state, to_db(at), to_db(at)))


async def _ledger(db: Database, cid: int, member: int, delta: int, reason: str, key: str, at: datetime,
                  org: int | None = None) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO ledger (community_id, member_id, delta, reason, idempotency_key,"
                           " organisation_id, created_at) VALUES (?,?,?,?,?,?,?)",
                           (cid, member, delta, reason, key, org, to_db(at)))


async def seed(db: Database) -> dict[str, int]:
    now = START + timedelta(days=2)
    a = await make_community(db, now, name="阳光社区")
    b = await make_community(db, now, name="Other")
    async with db.transaction() as conn:
        org = await returned_id(await conn.execute("INSERT INTO organisations (community_id, name, invite_code,"
                                                   " created_at) VALUES (?,?,?,?) RETURNING id",
                                                   (a, "红星小学", "org1", to_db(now))))
        area = await returned_id(await conn.execute("INSERT INTO areas (community_id, name) VALUES (?,?) RETURNING id",
                                                    (a, "东区")))
    staff = await make_member(db, now, a, staff=True, name="Staff A")
    v1 = await make_member(db, now, a, volunteer=True, name="李明", phone="13800000000", organisation_id=org)
    v2 = await make_member(db, now, a, volunteer=True, name="Zhang", reachable=0)
    await make_member(db, START - timedelta(days=5), a, resident=True, name="Old")  # not new this month
    bm = await make_member(db, now, b, volunteer=True, name="B person")
    p = START + timedelta(days=3)
    t1 = await _task(db, a, staff, "completed", published=p, claim_after=10, done_after=100, area=area)
    t2 = await _task(db, a, staff, "completed", published=p, claim_after=30, done_after=200, category="escort")
    t3 = await _task(db, a, staff, "cancelled", published=p, cancelled=True)
    await _task(db, a, staff, "open", published=p, claim_after=20, area=area)
    await _task(db, a, staff, "expired", published=p)
    await _task(db, a, staff, "completed", published=START - timedelta(days=10), claim_after=5,
                done_after=10)  # outside the month
    bt = await _task(db, b, bm, "completed", published=p, claim_after=1, done_after=2)
    await _claim(db, t1, v1, "completed", p + timedelta(minutes=10))
    await _claim(db, t2, v2, "no_show", p + timedelta(minutes=30))
    async with db.transaction() as conn:
        for task, who, when in ((t2, v2, p), (bt, bm, p), (t1, v2, START - timedelta(days=2))):  # B's, and last month's
            await conn.execute("INSERT INTO no_shows (community_id, task_id, member_id, created_at)"
                               " SELECT community_id, ?, ?, ? FROM tasks WHERE id = ?", (task, who, to_db(when), task))
    await _claim(db, t3, v1, "withdrawn", p + timedelta(minutes=5))
    await _claim(db, bt, bm, "completed", p)
    await _ledger(db, a, v1, 5, "task_completed", "k1", p, org)
    await _ledger(db, a, v2, 3, "task_completed", "k2", p)
    await _ledger(db, a, v1, -2, "redeem", "k3", p)
    await _ledger(db, a, v1, 2, "refund", "k4", p)
    await _ledger(db, b, bm, 50, "task_completed", "k5", p)
    return {"a": a, "b": b, "staff": staff, "v1": v1, "v2": v2}


async def test_stats_known_answers(db: Database) -> None:
    ids = await seed(db)
    st = await reports.compute_stats(db, community_id=ids["a"], start=START, end=END)
    assert st.counts == {"requested": 5, "published": 5, "claimed": 3, "completed": 2, "cancelled": 1, "expired": 1}
    assert st.median_claim_minutes == 20
    assert st.median_complete_minutes == 150
    assert st.active_volunteers == 2
    assert st.new_members == 3  # staff, v1, v2
    assert st.no_show_rate == 0.5
    assert st.no_shows == [("Zhang", 1)]
    assert st.points_credited == 8
    assert st.points_redeemed == 2
    assert st.top_categories == [("shopping", 4), ("escort", 1)]
    assert st.top_areas == [("东区", 2)]
    assert st.top_volunteers == [("李明", 5), ("Zhang", 3)]
    assert st.top_organisations == [("红星小学", 5)]
    assert st.unreachable_members == 1
    # Per-day series: every task requested in the period is counted once, under its current state.
    assert sum(sum(by_state.values()) for by_state in st.daily_states.values()) == st.counts["requested"]
    assert sum(d.get("completed", 0) for d in st.daily_states.values()) == st.counts["completed"]
    everyone = await reports.compute_stats(db, community_id=None, start=START, end=END)
    assert everyone.points_credited == 58 and everyone.counts["completed"] == 3


async def test_exports_csv_and_xlsx(db: Database, tmp_path: Path) -> None:
    ids = await seed(db)
    paths = await write_exports(db, community_id=ids["a"], start=START, end=END, with_phone=False, directory=tmp_path)
    names = [p.name for p in paths]
    assert names[-1] == "linli.xlsx" and "members.csv" in names
    raw = (tmp_path / "tasks.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:4] == ["id", "community_id", "kind", "category"]
    assert len(rows) == 1 + 5 and rows[1][4] == "买菜 王阿姨"
    assert "address" not in rows[0]
    members = list(csv.reader((tmp_path / "members.csv").open(encoding="utf-8-sig")))
    assert "phone" not in members[0] and len(members) == 1 + 4
    assert "13800000000" not in (tmp_path / "members.csv").read_text(encoding="utf-8-sig")
    wb = load_workbook(tmp_path / "linli.xlsx", read_only=True)
    assert wb.sheetnames == ["tasks", "claims", "ledger", "vouchers", "members", "organisations"]
    sheet = list(wb["tasks"].iter_rows(values_only=True))
    assert len(sheet) == 6 and sheet[1][4] == "买菜 王阿姨"
    assert len(list(wb["ledger"].iter_rows(values_only=True))) == 1 + 4
    assert list(wb["organisations"].iter_rows(values_only=True))[1][2] == "红星小学"
    # super-admin: phones included; small chunks still give every row exactly once
    out2 = tmp_path / "admin"
    out2.mkdir()
    await write_exports(db, community_id=ids["a"], start=START, end=END, with_phone=True, directory=out2)
    members = list(csv.reader((out2 / "members.csv").open(encoding="utf-8-sig")))
    assert "phone" in members[0] and any("13800000000" in row for row in members)
    rows_iter = [r async for r in reports.iter_export(db, "claims", community_id=None, start=START, end=END,
                                                     with_phone=False, chunk=1)]
    assert len(rows_iter) == 4 and len({r[0] for r in rows_iter}) == 4


def _assert_drawn(pngs: list[bytes]) -> None:
    assert len(pngs) == 4
    for data in pngs:
        img = Image.open(io.BytesIO(data))
        assert img.format == "PNG" and img.size == (int(SIZE[0] * DPI), int(SIZE[1] * DPI))
        lo, hi = img.convert("L").getextrema()
        assert lo < 100 and hi > 200  # something dark was drawn on white


async def test_charts_png_english_fallback(db: Database) -> None:
    """Without a CJK font (a fresh machine) a Chinese report falls back to English labels."""
    ids = await seed(db)
    st = await reports.compute_stats(db, community_id=ids["a"], start=START, end=END)
    _assert_drawn(render_charts(st, chinese=True, allow_cjk=False))


@pytest.mark.skipif(cjk_font() is None, reason="no CJK font installed (apt-get install fonts-noto-cjk; .ci/run does):"
                                              " the Chinese labels are not drawn here, the English fallback is tested")
async def test_charts_png_chinese_labels(db: Database) -> None:
    ids = await seed(db)
    st = await reports.compute_stats(db, community_id=ids["a"], start=START, end=END)
    _assert_drawn(render_charts(st, chinese=True, allow_cjk=True))


def test_parse_period() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 5, 14, 3, 0, tzinfo=UTC)  # Thursday
    s, e = reports.parse_period("week", now, tz)  # type: ignore[misc]
    assert s == datetime(2026, 5, 11, tzinfo=tz) and e - s == timedelta(days=7)
    assert reports.parse_period("2026-12", now, tz) == (datetime(2026, 12, 1, tzinfo=tz), datetime(2027, 1, 1, tzinfo=tz))
    assert reports.parse_period("2026-05-01..2026-05-03", now, tz) == (datetime(2026, 5, 1, tzinfo=tz),
                                                                       datetime(2026, 5, 4, tzinfo=tz))
    for bad in ("bogus", "2026-13", "2026-05-03..2026-05-01", "1800-01"):
        assert reports.parse_period(bad, now, tz) is None


def test_cli_report_and_export(tmp_path: Path, monkeypatch: object, capsys: object) -> None:
    import asyncio

    from bot.cli import main
    from storage.db import open_database

    path = tmp_path / "cli.db"

    async def prepare() -> None:
        db = await open_database(f"sqlite:///{path}")
        try:
            await seed(db)
        finally:
            await db.close()

    asyncio.run(prepare())
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")  # type: ignore[attr-defined]
    monkeypatch.delenv("BOT_TOKEN", raising=False)  # type: ignore[attr-defined]
    assert main(["report", "2026-05", "--lang", "en", "--out", str(tmp_path / "charts")]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "Tasks requested: 6" in out  # both communities
    assert len(list((tmp_path / "charts").glob("*.png"))) == 4
    assert main(["export", "2026-05", "--community", "1", "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "linli.xlsx").exists()
    assert main(["export", "nonsense", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err.count("\n") == 1 and "Traceback" not in err and "unknown period" in err


async def test_fallback_draws_no_missing_glyphs(db: Database) -> None:
    import warnings

    ids = await seed(db)
    st = await reports.compute_stats(db, community_id=ids["a"], start=START, end=END)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render_charts(st, chinese=True, allow_cjk=False)
    assert not [w for w in caught if "missing from font" in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render_charts(st, chinese=True, allow_cjk=True)
    assert not [w for w in caught if "missing from font" in str(w.message)]


def test_empty_charts_say_so_on_a_sane_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    from bot.report_files.charts import CHART_NAMES

    drawn: list[Figure] = []
    save = Figure.savefig

    def record(self: Figure, *args: object, **kwargs: object) -> None:
        drawn.append(self)
        save(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Figure, "savefig", record)
    empty = reports.Stats(community_id=None, start=START, end=END)
    pngs = render_charts(empty, chinese=False)
    assert len(pngs) == len(drawn) == len(CHART_NAMES) == 4
    for fig in drawn:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.texts] == ["no data"]
        assert ax.get_xlim()[0] >= 0 and ax.get_ylim()[0] >= 0  # not an axis from -0.04 to 0.04
        assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []


def test_cli_report_heading_is_inclusive_and_charts_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main
    from bot.report_files.charts import CHART_NAMES

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'r.db'}")
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["migrate"]) == 0
    assert main(["report", "2026-12", "--lang", "en", "--out", str(tmp_path / "charts")]) == 0
    out = capsys.readouterr().out
    assert "2026-12-01 to 2026-12-31" in out and "2027-01-01" not in out
    assert sorted(p.stem for p in (tmp_path / "charts").glob("*.png")) == sorted(CHART_NAMES)


async def test_the_per_day_series_counts_local_days_not_utc_days(db: Database) -> None:
    """07:30 in Shanghai is 23:30 UTC the evening before: the request counts on its own morning."""
    from zoneinfo import ZoneInfo

    from tests.factories import make_community, make_member
    from tests.factories_tasks import make_task

    cid = await make_community(db, START)
    staff = await make_member(db, START, cid, tg_user_id=501, display_name="Staff")
    for at in (datetime(2026, 5, 10, 23, 30, tzinfo=UTC), datetime(2026, 5, 11, 1, 0, tzinfo=UTC),
               datetime(2026, 5, 11, 16, 30, tzinfo=UTC)):  # the last: 00:30 on the 12th in Shanghai
        await make_task(db, at, cid, staff)
    shanghai = await reports.compute_stats(db, community_id=cid, start=START, end=END, tz=ZoneInfo("Asia/Shanghai"))
    assert shanghai.daily_states == {"2026-05-11": {"open": 2}, "2026-05-12": {"open": 1}}
    utc = await reports.compute_stats(db, community_id=cid, start=START, end=END)
    assert utc.daily_states == {"2026-05-10": {"open": 1}, "2026-05-11": {"open": 2}}


async def test_a_report_reads_its_days_in_the_communitys_own_time_zone(db: Database) -> None:
    """/stats, /report and `linli report` count a community's days in its zone, not the bot's default."""
    from zoneinfo import ZoneInfo

    from tests.factories import make_community

    shanghai = ZoneInfo("Asia/Shanghai")
    berlin = await make_community(db, START, timezone="Europe/Berlin")
    assert await reports.zone(db, berlin, shanghai) == ZoneInfo("Europe/Berlin")
    assert await reports.zone(db, None, shanghai) == shanghai  # all communities: the bot's own
    async with db.transaction() as conn:
        await conn.execute("UPDATE communities SET timezone = 'Nowhere/Atlantis' WHERE id = :id", {"id": berlin})
    assert await reports.zone(db, berlin, shanghai) == shanghai
