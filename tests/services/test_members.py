"""Service rules of communities and members."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from bot.models import NotRegistered
from bot.services import communities as comm
from bot.services import ledger
from bot.services import members as svc
from storage import members as member_store
from storage.db import Database


@pytest.mark.parametrize("bad", ["", "   ", "😀😀😀", "x" * 41, "\u202e\u200f", None])
def test_clean_name_refuses(bad: str | None) -> None:
    with pytest.raises(svc.BadName):
        svc.clean_name(bad)


def test_clean_name_strips_control_and_direction_marks() -> None:
    assert svc.clean_name("  Wang\u202e \x07Li\u200f ") == "Wang Li"
    assert svc.clean_name("<b>Bob</b>") == "<b>Bob</b>"  # kept as typed, escaped when shown


async def test_setup_twice_refused_and_categories(db: Database, now: datetime) -> None:
    res = await comm.setup_community(db, name="Sunshine", group_chat_id=-5, tg_user_id=1, language="en", now=now)
    assert [c["code"] for c in await comm.categories(db, res.community_id)] == [
        "shopping", "escort", "repair", "company", "tech", "other"]
    with pytest.raises(comm.GroupAlreadySetUp):
        await comm.setup_community(db, name="Again", group_chat_id=-5, tg_user_id=1, language="en", now=now)
    with pytest.raises(comm.BadCommunityName):
        await comm.setup_community(db, name=" ", group_chat_id=-6, tg_user_id=1, language="en", now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM communities") == 1
    assert await db.fetchval("SELECT is_staff FROM members WHERE tg_user_id = 1") == 1


async def test_register_org_and_erase_keeps_totals(db: Database, now: datetime) -> None:
    res = await comm.setup_community(db, name="Sunshine", group_chat_id=-5, tg_user_id=1, language="en", now=now)
    mid = await svc.save_registration(db, tg_user_id=2, community_id=res.community_id,
                                      data={"role": "both", "name": "Li", "phone": "+86138", "address": "B3", "lang": "zh"}, now=now)
    with pytest.raises(NotRegistered):
        await svc.join_organisation(db, tg_user_id=99, now=now, code="x")
    _oid, code = await svc.create_organisation(db, community_id=res.community_id, name="Bank", actor_id=None, now=now)
    with pytest.raises(svc.OrgNameTaken):
        await svc.create_organisation(db, community_id=res.community_id, name="Bank", actor_id=None, now=now)
    with pytest.raises(svc.BadInviteCode):
        await svc.join_organisation(db, tg_user_id=2, now=now, code="nope")
    assert await svc.join_organisation(db, tg_user_id=2, now=now, code=code) == "Bank"
    joins = await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action = 'organisation.joined'")
    with pytest.raises(svc.AlreadyInOrganisation):  # a second tap on the invite link: said so, nothing recorded
        await svc.join_organisation(db, tg_user_id=2, now=now, code=code)
    assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action = 'organisation.joined'") == joins == 1
    # staff: adding twice or removing a non-member of staff changes nothing and says so
    assert await svc.set_staff(db, community_id=res.community_id, member_id=mid, staff=True, actor_id=None, now=now)
    assert not await svc.set_staff(db, community_id=res.community_id, member_id=mid, staff=True, actor_id=None,
                                   now=now)
    other = await svc.save_registration(db, tg_user_id=3, community_id=res.community_id,
                                        data={"role": "volunteer", "name": "Wu", "lang": "zh"}, now=now)
    assert not await svc.set_staff(db, community_id=res.community_id, member_id=other, staff=False, actor_id=None,
                                   now=now)
    assert await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'staff.%'") == 1
    async with db.transaction() as conn:
        await ledger.credit(conn, member_id=mid, amount=7, reason="adjust", key="t:1", now=now)
    assert await svc.erase(db, tg_user_id=2, now=now)
    row = await db.fetchone("SELECT * FROM members WHERE id = ?", (mid,))
    assert row is not None
    assert (row["tg_user_id"], row["display_name"], row["phone"], row["address"]) == (None, None, None, None)
    assert row["balance"] == 7
    assert await db.fetchval("SELECT SUM(delta) FROM ledger") == 7
    assert not await svc.erase(db, tg_user_id=2, now=now)


async def test_areas_rename_and_remove(db: Database, now: datetime) -> None:
    from bot.models import DomainError, NotFound
    from tests.factories import make_community, make_member

    cid = await make_community(db, now)
    other = await make_community(db, now)
    for name in ("Building 3", "Building 4"):
        await svc.add_area(db, community_id=cid, name=name, now=now)
    await svc.add_area(db, community_id=other, name="Building 3", now=now)
    area3 = int(await db.fetchval("SELECT id FROM areas WHERE community_id = ? AND name = 'Building 3'", (cid,)))
    mid = await make_member(db, now, cid, volunteer=True, area_id=area3)
    await svc.rename_area(db, community_id=cid, old="  Building   3 ", new="East block", now=now)
    assert await db.fetchval("SELECT a.name FROM members m JOIN areas a ON a.id = m.area_id WHERE m.id = ?",
                             (mid,)) == "East block"
    assert await db.fetchval("SELECT name FROM areas WHERE community_id = ?", (other,)) == "Building 3"
    with pytest.raises(DomainError):
        await svc.rename_area(db, community_id=cid, old="East block", new="Building 4", now=now)
    with pytest.raises(NotFound):
        await svc.rename_area(db, community_id=cid, old="Nowhere", new="X", now=now)
    await svc.remove_area(db, community_id=cid, name="East block", now=now)
    assert [a["name"] for a in await comm.areas(db, cid)] == ["Building 4"]
    assert await db.fetchval("SELECT area_id FROM members WHERE id = ?", (mid,)) == area3  # kept
    with pytest.raises(NotFound):
        await svc.remove_area(db, community_id=cid, name="East block", now=now)
    await svc.add_area(db, community_id=cid, name="East block", now=now)     # adding it again restores it
    assert sorted(a["name"] for a in await comm.areas(db, cid)) == ["Building 4", "East block"]


async def test_erase_lets_go_of_tasks_and_claims(db: Database, now: datetime) -> None:
    """Found by an exploratory review: after /deleteme a resident's open request (with her typed
    address) lived on and was sent to the next volunteer, and a volunteer's place stayed taken."""
    from bot.services import tasks
    from tests.factories import make_community, make_member

    cid = await make_community(db, now)
    gran = await make_member(db, now, cid, tg_user_id=201, resident=True, address="Lotus Lane 12 Flat 502")
    vol = await make_member(db, now, cid, tg_user_id=202, volunteer=True)
    vol2 = await make_member(db, now, cid, tg_user_id=203, volunteer=True)
    mine = await tasks.create_task(db, now, gran, tasks.NewTask("shopping", description="Buns to flat 502 please",
                                                                address="Lotus Lane 12 Flat 502"))
    other = await tasks.create_task(db, now, gran, tasks.NewTask("shopping", description="Milk"))
    await tasks.claim(db, now, vol, other)
    await tasks.claim(db, now, vol2, mine)
    async with db.transaction() as conn:  # the details (her name, phone, address) went out to both
        await conn.execute("UPDATE outbox SET state = 'sent', message_id = 40 + member_id, voice_message_id = 50"
                           " WHERE kind = 'task_claimed_volunteer'")
    assert await svc.erase(db, tg_user_id=202, now=now)   # the volunteer leaves: their place is free again
    assert await db.fetchval("SELECT state FROM tasks WHERE id = ?", (other,)) == "open"
    assert await db.fetchval("SELECT state FROM claims WHERE member_id = ?", (vol,)) == "withdrawn"
    assert await svc.erase(db, tg_user_id=201, now=now)   # the resident leaves: her requests go, and her address
    rows = {r["id"]: (r["state"], r["address"]) for r in await db.fetchall("SELECT id, state, address FROM tasks")}
    assert rows == {mine: ("cancelled", None), other: ("cancelled", None)}
    # what she typed is kept only as the group saw it: a card redrawn later cannot unmask it
    assert await db.fetchval("SELECT description FROM tasks WHERE id = ?", (mine,)) == "Buns to flat *** please"
    told = await db.fetchall("SELECT chat_id, kind, payload FROM outbox"
                             " WHERE kind IN ('task_cancelled', 'task_details_removed', 'forget')")
    # The leaver's other messages went with the rest of their data, but the details in their chat
    # are still cut down (a withdraw always does that): by a row that needs only the message ids.
    assert {(r["chat_id"], r["kind"]) for r in told} == {(203, "task_cancelled"), (203, "task_details_removed"),
                                                         (202, "forget")}
    forget = next(r for r in told if r["kind"] == "forget")
    assert {k: v for k, v in json.loads(forget["payload"]).items() if k != "outbox_id"} == {
        "message_id": 40 + vol, "voice_message_id": 50, "media": None, "sent_at": None,
        "why": "left"}  # not a file; sent_at not set here


