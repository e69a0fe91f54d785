"""What a registered resident reads points to the buttons they see, never to a slash command:
an elderly neighbour taps "👤 我的资料", she does not type "/deleteme". ``RESIDENT_FACING`` marks the
catalog entries a resident reads, and a few a volunteer reads where a button does the same (add an entry
here when you write one)."""

from __future__ import annotations

import re

from bot.i18n import _messages, translator

RESIDENT_FACING = (
    "Privacy, in plain words: we store your name, phone number, area and role. Only community staff and the"
    " volunteer or resident of a task you share see your phone and address; they are never posted in the group."
    " To erase your data at any time: 👤 My profile, then 🗑 Erase my data.",
    "To change or erase it, press a button below.",
    "No problem, you can add it later: 👤 My profile, then ✏ Change my details.",
    "Your profile changes were not saved. To try again, open 👤 My profile and press ✏ Change my details.",
    "Your request is sent (#{id}). I will tell you when a volunteer takes it. You can see it any time: press 🗂 My tasks.",
    "Staff changed task #{id}. Please press 🗂 My tasks to see the details.",
    "This list is for volunteers. To help neighbours too: 👤 My profile, then ✏ Change my details, and choose"
    " “both”. To ask for help, press 🆘 Ask for help.",
    "Good news: {name} is coming to help you.",
    "If you no longer need help, press “✖ Cancel this request”.",
    "Did {names} help you with “{title}”?",
    "You are registered. Welcome, {name}!",
    "You are registered and have joined {org}. Welcome, {name}!",
    "We are sorry: nobody was free to help with “{title}” in time. You can post it again from the menu, or call the"
    " community staff and they will help you.",
    "Please tell us what you need, in a few words (up to {n} characters).\n"
    "🎤 You can also hold the microphone button and speak: the volunteer will hear your voice message.",
    "🎤 Or simply hold the microphone button and say what you need.",
    "What: 🎤 your voice message ({s} s). Only the volunteer who takes it will hear it.",
    "If this is right, press ✅ Submit. To change something, press ✏ Change….",
    "Thank you for your voice message. Asking for help is for residents, and you are registered as a volunteer."
    " If you need help yourself too: 👤 My profile, then ✏ Change my details, and choose “both”.",
    "Thank you for your voice message. Asking for help is for residents. If you need help, please call the"
    " community staff.",
    "Your unfinished request was not sent. To start it again, press 🆘 or send /request.",
    "Sorry, let us start again: please send /request.",
    "Already redeemed: your voucher is in /vouchers.",
    "You have no vouchers yet. See /rewards to redeem your points.",
    "Only volunteers can claim tasks. To help too, send /start and choose “🤝 Both”.",
    "You are registered in {here} already. One Telegram account belongs to one community: to move to {there},"
    " first delete your registration with /deleteme (the points you earned stay with {here}), then open the link"
    " again.",
    "Asking for help is for residents. You are registered as a volunteer: see open tasks with /tasks. If you also"
    " need help yourself, send /start and choose “Both”.",
    "Please type the check-in code shown at the venue (6 letters), or scan its QR code with your phone's camera.",
    "Please type the check-in code shown at the venue, in letters. To do something else, press a button of the menu.",
    "✅ You are checked in at “{event}”. Thank you for coming!",
    "You are already checked in at “{event}”. Nothing more is needed.",
    "Sorry, you do not have a place at “{event}”, so I cannot check you in. Please ask the staff at the venue.",
    "Sorry, that check-in code is not right. Please look at the code shown at the venue and try again.",
    "Check-in for “{event}” opens at {when}. Please try again then.",
    "Check-in for “{event}” has ended.",
    # Volunteers' digest and honours: the menu's ⚙ Settings, not /settings (the leaderboard has its own button).
    "To change or stop this digest, press ⚙ Settings in the menu.",
    "When you reach a milestone (your first task done, 10 tasks…), may we congratulate you by name in the volunteer"
    " group? You can change this later with ⚙ Settings in the menu.",
    "The volunteer group hears of it too. To keep your honours private, press ⚙ Settings in the menu.",
)
# Some English message ids above still name a command: the English catalog (bot/locales/en) says the
# button instead, so what people read is checked, not the id.

COMMAND = re.compile(r"(?<![\w/])/[a-z]+")


def test_resident_facing_texts_are_translated_and_name_no_slash_command() -> None:
    zh, en = translator("zh"), translator("en")
    for msgid in RESIDENT_FACING:
        chinese = zh(msgid)
        assert chinese != msgid, f"not translated: {msgid!r}"
        assert not COMMAND.search(chinese), chinese
        assert not COMMAND.search(en(msgid)), msgid


def test_the_buttons_they_are_told_to_press_are_named_as_the_menu_names_them() -> None:
    zh, en = translator("zh"), translator("en")
    for label in ("👤 My profile", "🗂 My tasks", "🆘 Ask for help", "🎫 My vouchers", "🎁 Points supermarket",
                  "📋 Open tasks", "⚙ Settings"):
        assert any(zh(label) in zh(m) for m in RESIDENT_FACING), label
        assert any(en(label) in en(m) for m in RESIDENT_FACING), label
    for label in ("✏ Change my details", "🗑 Erase my data", "🤝 Both"):
        assert any(zh(label) in zh(m) for m in RESIDENT_FACING), label
        assert any(en(label) in en(m) for m in RESIDENT_FACING), label


QUOTED_BUTTON = re.compile(r"“([^\w\s“”{][^“”]{0,30})”")  # “🙋 领取任务”: a quoted label opening with a symbol


def test_a_button_a_text_tells_people_to_press_is_one_they_see() -> None:
    """A text that names a button names it as the button reads: the waiting list once said “🙋 认领”
    for the card's “🙋 领取任务”. (“✖” alone is the first character of each “✖ Remove {name}” button.)"""
    for lang in ("zh", "en"):
        catalog = _messages(lang)
        texts = {v if isinstance(v, str) else v[0] for v in catalog.values()} | set(catalog)
        for msgid, value in catalog.items():
            text = value if isinstance(value, str) else value[0]
            for label in QUOTED_BUTTON.findall(text):
                assert label in texts or label == "✖", (lang, label, msgid)
