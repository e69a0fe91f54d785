"""Points read-side: balance, history, leaderboards; honours (milestones granted once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.models import InvalidInput, NotRegistered
from bot.services import expiry
from bot.services.tasks import label
from storage import communities as community_store
from storage import expiry as expiry_store
from storage import honours as honour_store
from storage import ledger as store
from storage import members as member_store
from storage.db import Connection, Database
from storage.ledger import TaskEntry as TaskEntry
from storage.outbox import enqueue
from storage.periods import ALL, month_key, week_key
from storage.timeutil import DEFAULT_TIMEZONE

ASK_GRACE = timedelta(minutes=10)  # a first honour's group announcement waits this long after the question
MILESTONES = {1: "first_task", 10: "tasks_10", 50: "tasks_50", 100: "tasks_100"}
EARNING_REASONS = ("task_completed", "task_auto_confirmed", "event_attended", "case_resolved", "revoke")
PAGE_SIZE = 10


@dataclass(frozen=True)
class Entry:
    id: int
    delta: int
    reason: str
    note: str | None
    task_id: int | None
    task_title: str | None
    created_at: datetime


@dataclass(frozen=True)
class Summary:
    member_id: int
    balance: int
    ledger_sum: int
    this_month: int
    last: list[Entry]
    expiring: list[expiry.Expiring] = field(default_factory=list)  # what expires when (policy on)


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class Rank:
    place: int
    name: str | None      # None: the member opted out of appearing by name
    points: int
    is_me: bool = False
    member_id: int | None = None  # the person named (None: an organisation, or a person not named)


async def _member(db: Database, tg_user_id: int) -> tuple[int, int | None, str]:
    account = await store.account_by_tg(db, tg_user_id)
    if account is None:
        raise NotRegistered()
    return account.member_id, account.community_id, account.tz


def month_start(now: datetime, tz: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def week_start(now: datetime, tz: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _entry(e: store.Entry) -> Entry:
    return Entry(e.id, e.delta, e.reason, e.note, e.task_id, label(e.task_title, e.task_description), e.created_at)


async def summary(db: Database, *, tg_user_id: int, now: datetime, last: int = 5) -> Summary:
    """/points: one read for the member, their community, balance, sums and latest rows (it was one
    per figure); what expires is read only where the community's policy is on."""
    f = await db.read(lambda conn: store.figures(conn, tg_user_id, lambda tz: month_start(now, tz), last))
    if f is None:
        raise NotRegistered()
    a = f.account
    community = None if a.community_id is None else expiry_store.Community(int(a.community_id), a.tz, f.settings)
    return Summary(a.member_id, f.balance, f.total, f.earned, [_entry(r) for r in f.last],
                   await expiry.upcoming_in(db, a.member_id, community, now))


async def history(db: Database, *, tg_user_id: int, page: int = 0, page_size: int = PAGE_SIZE) -> Page:
    member_id, _c, _tz = await _member(db, tg_user_id)
    total = await store.count_of(db, member_id)
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)
    rows = await store.entries(db, member_id, limit=page_size, offset=page * page_size)
    return Page([_entry(r) for r in rows], page, pages, total)


async def leaderboard(db: Database, *, tg_user_id: int, now: datetime, period: str = "month", by: str = "people",
                      limit: int = 10) -> list[Rank]:
    """Points earned (credits minus revokes; spending does not count) per person or organisation."""
    if period not in ("week", "month", "all") or by not in ("people", "org"):
        raise InvalidInput()
    member_id, community_id, tz = await _member(db, tg_user_id)
    # Running totals kept by a trigger on the ledger (migration 0080): ten index rows, not a sum.
    key = {"week": week_key(now, tz), "month": month_key(now, tz)}.get(period, ALL)
    if by == "people":
        people = await store.top_people(db, community_id, key, limit)
        return [Rank(i + 1, None if e.opt_out else str(e.name or "?"), e.points, e.subject_id == member_id,
                     None if e.opt_out else e.subject_id) for i, e in enumerate(people)]
    orgs = await store.top_organisations(db, community_id, key, limit)
    return [Rank(i + 1, str(e.name), e.points) for i, e in enumerate(orgs)]


