"""Chats, messages, edits, callbacks, files, groups, migration."""

from __future__ import annotations

import asyncio

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from telegram.error import BadRequest, ChatMigrated, Forbidden

from bot.devkit.sandbox import FakeTelegram, PressRefused, SandboxError, User


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(text, callback_data=data)] for text, data in pairs])


async def test_forbidden_for_strangers_and_blocked_users(server: FakeTelegram, tg: Bot, alice: User) -> None:
    stranger = server.add_user("Bob")
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await tg.send_message(stranger.id, "hi")
    server.block_bot(alice)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await tg.send_message(alice.id, "hi")
    updates = await tg.get_updates()
    blocked = [u for u in updates if u.my_chat_member]
    assert blocked and blocked[-1].my_chat_member.new_chat_member.status == "kicked"
    await server.send_text(alice, None, "/start")  # writing again unblocks
    await tg.send_message(alice.id, "welcome back")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await tg.send_message(999, "nobody")
    assert any("blocked" in (c.description or "") for c in server.errors)


async def test_edit_rules(server: FakeTelegram, tg: Bot, alice: User) -> None:
    server.set_flood_limits(False)
    sent = await tg.send_message(alice.id, "<b>v1</b>", parse_mode="HTML", reply_markup=keyboard(("A", "a")))
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await tg.edit_message_text("<b>v1</b>", alice.id, sent.message_id, parse_mode="HTML", reply_markup=keyboard(("A", "a")))
    # Same text without markup removes the keyboard, which is a modification.
    edited = await tg.edit_message_text("<b>v1</b>", alice.id, sent.message_id, parse_mode="HTML")
    assert edited.reply_markup is None and edited.edit_date is not None
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await tg.edit_message_reply_markup(alice.id, sent.message_id)
    await tg.edit_message_reply_markup(alice.id, sent.message_id, reply_markup=keyboard(("B", "b")))
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await tg.edit_message_text("x", alice.id, 4242)
    user_message = server.messages(alice)[0]
    with pytest.raises(BadRequest, match=r"(?i)can't be edited"):
        await tg.edit_message_text("x", alice.id, user_message.message_id)
    stored = server.chat(alice).find(sent.message_id)
    assert stored is not None and len(stored.edits) == 2 and stored.buttons == ["B"]
    photo = await tg.send_photo(alice.id, b"\xff\xd8img", caption="old")
    await tg.edit_message_caption(alice.id, photo.message_id, caption="new")
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await tg.edit_message_caption(alice.id, photo.message_id, caption="new")
    assert await tg.delete_message(alice.id, sent.message_id)
    assert server.chat(alice).find(sent.message_id).deleted  # type: ignore[union-attr]
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await tg.delete_message(alice.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await tg.edit_message_text("gone", alice.id, sent.message_id)


async def test_callback_queries(server: FakeTelegram, tg: Bot, alice: User) -> None:
    sent = await tg.send_message(alice.id, "choose", reply_markup=keyboard(("是", "yes"), ("否", "no")))
    stored = server.chat(alice).find(sent.message_id)
    assert stored is not None
    with pytest.raises(PressRefused, match="DATA_INVALID") as refused:  # as Telegram refuses it
        await server.press_button(alice, stored, "maybe")
    assert refused.value.error == "DATA_INVALID" and isinstance(refused.value, SandboxError)
    query_id = await server.press_button(alice, stored, "yes")
    updates = await tg.get_updates()
    query = updates[-1].callback_query
    assert query is not None and query.id == query_id and query.data == "yes"
    assert query.message.message_id == sent.message_id and query.from_user.id == alice.id and query.chat_instance
    assert await query.answer("已确认", show_alert=True)
    answer = await server.wait_callback_answer(query_id, timeout=1)
    assert answer["text"] == "已确认" and answer["show_alert"] is True
    assert server.callback_answer(query_id) == answer
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await tg.answer_callback_query(query_id)
    late = await server.press_button(alice, sent.to_dict(), text="否")
    await asyncio.sleep(0.6)  # the fixture's callback window is 0.5 s
    with pytest.raises(BadRequest, match=r"(?i)query is too old and response timeout expired"):
        await tg.answer_callback_query(late)
    forged = await server.press_raw_callback(alice, stored, "admin:grant")
    assert (await tg.get_updates(offset=updates[-1].update_id + 1))[-1].callback_query.data == "admin:grant"
    assert server.callback_answer(forged) is None
    # A raw press on an inline message: no message at all; it is answered like any other.
    raw = await server.inject_callback(alice, "cl:1", inline_message_id="AAEAAQ")
    got = (await tg.get_updates(offset=updates[-1].update_id + 2))[-1].callback_query
    assert got.id == raw and got.message is None and got.inline_message_id == "AAEAAQ" and got.data == "cl:1"
    assert await got.answer("no")
    assert server.callback_answer(raw) == {"text": "no", "show_alert": False, "url": None, "cache_time": None}
    server.chat(alice).find(sent.message_id).deleted = True  # type: ignore[union-attr]
    with pytest.raises(PressRefused, match="MESSAGE_ID_INVALID"):
        await server.press_button(alice, stored, "yes")


async def test_file_upload_and_download_round_trip(server: FakeTelegram, tg: Bot, alice: User) -> None:
    payload = "邻里 report\n".encode() * 100
    sent = await tg.send_document(alice.id, payload, filename="report.txt", caption="monthly")
    document = sent.document
    assert document is not None and document.file_name == "report.txt" and document.file_size == len(payload)
    file = await tg.get_file(document.file_id)
    assert file.file_path and file.file_path.startswith(server.base_file_url)
    assert bytes(await file.download_as_bytearray()) == payload
    again = await tg.send_document(alice.id, document.file_id)
    assert again.document.file_unique_id == document.file_unique_id
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await tg.send_document(alice.id, "BAADnot-a-real-id")
    voice_message = await server.send_voice(alice, None, duration=7, data=b"OggS-voice")
    voice = voice_message.data["voice"]
    assert voice["duration"] == 7
    file = await tg.get_file(voice["file_id"])
    assert bytes(await file.download_as_bytearray()) == b"OggS-voice"
    album = await tg.send_media_group(alice.id, [InputMediaPhoto(b"\xff\xd8one", caption="1"), InputMediaPhoto(b"\xff\xd8two")])
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id and album[0].caption == "1"


async def test_group_privacy_mode(server: FakeTelegram, tg: Bot) -> None:
    owner = server.add_user("Owner")
    member = server.add_user("Member")
    group = server.add_group("楼栋群", creator=owner, members=[member])
    with pytest.raises(Forbidden, match="bot is not a member of the group chat"):
        await tg.send_message(group.id, "hello")
    await server.add_bot_to_group(group, added_by=owner)
    updates = await tg.get_updates()
    assert updates[0].my_chat_member.new_chat_member.status == "member"
    assert updates[1].message.new_chat_members[0].username == "linli_test_bot"
    offset = updates[-1].update_id + 1
    await server.send_text(member, group, "just chatting")
    await server.send_text(member, group, "/help")
    await server.send_text(member, group, "/help@linli_test_bot")
    await server.send_text(member, group, "/help@other_bot")
    await server.send_text(member, group, "hey @linli_test_bot")
    bot_message = await tg.send_message(group.id, "I am here")
    await server.send_text(member, group, "a reply", reply_to=bot_message.to_dict())
    texts = [u.message.text for u in await tg.get_updates(offset=offset)]
    assert texts == ["/help", "/help@linli_test_bot", "hey @linli_test_bot", "a reply"]
    assert len(server.messages(group)) == 8  # the sandbox itself sees everything
    server.bot.privacy_mode = False
    await server.send_text(member, group, "now visible")
    updates = await tg.get_updates(offset=offset + 4)
    assert updates[-1].message.text == "now visible"
    assert (await tg.get_me()).can_read_all_group_messages is True
    await server.remove_bot_from_group(group, owner)
    with pytest.raises(Forbidden, match="bot was kicked from the group chat"):
        await tg.send_message(group.id, "still here?")


async def test_chat_member_queries(server: FakeTelegram, tg: Bot) -> None:
    owner = server.add_user("Owner")
    admin = server.add_user("Admin")
    member = server.add_user("Member")
    group = server.add_group("管理群", creator=owner, admins=[admin], members=[member], supergroup=True)
    assert group.id < -1_000_000_000_000
    await server.add_bot_to_group(group, added_by=owner)
    assert (await tg.get_chat_member(group.id, owner.id)).status == "creator"
    assert (await tg.get_chat_member(group.id, admin.id)).status == "administrator"
    assert (await tg.get_chat_member(group.id, member.id)).status == "member"
    stranger = server.add_user("Stranger")
    assert (await tg.get_chat_member(group.id, stranger.id)).status == "left"
    admins = await tg.get_chat_administrators(group.id)
    assert {a.user.id for a in admins} == {owner.id, admin.id}
    assert await tg.get_chat_member_count(group.id) == 4
    chat = await tg.get_chat(group.id)
    assert chat.title == "管理群" and chat.type == "supergroup"
    sent = await tg.send_message(group.id, "rules")
    with pytest.raises(BadRequest, match=r"(?i)not enough rights"):
        await tg.pin_chat_message(group.id, sent.message_id)
    await server.set_bot_admin(group)
    assert await tg.pin_chat_message(group.id, sent.message_id)
    assert server.chat(group).find(sent.message_id).pinned  # type: ignore[union-attr]
    assert await tg.unpin_all_chat_messages(group.id)


async def test_migrate_group(server: FakeTelegram, tg: Bot) -> None:
    owner = server.add_user("Owner")
    group = server.add_group("Old group", creator=owner)
    await server.add_bot_to_group(group, added_by=owner)
    old_id = group.id
    supergroup = await server.migrate_group(group)
    assert supergroup.type == "supergroup" and supergroup.id != old_id
    with pytest.raises(ChatMigrated) as excinfo:
        await tg.send_message(old_id, "hello?")
    assert excinfo.value.new_chat_id == supergroup.id
    updates = await tg.get_updates()
    assert any(u.message and u.message.migrate_to_chat_id == supergroup.id for u in updates)
    assert any(u.message and u.message.migrate_from_chat_id == old_id for u in updates)
    message = await tg.send_message(supergroup.id, "hello supergroup")
    assert message.chat.id == supergroup.id


async def test_copy_forward_and_chat_actions(server: FakeTelegram, tg: Bot, alice: User) -> None:
    bob = server.add_user("Bob")
    await server.send_text(bob, None, "/start")
    original = await server.send_text(alice, None, "请转告 Bob")
    copied = await tg.copy_message(bob.id, alice.id, original.message_id)
    assert server.chat(bob).find(copied.message_id).text == "请转告 Bob"  # type: ignore[union-attr]
    forwarded = await tg.forward_message(bob.id, alice.id, original.message_id)
    assert forwarded.forward_origin is not None
    with pytest.raises(BadRequest, match=r"(?i)message to copy not found"):
        await tg.copy_message(bob.id, alice.id, 777)
    assert await tg.send_chat_action(alice.id, "typing")
    assert server.chat(alice).actions == ["typing"]
    contact = await tg.send_contact(alice.id, "+8613800000000", "Bob")
    assert contact.contact.phone_number == "+8613800000000"
    location = await tg.send_location(alice.id, 31.2, 121.5)
    assert location.location.latitude == pytest.approx(31.2)


async def test_unimplemented_methods_answer_true_and_are_recorded(server: FakeTelegram, tg: Bot, alice: User) -> None:
    assert await tg.set_message_reaction(alice.id, 1, "👍")
    assert server.unimplemented[-1].method == "setMessageReaction"
    assert await tg.set_my_description("邻里互助", language_code="zh")
    assert (await tg.get_my_description("zh")).description == "邻里互助"
    assert await tg.set_my_name("邻里")
    assert (await tg.get_my_name()).name == "邻里"
    from telegram import MenuButtonCommands

    assert await tg.set_chat_menu_button(menu_button=MenuButtonCommands())
    assert await tg.log_out() and await tg.close()


async def test_people_simulation_helpers(server: FakeTelegram, tg: Bot, alice: User) -> None:
    contact = await server.send_contact(alice, None, "+8613912345678")
    assert contact["contact"]["user_id"] == alice.id and contact["contact"]["phone_number"] == "+8613912345678"
    other = await server.send_contact(alice, None, "+8613000000000", own=False)
    assert "user_id" not in other["contact"]
    photo = await server.send_photo(alice, None, caption="看这里 #repair")
    assert photo["photo"][-1]["width"] == 800 and photo["caption_entities"][0]["type"] == "hashtag"
    sticker = await server.send_sticker(alice, None, emoji="🎉")
    assert sticker["sticker"]["emoji"] == "🎉"
    document = await server.send_document(alice, None, b"%PDF", file_name="a.pdf", mime_type="application/pdf")
    assert document["document"]["file_name"] == "a.pdf"
    location = await server.send_location(alice, None, 30.0, 120.0)
    assert "location" in location
    command = await server.send_text(alice, None, "/start join_group_7")
    assert command.entities == [{"type": "bot_command", "offset": 0, "length": 6}]
    updates = await tg.get_updates()
    kinds = [u.message.effective_attachment.__class__.__name__ if u.message.effective_attachment else "text"
             for u in updates if u.message]
    assert "Contact" in kinds and "Document" in kinds and "Location" in kinds and "Sticker" in kinds
    edited = await server.edit_text(alice, command, "/start other")
    assert edited.edits and (await tg.get_updates(offset=updates[-1].update_id + 1))[0].edited_message.text == "/start other"
    assert "Alice" in server.transcript() and "originally: /start join_group_7" in server.transcript()
    with pytest.raises(SandboxError):
        await server.send_text(alice, server.add_group("Closed", creator=server.add_user("X")), "let me in")


async def test_a_press_keeps_the_label_the_button_had(server: FakeTelegram, tg: Bot, alice: User) -> None:
    """The message's keyboard changes after the press (a dialog moves on): the transcript and the
    record still name the button that was pressed, not its callback data."""
    sent = await tg.send_message(alice.id, "Which category?", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("Shopping", callback_data="d:cat:shopping")]]))
    query = await server.press_button(alice, server.last_message(alice), "d:cat:shopping")
    await tg.edit_message_text("What do you need?", chat_id=alice.id, message_id=sent.message_id)
    assert server.callbacks[query].label == "Shopping"
    text = server.transcript()
    assert "Alice pressed [Shopping]" in text and "d:cat:shopping" not in text, text
