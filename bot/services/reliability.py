"""The reliability score (issue 21): whether a volunteer comes when they said they would.

One sentence: **reliability = (1 + tasks completed) ÷ (1 + tasks completed + no-shows + ½ × late
withdrawals), where each of them counts for less as it ages: its weight halves every 90 days.**
The 1 is a fresh start that never fades: a newcomer has 100 %, a single no-show on its own is 50 %
and is forgiven with time or with tasks done. Only the last two years count (older weights are
below 1/250). A withdrawal is late within ``LATE_BEFORE`` of the task's start.

A community may ask for a minimum score to claim events (``communities.min_reliability``, 0: none);
requests stay open to everyone, so completing small tasks is how a volunteer recovers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import N_, DomainError, InvalidInput
from bot.services.access import require_staff
from storage import reliability as store
from storage.db import Database, SyncConnection
from storage.outbox import audit
from storage.reliability import DONE, LATE, NO_SHOW, Mark
from storage.timeutil import from_db

HALF_LIFE = timedelta(days=90)       # an event's weight halves every 90 days
HORIZON = timedelta(days=730)        # older events are not read at all
LATE_BEFORE = timedelta(hours=24)    # withdrawing within 24 hours of the start is late
LATE_WEIGHT = 0.5                    # a late withdrawal weighs half a no-show
FRESH_START = 1.0                    # the never-fading good weight everyone starts with
MINIMUM_CHOICES = (0, 50, 60, 70, 80, 90)   # what staff may pick (0: no minimum)


class BelowMinimum(DomainError):
    message = N_("Sorry, events here need a reliability of {minimum}%; yours is {score}%. Complete a few"
                 " small tasks to raise it. Missed events also count less as time passes.")


@dataclass(frozen=True, slots=True)
class Reliability:
    """A volunteer's score (0–100) and the plain counts behind it (the last two years)."""

    percent: int
    done: int = 0
    no_shows: int = 0
    late: int = 0

    @property
    def recorded(self) -> bool:
        return bool(self.done or self.no_shows or self.late)


def weight(at: datetime, now: datetime) -> float:
    """How much an event at ``at`` counts at ``now``: 1 when new, halving every ``HALF_LIFE``."""
    age = max((now - at) / HALF_LIFE, 0.0)
    return float(0.5 ** age)


def score(marks: Iterable[Mark], now: datetime) -> Reliability:
    """THE reliability formula (see the module's docstring)."""
    good = bad = 0.0
    counts = {DONE: 0, NO_SHOW: 0, LATE: 0}
    for m in marks:
        counts[m.kind] += m.count
        w = weight(m.at, now) * m.count
        if m.kind == DONE:
            good += w
        else:
            bad += w * (LATE_WEIGHT if m.kind == LATE else 1.0)
    ratio = (FRESH_START + good) / (FRESH_START + good + bad)
    return Reliability(int(ratio * 100 + 0.5), counts[DONE], counts[NO_SHOW], counts[LATE])


async def of_members(db: Database, member_ids: Sequence[int], now: datetime) -> dict[int, Reliability]:
    """The scores of several members (an attendance list, a search), from one query."""
    by: dict[int, list[Mark]] = {int(m): [] for m in member_ids}
    for mark in await store.marks_of(db, list(by), now - HORIZON):
        by[mark.member_id].append(mark)
    return {mid: score(marks, now) for mid, marks in by.items()}


async def of_member(db: Database, member_id: int, now: datetime) -> Reliability:
    return (await of_members(db, [member_id], now))[member_id]


def check_claim_sync(conn: SyncConnection, *, minimum: int, member_id: int, kind: str, now: datetime) -> None:
    """In the claim transaction: an event of a community with a minimum (``ClaimTask.min_reliability``,
    read with the task) needs that score (``BelowMinimum`` otherwise, and the claim changes nothing).
    Requests are always open."""
    if kind != "event":
        return
    if minimum <= 0:
        return
    mine = score(store.marks_sync(conn, member_id, now - HORIZON), now)
    if mine.percent < minimum:
        raise BelowMinimum(minimum=minimum, score=mine.percent)


def is_late(starts_at: datetime | None, now: datetime) -> bool:
    """A withdrawal at ``now`` is late: the task has a start and it is less than ``LATE_BEFORE`` away
    (or past). A task without a start time (as soon as possible) has no late withdrawal."""
    return starts_at is not None and now >= starts_at - LATE_BEFORE


def note_withdrawal_sync(conn: SyncConnection, *, community_id: int, task_id: int, member_id: int,
                         starts_at: datetime | str | None, now: datetime) -> bool:
    """In the withdraw transaction: record it if it is late (once per task and volunteer)."""
    start = from_db(starts_at) if isinstance(starts_at, str) else starts_at
    if start is None or not is_late(start, now):
        return False
    return store.record_late_sync(conn, community_id=community_id, task_id=task_id, member_id=member_id,
                                  starts_at=start, now=now)


async def minimum(db: Database, community_id: int) -> int:
    """The community's minimum score to claim events (0: none)."""
    return await store.minimum(db, community_id)


async def set_minimum(db: Database, *, tg_user_id: int, admin_ids: Collection[int], community_id: int,
                      value: int, now: datetime) -> None:
    """Staff of the community (or a super-admin) set the minimum, one of ``MINIMUM_CHOICES``."""
    if value not in MINIMUM_CHOICES:
        raise InvalidInput()
    actor = await require_staff(db, tg_user_id, admin_ids, community_id)
    async with db.transaction() as conn:
        old = await store.set_minimum(conn, community_id, value)
        await audit(conn, now=now, action="community.min_reliability", community_id=community_id,
                    actor_id=actor.id if actor is not None else None, details={"old": old, "new": value})
