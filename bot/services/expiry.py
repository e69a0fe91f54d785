"""Expiring points: a per-community policy, off by default.

With the policy on (``points_expiry`` in the community settings: ``years`` and ``since``, when
staff switched it on), points earned in year Y (the community's local calendar) expire at the end
of year Y + ``years`` (1: "at the end of the year after they were earned"). Rules:

- Oldest points are spent first: every debit so far (rewards, revokes, earlier expiries) is taken
  from the oldest points. So what expires at a deadline is the member's credits earned before the
  cut-off minus every debit, never below zero and never more than the balance: each point expires
  at most once and no balance goes negative.
- An expiry is one ledger row (reason ``expired``) with the key ``expire:<member>:<deadline year>``:
  running the sweep twice writes it once.
- A member is warned once, a month before (from 1 December), in a private message with the amount
  and the last day.
- A deadline counts only if the policy was on when its warning was due; points from before the
  policy began are simply counted with the first deadline that counts, so nobody loses points
  without a month's warning.

The sweep's idle cost is two ``kv`` look-ups per community, whatever the size of the ledger; the
work (one member's own rows each) happens once a year. SQL: storage/expiry.py.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.services import ledger
from bot.services.access import require_staff
from storage import communities as community_store
from storage import expiry as store
from storage.db import Connection, Database
from storage.expiry import EXPIRED as EXPIRED
from storage.notifications import private_chat
from storage.outbox import audit, enqueue
from storage.timeutil import from_db, to_db

WARN_BEFORE = timedelta(days=31)  # the warning goes out from 1 December for a deadline on 1 January
YEARS = 1                         # what staff switch on: the end of the year after the points were earned


@dataclass(frozen=True)
class Policy:
    years: int
    since: datetime


def policy(settings_json: str | None) -> Policy | None:
    """The community's policy, None when it is off (or unreadable)."""
    try:
        raw = json.loads(settings_json or "{}")
    except ValueError:
        return None
    p = raw.get("points_expiry") if isinstance(raw, dict) else None
    if not isinstance(p, dict) or not isinstance(p.get("years"), int) or p["years"] < 1:
        return None
    try:
        return Policy(int(p["years"]), from_db(str(p["since"])))
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class Deadline:
    at: datetime             # points expire at this moment (local midnight starting a year)
    earned_before: datetime  # ... those credited before this one
    warn_from: datetime      # the month's warning goes out from here

    @property
    def last_day(self) -> date:
        """The last day the points can be used (local)."""
        return (self.at - timedelta(days=1)).date()


def deadline(year: int, tz: str, pol: Policy) -> Deadline:
    """The deadline on 1 January of ``year``: points earned before 1 January of ``year - years``."""
    zone = ZoneInfo(tz)
    at = datetime(year, 1, 1, tzinfo=zone)
    return Deadline(at, datetime(year - pol.years, 1, 1, tzinfo=zone), at - WARN_BEFORE)


def counts(pol: Policy, d: Deadline) -> bool:
    """A deadline counts if the policy was on when its warning was due."""
    return pol.since <= d.warn_from


def due(st: store.Standing) -> int:
    """Oldest first: the credits before the cut-off not yet spent, within the balance."""
    return max(0, min(st.balance, st.credited_before - st.debited))


async def expire_member(conn: Connection, member_id: int, d: Deadline, now: datetime) -> int:
    """Expire what is due of one member at ``d`` (in the caller's transaction); the points expired."""
    amount = due(await store.standing(conn, member_id, d.earned_before))
    if amount <= 0:
        return 0
    written = await ledger.debit(conn, member_id=member_id, amount=amount, reason=EXPIRED,
                                 key=f"expire:{member_id}:{d.at.year}", now=now)
    return amount if written else 0


async def _expire_due(db: Database, c: store.Community, pol: Policy, d: Deadline, now: datetime) -> int:
    if now < d.at or not counts(pol, d):
        return 0

    async def expire(conn: Connection, member_id: int) -> int:
        return bool(await expire_member(conn, member_id, d, now))

    return await _once_for_holders(db, f"points_expiry:{c.id}:{d.at.year}", c.id, expire, now)