async def test_staff_candidate_is_a_registered_member_here(db: Database, now: datetime) -> None:
    """Whom /staff add|remove may name: a registered, not erased member of that community, by the
    message replied to or by member number."""
    from tests.factories import make_community, make_member

    cid = await make_community(db, now)
    other = await make_community(db, now)
    ann = await make_member(db, now, cid, tg_user_id=801, name="Ann")
    unreg = await make_member(db, now, cid, tg_user_id=802, registered=False)
    away = await make_member(db, now, other, tg_user_id=803, name="Bo")
    found = await svc.staff_candidate(db, community_id=cid, tg_user_id=801, first_name="Annie")
    assert found == svc.StaffCandidate(ann, "Annie")
    assert await svc.staff_candidate(db, community_id=cid, member_id=ann) == svc.StaffCandidate(ann, "Ann")
    for tg in (802, 803, 999):
        with pytest.raises(svc.NotRegisteredHere):
            await svc.staff_candidate(db, community_id=cid, tg_user_id=tg, first_name="x")
    assert await svc.staff_candidate(db, community_id=cid, member_id=unreg) is None
    assert await svc.staff_candidate(db, community_id=cid, member_id=away) is None
    await svc.erase(db, tg_user_id=801, now=now)
    assert await svc.staff_candidate(db, community_id=cid, member_id=ann) is None


