"""Check-in at the venue (issue 21): staff open check-in for an event and show its QR code (a
``start=ci_<token>`` deep link) or its short code; volunteers who hold a place scan it or type the
code within the event's check-in window and are checked in. ``/closeevent`` then starts from the
check-ins (``unticked``).

The rules, in one place:

- the window (``window``): from ``EARLY`` before the start to the end (an event without an end:
  ``LENGTH`` after its start; without a start: from when check-in is opened);
- only staff of the event's community (or a super-admin) open it, only for an event that is still
  open and whose window has not ended; opening it again shows the same code;
- a token or short code names one event: it checks in only there, only within that event's window;
- only someone holding a place (an active claim) is checked in; checking in twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import codes
from bot.clock import short_local
from bot.models import N_, DomainError, InvalidState, NotFound
from bot.services.access import require_registered, require_staff_for
from bot.services.tasks import EVENT_OPEN_STATES, label
from storage import checkins as store
from storage.db import Database, Row
from storage.timeutil import opt_from_db

EARLY = timedelta(minutes=30)   # check-in opens this long before the start
LENGTH = timedelta(hours=3)     # the end of an event that has none
OPEN_STATES = EVENT_OPEN_STATES   # check-in works while the event is open (until it is closed or cancelled)
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ"  # letters only (no I, L, O): never mistaken for an event number
CODE_LENGTH = 6
TOKEN_BYTES = 12


class NotAnEvent(DomainError):
    message = N_("Task #{id} is not an event: check-in is only for events.")


class CheckinOver(DomainError):
    message = N_("Check-in for “{event}” has ended.")


class TooEarly(DomainError):
    message = N_("Check-in for “{event}” opens at {when}. Please try again then.")


class WrongCode(DomainError):
    message = N_("Sorry, that check-in code is not right. Please look at the code shown at the venue and try again.")


class NoPlace(DomainError):
    message = N_("Sorry, you do not have a place at “{event}”, so I cannot check you in. Please ask the staff"
                 " at the venue.")


@dataclass(frozen=True)
class Window:
    opens: datetime | None   # None: from whenever check-in is opened
    closes: datetime | None  # None: until the event is closed

    def before(self, now: datetime) -> bool:
        return self.opens is not None and now < self.opens

    def after(self, now: datetime) -> bool:
        return self.closes is not None and now >= self.closes


def window(starts_at: datetime | None, ends_at: datetime | None) -> Window:
    """The one rule for when an event's check-in works."""
    opens = starts_at - EARLY if starts_at is not None else None
    closes = ends_at if ends_at is not None else (starts_at + LENGTH if starts_at is not None else None)
    return Window(opens, closes)


def event_window(event: Row) -> Window:
    return window(opt_from_db(event["starts_at"]), opt_from_db(event["ends_at"]))


@dataclass(frozen=True)
class Opened:
    event: Row
    token: str
    short_code: str
    window: Window
    came: int = 0   # of those holding a place, how many checked in so far
    held: int = 0   # how many hold a place


@dataclass(frozen=True)
class CheckedIn:
    event: Row
    first_time: bool  # False: they were checked in already (nothing changed)


async def _task(db: Database, task_id: int) -> Row:
    task = await store.event(db, task_id)
    if task is None:
        raise NotFound()
    return task


def _only_events(task: Row) -> None:
    if task["kind"] != "event":
        raise NotAnEvent(id=task["id"])


def _name(event: Row) -> str:
    return label(event["title"], event["description"]) or f"#{event['id']}"


async def open_checkin(db: Database, *, task_id: int, tg_user_id: int, admin_ids: Collection[int],
                       now: datetime) -> Opened:
    """Staff open check-in for an event (again: the same code)."""
    found = await store.event(db, task_id)
    staff = await require_staff_for(db, tg_user_id, admin_ids, int(found["community_id"]) if found else None)
    event = await _task(db, task_id)
    _only_events(event)
    win = event_window(event)
    if event["state"] not in OPEN_STATES:
        raise InvalidState()
    if win.after(now):
        raise CheckinOver(event=_name(event))
    row = await store.code_of(db, task_id)
    for _draw in range(20):  # a new token and code; drawn again in the rare case another event has one
        if row is not None:
            break
        row = await store.add_code(db, task_id=task_id, token=codes.token_urlsafe(TOKEN_BYTES),
                                   short_code=codes.text(CODE_ALPHABET, CODE_LENGTH),
                                   opened_by=staff.id if staff is not None else None, now=now)
    if row is None:
        raise DomainError()
    came, held = await store.counts(db, task_id)
    return Opened(event, str(row["token"]), str(row["short_code"]), win, came, held)


def normalise_code(text: str) -> str:
    """What someone typed as a short code (``codes.typed``: full-width letters too, spaces dropped)."""
    return codes.typed(text)


def looks_like_code(text: str | None) -> bool:
    """Typed words that could be a check-in short code: six of its letters and little else ("abc def",
    full-width letters too)."""
    if text is None or len(text.strip()) > 2 * CODE_LENGTH:
        return False
    code = normalise_code(text)
    return len(code) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in code)


async def is_code(db: Database, text: str | None) -> bool:
    """Whether ``text`` is the short code of an event's check-in (opened by staff, open or not)."""
    return looks_like_code(text) and await store.event_of_short_code(db, normalise_code(text or "")) is not None


async def check_in(db: Database, *, tg_user_id: int, now: datetime, token: str | None = None,
                   short_code: str | None = None) -> CheckedIn:
    """A volunteer scanned the QR code (``token``) or typed the short code."""
    member = await require_registered(db, tg_user_id)
    if token is not None:
        task_id = await store.event_of_token(db, token)
    else:
        task_id = await store.event_of_short_code(db, normalise_code(short_code or ""))
    if task_id is None:
        raise WrongCode()
    event = await _task(db, task_id)  # codes are only ever given to events
    if event["community_id"] != member.community_id:
        raise WrongCode()  # another community's event: not one of theirs to know of
    if not await store.holds_place(db, task_id, member.id):
        raise NoPlace(event=_name(event))
    win = event_window(event)
    if event["state"] not in OPEN_STATES or win.after(now):
        raise CheckinOver(event=_name(event))
    if win.before(now):
        assert win.opens is not None
        raise TooEarly(event=_name(event), when=short_local(win.opens, event["tz"]))
    done = await store.record(db, task_id=task_id, member_id=member.id, via="qr" if token else "code", now=now)
    if done is None:
        raise NoPlace(event=_name(event))
    return CheckedIn(event, done)


async def unticked(db: Database, task_id: int, member_ids: Sequence[int]) -> list[int] | None:
    """For the attendance list: the positions in ``member_ids`` of those who did not check in, or
    None when check-in was never opened for the event (then everyone starts ticked)."""
    if await store.code_of(db, task_id) is None:
        return None
    present = await store.checked_in(db, task_id)
    return [i for i, mid in enumerate(member_ids) if mid not in present]