async def _warn(db: Database, c: store.Community, pol: Policy, d: Deadline, now: datetime) -> int:
    if now < d.warn_from or not counts(pol, d):
        return 0

    async def warn(conn: Connection, member_id: int) -> int:
        amount = due(await store.standing(conn, member_id, d.earned_before))
        chat = await private_chat(conn, member_id) if amount > 0 else None
        if chat is None:
            return 0
        return await enqueue(conn, chat_id=chat, member_id=member_id, kind="points_expiring", now=now,
                             payload={"points": amount, "last_day": d.last_day.isoformat()},
                             dedupe_key=f"points_expiry_warn:{member_id}:{d.at.year}")

    return await _once_for_holders(db, f"points_expiry_warned:{c.id}:{d.at.year}", c.id, warn, now)


async def _once_for_holders(db: Database, key: str, community_id: int,
                            each: Callable[[Connection, int], Awaitable[int]], now: datetime) -> int:
    """Unless ``key`` is done: ``each`` for every holder of points in the community, each in a
    transaction of its own, then ``key`` is noted as done; the sum of what ``each`` returned."""
    if await store.done(db, key):
        return 0
    n = 0
    for member_id in await store.holders(db, community_id):
        async with db.transaction() as conn:
            n += await each(conn, member_id)
    await store.remember_done(db, key, now)
    return n


async def sweep_expiry(db: Database, now: datetime) -> dict[str, int]:
    """Per community with the policy on: expire what is due (once a year) and warn a month before."""
    out = {"expired": 0, "warned": 0}
    for c in await store.communities(db):
        pol = policy(c.settings)
        if pol is None:
            continue
        year = now.astimezone(ZoneInfo(c.tz)).year
        out["expired"] += await _expire_due(db, c, pol, deadline(year, c.tz, pol), now)
        out["warned"] += await _warn(db, c, pol, deadline(year + 1, c.tz, pol), now)
    return out


@dataclass(frozen=True)
class Expiring:
    points: int
    last_day: date


async def upcoming(db: Database, member_id: int, community_id: int | None, now: datetime) -> list[Expiring]:
    """What of the member's points will expire at the next two deadlines (empty with the policy off)."""
    c = None if community_id is None else await store.community(db, community_id)
    return await upcoming_in(db, member_id, c, now)


async def upcoming_in(db: Database, member_id: int, c: store.Community | None, now: datetime) -> list[Expiring]:
    """``upcoming`` for a caller that has read the member's community (``c``) already."""
    pol = None if c is None else policy(c.settings)
    if c is None or pol is None:
        return []
    year = now.astimezone(ZoneInfo(c.tz)).year
    out: list[Expiring] = []
    counted = 0
    for y in (year + 1, year + 2):
        d = deadline(y, c.tz, pol)
        if not counts(pol, d):
            continue
        amount = due(await store.standing_of(db, member_id, d.earned_before)) - counted
        if amount > 0:
            out.append(Expiring(amount, d.last_day))
            counted += amount
    return out


def _with_policy(settings_json: str | None, on: bool, now: datetime) -> str:
    try:
        raw: Any = json.loads(settings_json or "{}")
    except ValueError:
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    if on:
        raw["points_expiry"] = {"years": YEARS, "since": to_db(now)}
    else:
        raw.pop("points_expiry", None)
    return json.dumps(raw, ensure_ascii=False)


async def is_on(db: Database, community_id: int) -> bool:
    c = await store.community(db, community_id)
    return c is not None and policy(c.settings) is not None


async def set_policy(db: Database, *, community_id: int, tg_user_id: int, admin_ids: Collection[int], on: bool,
                     now: datetime) -> bool:
    """Staff switch the community's policy on or off (on again: it counts from now). Returns ``on``."""
    staff = await require_staff(db, tg_user_id, admin_ids, community_id)
    actor_id = None if staff is None else staff.id
    async with db.transaction() as conn:
        settings = await community_store.settings_in(conn, community_id)
        if (policy(settings) is not None) != on:
            await community_store.set_settings(conn, community_id, _with_policy(settings, on, now))
            await audit(conn, now=now, action="community.points_expiry_on" if on else "community.points_expiry_off",
                        community_id=community_id, actor_id=actor_id, object_type="community", object_id=community_id)
    return on