async def test_private_chat_note_reads_the_language_until_one_is_written(db: Database, now: datetime) -> None:
    """The read that marks someone reachable also gives their language, which stands in for reading
    it again in the same update only while no language has been written since."""
    assert (await svc.note_private_chat(db, 1)) == (svc.SeenLanguage(1, member_store.language_writes(), None), None)
    await comm.setup_community(db, name="Sunshine", group_chat_id=-5, tg_user_id=1, language="en", now=now)
    seen, _member = await svc.note_private_chat(db, 1)
    assert (seen.language, seen.still(1), seen.still(2)) == ("en", True, False)
    assert await db.fetchval("SELECT started_bot + reachable FROM members WHERE tg_user_id = 1") == 2
    await svc.set_language(db, tg_user_id=1, language="zh", now=now)
    assert not seen.still(1)  # read again: the answer is in the new language
    assert (await svc.note_private_chat(db, 1))[0].language == "zh"


async def test_finding_a_member_by_name_ignores_case_on_both_databases(db: Database, now: datetime) -> None:
    """Staff typing "wang" find "Wang Fang" on PostgreSQL as on SQLite (SQLite's LIKE ignores ASCII
    case, PostgreSQL's does not); Chinese names match as typed."""
    from tests.factories import make_community, make_member

    community = await make_community(db, now)
    await make_member(db, now, community, name="Wang Fang")
    await make_member(db, now, community, name="ZHAO Lei")
    await make_member(db, now, community, name="王芳")
    assert [m.display_name for m in await svc.find_members(db, community_id=community, text="wang")] == ["Wang Fang"]
    assert [m.display_name for m in await svc.find_members(db, community_id=community, text="Zhao l")] == ["ZHAO Lei"]
    assert [m.display_name for m in await svc.find_members(db, community_id=community, text="FANG")] == ["Wang Fang"]
    assert [m.display_name for m in await svc.find_members(db, community_id=community, text="王")] == ["王芳"]
