"""Spec validation: parameters, types, lengths, entities, keyboards."""

from __future__ import annotations

import aiohttp
import httpx
import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from telegram.error import BadRequest

from bot.devkit.sandbox import FakeTelegram, User, load_spec
from bot.devkit.sandbox.html import EntityParseError, parse_html, parse_markdown_v2

TOKEN = "123456:TEST"


async def raw(server: FakeTelegram, method: str, token: str = TOKEN, **kwargs: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}{token}/{method}", **kwargs) as resp:  # type: ignore[arg-type]
            return resp.status, await resp.json()


async def test_valid_send_message(server: FakeTelegram, tg: Bot, alice: User) -> None:
    message = await tg.send_message(alice.id, "你好, neighbour")
    assert message.text == "你好, neighbour"
    assert message.chat.id == alice.id
    assert message.from_user.id == 123456
    stored = server.last_message(alice)
    assert stored is not None and stored.text == "你好, neighbour" and stored.from_bot
    assert server.calls[-1].method == "sendMessage" and server.calls[-1].ok


async def test_unknown_parameter_refused_and_lenient_mode(server: FakeTelegram, alice: User) -> None:
    status, body = await raw(server, "sendMessage", json={"chat_id": alice.id, "text": "x", "colour": "red"})
    assert status == 400
    assert body == {"ok": False, "error_code": 400, "description": "Bad Request: unknown parameter colour"}
    assert server.errors[-1].description == "Bad Request: unknown parameter colour"
    server.strict = False
    status, body = await raw(server, "sendMessage", json={"chat_id": alice.id, "text": "x", "colour": "red"})
    assert status == 200 and body["ok"]


async def test_unknown_method_wrong_token_missing_and_mistyped(server: FakeTelegram, alice: User) -> None:
    status, body = await raw(server, "sendTelepathy", json={})
    assert (status, body["description"]) == (404, "Not Found")
    status, body = await raw(server, "getMe", token="999:WRONG")
    assert (status, body["description"]) == (401, "Unauthorized")
    status, body = await raw(server, "sendMessage", json={"text": "x"})
    assert status == 400 and body["description"] == "Bad Request: chat_id is empty"
    status, body = await raw(server, "sendMessage", json={"chat_id": alice.id})
    assert body["description"] == "Bad Request: message text is empty"
    status, body = await raw(server, "sendMessage", json={"chat_id": alice.id, "text": "x", "disable_notification": "maybe"})
    assert status == 400 and "disable_notification" in body["description"]
    status, body = await raw(server, "sendMessage", json={"chat_id": alice.id, "text": "  "})
    assert body["description"] == "Bad Request: message text is empty"


async def test_text_length_limits(tg: Bot, alice: User) -> None:
    await tg.send_message(alice.id, "a" * 4096)
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await tg.send_message(alice.id, "a" * 4097)
    await tg.send_message(alice.id, "邻" * 4096)


async def test_html_counts_visible_characters(server: FakeTelegram, tg: Bot, alice: User) -> None:
    text = "<b>" + "a" * 4000 + "</b>" + "&lt;" * 96
    message = await tg.send_message(alice.id, text, parse_mode="HTML")
    assert len(message.text) == 4096
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await tg.send_message(alice.id, "<i>" + "a" * 4097 + "</i>", parse_mode="HTML")
    message = await tg.send_message(
        alice.id, '<b>粗</b> <a href="https://example.org">link</a> <tg-spoiler>s</tg-spoiler> &amp;', parse_mode="HTML"
    )
    assert message.text == "粗 link s &"
    kinds = [(e.type, e.offset, e.length) for e in message.entities]
    assert kinds == [("bold", 0, 1), ("text_link", 2, 4), ("spoiler", 7, 1)]
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await tg.send_message(alice.id, "<b></b>", parse_mode="HTML")


@pytest.mark.parametrize(
    "text",
    ["<b>unclosed", "<blink>x</blink>", "a < b", "<b><i>x</b></i>", "</b>", '<span class="x">y</span>'],
)
async def test_bad_html_refused(tg: Bot, alice: User, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)Can't parse entities"):
        await tg.send_message(alice.id, text, parse_mode="HTML")