async def totals_mismatches(db: Database) -> list[tuple[int, str, int, str, int, int]]:
    """Running totals that differ from a fresh sum of the ledger: (community, scope, subject, period,
    kept, summed). Empty when they agree; ``linli doctor`` and the tests check it."""
    summed: dict[store.TotalKey, int] = {}
    for r in await store.earnings(db, EARNING_REASONS):
        for scope, subject in (("m", r.member_id), ("o", r.organisation_id)):
            if subject is None:
                continue
            for period in (ALL, month_key(r.created_at, r.tz), week_key(r.created_at, r.tz)):
                k = (r.community_id, scope, int(subject), period)
                summed[k] = summed.get(k, 0) + r.delta
    kept = await store.kept_totals(db)
    return [(*k, kept.get(k, 0), summed.get(k, 0)) for k in sorted(set(kept) | set(summed))
            if kept.get(k, 0) != summed.get(k, 0)]


async def set_opt_out(db: Database, *, tg_user_id: int, opt_out: bool, now: datetime) -> bool:
    member_id, _c, _tz = await _member(db, tg_user_id)
    async with db.transaction() as conn:
        await store.set_leaderboard_opt_out(conn, member_id, opt_out, now)
    return opt_out


# -- honours -------------------------------------------------------------------------------
async def _grant(conn: Connection, *, member_id: int, code: str, now: datetime,
                 params: dict[str, object] | None = None) -> bool:
    m = await honour_store.honoured(conn, member_id)
    if m is None:
        return False
    if not await honour_store.insert(conn, community_id=m.community_id, member_id=member_id, code=code, now=now):
        return False
    payload = {"code": code, **(params or {})}
    if m.tg_user_id is not None:
        await enqueue(conn, chat_id=int(m.tg_user_id), kind="honour_member", now=now, payload=payload,
                      member_id=member_id, dedupe_key=f"honour:{member_id}:{code}")
    announce_at = now
    if not m.announce_asked and m.tg_user_id is not None:
        # Never asked (no claim since asking began): asked now, and the group hears of it only
        # after a while, so the answer counts (the group message reads the consent when it is sent).
        await member_store.ask_announce(conn, member_id=member_id, tg_user_id=int(m.tg_user_id), now=now)
        announce_at = now + ASK_GRACE
    if m.announce_consent and m.community_id is not None:
        group = await honour_store.group_chat_in(conn, m.community_id)
        if group is not None:
            await enqueue(conn, chat_id=group, kind="honour_group", now=now,
                          payload={**payload, "member_id": member_id, "community_id": int(m.community_id)},
                          dedupe_key=f"honour:{member_id}:{code}:group", not_before=announce_at)
    return True


async def grant_task_honours(conn: Connection, *, member_id: int, now: datetime) -> list[str]:
    """Milestones after a completed claim (first task, 10, 50, 100); each granted once."""
    count = await honour_store.completed_claims(conn, member_id)
    granted = []
    for n, code in MILESTONES.items():
        if count >= n and await _grant(conn, member_id=member_id, code=code, now=now, params={"count": n}):
            granted.append(code)
    return granted


async def grant_month_top(db: Database, *, community_id: int, month: str, now: datetime) -> int | None:
    """The month's top volunteer (``month`` = 'YYYY-MM' in the community's time zone); granted once."""
    tz = await community_store.timezone_of(db, community_id) or DEFAULT_TIMEZONE
    year, mon = (int(x) for x in month.split("-"))
    start = datetime(year, mon, 1, tzinfo=ZoneInfo(tz))
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=ZoneInfo(tz))
    async with db.transaction() as conn:
        top = await store.top_earner(conn, community_id, start, end, EARNING_REASONS)
        if top is None:
            return None
        member_id, pts = top
        await _grant(conn, member_id=member_id, code=f"top_month:{month}", now=now,
                     params={"month": month, "points": pts})
        return member_id


async def sweep_month_top(db: Database, now: datetime) -> int:
    """Once a month, per community: grant last month's top volunteer (in the community's time zone).

    Remembered in ``kv`` so the sweep does the work once; the honour itself is unique anyway.
    """
    granted = 0
    for zone in await honour_store.active_communities(db):
        local = now.astimezone(ZoneInfo(str(zone.tz or DEFAULT_TIMEZONE)))
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        last_month = (first - timedelta(days=1)).strftime("%Y-%m")
        key = f"month_top:{zone.community_id}:{last_month}"
        if await honour_store.done(db, key):
            continue
        if await grant_month_top(db, community_id=zone.community_id, month=last_month, now=now) is not None:
            granted += 1
        async with db.transaction() as conn:
            await honour_store.remember_done(conn, key, now)
    return granted


async def task_entries(db: Database, *, task_id: int) -> list[TaskEntry]:
    """The ledger rows of one task (entry number, member name, points, reason), for staff to revoke."""
    return await store.task_entries(db, task_id)
