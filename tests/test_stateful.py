"""Hypothesis stateful test over completion services with random (sometimes unauthorised) actors.

Claim, withdraw and cancel go through bot/services/tasks.py; the rest through completion.py.
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
from bot.services import points as p
from bot.services import tasks as t
from storage.db import Database, open_database
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task

settings.register_profile("ci", max_examples=200, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", max_examples=2000, stateful_step_count=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TG = [201, 202, 203, 204, 205, 206]   # resident, 3 volunteers, staff, outsider (other community)
VOLUNTEERS = [202, 203, 204]
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

    # -- rules ---------------------------------------------------------------------------
    # Dispatch steps go through bot/services/tasks.py, as the bot does (member ids, not tg ids).
    @rule(ti=st.integers(0, 2), tg=st.sampled_from(TG))
    def claim(self, ti: int, tg: int) -> None:
        self.run(self._try(t.claim(self.db, self.tick(), self.ids[tg], self.tasks[ti])))

    @rule(ti=st.integers(0, 2), tg=st.sampled_from(TG))
    def withdraw(self, ti: int, tg: int) -> None:
        self.run(self._try(t.withdraw(self.db, self.tick(), self.ids[tg], self.tasks[ti])))

    @rule(ti=st.integers(0, 2), tg=st.sampled_from(TG))
    def cancel(self, ti: int, tg: int) -> None:
        self.run(self._try(t.cancel(self.db, self.tick(), self.ids[tg], self.tasks[ti])))

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

    # The same steps by people who may take them, so that runs reach completion and credit often
    # (with actors drawn from everyone, few runs got that far).
    @rule(ti=st.integers(0, 2), tg=st.sampled_from(VOLUNTEERS))
    def volunteer_claims(self, ti: int, tg: int) -> None:
        self.claim(ti, tg)

    @rule(ti=st.integers(0, 2), tg=st.sampled_from(VOLUNTEERS))
    def volunteer_done(self, ti: int, tg: int) -> None:
        self.done(ti, tg)

    @rule(ti=st.integers(0, 1), tg=st.sampled_from([201, 205]))
    def requester_confirms(self, ti: int, tg: int) -> None:
        self.confirm(ti, tg)

    @rule(ti=st.integers(0, 1), tg=st.sampled_from(VOLUNTEERS), confirmer=st.sampled_from([201, 205]))
    def volunteer_helps(self, ti: int, tg: int, confirmer: int) -> None:
        """Claim, Done and Yes in a row (each may be refused by the state the earlier steps left)."""
        self.claim(ti, tg)
        self.done(ti, tg)
        self.confirm(ti, confirmer)

    @rule(absent=st.sets(st.sampled_from(VOLUNTEERS)))
    def staff_closes_event(self, absent: set[int]) -> None:
        self.close_event(205, absent)

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
        assert self.run(p.totals_mismatches(db)) == [], "leaderboard totals differ from the ledger"


TestCompletionStateful = Completion.TestCase
