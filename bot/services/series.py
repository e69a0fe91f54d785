"""Recurring events: staff publish a series (every Saturday 9:00–11:00 for 8 weeks, every weekday,
weekly on chosen days); each occurrence becomes its own event through ``tasks.create_task`` (own
places, card and attendance), posted ``series_days_ahead`` days before it starts (a community
setting, 7 by default) by the series job (bot/jobs/series.py, which calls ``post_due``).

Times are the community's local times: an occurrence on 2026-05-09 at 09:00 starts at 09:00 in the
community's time zone whatever the offset that day. A series remembers the next occurrence not yet
posted and when it is due (``next_day``, ``next_post_at``), so the job's idle run is one indexed
read. Posting is idempotent: the event is created with ``submit_key = "series:<id>:<day>"`` and the
occurrence is recorded under the unique key (series, day), so a restart or a second run in
between never posts an occurrence twice.

Edits of the time and stopping from a date change the series, so every occurrence not yet posted
follows them; occurrences already posted are their own events and are left as they are (the
callers say so, and staff change or cancel those on their cards).

Staff edit a series' title, description, points or places from a day on (``plan_edit`` says what
will change, ``edit_from`` does it): the occurrences not yet posted take the new value, and so do
those already posted from that day on that have not started, unless someone has completed them
(pressed Done, or was confirmed) or, for places, more have claimed than the new number; their cards
are redrawn by the card job and their volunteers told, through ``tasks.apply_edit``, the same
change as a single event's edit, checked by the same rule (``tasks.edited_value``). Started and
finished events, and points already credited, never change. An edit from a day after the next
occurrence to post splits the series: it stops on that day and goes on as a new series (the same
days and times) with the new value, so the occurrences before that day keep the old one.

A series split so goes on as the new one: every later edit or stop of it (of the time, from a day
on, a stop) reaches the series it goes on as too, and a stop never moves its end past the day the
new one starts (that day would be posted twice).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.models import N_, DomainError, InvalidInput, NotAllowed, NotFound
from bot.services import tasks, waitlist
from storage import claims as claim_store
from storage import communities as community_store
from storage import members as member_store
from storage import series as store
from storage import tasks as task_store
from storage.db import Connection, Database
from storage.outbox import audit
from storage.series import Series
from storage.tasks import Task
from storage.timeutil import DEFAULT_TIMEZONE, from_db, to_db

log = logging.getLogger(__name__)

WEEKS_MAX = 26          # a series runs for 1 to 26 weeks
DAYS_AHEAD_MAX = 30     # posted at most 30 days ahead (tasks.MAX_AHEAD allows 90)
WEEKDAYS = 0b0011111    # Monday to Friday
EVERY_DAY = 0b1111111


class SeriesGone(NotFound):
    message = N_("This series no longer exists or has ended.")


def mask_of(days: set[int] | frozenset[int] | list[int]) -> int:
    """Weekday numbers (0 Monday ... 6 Sunday) → the stored bit mask."""
    return sum(1 << d for d in set(days) if 0 <= d <= 6)


def days_of(mask: int) -> list[int]:
    return [d for d in range(7) if mask >> d & 1]


def check_weeks(n: int) -> None:
    if not 1 <= n <= WEEKS_MAX:
        raise InvalidInput(N_("Please type a number of weeks from 1 to {n}."), n=WEEKS_MAX)


def parse_hm(text: str) -> time | None:
    """"9:00", "09:30" → a time of day; None if it is not one."""
    hour, sep, minute = text.strip().partition(":")
    if not sep or not hour.isdigit() or not minute.isdigit() or len(minute) != 2:
        return None
    h, m = int(hour), int(minute)
    return time(h, m) if 0 <= h <= 23 and 0 <= m <= 59 else None


def next_occurrence(s: Series, after: date | None) -> date | None:
    """The first day of the series after ``after`` (from its first day if None), or None if none is left."""
    day = date.fromisoformat(s.first_day) if after is None else max(after + timedelta(days=1),
                                                                     date.fromisoformat(s.first_day))
    end = date.fromisoformat(s.last_day)
    if s.stop_day is not None:
        end = min(end, date.fromisoformat(s.stop_day) - timedelta(days=1))
    while day <= end:
        if s.weekdays >> day.weekday() & 1:
            return day
        day += timedelta(days=1)
    return None


def starts(s: Series, day: date, tz: ZoneInfo) -> datetime:
    """When the occurrence of ``day`` starts (aware, the community's local time)."""
    hm = parse_hm(s.start_time) or time(9, 0)
    return datetime.combine(day, hm, tzinfo=tz)


async def tz_of(db: Database, community_id: int) -> ZoneInfo:
    """The community's time zone."""
    try:
        return ZoneInfo(await community_store.timezone_of(db, community_id) or DEFAULT_TIMEZONE)
    except (KeyError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


async def tz_of_conn(conn: Connection, community_id: int) -> ZoneInfo:
    """The community's time zone, read inside a transaction."""
    community = await community_store.get(conn, community_id)
    try:
        return ZoneInfo(community.timezone if community is not None else DEFAULT_TIMEZONE)
    except (KeyError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


async def _schedule(conn: Connection, series_id: int, tz: ZoneInfo) -> date | None:
    """Point the series at its next occurrence not yet posted (after the last one recorded)."""
    s = await store.get(conn, series_id)
    if s is None:
        return None
    last = await store.last_recorded(conn, series_id)
    day = next_occurrence(s, date.fromisoformat(last) if last else None)
    ahead = await store.days_ahead(conn, s.community_id)
    await store.set_next(conn, series_id, day.isoformat() if day else None,
                         starts(s, day, tz) - timedelta(days=ahead) if day else None)
    return day


# ---------------------------------------------------------------- creating
@dataclass(frozen=True)
class NewSeries:
    template: tasks.NewTask  # the first occurrence as the /publish dialog made it (kind "event")
    weekdays: int            # bit mask, see mask_of
    weeks: int


def _check_new(new: NewSeries, now: datetime) -> None:
    t = new.template
    if t.kind != "event" or t.starts_at is None or t.ends_at is None or not new.weekdays & EVERY_DAY:
        raise InvalidInput()
    check_weeks(new.weeks)
    tasks.check_slots(t.slots)
    if t.points is not None:
        tasks.check_points(t.points)
    tasks.check_time(t.starts_at, now)
    if not timedelta(0) < t.ends_at - t.starts_at <= timedelta(hours=24):
        raise InvalidInput(N_("Each event of a series must end within a day of its start."))


async def create_series(db: Database, now: datetime, creator_id: int, new: NewSeries) -> int:
    """Save a series (staff): its occurrences are posted by ``post_due``. The same ``submit_key``
    twice saves one series. Returns its id."""
    _check_new(new, now)
    t = new.template
    assert t.starts_at is not None and t.ends_at is not None
    async with db.transaction() as conn:
        creator = await member_store.get(conn, creator_id)
        if creator is None or creator.community_id is None:
            raise NotAllowed()
        community_id = int(creator.community_id)
    tz = await tz_of(db, community_id)
    local = t.starts_at.astimezone(tz)
    first_day = local.date()
    values = {
        "community_id": community_id, "created_by": creator_id, "category": t.category, "title": t.title,
        "description": t.description, "voice_file_id": t.voice_file_id, "slots": t.slots, "points": t.points,
        "organisation_id": t.organisation_id, "weekdays": new.weekdays, "start_time": local.strftime("%H:%M"),
        "minutes": int((t.ends_at - t.starts_at).total_seconds() // 60), "first_day": first_day.isoformat(),
        "last_day": (first_day + timedelta(days=7 * new.weeks - 1)).isoformat(), "submit_key": t.submit_key,
    }
    async with db.transaction() as conn:
        series_id = await store.insert(conn, now, values)
        existing = await store.get(conn, series_id)
        if existing is not None and existing.next_post_at is None and await store.last_recorded(conn, series_id) is None:
            await _schedule(conn, series_id, tz)
            await audit(conn, now=now, action="series.create", community_id=community_id, actor_id=creator_id,
                        object_type="series", object_id=series_id,
                        details={"weekdays": new.weekdays, "weeks": new.weeks})
    return series_id


def occurrence_count(s: Series) -> int:
    """How many occurrences the series has (before any stop)."""
    count, day = 0, next_occurrence(s, None)
    while day is not None:
        count += 1
        day = next_occurrence(s, day)
    return count


# ---------------------------------------------------------------- posting (the job)
async def post_due(db: Database, now: datetime) -> int:
    """Post every occurrence due by ``now`` (the series job); returns how many events were created."""
    posted = 0
    for series_id in await store.due(db, now):
        try:
            posted += await _post_series(db, now, series_id)
        except Exception:  # one bad series must not stop the others
            log.exception("posting series %s failed", series_id)
    return posted


async def _post_series(db: Database, now: datetime, series_id: int) -> int:
    posted = 0
    for _ in range(DAYS_AHEAD_MAX + 7):  # bounded: at most the horizon's days are due at once
        s = await store.load(db, series_id)
        if s is None or s.next_day is None or s.next_post_at is None or s.next_post_at > to_db(now):
            break
        tz = await tz_of(db, s.community_id)
        day = date.fromisoformat(s.next_day)
        task_id = await _create_occurrence(db, now, s, day, tz)
        async with db.transaction() as conn:
            await store.record(conn, series_id, s.next_day, task_id, now)
            await _schedule(conn, series_id, tz)
        posted += task_id is not None
    return posted


async def _create_occurrence(db: Database, now: datetime, s: Series, day: date, tz: ZoneInfo) -> int | None:
    """The event of one occurrence (None: passed over, e.g. it already started while the bot was down)."""
    start = starts(s, day, tz)
    if start <= now:
        log.info("series %s: the occurrence of %s started before it could be posted", s.id, day)
        return None
    new = tasks.NewTask(
        category=s.category, description=s.description, voice_file_id=s.voice_file_id, title=s.title,
        when_kind="at", starts_at=start, ends_at=start + timedelta(minutes=s.minutes), slots=s.slots,
        points=s.points, kind="event", organisation_id=s.organisation_id, submit_key=f"series:{s.id}:{day.isoformat()}")
    try:
        return await tasks.create_task(db, now, s.created_by, new, staff=True)
    except DomainError as err:  # the publisher left, a category went away...: not posted, said in the log
        log.warning("series %s: the occurrence of %s could not be posted: %s", s.id, day, err.message)
        return None


# ---------------------------------------------------------------- staff: list, edit, stop
async def _own(conn: Connection, staff_id: int, series_id: int) -> Series:
    """The series, if ``staff_id`` is staff of its community (the caller checked they are staff)."""
    s = await store.get(conn, series_id)
    actor = await member_store.get(conn, staff_id)
    if s is None:
        raise SeriesGone()
    if actor is None or actor.community_id != s.community_id:
        raise NotAllowed()
    return s


async def running(db: Database, community_id: int) -> list[Series]:
    """The community's series with occurrences still to post."""
    return await store.of_community(db, community_id)


@dataclass(frozen=True)
class Listed:
    """A series as /series lists it: ``split_from`` the series an edit from a later day split it off
    (it goes on as this one from its first day); ``goes_on_as`` the series split off it, by first
    day; ``posted_ahead`` when nothing is left to post: its events posted from today on."""

    series: Series
    split_from: int | None = None
    goes_on_as: tuple[Series, ...] = ()
    posted_ahead: tuple[int, ...] = ()


def _root(links: dict[int, int], series_id: int) -> int:
    seen = {series_id}
    while series_id in links and links[series_id] not in seen:
        series_id = links[series_id]
        seen.add(series_id)
    return series_id


async def listing(db: Database, community_id: int, now: datetime) -> list[Listed]:
    """/series: the community's series still running, and those with nothing left to post whose events
    already posted are still to come (to be seen; staff change or cancel those on their cards). A
    series split by an edit from a later day is listed next to the series it goes on as."""
    found = {s.id: s for s in await store.ended_with_events(db, community_id, now)}
    found.update({s.id: s for s in await store.of_community(db, community_id)})
    links = await store.split_from(db, community_id)
    out: list[Listed] = []
    for s in found.values():
        children = [found.get(k) or await store.load(db, k) for k, v in links.items() if v == s.id]
        goes_on = sorted((c for c in children if c is not None), key=lambda c: (c.first_day, c.id))
        ahead = () if s.next_day else tuple(await store.posted_to_come(db, s.id, now))
        out.append(Listed(s, links.get(s.id), tuple(goes_on), ahead))
    out.sort(key=lambda one: (-_root(links, one.series.id), one.series.first_day, one.series.id))
    return out


async def load(db: Database, series_id: int) -> Series | None:
    return await store.load(db, series_id)


async def load_in(db: Database, series_id: int, community_id: int | None) -> Series | None:
    """The series if it is the given community's (staff manage only their own community's series)."""
    s = await store.load(db, series_id)
    return s if s is not None and s.community_id == community_id else None


async def today(db: Database, community_id: int, now: datetime) -> date:
    return now.astimezone(await tz_of(db, community_id)).date()


async def _chain(conn: Connection, s: Series) -> list[Series]:
    """The series ``s`` goes on as (split off by edits from a later day), theirs in turn, and so on."""
    found: list[Series] = []
    todo = [s.id]
    while todo:
        for c in await store.continued_as(conn, todo.pop()):
            found.append(c)
            todo.append(c.id)
    return found


async def _change(db: Database, now: datetime, staff_id: int, series_id: int, changes: dict[str, object],
                  action: str) -> list[int]:
    """Apply ``changes`` to the series and the series it goes on as, and reschedule them; returns the
    events already posted from today on (left as they are)."""
    async with db.transaction() as conn:
        s = await _own(conn, staff_id, series_id)
        if s.next_day is None:
            raise SeriesGone()
        tz = await tz_of(db, s.community_id)
        from_day = str(changes.get("stop_day") or now.astimezone(tz).date().isoformat())
        chain = [s, *await _chain(conn, s)]
        posted: list[int] = []
        for one in chain:
            mine = dict(changes)
            later = [c.first_day for c in chain if c.first_day > one.first_day]
            if "stop_day" in mine and later:  # never past the day a series it goes on as starts: no day twice
                mine["stop_day"] = min(from_day, *later)
            await store.update(conn, one.id, now, mine)
            await _schedule(conn, one.id, tz)
            posted += await store.posted_from(conn, one.id, from_day)
        await audit(conn, now=now, action=action, community_id=s.community_id, actor_id=staff_id,
                    object_type="series", object_id=series_id,
                    details={**{k: str(v) for k, v in changes.items()}, "series": [one.id for one in chain]})
        return posted


async def edit_time(db: Database, now: datetime, staff_id: int, series_id: int, start: time, end: time) -> list[int]:
    """Every occurrence not yet posted runs from ``start`` to ``end`` (local); returns the posted ones."""
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if minutes <= 0:
        raise InvalidInput(N_("The end must be after the start ({start})."), start=start.strftime("%H:%M"))
    return await _change(db, now, staff_id, series_id, {"start_time": start.strftime("%H:%M"), "minutes": minutes},
                         "series.edit_time")


async def stop_from(db: Database, now: datetime, staff_id: int, series_id: int, day: date) -> list[int]:
    """No occurrence on or after ``day`` is posted; returns those already posted from then on (left
    as they are: staff cancel them on their cards if they wish)."""
    s = await store.load(db, series_id)
    if s is not None and day < await today(db, s.community_id, now):
        raise InvalidInput(N_("That day has already passed. Please choose today or a later day."))
    return await _change(db, now, staff_id, series_id, {"stop_day": day.isoformat()}, "series.stop")


async def set_days_ahead(db: Database, now: datetime, staff_id: int, days: int) -> None:
    """The community's posting horizon: occurrences are posted ``days`` days before they start."""
    if not 1 <= days <= DAYS_AHEAD_MAX:
        raise InvalidInput(N_("Please type a number from 1 to {n}."), n=DAYS_AHEAD_MAX)
    async with db.transaction() as conn:
        actor = await member_store.get(conn, staff_id)
        if actor is None or actor.community_id is None or not actor.is_staff:
            raise NotAllowed()
        await store.set_days_ahead(conn, actor.community_id, days)
        tz = await tz_of(db, actor.community_id)
        for s in await store.of_community(db, actor.community_id, limit=1000):
            await _schedule(conn, s.id, tz)
        await audit(conn, now=now, action="series.days_ahead", community_id=actor.community_id, actor_id=staff_id,
                    object_type="community", object_id=actor.community_id, details={"days": days})


async def days_ahead(db: Database, community_id: int) -> int:
    return await store.days_ahead(db, community_id)


# ---------------------------------------------------------------- staff: edit from a day on
EDIT_FIELDS = ("title", "description", "points", "slots")


@dataclass(frozen=True)
class EditPlan:
    """What an edit of a series from ``from_day`` on changes: shown before it is confirmed, then done."""

    series_id: int
    field: str
    old: int | str | None   # the series' value until now (points None: the category's)
    new: int | str
    from_day: date
    change: list[int]       # events already posted, not started, that take the new value
    kept: list[int]         # events already posted from that day on that stay as they are
    split: bool             # the day is after the next occurrence to post: the series goes on as a new one
    continued_as: int | None = None  # that new series, once done


def edit_value(field: str, text: str) -> int | str:
    """A series' new title, description, points or places, by the rule of a single event's edit."""
    if field not in EDIT_FIELDS:
        raise InvalidInput()
    return tasks.edited_value(field, text)


async def _takes_edit(conn: Connection, now: datetime, task: Task | None, field: str, new: int | str) -> bool | None:
    """Whether an event already posted takes the edit: True; False when it stays as it is (started,
    finished or cancelled, someone completed it, or more claimed than the new places); None when it
    already has the new value."""
    if task is None:
        return False
    if getattr(task, field) == new:
        return None
    if task.state not in tasks.EDITABLE_STATES or task.starts_at is None or from_db(task.starts_at) <= now:
        return False
    if await claim_store.count_in_tx(conn, task.id, "done") or await claim_store.count_in_tx(conn, task.id, "completed"):
        return False
    return not (field == "slots" and await claim_store.taken(conn, task.id) > int(new))


async def _plan(conn: Connection, now: datetime, staff_id: int, series_id: int, field: str, text: str,
                from_day: date) -> tuple[Series, EditPlan]:
    """The edit, checked inside the transaction that shows or does it."""
    new = edit_value(field, text)
    s = await _own(conn, staff_id, series_id)
    actor = await member_store.get(conn, staff_id)
    if actor is None or not actor.is_staff:
        raise NotAllowed()
    if s.next_day is None:
        raise SeriesGone()
    tz = await tz_of_conn(conn, s.community_id)
    if from_day < now.astimezone(tz).date():
        raise InvalidInput(N_("That day has already passed. Please choose today or a later day."))
    last = _last_day(s)
    if last is None or from_day > last:
        raise InvalidInput(N_("The series has no event on or after that day (its last is on {day})."),
                           day=(last or date.fromisoformat(s.last_day)).isoformat())
    change: list[int] = []
    kept: list[int] = []
    posted = await store.posted_from(conn, series_id, from_day.isoformat())
    for c in await _chain(conn, s):  # the series it goes on as start later: all theirs are from that day on
        posted += await store.posted_from(conn, c.id, c.first_day)
    for task_id in posted:
        takes = await _takes_edit(conn, now, await task_store.get(conn, task_id), field, new)
        if takes is not None:
            (change if takes else kept).append(task_id)
    # The same value from a later day changes nothing of this series: no new one to go on as.
    split = from_day > date.fromisoformat(s.next_day) and getattr(s, field) != new
    return s, EditPlan(series_id, field, getattr(s, field), new, from_day, change, kept, split=split)


def _last_day(s: Series) -> date | None:
    """The day of the series' last occurrence (after any stop), None if it has none."""
    end = date.fromisoformat(s.last_day)
    if s.stop_day is not None:
        end = min(end, date.fromisoformat(s.stop_day) - timedelta(days=1))
    first = date.fromisoformat(s.first_day)
    for back in range(7):
        day = end - timedelta(days=back)
        if day >= first and s.weekdays >> day.weekday() & 1:
            return day
    return None


async def plan_edit(db: Database, now: datetime, staff_id: int, series_id: int, field: str, text: str,
                    from_day: date) -> EditPlan:
    """What ``edit_from`` would change (nothing is changed)."""
    async with db.transaction() as conn:
        return (await _plan(conn, now, staff_id, series_id, field, text, from_day))[1]


async def edit_from(db: Database, now: datetime, staff_id: int, series_id: int, field: str, text: str,
                    from_day: date) -> EditPlan:
    """Staff change a series' ``field`` from ``from_day`` on (see the module's words). Done twice (a
    double tap, a redelivered update), the second changes and tells nothing more."""
    key = f"series:{series_id}:{field}:{from_day.isoformat()}:{_digest(text)}"
    async with db.transaction() as conn:
        split_before = await store.by_key(conn, key)
        if split_before is not None:  # this very edit split the series already: nothing more to do
            s = await _own(conn, staff_id, series_id)
            return EditPlan(series_id, field, getattr(s, field), edit_value(field, text), from_day, [], [],
                            split=True, continued_as=split_before)
        s, plan = await _plan(conn, now, staff_id, series_id, field, text, from_day)
        tz = await tz_of_conn(conn, s.community_id)
        continued_as = await _split(conn, now, s, plan, key, tz) if plan.split else None
        if not plan.split and getattr(s, plan.field) != plan.new:
            await store.update(conn, series_id, now, {plan.field: plan.new})
        for c in await _chain(conn, s):  # the series it goes on as (from later days) follow
            if c.id != continued_as and getattr(c, plan.field) != plan.new:
                await store.update(conn, c.id, now, {plan.field: plan.new})
        for task_id in plan.change:
            task = await task_store.get(conn, task_id)
            assert task is not None
            await tasks.apply_edit(conn, now, staff_id, task, plan.field, plan.new, via={"series": series_id},
                                   key=f"{key}:{_digest(str(getattr(task, plan.field)))}")  # 5 → 3 → 5: told thrice
        await audit(conn, now=now, action="series.edit", community_id=s.community_id, actor_id=staff_id,
                    object_type="series", object_id=series_id,
                    details={"field": plan.field, "old": plan.old, "new": plan.new, "from": from_day.isoformat(),
                             "events": plan.change, "continued_as": continued_as})
    if plan.field == "slots":
        for task_id in plan.change:  # more places: those waiting get them, first come first
            await waitlist.fill(db, now, task_id)
    return replace(plan, continued_as=continued_as)


def _digest(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()[:12]


async def _split(conn: Connection, now: datetime, s: Series, plan: EditPlan, key: str, tz: ZoneInfo) -> int:
    """The series stops on ``plan.from_day`` and goes on from then as a new series with the new value
    (the same key twice: the same new series)."""
    values = {
        "community_id": s.community_id, "created_by": s.created_by, "category": s.category, "title": s.title,
        "description": s.description, "voice_file_id": s.voice_file_id, "slots": s.slots, "points": s.points,
        "organisation_id": s.organisation_id, "weekdays": s.weekdays, "start_time": s.start_time,
        "minutes": s.minutes, "first_day": plan.from_day.isoformat(), "last_day": s.last_day, "submit_key": key,
    }
    values[plan.field] = plan.new
    new_id = await store.insert(conn, now, values)
    if s.stop_day is not None:
        await store.update(conn, new_id, now, {"stop_day": s.stop_day})
    await store.update(conn, s.id, now, {"stop_day": plan.from_day.isoformat()})
    await _schedule(conn, new_id, tz)
    await _schedule(conn, s.id, tz)
    return new_id
