"""Dialogs are saved by compare-and-set on a version: two lanes of one person (a button press
and a typed message are handled side by side) cannot overwrite each other's step."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from bot import dialogs
from storage import dialogs as store
from storage.db import Database

USER = 4242


class _Ctx:
    """What bot.dialogs needs of a handler's context: the database and the clock."""

    def __init__(self, db: Database, now: datetime) -> None:
        self.db = db
        self._now = now

    def now(self) -> datetime:
        return self._now


async def test_two_lanes_one_step_each_the_later_is_refused(db: Database, now: datetime) -> None:
    ctx = _Ctx(db, now)
    await dialogs.start(ctx, USER, "request", "when", {"desc": "Buns"})  # type: ignore[arg-type]
    button_lane = await dialogs.load(ctx, USER)  # type: ignore[arg-type]
    typing_lane = await dialogs.load(ctx, USER)  # type: ignore[arg-type]
    assert button_lane is not None and typing_lane is not None
    button_lane.step, button_lane.data["when"] = "where", "today"
    typing_lane.step, typing_lane.data["when"] = "at", "at"

    results = await asyncio.gather(dialogs.save(ctx, button_lane), dialogs.save(ctx, typing_lane),  # type: ignore[arg-type]
                                   return_exceptions=True)

    assert results[0] is None and isinstance(results[1], dialogs.DialogMoved), results
    stored = await store.get(db, USER)
    assert stored is not None and (stored.step, stored.data["when"]) == ("where", "today")
    assert stored.version == button_lane.version == typing_lane.version + 1


async def test_a_lane_cannot_bring_back_a_cancelled_dialog(db: Database, now: datetime) -> None:
    ctx = _Ctx(db, now)
    await dialogs.start(ctx, USER, "register", "name", {"lang": "en"})  # type: ignore[arg-type]
    typing_lane = await dialogs.load(ctx, USER)  # type: ignore[arg-type]
    assert typing_lane is not None
    await dialogs.finish(ctx, USER)  # /cancel in the other lane  # type: ignore[arg-type]
    typing_lane.step = "phone"
    with pytest.raises(dialogs.DialogMoved):
        await dialogs.save(ctx, typing_lane)  # type: ignore[arg-type]
    assert await store.get(db, USER) is None


async def test_saves_in_one_lane_follow_each_other(db: Database, now: datetime) -> None:
    ctx = _Ctx(db, now)
    dialog = await dialogs.start(ctx, USER, "register", "lang", {})  # type: ignore[arg-type]
    for step in ("role", "name", "phone"):
        dialog.step = step
        await dialogs.save(ctx, dialog)  # type: ignore[arg-type]
    await dialogs.set_value(ctx, dialog, "_q", 17)  # type: ignore[arg-type]  # bookkeeping: the version stays
    dialog.step = "area"
    await dialogs.save(ctx, dialog)  # type: ignore[arg-type]
    stored = await store.get(db, USER)
    assert stored is not None and (stored.step, stored.data["_q"], stored.version) == ("area", 17, 5)


async def test_starting_again_replaces_the_dialog(db: Database, now: datetime) -> None:
    ctx = _Ctx(db, now)
    old = await dialogs.start(ctx, USER, "register", "name", {"lang": "en"})  # type: ignore[arg-type]
    await dialogs.start(ctx, USER, "request", "cat", {"draft": "x"})  # type: ignore[arg-type]
    old.step = "phone"
    with pytest.raises(dialogs.DialogMoved):  # the register lane read the dialog before /request replaced it
        await dialogs.save(ctx, old)  # type: ignore[arg-type]
    stored = await store.get(db, USER)
    assert stored is not None and (stored.flow, stored.step) == ("request", "cat")


async def test_a_dialog_keeps_its_mark_and_a_new_one_draws_another(db: Database, now: datetime) -> None:
    """The mark its buttons carry stays while the dialog runs (a flow that replaces its data, a
    bookkeeping value), and a dialog started again has another; an old dialog without one reads ""."""
    ctx = _Ctx(db, now)
    first = await dialogs.start(ctx, USER, "request", "cat", {"k": 1})  # type: ignore[arg-type]
    assert first.gen and dialogs.button("cat", "shopping") == f"d:cat:shopping~{first.gen}"
    assert dialogs.pressed(f"d:cat:shopping~{first.gen}") == ("cat", "shopping", first.gen)
    first.data = {"desc": "Buns"}  # as the request flow does: data replaced by its draft
    first.step = "when"
    await dialogs.save(ctx, first)  # type: ignore[arg-type]
    again = await dialogs.load(ctx, USER)  # type: ignore[arg-type]
    assert again is not None and again.gen == first.gen and again.data == {"desc": "Buns"}
    await dialogs.set_value(ctx, again, "_q", 7)  # type: ignore[arg-type]
    again = await dialogs.load(ctx, USER)  # type: ignore[arg-type]
    assert again is not None and again.gen == first.gen and again.data == {"desc": "Buns", "_q": 7}
    second = await dialogs.start(ctx, USER, "request", "cat")  # type: ignore[arg-type]
    assert second.gen != first.gen and dialogs.button("cat", "x").endswith(f"~{second.gen}")
    async with db.transaction() as conn:  # a dialog saved before marks existed
        await conn.execute("UPDATE dialogs SET data = ? WHERE tg_user_id = ?", ('{"desc": "Old"}', USER))
    old = await dialogs.load(ctx, USER)  # type: ignore[arg-type]
    assert old is not None and old.gen == "" and dialogs.button("cat", "x") == "d:cat:x"
    assert dialogs.pressed("d:cat:x") == ("cat", "x", "")
