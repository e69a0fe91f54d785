"""The ``dialogs`` table: one open conversation per Telegram user (flow, step, data, version).

Every write but ``put`` is conditional on the version the caller read, so a lane that read an
older dialog learns it (``False``) instead of overwriting what another lane wrote meanwhile.

A dialog's mark (``gen``, set when it starts and kept until it ends) is stored with its data under
``_g``; the flows replace ``data`` as they like without losing it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.db import Database, pg_twin
from storage.timeutil import to_db


@dataclass
class DialogRow:
    tg_user_id: int
    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    gen: str = ""  # which dialog of this person it is: its buttons carry it (bot.dialogs.button)


async def get(db: Database, tg_user_id: int) -> DialogRow | None:
    row = await db.fetchone("SELECT flow, step, data, version FROM dialogs WHERE tg_user_id = ?", (tg_user_id,))
    if row is None:
        return None
    data = json.loads(row["data"] or "{}")
    gen = str(data.pop(_GEN, "") or "")  # none in a dialog started before dialogs had marks
    return DialogRow(tg_user_id, str(row["flow"]), str(row["step"]), data, int(row["version"]), gen)


async def put(db: Database, row: DialogRow, now: datetime) -> int:
    """Start a dialog, replacing any other of the same person; returns the new version."""
    async with db.transaction() as conn:
        async with conn.execute(
            "INSERT INTO dialogs (tg_user_id, flow, step, data, updated_at, version) VALUES (?, ?, ?, ?, ?, 1)"
            " ON CONFLICT (tg_user_id) DO UPDATE SET flow = excluded.flow, step = excluded.step,"
            " data = excluded.data, updated_at = excluded.updated_at, version = dialogs.version + 1"
            " RETURNING version",
            (row.tg_user_id, row.flow, row.step, _json(row), to_db(now)),
        ) as cur:
            found = await cur.fetchone()
    return int(found[0]) if found else 1


async def compare_and_set(db: Database, row: DialogRow, now: datetime) -> int | None:
    """Write ``row`` if the stored dialog still has ``row.version``; the new version, or None if it moved
    (another lane saved, cancelled or finished it since ``row`` was read)."""
    async with db.transaction() as conn:
        async with conn.execute(
            "UPDATE dialogs SET flow = ?, step = ?, data = ?, updated_at = ?, version = version + 1"
            " WHERE tg_user_id = ? AND version = ? RETURNING version",
            (row.flow, row.step, _json(row), to_db(now), row.tg_user_id, row.version),
        ) as cur:
            found = await cur.fetchone()
    return int(found[0]) if found else None


_SET_VALUE = pg_twin(
    "UPDATE dialogs SET data = json_set(data, '$.' || ?, json(?)) WHERE tg_user_id = ? AND version = ?",
    "UPDATE dialogs SET data = jsonb_set(data::jsonb, ARRAY[CAST(? AS TEXT)], CAST(CAST(? AS TEXT) AS jsonb))::text"
    " WHERE tg_user_id = ? AND version = ?")


async def set_value(db: Database, row: DialogRow, key: str, value: Any) -> None:
    """Set one key of the data, only in the dialog as ``row`` read it (a bookkeeping value such as the
    id of the message that asked: the version stays, so no lane's next save is refused for it)."""
    async with db.transaction() as conn:
        await conn.execute(_SET_VALUE, (key, json.dumps(value), row.tg_user_id, row.version))


async def delete(db: Database, tg_user_id: int) -> None:
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM dialogs WHERE tg_user_id = ?", (tg_user_id,))


_GEN = "_g"


def _json(row: DialogRow) -> str:
    data = {k: v for k, v in row.data.items() if k != _GEN}
    return json.dumps({**data, _GEN: row.gen} if row.gen else data, ensure_ascii=False)
