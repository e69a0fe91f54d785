"""Hypothesis stateful test over completion services with random (sometimes unauthorised) actors.

Dispatch's services (bot/services/tasks.py) were not available when this was written, so claim,
withdraw and cancel are minimal SQL-level steps following the documented task states.
Profiles: default "ci" (200 examples x 30 steps); HYPOTHESIS_PROFILE=slow for more.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bot.models import DomainError
from bot.services import completion as c
from storage.db import Database, open_database
from storage.timeutil import to_db
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task

settings.register_profile("ci", max_examples=200, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", max_examples=2000, stateful_step_count=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TG = [201, 202, 203, 204, 205, 206]   # resident, 3 volunteers, staff, outsider (other community)
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


class Completion(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.now = NOW
        self.db: Database = self.run(open_database(os.path.join(self.tmp.name, "s.db")))
        self.run(self._seed())

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    async def _seed(self) -> None:
        db, now = self.db, self.now
        cid = await make_community(db, now)
        other = await make_community(db, now)
        self.ids = {
            201: await make_member(db, now, cid, tg_user_id=201, resident=True),
            202: await make_member(db, now, cid, tg_user_id=202, volunteer=True),
            203: await make_member(db, now, cid, tg_user_id=203, volunteer=True),
            204: await make_member(db, now, cid, tg_user_id=204, volunteer=True),
            205: await make_member(db, now, cid, tg_user_id=205, staff=True),
            206: await make_member(db, now, other, tg_user_id=206, staff=True),
        }
        self.tasks = [
            await make_task(db, now, cid, self.ids[201], requester_id=self.ids[201], slots=1, points=3),
            await make_task(db, now, cid, self.ids[201], requester_id=self.ids[201], slots=2, points=2),
            await make_task(db, now, cid, self.ids[205], kind="event", slots=3, points=1),
        ]

    def teardown(self) -> None:
        self.run(self.db.close())
        self.loop.close()
        self.tmp.cleanup()

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now

    async def _try(self, coro) -> None:  # type: ignore[no-untyped-def]
        try:
            await coro
        except DomainError:
            pass

    # -- dispatch stand-ins (SQL level) --------------------------------------------------
    async def _claim(self, ti: int, tg: int) -> None:
        tid, mid, now = self.tasks[ti], self.ids[tg], to_db(self.tick())
        async with self.db.transaction() as conn:
            t = await (await conn.execute("SELECT * FROM tasks WHERE id = ?", (tid,))).fetchone()
            if t["state"] not in ("open",):
                return
            cl = await (await conn.execute("SELECT state FROM claims WHERE task_id = ? AND member_id = ?",
                                           (tid, mid))).fetchone()
            if cl is not None and cl["state"] != "withdrawn":
                return
            await conn.execute("INSERT INTO claims (task_id, member_id, state, claimed_at, updated_at)"
                               " VALUES (?, ?, 'active', ?, ?) ON CONFLICT (task_id, member_id)"
                               " DO UPDATE SET state = 'active'", (tid, mid, now, now))
            n = (await (await conn.execute("SELECT COUNT(*) FROM claims WHERE task_id = ? AND state IN"
                                           " ('active', 'done')", (tid,))).fetchone())[0]
            if n >= t["slots"]:
                await conn.execute("UPDATE tasks SET state = ? WHERE id = ?",
                                   ("full" if t["kind"] == "event" else "in_progress", tid))

    async def _withdraw(self, ti: int, tg: int) -> None:
        tid, mid = self.tasks[ti], self.ids[tg]
        async with self.db.transaction() as conn:
            t = await (await conn.execute("SELECT * FROM tasks WHERE id = ?", (tid,))).fetchone()
            if t["state"] not in ("open", "full", "in_progress"):
                return
            cur = await conn.execute("UPDATE claims SET state = 'withdrawn' WHERE task_id = ? AND member_id = ?"
                                     " AND state = 'active'", (tid, mid))
            if cur.rowcount:
                await conn.execute("UPDATE tasks SET state = 'open' WHERE id = ?", (tid,))

    async def _cancel(self, ti: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE tasks SET state = 'cancelled' WHERE id = ? AND state IN"
                               " ('open', 'full', 'in_progress', 'pending_review')", (self.tasks[ti],))

    # -- rules ---------------------------------------------------------------------------
    @rule(ti=st.integers(0, 2), tg=st.sampled_from(TG))
    def claim(self, ti: int, tg: int) -> None:
        self.run(self._claim(ti, tg))

    @rule(ti=st.integers(0, 2), tg=st.sampled_from(TG))
    def withdraw(self, ti: int, tg: int) -> None:
        self.run(self._withdraw(ti, tg))

    @rule(ti=st.integers(0, 2))
    def cancel(self, ti: int) -> None:
        self.run(self._cancel(ti))

    @rule(ti=st.integers(0, 2), tg=st.sampled_from(TG))
    def done(self, ti: int, tg: int) -> None:
        self.run(self._try(c.mark_done(self.db, task_id=self.tasks[ti], tg_user_id=tg, now=self.tick())))

    @rule(ti=st.integers(0, 2), tg=st.sampled_from(TG))
    def confirm(self, ti: int, tg: int) -> None:
        self.run(self._try(c.confirm(self.db, task_id=self.tasks[ti], tg_user_id=tg, now=self.tick())))

    @rule(ti=st.integers(0, 2), tg=st.sampled_from(TG))
    def not_done(self, ti: int, tg: int) -> None:
        self.run(self._try(c.not_done(self.db, task_id=self.tasks[ti], tg_user_id=tg, now=self.tick(), reason="x")))

    @rule(ti=st.integers(0, 2), tg=st.sampled_from(TG))
    def problem(self, ti: int, tg: int) -> None:
        self.run(self._try(c.report_problem(self.db, task_id=self.tasks[ti], tg_user_id=tg, now=self.tick())))

    @rule(case=st.integers(1, 4), tg=st.sampled_from(TG), how=st.sampled_from(["credit", "no_credit", "partial"]),
          pts=st.integers(-1, 4))
    def resolve(self, case: int, tg: int, how: str, pts: int) -> None:
        self.run(self._try(c.resolve_case(self.db, case_id=case, tg_user_id=tg, now=self.tick(), resolution=how,
                                          points=pts)))

    @rule(tg=st.sampled_from(TG), absent=st.sets(st.sampled_from([202, 203, 204])))
    def close_event(self, tg: int, absent: set[int]) -> None:
        self.run(self._try(c.close_event(self.db, task_id=self.tasks[2], tg_user_id=tg, now=self.tick(),
                                         absent=[self.ids[a] for a in absent])))

    @rule(lid=st.integers(1, 6), tg=st.sampled_from(TG))
    def revoke(self, lid: int, tg: int) -> None:
        self.run(self._try(c.revoke(self.db, ledger_id=lid, tg_user_id=tg, now=self.tick(), reason="check")))

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def consistent(self) -> None:
        db = self.db
        over = self.run(db.fetchval(
            "SELECT COUNT(*) FROM tasks t WHERE (SELECT COUNT(*) FROM claims c WHERE c.task_id = t.id"
            " AND c.state IN ('active', 'done', 'completed')) > t.slots"))
        assert over == 0, "claims beyond slots"
        dup = self.run(db.fetchval("SELECT COUNT(*) FROM (SELECT task_id, member_id FROM ledger WHERE delta > 0"
                                   " GROUP BY task_id, member_id HAVING COUNT(*) > 1)"))
        assert dup == 0, "credited twice"
        early = self.run(db.fetchval(
            "SELECT COUNT(*) FROM ledger l LEFT JOIN claims c ON c.task_id = l.task_id AND c.member_id = l.member_id"
            " LEFT JOIN tasks t ON t.id = l.task_id WHERE l.delta > 0"
            " AND (c.state IS NOT 'completed' OR t.state IS NOT 'completed')"))
        assert early == 0, "credited without completion"
        bad = self.run(db.fetchval(
            "SELECT COUNT(*) FROM members m WHERE m.balance < 0 OR m.balance <>"
            " (SELECT COALESCE(SUM(delta), 0) FROM ledger l WHERE l.member_id = m.id)"))
        assert bad == 0, "balance differs from the ledger"


TestCompletionStateful = Completion.TestCase
