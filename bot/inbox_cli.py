"""``linli inbox``: how many updates are waiting, failed (waiting for a retry) and set aside; put
set-aside ones back with ``--retry`` (all) or ``--retry UPDATE_ID``. A running bot picks them up
within a second."""

from __future__ import annotations

import asyncio

from bot.config import Settings
from storage.db import DatabaseError, open_database
from storage.inbox import counts, retry_set_aside, set_aside_rows


def cmd_inbox(settings: Settings, retry: str | None) -> int:
    async def go() -> int:
        db = await open_database(settings.database_url)
        try:
            if retry is not None:
                which = None if retry == "all" else int(retry)
                n = await retry_set_aside(db, which)
                print(f"{n} set-aside update(s) put back to be handled")
            c = await counts(db)
            print(f"waiting: {c['waiting']}  failed (retrying): {c['failed']}  set aside: {c['set_aside']}"
                  f"  handled (last 7 days): {c['handled']}")
            for row in await set_aside_rows(db):
                print(f"  set aside: update {row.update_id} ({row.lane}, {row.attempts} attempts,"
                      f" received {row.received_at}): {row.error}")
            return 0
        finally:
            await db.close()

    if retry is not None and retry != "all" and not retry.isdigit():
        print("linli: --retry takes an update id or nothing (all)")
        return 2
    try:
        return asyncio.run(go())
    except DatabaseError as exc:
        print(f"linli: DATABASE_URL: {exc}")
        return 2