def test_html_parser_details() -> None:
    text, entities = parse_html("<pre><code class=\"language-python\">x = 1</code></pre>&#128512;&quot;")
    assert text == 'x = 1😀"'
    assert {"type": "pre", "offset": 0, "length": 5, "language": "python"} in entities
    text, entities = parse_html("😀<b>x</b>")
    assert entities == [{"type": "bold", "offset": 2, "length": 1}]  # UTF-16 offsets
    with pytest.raises(EntityParseError):
        parse_html("<a href='x'>unterminated")


def test_markdown_v2_reserved_characters() -> None:
    assert parse_markdown_v2("*bold* and \\. done")[0] == "bold and . done"
    with pytest.raises(EntityParseError, match=r"(?i)reserved"):
        parse_markdown_v2("Price: 5.00")


async def test_caption_limit(tg: Bot, alice: User) -> None:
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await tg.send_photo(alice.id, b"\xff\xd8photo", caption="c" * 1025)
    await tg.send_photo(alice.id, b"\xff\xd8photo", caption="<b>" + "c" * 1024 + "</b>", parse_mode="HTML")


async def test_callback_data_byte_limit(tg: Bot, alice: User) -> None:
    def markup(data: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton("按钮", callback_data=data)]])

    await tg.send_message(alice.id, "ok", reply_markup=markup("x" * 64))
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await tg.send_message(alice.id, "no", reply_markup=markup("x" * 65))
    await tg.send_message(alice.id, "ok", reply_markup=markup("邻" * 21))  # 63 bytes
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await tg.send_message(alice.id, "no", reply_markup=markup("邻" * 22))  # 66 bytes, 22 characters
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await tg.send_message(alice.id, "no", reply_markup=markup(""))


async def test_keyboard_structure_rules(server: FakeTelegram, alice: User) -> None:
    def send(markup: object) -> object:
        return raw(server, "sendMessage", json={"chat_id": alice.id, "text": "k", "reply_markup": markup})

    status, body = await send({"inline_keyboard": [[{"text": "plain"}]]})
    assert status == 400 and "inline keyboard button" in body["description"]
    status, body = await send({"inline_keyboard": [[{"text": "two", "url": "https://a.b", "callback_data": "x"}]]})
    assert status == 400
    status, body = await send({"inline_keyboard": [[{"text": "", "callback_data": "x"}]]})
    assert status == 400 and "BUTTON_TEXT_INVALID" in body["description"]
    status, body = await send({"inline_keyboard": [[{"text": "link", "url": "not a url"}]]})
    assert status == 400 and "BUTTON_URL_INVALID" in body["description"]
    status, body = await send({"inline_keyboard": [[{"text": "link", "url": "https://example.org/x"}]]})
    assert status == 200
    status, body = await send({"inline_keyboard": [[{"text": "t", "callback_data": 5}]]})
    assert status == 400
    status, body = await send({"keyboard": [[{"text": "Share", "request_contact": True}], ["plain string"]]})
    assert status == 200, body
    status, body = await send({"remove_keyboard": True})
    assert status == 200
    status, body = await send({"force_reply": True, "input_field_placeholder": "p" * 65})
    assert status == 400
    status, body = await send({"inline_keyboard": [[{"text": "t", "callback_data": "x", "bogus": 1}]]})
    assert status == 400 and "bogus" in body["description"]


