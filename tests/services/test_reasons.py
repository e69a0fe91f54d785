"""Reasons after "Not done" / "Problem", and half points for a problem case."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.models import DomainError, InvalidInput
from bot.services import completion
from storage.db import Database
from tests.factories import make_community, make_member
from tests.factories_tasks import make_claim, make_task


async def _done_task(db: Database, now: datetime, points: int = 4) -> tuple[int, int, int, int]:
    cid = await make_community(db, now)
    res = await make_member(db, now, cid, tg_user_id=11, resident=True)
    vol = await make_member(db, now, cid, tg_user_id=12, volunteer=True)
    staff = await make_member(db, now, cid, tg_user_id=13, staff=True)
    tid = await make_task(db, now, cid, res, requester_id=res, points=points)
    await make_claim(db, now, tid, vol)
    await completion.mark_done(db, task_id=tid, tg_user_id=12, now=now)
    return tid, res, vol, staff


async def test_not_done_reason_reaches_the_volunteer(db: Database, now: datetime) -> None:
    tid, _, vol, _ = await _done_task(db, now)
    await completion.not_done(db, task_id=tid, tg_user_id=11, now=now)
    assert await completion.add_reason(db, task_id=tid, tg_user_id=11, now=now, kind="n", reason="No rice") == 1
    row = await db.fetchone("SELECT member_id, payload FROM outbox WHERE kind = 'completion_reason_volunteer'")
    assert row["member_id"] == vol and "No rice" in row["payload"]
    with pytest.raises(DomainError):  # only the resident (or staff) may add one
        await completion.add_reason(db, task_id=tid, tg_user_id=12, now=now, kind="n", reason="Lies")
    with pytest.raises(InvalidInput):
        await completion.add_reason(db, task_id=tid, tg_user_id=11, now=now, kind="n", reason="   ")


async def test_problem_reason_on_the_case_and_half_points(db: Database, now: datetime) -> None:
    tid, _, vol, _ = await _done_task(db, now, points=4)
    out = await completion.report_problem(db, task_id=tid, tg_user_id=11, now=now)
    await completion.add_reason(db, task_id=tid, tg_user_id=11, now=now, kind="p", reason="Came very late")
    assert await db.fetchval("SELECT reason FROM cases WHERE id = ?", (out.case_id,)) == "Came very late"
    await completion.resolve_case(db, case_id=int(out.case_id or 0), tg_user_id=13, now=now, resolution="partial", points=2)
    assert await db.fetchval("SELECT balance FROM members WHERE id = ?", (vol,)) == 2
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (tid,)) == "completed"


async def test_month_top_granted_once_by_the_sweep(db: Database, now: datetime) -> None:
    from datetime import timedelta

    from bot.services import ledger, points

    cid = await make_community(db, now)
    a = await make_member(db, now, cid, volunteer=True)
    b = await make_member(db, now, cid, volunteer=True)
    last_month = now - timedelta(days=31)
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=a, amount=2, reason="task_completed", key="k1", now=last_month)
        await ledger.credit(conn, member_id=b, amount=5, reason="task_completed", key="k2", now=last_month)
    assert await points.sweep_month_top(db, now) == 1
    assert await points.sweep_month_top(db, now) == 0
    rows = await db.fetchall("SELECT member_id FROM honours WHERE code LIKE 'top_month:%'")
    assert [r[0] for r in rows] == [b]


async def test_half_points_button_only_when_there_is_a_half(db: Database, now: datetime) -> None:
    import bot.conversations.completion  # noqa: F401  (registers the renderers)
    from bot.i18n import translator
    from bot.renderers import RENDERERS, RenderContext
    from tests.factories import make_community, make_member
    from tests.factories_tasks import make_task

    cid = await make_community(db, now)
    staff = await make_member(db, now, cid, staff=True)
    rc = RenderContext(db, translator("en"), "en", 1, staff, "bot")
    for pts, expected in ((1, ["c", "x"]), (4, ["c", "h", "x"])):
        tid = await make_task(db, now, cid, staff, points=pts)
        out = await RENDERERS["completion_case_staff"].render(rc, {"case_id": 9, "task_id": tid})
        assert out is not None and out.reply_markup is not None
        assert [b.callback_data.split(":")[-1] for b in out.reply_markup.inline_keyboard[0]] == expected
