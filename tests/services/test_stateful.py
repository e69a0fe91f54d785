"""Hypothesis stateful test over dispatch and completion services, with valid and unauthorised actors.

Claim, withdraw, cancel and new tasks go through bot/services/tasks.py; points expiring through
expiry.py (with a ledger replay, oldest points first, after every step); opening check-in and
checking in through checkin.py; joining and leaving a full event's waiting list, keeping or declining
a place given from it and letting the offer lapse through waitlist.py (invariants: never more places
held than the event has, a promotion never skips someone ahead, no place left free while someone
waits, nobody left waiting on a cancelled event); staff taking a volunteer off an event or marking
them not coming through roster.py (the place goes to the first one waiting, a second press changes
nothing, only "not coming" is a no-show); the rest through completion.py. Most rules aim at an object the
current state allows (a rule is enabled only when one exists), usually with the actor who may act
on it and now and then with someone drawn from everyone; one rule takes any actor and any object
as drawn (mostly refused: the authorisation and state checks). Every operation is counted as accepted or refused and the tally is printed
(``-s``; ``--hypothesis-show-statistics`` shows it per test case); a run in which fewer than
30 % are accepted fails (one that refuses nearly everything proves little). Before this change
the test accepted 8 % of its operations.

Profiles: "ci" (200 examples x 30 steps) in the default run; the ``soak`` run has the slow
profile (1,000 examples x 50 steps; LINLI_SOAK_SCALE=short: 150 x 50). HYPOTHESIS_PROFILE=slow
makes the default test use the slow profile too.

Speed: one in-memory database for the whole run, seeded once; each example starts from a copy of
the seeded state (SQLite's backup API, well under a millisecond) instead of a new file and every
migration; invariants are checked only after a step that changed something.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bot.models import DomainError
from bot.services import checkin as ci
from bot.services import completion as c
from bot.services import expiry as x
from bot.services import points as p
from bot.services import roster as ro
from bot.services import tasks as t
from bot.services import waitlist as wl
from storage.db import Database, open_database
from storage.timeutil import from_db, to_db
from tests.both import drop_database, fresh_database
from tests.factories import make_community, make_member
from tests.factories_tasks import make_task
from tests.pg import PgServer

settings.register_profile("ci", max_examples=200, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci-pg", max_examples=25, stateful_step_count=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", max_examples=1000, stateful_step_count=50, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow-short", max_examples=150, stateful_step_count=50, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])

TG = [201, 202, 203, 204, 205, 206, 207, 208]   # resident, 3 volunteers, staff, outsider (other community),
VOLUNTEERS = [202, 203, 204, 207, 208]          # 2 more volunteers (so that full events have people waiting)
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
MAX_TASKS = 12
MIN_ACCEPTED = 0.30
SALT = st.integers(0, 96)  # which of the allowed objects a rule aims at
WHO = st.sampled_from([0] * 14 + TG)  # 0: the actor the state allows; else this one
HOW = ["credit", "no_credit", "partial"]

# For each kind of step, the actors and objects the current state allows (``k`` orders them).
AIMED = {
    "claim": "SELECT t.id AS task, m.tg_user_id AS tg, t.id * 7 + m.id AS k FROM tasks t"
             " JOIN members m ON m.community_id = t.community_id AND m.is_volunteer = 1 AND m.id <> t.created_by"
             " WHERE t.state = 'open' AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.task_id = t.id"
             " AND c.member_id = m.id AND c.state <> 'withdrawn')",
    "withdraw": "SELECT c.task_id AS task, m.tg_user_id AS tg, c.id AS k FROM claims c"
                " JOIN members m ON m.id = c.member_id JOIN tasks t ON t.id = c.task_id"
                " WHERE c.state = 'active' AND t.state IN ('open', 'full', 'in_progress')",
    "done": "SELECT c.task_id AS task, m.tg_user_id AS tg, c.id AS k FROM claims c"
            " JOIN members m ON m.id = c.member_id JOIN tasks t ON t.id = c.task_id"
            " WHERE c.state = 'active' AND t.state IN ('open', 'full', 'in_progress')",
    # The resident answers; staff do while a problem case is open.
    "answer": "SELECT t.id AS task, CASE WHEN EXISTS (SELECT 1 FROM cases s WHERE s.task_id = t.id"
              " AND s.state = 'open') THEN 205 ELSE r.tg_user_id END AS tg, t.id AS k FROM tasks t"
              " JOIN members r ON r.id = t.requester_id WHERE t.state = 'awaiting_confirmation'",
    "resolve": "SELECT s.id AS case_id, s.id AS k FROM cases s WHERE s.state = 'open'",
    "close_event": "SELECT t.id AS task, t.id AS k FROM tasks t WHERE t.kind = 'event' AND t.state IN ('open', 'full')"
                   " AND EXISTS (SELECT 1 FROM claims c WHERE c.task_id = t.id AND c.state IN ('active', 'done'))",
    # Check-in (bot/services/checkin.py): staff open it for an open event; a place holder checks in.
    "open_checkin": "SELECT t.id AS task, t.id AS k FROM tasks t WHERE t.kind = 'event'"
                    " AND t.state IN ('open', 'full', 'in_progress')"
                    " AND NOT EXISTS (SELECT 1 FROM checkin_codes cc WHERE cc.task_id = t.id)",
    "check_in": "SELECT cc.token AS token, m.tg_user_id AS tg, c.id AS k FROM claims c"
                " JOIN members m ON m.id = c.member_id JOIN checkin_codes cc ON cc.task_id = c.task_id"
                " JOIN tasks t ON t.id = c.task_id WHERE c.state IN ('active', 'done')"
                " AND t.state IN ('open', 'full', 'in_progress', 'awaiting_confirmation')",
    "revoke": "SELECT l.id AS lid, l.id AS k FROM ledger l JOIN members m ON m.id = l.member_id"
              " WHERE l.delta > 0 AND l.reason <> 'refund' AND m.balance >= l.delta AND NOT EXISTS"
              " (SELECT 1 FROM ledger r WHERE r.idempotency_key = 'revoke:' || l.id)",
    "expire": "SELECT m.id AS mid, m.id AS k FROM members m WHERE m.balance > 0",
    # Waiting lists (bot/services/waitlist.py): a volunteer without a place joins a full event's list;
    # one on it leaves; one given a place keeps or declines it, or lets the time pass.
    "join_waitlist": "SELECT t.id AS task, m.tg_user_id AS tg, t.id * 7 + m.id AS k FROM tasks t"
                     " JOIN members m ON m.community_id = t.community_id AND m.is_volunteer = 1"
                     " WHERE t.kind = 'event' AND t.state = 'full' AND NOT EXISTS (SELECT 1 FROM claims c"
                     " WHERE c.task_id = t.id AND c.member_id = m.id AND c.state IN ('active', 'done'))"
                     " AND NOT EXISTS (SELECT 1 FROM waitlist w WHERE w.task_id = t.id AND w.member_id = m.id"
                     " AND w.state = 'waiting')",
    "leave_waitlist": "SELECT w.task_id AS task, m.tg_user_id AS tg, w.id AS k FROM waitlist w"
                      " JOIN members m ON m.id = w.member_id WHERE w.state IN ('waiting', 'offered')",
    "offer": "SELECT w.task_id AS task, m.tg_user_id AS tg, w.id AS k FROM waitlist w"
             " JOIN members m ON m.id = w.member_id WHERE w.state = 'offered'",
    # Staff take a volunteer off an event still open (roster.py), or mark them not coming.
    "remove": "SELECT c.task_id AS task, c.member_id AS mid, c.id AS k FROM claims c JOIN tasks t ON t.id = c.task_id"
              " WHERE t.kind = 'event' AND t.state IN ('open', 'full') AND c.state IN ('active', 'done')",
}


class World:
    """The event loop, the database and a copy of its seeded state, shared by every example: an
    in-memory SQLite database (``url`` ":memory:"), or a PostgreSQL database (a postgresql:// URL)."""

    def __init__(self, url: str = ":memory:") -> None:
        self.loop = asyncio.new_event_loop()
        self.db: Database = self.loop.run_until_complete(open_database(url))
        self.ids: dict[int, int] = {}
        self.tasks: list[int] = []
        self.loop.run_until_complete(self._seed())
        self.seeded: sqlite3.Connection | None = None
        self.pg: PgSnapshot | None = None
        if getattr(self.db, "dialect", "sqlite") == "sqlite":
            self.seeded = sqlite3.connect(":memory:", check_same_thread=False)
            self.loop.run_until_complete(self.db.writer.backup(self.seeded))
        else:
            self.pg = self.loop.run_until_complete(PgSnapshot.take(url))

    async def _seed(self) -> None:
        db, now = self.db, NOW
        cid = await make_community(db, now)
        other = await make_community(db, now)
        self.ids = {
            201: await make_member(db, now, cid, tg_user_id=201, resident=True),
            202: await make_member(db, now, cid, tg_user_id=202, volunteer=True),
            203: await make_member(db, now, cid, tg_user_id=203, volunteer=True),
            204: await make_member(db, now, cid, tg_user_id=204, volunteer=True),
            205: await make_member(db, now, cid, tg_user_id=205, staff=True),
            206: await make_member(db, now, other, tg_user_id=206, staff=True),
            207: await make_member(db, now, cid, tg_user_id=207, volunteer=True),
            208: await make_member(db, now, cid, tg_user_id=208, volunteer=True),
        }
        self.tasks = [
            await make_task(db, now, cid, self.ids[201], requester_id=self.ids[201], slots=1, points=3),
            await make_task(db, now, cid, self.ids[201], requester_id=self.ids[201], slots=2, points=2),
            await make_task(db, now, cid, self.ids[205], kind="event", slots=3, points=1),
        ]

    def reset(self) -> None:
        """Back to the seeded state: on SQLite the copy is written over the live database, page by
        page; on PostgreSQL the tables are emptied and refilled, the sequences set back."""
        if self.pg is not None:
            self.loop.run_until_complete(self.pg.restore())
            return
        assert self.seeded is not None
        writer = self.db.writer
        self.loop.run_until_complete(writer._execute(self.seeded.backup, writer._conn))

    def close(self) -> None:
        if self.pg is not None:
            self.loop.run_until_complete(self.pg.close())
        self.loop.run_until_complete(self.db.close())
        self.loop.close()
        if self.seeded is not None:
            self.seeded.close()


class PgSnapshot:
    """Every table's rows and every sequence's position in a PostgreSQL database, put back by
    ``restore`` in one transaction (TRUNCATE, COPY, setval) over a connection of its own."""

    def __init__(self, conn: Any, tables: dict[str, list[Any]], sequences: list[tuple[str, int | None]]) -> None:
        self.conn, self.tables, self.sequences = conn, tables, sequences

    @classmethod
    async def take(cls, url: str) -> PgSnapshot:
        import asyncpg

        from storage import pg

        conn = await asyncpg.connect(pg.plain_url(url))
        names = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                                                " AND tablename <> 'alembic_version' ORDER BY tablename")]
        tables = {name: list(await conn.fetch(f'SELECT * FROM "{name}"')) for name in names}
        sequences = [(str(r[0]), r[1]) for r in await conn.fetch(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")]
        return cls(conn, tables, sequences)

    async def restore(self) -> None:
        async with self.conn.transaction():
            # no triggers, no foreign-key checks while the rows go back (the seeded state was consistent)
            await self.conn.execute("SET LOCAL session_replication_role = replica")
            await self.conn.execute("TRUNCATE " + ", ".join(f'"{n}"' for n in self.tables))
            for name, rows in self.tables.items():
                if rows:
                    await self.conn.copy_records_to_table(name, records=rows, columns=list(rows[0].keys()))
            for seq, last in self.sequences:
                if last is None:
                    await self.conn.execute(f'ALTER SEQUENCE "{seq}" RESTART')
                else:
                    await self.conn.execute("SELECT setval($1, $2, true)", seq, last)

    async def close(self) -> None:
        await self.conn.close()


_world: World | None = None
_url = ":memory:"
STATS: Counter[tuple[str, bool]] = Counter()


def world() -> World:
    global _world
    if _world is None:
        _world = World(_url)
    return _world


class Completion(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        w = world()
        w.reset()
        assert w.loop.run_until_complete(w.db.fetchval("SELECT COUNT(*) FROM tasks")) == len(w.tasks), "not reset"
        self.w, self.db, self.ids = w, w.db, w.ids
        self.tg_of = {mid: tg for tg, mid in w.ids.items()}
        self.tasks = list(w.tasks)
        self.now = NOW
        self.dirty = True
        self.can = dict.fromkeys(AIMED, False)  # set by the first invariant check
        self.cutoffs: dict[str, datetime] = {}   # each expiry's key: points earned before this expired

    def run(self, coro: Any) -> Any:
        return self.w.loop.run_until_complete(coro)

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now

    def _try(self, name: str, coro: Any) -> bool:
        try:
            self.run(coro)
        except DomainError:
            ok = False
        else:
            ok = self.dirty = True
        STATS[name, ok] += 1
        if currently_in_test_context():  # --hypothesis-show-statistics lists these
            event(f"{name}: {'accepted' if ok else 'refused'}")
        return ok

    def pick(self, op: str, salt: int) -> Any:
        """One row the current state allows for ``op`` (which one varies with ``salt``)."""
        row = self.run(self.db.fetchone(f"SELECT * FROM ({AIMED[op]}) a ORDER BY (a.k * 31 + ?) % 97 LIMIT 1", (salt,)))
        assert row is not None, f"{op} was enabled with nothing to do"
        return row

    def task(self, ti: int) -> int:
        return self.tasks[ti % len(self.tasks)]

    # -- what each step does (with the actor and object it is given) ---------------------
    def _claim(self, task: int, tg: int) -> None:
        self._try("claim", t.claim(self.db, self.tick(), self.ids[tg], task))

    def _withdraw(self, task: int, tg: int) -> None:
        self._try("withdraw", t.withdraw(self.db, self.tick(), self.ids[tg], task))

    def _done(self, task: int, tg: int) -> None:
        self._try("done", c.mark_done(self.db, task_id=task, tg_user_id=tg, now=self.tick()))

    def _confirm(self, task: int, tg: int) -> None:
        self._try("confirm", c.confirm(self.db, task_id=task, tg_user_id=tg, now=self.tick()))

    def _not_done(self, task: int, tg: int) -> None:
        self._try("not_done", c.not_done(self.db, task_id=task, tg_user_id=tg, now=self.tick(), reason="x"))

    def _problem(self, task: int, tg: int) -> None:
        self._try("problem", c.report_problem(self.db, task_id=task, tg_user_id=tg, now=self.tick()))

    def _resolve(self, case: int, tg: int, how: str, pts: int) -> None:
        self._try("resolve", c.resolve_case(self.db, case_id=case, tg_user_id=tg, now=self.tick(), resolution=how,
                                            points=pts))

    def _close_event(self, task: int, tg: int, absent: set[int]) -> None:
        self._try("close_event", c.close_event(self.db, task_id=task, tg_user_id=tg, now=self.tick(),
                                               absent=[self.ids[a] for a in absent]))

    def _open_checkin(self, task: int, tg: int) -> None:
        self._try("open_checkin", ci.open_checkin(self.db, task_id=task, tg_user_id=tg, admin_ids=(),
                                                  now=self.tick()))

    def _check_in(self, token: str, tg: int) -> None:
        self._try("check_in", ci.check_in(self.db, tg_user_id=tg, now=self.tick(), token=token))

    def _revoke(self, lid: int, tg: int) -> None:
        self._try("revoke", c.revoke(self.db, ledger_id=lid, tg_user_id=tg, now=self.tick(), reason="check"))

    def _join_waitlist(self, task: int, tg: int) -> None:
        self._try("join_waitlist", wl.join(self.db, self.tick(), self.ids[tg], task))

    def _leave_waitlist(self, task: int, tg: int) -> None:
        self._try("leave_waitlist", wl.leave(self.db, self.tick(), self.ids[tg], task))

    # -- rules: anyone, on any object (mostly refused) -----------------------------------
    # Dispatch steps go through bot/services/tasks.py, as the bot does (member ids, not tg ids).
    @rule(op=st.sampled_from(["claim", "withdraw", "done", "confirm", "not_done", "problem", "cancel", "resolve",
                              "close_event", "revoke", "open_checkin", "check_in",
                              "join_waitlist", "leave_waitlist", "remove"]),
          n=st.integers(0, MAX_TASKS - 1), tg=st.sampled_from(TG), how=st.sampled_from(HOW), pts=st.integers(-1, 4),
          absent=st.sets(st.sampled_from(VOLUNTEERS)))
    def anyone(self, op: str, n: int, tg: int, how: str, pts: int, absent: set[int]) -> None:
        if op == "cancel":
            self._try("cancel", t.cancel(self.db, self.tick(), self.ids[tg], self.task(n)))
        elif op == "resolve":
            self._resolve(n % 6 + 1, tg, how, pts)
        elif op == "close_event":
            self._close_event(self.task(n), tg, absent)
        elif op == "revoke":
            self._revoke(n + 1, tg)
        elif op == "remove":  # anyone takes any volunteer off any task (mostly refused)
            self._try("remove", ro.remove(self.db, task_id=self.task(n), member_id=self.ids[VOLUNTEERS[n % 5]],
                                          tg_user_id=tg, admin_ids=(), now=self.tick()))
        elif op == "check_in":  # any event's QR code, whoever scans it (a place elsewhere does not count)
            tokens = self.run(self.db.fetchall("SELECT token FROM checkin_codes ORDER BY task_id"))
            self._check_in(str(tokens[n % len(tokens)]["token"]) if tokens else "no-such-code", tg)
        else:
            getattr(self, f"_{op}")(self.task(n), tg)

    # -- rules: someone who may, on an object in the right state (enabled when one exists) --
    # ``who`` is 0 most of the time (the one who may); otherwise someone drawn, often not allowed.
    # The state may still refuse some (a volunteer who already took part cannot confirm, a
    # partial credit must be below the full points), and those count as refused.
    @precondition(lambda self: self.can["claim"])
    @rule(salt=SALT, who=WHO)
    def volunteer_claims(self, salt: int, who: int) -> None:
        row = self.pick("claim", salt)
        self._claim(row["task"], who or row["tg"])

    @precondition(lambda self: self.can["withdraw"])
    @rule(salt=SALT, who=WHO)
    def volunteer_withdraws(self, salt: int, who: int) -> None:
        row = self.pick("withdraw", salt)
        self._withdraw(row["task"], who or row["tg"])

    @precondition(lambda self: self.can["done"])
    @rule(salt=SALT, who=WHO)
    def volunteer_done(self, salt: int, who: int) -> None:
        row = self.pick("done", salt)
        self._done(row["task"], who or row["tg"])

    @precondition(lambda self: self.can["answer"])
    @rule(salt=SALT, who=WHO, answer=st.sampled_from(["confirm", "confirm", "not_done", "problem"]))
    def requester_answers(self, salt: int, who: int, answer: str) -> None:
        row = self.pick("answer", salt)
        getattr(self, f"_{answer}")(row["task"], who or row["tg"])

    @precondition(lambda self: self.can["resolve"])
    @rule(salt=SALT, who=WHO, how=st.sampled_from(HOW), pts=st.integers(-1, 4))
    def staff_resolves(self, salt: int, who: int, how: str, pts: int) -> None:
        self._resolve(self.pick("resolve", salt)["case_id"], who or 205, how, pts)

    @precondition(lambda self: self.can["close_event"])
    @rule(salt=SALT, who=WHO, absent=st.sets(st.sampled_from(VOLUNTEERS)))
    def staff_closes_event(self, salt: int, who: int, absent: set[int]) -> None:
        self._close_event(self.pick("close_event", salt)["task"], who or 205, absent)

    @precondition(lambda self: self.can["open_checkin"])
    @rule(salt=SALT, who=WHO)
    def staff_opens_checkin(self, salt: int, who: int) -> None:
        self._open_checkin(self.pick("open_checkin", salt)["task"], who or 205)

    @precondition(lambda self: self.can["check_in"])
    @rule(salt=SALT, who=WHO)
    def volunteer_checks_in(self, salt: int, who: int) -> None:
        """Scan the event's QR code (the one who holds the place; now and then anyone, or twice)."""
        row = self.pick("check_in", salt)
        self._check_in(row["token"], who or row["tg"])

    @precondition(lambda self: self.can["close_event"])
    @rule(salt=SALT)
    def staff_closes_from_checkins(self, salt: int) -> None:
        """/closeevent as the attendance list starts: those who checked in present, the others not
        (everyone present when check-in was never opened). Exactly those present are credited."""
        task = self.pick("close_event", salt)["task"]
        people = [a.member_id for a in self.run(c.event_attendees(self.db, task_id=task))]
        unticked = self.run(ci.unticked(self.db, task, people)) or []
        absent = {people[i] for i in unticked}
        opened = self.run(self.db.fetchval("SELECT COUNT(*) FROM checkin_codes WHERE task_id = ?", (task,)))
        came = {r[0] for r in self.run(self.db.fetchall("SELECT member_id FROM checkins WHERE task_id = ?", (task,)))}
        if self._try("close_event", c.close_event(self.db, task_id=task, tg_user_id=205, now=self.tick(),
                                                  absent=absent)):
            paid = {r[0] for r in self.run(self.db.fetchall(
                "SELECT member_id FROM ledger WHERE task_id = ? AND reason = 'event_attended'", (task,)))}
            assert paid == (set(people) & came if opened else set(people)), "the credits differ from the check-ins"

    @precondition(lambda self: self.can["revoke"])
    @rule(salt=SALT, who=WHO)
    def staff_revokes(self, salt: int, who: int) -> None:
        self._revoke(self.pick("revoke", salt)["lid"], who or 205)

    @precondition(lambda self: self.can["expire"])
    @rule(salt=SALT, back=st.integers(0, 4), again=st.booleans())
    def points_expire(self, salt: int, back: int, again: bool) -> None:
        """Points earned before a cut-off expire: just after the member's ``back``-th latest credit (0:
        now); ``again``: a deadline already run for this member runs again and must expire nothing."""
        mid = self.pick("expire", salt)["mid"]
        credits = self.run(self.db.fetchall("SELECT created_at FROM ledger WHERE member_id = ? AND delta > 0"
                                            " ORDER BY id DESC", (mid,)))
        mine = [k for k in self.cutoffs if k.startswith(f"expire:{mid}:")]
        if again and mine:
            key = mine[-1]
        else:
            key = f"expire:{mid}:{3000 + len(self.cutoffs)}"  # a deadline year of its own
            self.cutoffs[key] = (from_db(credits[back - 1][0]) + timedelta(seconds=1)
                                 if 0 < back <= len(credits) else self.now)
        cutoff = self.cutoffs[key]
        deadline = x.Deadline(datetime(int(key.rsplit(":", 1)[1]), 1, 1, tzinfo=UTC), cutoff, cutoff)
        expired: list[int] = []

        async def expire() -> None:
            async with self.db.transaction() as conn:
                expired.append(await x.expire_member(conn, mid, deadline, self.tick()))

        self._try("expire", expire())
        assert not (again and mine) or expired == [0], "a deadline expired points twice"

    @precondition(lambda self: self.can["join_waitlist"])
    @rule(salt=SALT, who=WHO)
    def volunteer_joins_waitlist(self, salt: int, who: int) -> None:
        row = self.pick("join_waitlist", salt)
        self._join_waitlist(row["task"], who or row["tg"])

    @precondition(lambda self: self.can["join_waitlist"])
    @rule(salt=SALT)
    def queue_forms(self, salt: int) -> None:
        """Every volunteer without a place on a full event joins its list, one after another."""
        rows = self.run(self.db.fetchall(f"SELECT * FROM ({AIMED['join_waitlist']}) a ORDER BY (a.k * 31 + ?) % 97", (salt,)))
        for r in rows:
            if r["task"] == rows[0]["task"]:
                self._join_waitlist(r["task"], r["tg"])

    @precondition(lambda self: self.can["leave_waitlist"])
    @rule(salt=SALT, who=WHO)
    def volunteer_leaves_waitlist(self, salt: int, who: int) -> None:
        row = self.pick("leave_waitlist", salt)
        self._leave_waitlist(row["task"], who or row["tg"])

    @precondition(lambda self: self.can["claim"])
    @rule(salt=SALT)
    def event_fills(self, salt: int) -> None:
        """Volunteers claim an open event's places one after another until it is full (so that
        waiting lists have something to wait for)."""
        rows = self.run(self.db.fetchall(f"SELECT * FROM ({AIMED['claim']}) a JOIN tasks t ON t.id = a.task"
                                         " WHERE t.kind = 'event' ORDER BY (a.k * 31 + ?) % 97", (salt,)))
        if not rows:
            return
        task = rows[0]["task"]
        for r in rows:
            if r["task"] == task:
                self._claim(task, r["tg"])

    @precondition(lambda self: self.can["offer"])
    @rule(salt=SALT, who=WHO, keep=st.booleans())
    def volunteer_answers_offer(self, salt: int, who: int, keep: bool) -> None:
        """Given a place from the list: keep it, or decline it (the next one waiting is promoted)."""
        row = self.pick("offer", salt)
        fn = wl.keep if keep else wl.decline
        self._try("keep" if keep else "decline", fn(self.db, self.tick(), self.ids[who or row["tg"]], row["task"]))

    @precondition(lambda self: self.can["offer"])
    @rule()
    def offers_lapse(self) -> None:
        """The sweep, once every open offer's time has passed: each goes to the next one waiting."""
        self._try("lapse", wl.sweep(self.db, self.now + timedelta(days=1)))

    @precondition(lambda self: self.can["remove"])
    @rule(salt=SALT, who=WHO, no_show=st.booleans(), twice=st.booleans())
    def staff_removes(self, salt: int, who: int, no_show: bool, twice: bool) -> None:
        """Staff take a volunteer off an event (or mark them not coming: a no-show); the place goes to
        the first one waiting. ``twice``: the Yes pressed again (a double tap) must change nothing."""
        row = self.pick("remove", salt)
        task, mid = row["task"], row["mid"]
        queue = [r[0] for r in self.run(self.db.fetchall(
            "SELECT member_id FROM waitlist WHERE task_id = ? AND state = 'waiting' ORDER BY id", (task,)))]
        no_shows = self.run(self.db.fetchval("SELECT COUNT(*) FROM no_shows"))
        name = "no_show_early" if no_show else "remove"
        fn = ro.mark_no_show if no_show else ro.remove
        given: list[list[int]] = []

        async def end() -> None:
            given.append((await fn(self.db, task_id=task, member_id=mid, tg_user_id=who or 205, admin_ids=(),
                                   now=self.tick())).given)

        ok = self._try(name, end())
        if twice:
            assert not self._try(name, fn(self.db, task_id=task, member_id=mid, tg_user_id=who or 205, admin_ids=(),
                                          now=self.tick())), "a place was ended twice"
        state = self.run(self.db.fetchval("SELECT state FROM claims WHERE task_id = ? AND member_id = ?", (task, mid)))
        added = self.run(self.db.fetchval("SELECT COUNT(*) FROM no_shows")) - no_shows
        if ok:
            assert state == ("no_show" if no_show else "withdrawn"), state
            assert added == (1 if no_show else 0), "a removal counted as a no-show (or a no-show was not recorded)"
            self._in_turn(task, queue, given[0])
        else:
            assert added == 0 and state in ("active", "done"), "a refused removal changed something"

    def _in_turn(self, task: int, queue: list[int], given: list[int]) -> None:
        """The places went to those first in the queue: everyone ahead of the last one given a place
        was given one too or passed over (could not take it)."""
        assert len(given) <= 1, "one place freed, more given"
        if not given:
            return
        for mid in queue[:queue.index(given[-1])]:
            state = self.run(self.db.fetchval("SELECT state FROM waitlist WHERE task_id = ? AND member_id = ?",
                                              (task, mid)))
            assert mid in given or state == "skipped", "a promotion skipped someone ahead"

    @precondition(lambda self: self.can["claim"] and self.can["done"])
    @rule(salt=SALT, confirmer=st.sampled_from([201, 205]))
    def volunteer_helps(self, salt: int, confirmer: int) -> None:
        """Claim, Done and Yes in a row (each may be refused by the state the earlier steps left)."""
        row = self.pick("claim", salt)
        self._claim(row["task"], row["tg"])
        self._done(row["task"], row["tg"])
        self._confirm(row["task"], confirmer)

    @precondition(lambda self: len(self.tasks) < MAX_TASKS)
    @rule(tg=st.sampled_from([201, 201, 201, 205, *TG]), slots=st.integers(1, 3), is_event=st.booleans())
    def new_task(self, tg: int, slots: int, is_event: bool) -> None:
        """New work, so that a run does not end with every task finished and every step refused."""
        new = t.NewTask("other", title="Guard the garden", kind="event", slots=slots + 1, points=1) if is_event \
            else t.NewTask("shopping", description="Rice please", slots=slots)
        staff = is_event and tg in (205, 206)
        task: list[int] = []

        async def create() -> None:
            task.append(await t.create_task(self.db, self.tick(), self.ids[tg], new, staff=staff))

        if self._try("new_task", create()):
            self.tasks.append(task[0])

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def consistent(self) -> None:
        if not self.dirty:  # nothing changed since the last check (refused steps roll back)
            return
        self.dirty = False
        db = self.db
        row = self.run(db.fetchone("SELECT " + ", ".join(f"EXISTS ({sql}) AS {op}" for op, sql in AIMED.items())))
        self.can = {op: bool(row[op]) for op in AIMED}
        row = self.run(db.fetchone(
            "SELECT (SELECT COUNT(*) FROM tasks t WHERE (SELECT COUNT(*) FROM claims c WHERE c.task_id = t.id"
            "  AND c.state IN ('active', 'done', 'completed')) > t.slots) AS over,"
            " (SELECT COUNT(*) FROM (SELECT task_id, member_id FROM ledger WHERE delta > 0"
            "  GROUP BY task_id, member_id HAVING COUNT(*) > 1) twice) AS dup,"
            " (SELECT COUNT(*) FROM ledger l LEFT JOIN claims c ON c.task_id = l.task_id AND c.member_id = l.member_id"
            "  LEFT JOIN tasks t ON t.id = l.task_id WHERE l.delta > 0"
            "  AND (c.state IS DISTINCT FROM 'completed' OR t.state IS DISTINCT FROM 'completed')) AS early,"
            " (SELECT COUNT(*) FROM members m WHERE m.balance < 0 OR m.balance <>"
            "  (SELECT COALESCE(SUM(delta), 0) FROM ledger l WHERE l.member_id = m.id)) AS bad,"
            " (SELECT COUNT(*) FROM checkins k JOIN tasks t ON t.id = k.task_id WHERE t.kind <> 'event'"
            "  OR NOT EXISTS (SELECT 1 FROM claims c WHERE c.task_id = k.task_id AND c.member_id = k.member_id))"
            "  AS stray,"
            # A waiting-list promotion never skips someone ahead: nobody still waits who joined
            # before someone given a place; and no place of an event stays free while someone waits.
            " (SELECT COUNT(*) FROM waitlist a JOIN waitlist b ON b.task_id = a.task_id AND b.id < a.id"
            "  WHERE a.offered_at IS NOT NULL AND b.state = 'waiting') AS skipped,"
            " (SELECT COUNT(*) FROM tasks t WHERE t.kind = 'event' AND t.state IN ('open', 'full')"
            "  AND EXISTS (SELECT 1 FROM waitlist w WHERE w.task_id = t.id AND w.state = 'waiting')"
            "  AND (SELECT COUNT(*) FROM claims c WHERE c.task_id = t.id AND c.state IN ('active', 'done'))"
            "  < t.slots) AS idle,"
            # A cancelled event leaves nobody on its waiting list; every no-show has its claim ended so.
            " (SELECT COUNT(*) FROM waitlist w JOIN tasks t ON t.id = w.task_id WHERE t.state = 'cancelled'"
            "  AND w.state IN ('waiting', 'offered')) AS stranded,"
            " (SELECT COUNT(*) FROM no_shows n JOIN claims c ON c.task_id = n.task_id AND c.member_id = n.member_id"
            "  WHERE c.state <> 'no_show') AS ghost"))
        assert row["over"] == 0, "claims beyond slots"
        assert row["dup"] == 0, "credited twice"
        assert row["early"] == 0, "credited without completion"
        assert row["bad"] == 0, "balance differs from the ledger"
        assert row["stray"] == 0, "a check-in without a place at an event"
        assert row["skipped"] == 0, "a waiting-list promotion skipped someone ahead"
        assert row["idle"] == 0, "a free place while someone waits"
        assert row["stranded"] == 0, "someone left on the waiting list of a cancelled event"
        assert row["ghost"] == 0, "a no-show whose claim is not a no-show"
        assert self.run(p.totals_mismatches(db)) == [], "leaderboard totals differ from the ledger"
        self._fifo()

    def _fifo(self) -> None:
        """Replay each member's ledger oldest points first: an expiry takes only points earned before
        its cut-off, each point once (they are there to take), and all of them (none left behind)."""
        lots: dict[int, list[list[Any]]] = {}
        rows = self.run(self.db.fetchall("SELECT member_id, delta, reason, idempotency_key, created_at FROM ledger"
                                         " ORDER BY id"))
        for r in rows:
            mine = lots.setdefault(r["member_id"], [])
            if r["delta"] > 0:
                mine.append([r["created_at"], r["delta"]])
                continue
            cutoff = to_db(self.cutoffs[r["idempotency_key"]]) if r["reason"] == x.EXPIRED else None
            owed = -r["delta"]
            for lot in mine:
                if cutoff is not None and lot[0] >= cutoff:
                    break
                taken = min(owed, lot[1])
                lot[1] -= taken
                owed -= taken
            assert owed == 0, f"{r['reason']} took points that were not there (or not old enough)"
            if cutoff is not None:
                assert all(lot[1] == 0 for lot in mine if lot[0] < cutoff), "an expiry left due points behind"


def report(stats: Counter[tuple[str, bool]]) -> tuple[float, str]:
    """The share of operations accepted, and a table of accepted/refused per rule."""
    rules = sorted({name for name, _ok in stats})
    lines = [f"{name:12} accepted {stats[name, True]:6}  refused {stats[name, False]:6}" for name in rules]
    accepted = sum(n for (_name, ok), n in stats.items() if ok)
    total = sum(stats.values())
    share = accepted / total if total else 0.0
    lines.append(f"{'all':12} accepted {accepted:6}  refused {total - accepted:6}  ({share:.0%} accepted)")
    return share, "\n".join(lines)


def run_machine(profile: str, url: str = ":memory:") -> str:
    global _world, _url
    _url = url
    STATS.clear()
    started = time.perf_counter()
    try:
        run_state_machine_as_test(Completion, settings=settings.get_profile(profile))
    finally:
        if _world is not None:  # its connection's thread would keep the process alive
            _world.close()
            _world = None
    share, table = report(STATS)
    table += f"\n{profile}: {time.perf_counter() - started:.1f} s"
    print(table)
    assert share >= MIN_ACCEPTED, f"only {share:.0%} of operations were accepted:\n{table}"
    return table


def test_completion_stateful() -> None:
    run_machine(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.mark.postgres
def test_completion_stateful_on_postgresql(pg_server: PgServer) -> None:
    """The same machine on a PostgreSQL database (tests/both.py's throwaway server), fewer examples
    (profile "ci-pg"; HYPOTHESIS_PROFILE_PG picks another, e.g. "ci" or "slow")."""
    url = asyncio.run(fresh_database(pg_server))
    try:
        run_machine(os.environ.get("HYPOTHESIS_PROFILE_PG", "ci-pg"), url)
    finally:
        asyncio.run(drop_database(pg_server, url))


@pytest.mark.soak
@pytest.mark.timeout(1800)  # the full run takes a few minutes on a busy two-core machine; short, well under one
def test_completion_stateful_soak() -> None:
    run_machine("slow-short" if os.environ.get("LINLI_SOAK_SCALE") == "short" else "slow")


def test_the_acceptance_share_can_fail() -> None:
    """The 30 % floor is a real check: a tally with mostly refusals is reported as such."""
    share, table = report(Counter({("claim", True): 2, ("claim", False): 8}))
    assert share == pytest.approx(0.2) and share < MIN_ACCEPTED and "20% accepted" in table