async def test_form_multipart_and_get_encodings(server: FakeTelegram, alice: User) -> None:
    markup = '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}'
    status, body = await raw(server, "sendMessage", data={"chat_id": str(alice.id), "text": "form", "reply_markup": markup})
    assert status == 200 and body["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "A"
    form = aiohttp.FormData()
    form.add_field("chat_id", str(alice.id))
    form.add_field("document", b"file-bytes", filename="notes.txt", content_type="text/plain")
    status, body = await raw(server, "sendDocument", data=form)
    assert status == 200 and body["result"]["document"]["file_name"] == "notes.txt"
    async with httpx.AsyncClient() as client:
        resp = await client.get(f"{server.base_url}{TOKEN}/getMe")
        assert resp.json()["result"]["username"] == "linli_test_bot"
        resp = await client.get(f"{server.base_url}{TOKEN}/sendMessage", params={"chat_id": alice.id, "text": "q"})
        assert resp.json()["result"]["text"] == "q"


async def test_nested_objects_validated(tg: Bot, server: FakeTelegram, alice: User) -> None:
    from telegram import BotCommand, BotCommandScopeChat, LinkPreviewOptions, ReplyParameters

    first = await tg.send_message(alice.id, "first")
    reply = await tg.send_message(
        alice.id, "second", reply_parameters=ReplyParameters(first.message_id),
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )
    assert reply.reply_to_message is not None and reply.reply_to_message.message_id == first.message_id
    with pytest.raises(BadRequest, match=r"(?i)replied not found"):
        await tg.send_message(alice.id, "x", reply_parameters=ReplyParameters(9999))
    await tg.set_my_commands([BotCommand("start", "开始")], scope=BotCommandScopeChat(alice.id), language_code="zh")
    assert server.commands({"type": "chat", "chat_id": alice.id}, "zh")[0]["command"] == "start"
    assert await tg.get_my_commands() == ()
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await tg.set_my_commands([BotCommand("Bad-Command", "x")])
    status, _ = await raw(server, "setMyCommands", json={"commands": [{"command": "a", "description": "b"}],
                                                            "scope": {"type": "galaxy"}})
    assert status == 400


async def test_reply_keyboard_input(tg: Bot, server: FakeTelegram, alice: User) -> None:
    await tg.send_message(
        alice.id, "share?",
        reply_markup=ReplyKeyboardMarkup([[KeyboardButton("分享手机号", request_contact=True)], ["取消"]]),
    )
    contact_message = await server.press_reply_button(alice, None, "分享手机号")
    assert contact_message.data["contact"]["user_id"] == alice.id
    cancel = await server.press_reply_button(alice, None, "取消")
    assert cancel.text == "取消"
    from bot.devkit.sandbox import SandboxError

    with pytest.raises(SandboxError):
        await server.press_reply_button(alice, None, "nonexistent")


def test_bundled_spec_contents() -> None:
    spec = load_spec()
    assert "sendMessage" in spec.methods and "answerCallbackQuery" in spec.methods
    for name in ("InlineKeyboardButton", "ReplyKeyboardMarkup", "BotCommandScopeChat", "InputMediaPhoto", "MessageEntity"):
        assert name in spec.types
    text_field = next(f for f in spec.methods["sendMessage"]["fields"] if f["name"] == "text")
    assert text_field["limit"] == [1, 4096, "characters"]
    assert spec.method_name("sendmessage") == "sendMessage"


async def test_nested_media_and_options_validation(server: FakeTelegram, alice: User) -> None:
    status, body = await raw(server, "sendMediaGroup", json={
        "chat_id": alice.id, "media": [{"type": "hologram", "media": "x"}, {"type": "photo", "media": "y"}]})
    assert status == 400
    status, body = await raw(server, "sendMediaGroup", json={"chat_id": alice.id, "media": "not json"})
    assert status == 400
    status, body = await raw(server, "sendMessage", json={
        "chat_id": alice.id, "text": "x", "link_preview_options": {"is_disabled": "yes please"}})
    assert status == 400 and "is_disabled" in body["description"]
    status, body = await raw(server, "sendMessage", json={
        "chat_id": alice.id, "text": "x", "entities": [{"type": "bold", "offset": 0}]})
    assert status == 400 and "length" in body["description"]
    status, body = await raw(server, "sendMessage", json={
        "chat_id": alice.id, "text": "x", "entities": [{"type": "bold", "offset": 0, "length": 1}]})
    assert status == 200 and body["result"]["entities"] == [{"type": "bold", "offset": 0, "length": 1}]
    status, body = await raw(server, "sendMessage", data={"chat_id": str(alice.id), "text": "x", "reply_markup": "{oops"})
    assert status == 400 and "can't parse" in body["description"]


async def test_an_edited_text_is_counted_after_parsing_as_a_sent_one_is(tg: Bot, alice: User) -> None:
    """Telegram counts an edit's 4096 characters once the markup is parsed, as for sendMessage."""
    sent = await tg.send_message(alice.id, "short")
    escaped = "<b>" + "&amp;" * 4000 + "</b>"          # 20,007 characters written, 4,000 shown
    edited = await tg.edit_message_text(escaped, alice.id, sent.message_id, parse_mode="HTML")
    assert isinstance(edited, Message) and edited.text == "&" * 4000
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await tg.edit_message_text("&lt;" * 4097, alice.id, sent.message_id, parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await tg.edit_message_text("<b>" + "x" * 10 + "&am", alice.id, sent.message_id, parse_mode="HTML")
