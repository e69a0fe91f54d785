"""Fair urgent alerts: an urgent ("as soon as possible") request also goes, in private, to a few
on-duty volunteers, and the pings rotate.

Among the on-duty volunteers of the community (not the requester), those in the request's area
come first, then those with the matching skill; within each of these, whoever had the fewest
pings today and, on a tie, was pinged least recently (never pinged: first) goes first; nobody in
their quiet hours is picked (the ping would not be sent, yet it would count). At most
``URGENT_PINGS`` are pinged per request and nobody more than the community's daily cap
(``urgent_daily_cap`` in the community settings, ``DAILY_CAP`` by default) per local day. The SQL
is in storage/alerts.py; the pings are counted in the same transaction as the request.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.models import InvalidInput
from bot.services.access import require_staff
from storage import alerts as store
from storage import communities as community_store
from storage.db import Connection, Database
from storage.outbox import audit, enqueue

URGENT_PINGS = 3  # at most this many on-duty volunteers are pinged per urgent request
DAILY_CAP = 6     # and nobody more often than this per day, unless the community says otherwise
CAP_CHOICES = (3, 6, 10)  # what staff can choose in /settings


def _settings(settings_json: str | None) -> dict[str, Any]:
    try:
        raw = json.loads(settings_json or "{}")
    except ValueError:
        return {}
    return raw if isinstance(raw, dict) else {}


def daily_cap(settings_json: str | None) -> int:
    """The community's daily cap per volunteer (a whole number of at least 1), else ``DAILY_CAP``."""
    value = _settings(settings_json).get("urgent_daily_cap")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else DAILY_CAP


async def daily_cap_of(db: Database, community_id: int) -> int:
    return daily_cap(await community_store.settings_of(db, community_id))


async def set_daily_cap(db: Database, *, community_id: int, tg_user_id: int, admin_ids: Collection[int], cap: int,
                        now: datetime) -> int:
    """Staff choose how many urgent alerts each volunteer may get a day (one of ``CAP_CHOICES``)."""
    if cap not in CAP_CHOICES:
        raise InvalidInput()
    staff = await require_staff(db, tg_user_id, admin_ids, community_id)
    async with db.transaction() as conn:
        raw = _settings(await community_store.settings_in(conn, community_id))
        raw["urgent_daily_cap"] = cap
        await community_store.set_settings(conn, community_id, json.dumps(raw, ensure_ascii=False))
        await audit(conn, now=now, action="community.urgent_daily_cap", community_id=community_id,
                    actor_id=None if staff is None else staff.id, object_type="community", object_id=community_id,
                    details={"cap": cap})
    return cap


async def ping_on_duty(conn: Connection, now: datetime, task_id: int, community_id: int,
                       requester_id: int, area_id: int | None, category: str) -> list[int]:
    """Ping the on-duty volunteers whose turn it is about urgent task ``task_id``; their member ids."""
    where = await store.place(conn, community_id)
    local = now.astimezone(ZoneInfo(where.tz))
    day = local.strftime("%Y-%m-%d")
    chosen = await store.pick_on_duty(conn, community_id=community_id, requester_id=requester_id, area_id=area_id,
                                      category=category, day=day, cap=daily_cap(where.settings), limit=URGENT_PINGS,
                                      hm=local.strftime("%H:%M"))
    pinged = []
    for v in chosen:
        if await enqueue(conn, chat_id=v.tg_user_id, member_id=v.member_id, kind="task_urgent_ping", now=now,
                         payload={"task_id": task_id, "day": day}, dedupe_key=f"urgent:{task_id}:{v.member_id}"):
            await store.record_ping(conn, v.member_id, day, now)
            pinged.append(v.member_id)
    return pinged


async def ping_not_sent(db: Database, member_id: int | None, payload: dict[str, Any]) -> None:
    """An urgent ping dropped when it was due (the task was taken meanwhile, or the volunteer's quiet
    hours began): it does not count toward their daily cap. Pings queued before the day was recorded
    in the payload are left counted."""
    day = payload.get("day")
    if member_id is not None and isinstance(day, str):
        await store.unrecord_ping(db, member_id, day)
