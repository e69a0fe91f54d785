"""Hostile inputs: what careless, confused or malicious people send a bot."""

from __future__ import annotations

TEXTS: list[str] = [
    "",
    " ",
    "\n\n\n",
    "a" * 5000,
    "长" * 4097,
    "😀" * 300,
    "👨‍👩‍👧‍👦" * 50,
    "<b>bold</b>",
    "<script>alert(1)</script>",
    "</b></i></code>",
    "<a href='javascript:alert(1)'>x</a>",
    "&lt;&gt;&amp;&#0;",
    "*bold* _it_ `code` [link](http://x) ~~s~~ ||sp||",
    "\\*escaped\\*",
    "\u202eevil RTL override\u202c",
    "\u200f\u200e\u200b\u2060",
    "\x00\x01\x02\x07\x1b[31mred",
    "\ufeffBOM",
    "'; DROP TABLE members; --",
    "1' OR '1'='1",
    "%s%s%s%n",
    "{0}{1}{name}{{}}",
    "${jndi:ldap://x}",
    "../../../../etc/passwd",
    "-1",
    "0",
    "-999999999999999999999999",
    "999999999999999999999999999999",
    "1e309",
    "NaN",
    "3.14",
    "0x7fffffff",
    "２０",
    "一百",
    "1970-01-01",
    "9999-12-31 23:59",
    "2000-02-30",
    "25:61",
    "yesterday",
    "+86 138 0013 8000",
    "13800138000",
    "null",
    "None",
    "true",
    "[]",
    "{}",
    '{"__proto__": 1}',
    "/start",
    "/start join_",
    "/start join_nonexistent",
    "/start " + "x" * 200,
    "/start v_AAAA",
    "/start merchant_zzz",
    "/start org_",
    "/setup",
    "/setup " + "x" * 3000,
    "/setup <b>x</b>",
    "/staff add",
    "/staff remove 1",
    "/areas add <i>x</i>",
    "/org new",
    "/org invite 999999",
    "/merchant new",
    "/publish",
    "/request",
    "/tasks -1",
    "/tasks 999999999999999999999",
    "/mytasks abc",
    "/points extra args",
    "/history -5",
    "/history 99999999999999999999",
    "/leaderboard forever",
    "/revoke 1 100",
    "/revoke -1",
    "/rewards manage",
    "/vouchers 1",
    "/stats 2099-13",
    "/report 1900-01",
    "/report 2026-13",
    "/export ../../etc",
    "/export 2026-01-01..1999-01-01",
    "/digest now",
    "/settings 25:00",
    "/language xx",
    "/deleteme",
    "/cancel",
    "/cancel@other_bot",
    "/help@linli_test_bot",
    "/unknowncommand",
    "/" + "a" * 100,
    "@linli_test_bot hi",
    "/start@linli_test_bot",
    "🆘",
    "Ask for help",
    "求助",
]

CALLBACK_DATA: list[str] = [
    "cl:abc",
    "cl:-1",
    "cl:0",
    "cl:99999999999999999999999999",
    "cl:1 OR 1=1",
    "cl:",
    "cl",
    "dt:abc",
    "wd:1",
    "rc:1",
    "cs:1",
    "done:1",
    "done:x",
    "cf:1:y",
    "cf:1:zz",
    "cf:-1:y",
    "d:nostep:x",
    "d:",
    "d::::",
    "x" * 64,
    "unknown:1",
    "💣:1",
    ":",
    "::::",
]

# Numbers as a client can write them where the bot expects one: digits that str.isdigit() or int()
# take but the bot must not (superscripts, circled, Arabic-Indic, Devanagari, mathematical), numbers
# too large for SQLite's INTEGER, negative and empty ones. Full-width digits are accepted where a
# person types; the valid ones come last so that a dialog they move on is tested with the others first.
NUMBERS: list[str] = [
    "²", "²³", "①", "⑫", "٣", "۳٤", "१२", "𝟓", "Ⅻ",
    "9" * 20, "9223372036854775808", "1" * 400,
    "-1", "-0", "#", "##1", "", " ", "+1", "1_000", "1e3", "3.5", "\u200b1",
    "0", "１２",
]

# Commands that take a number ({n}); {task}, {event}: an open task and an event with one volunteer.
NUMBER_COMMANDS: list[str] = [
    "/edittask {n} points 3",
    "/edittask {task} points {n}",
    "/edittask {task} slots {n}",
    "/canceltask {n}",
    "/stats week {n}",
    "/revoke {n} wrong entry",
    "/entries {n}",
    "/closeevent {n}",
    "/closeevent {event} {n}",
    "/checkin {n}",
    "/categories points other {n}",
    "/categories add garden{i} {n} 园艺 / Gardening",
    "/rewards add goods {n} 5 Tea",
    "/rewards add goods 5 {n} Tea",
    "/rewards add discount:{n} 5 5 Tea",
    "/rewards add goods 5 5 limit={n} Tea",
    "/rewards add goods 5 5 days={n} Tea",
    "/staff add {n}",
    "/staff remove {n}",
]

# Button data that carries a number ({n}); {reward}: a reward's id, {day}: a bookable day.
NUMBER_BUTTONS: list[str] = [
    "tp:{n}", "st:h:{n}", "ph:{n}",
    "done:{n}", "cf:{n}:y", "cf:{n}:n", "cf:{n}:p", "cs:{n}:c", "cs:{n}:x", "cs:{n}:h", "cs:{n}",
    "cl:{n}", "dt:{n}", "wd:{n}", "rc:{n}", "rc:{n}:y", "ap:{n}", "rj:{n}", "ed:{n}", "ci:{n}",
    "wl:{n}", "wlo:{n}", "wly:{n}", "wln:{n}",
    "rw:r:{n}", "rw:d:{n}:{day}", "rw:c:{n}:abcd:-", "rw:show:{n}", "rw:x:{n}", "rw:xx:{n}", "rw:u:{n}", "rw:tog:{n}",
    "rw:d:{reward}:{n}", "rw:c:{reward}:abcd:{n}",
]

# Dialog buttons with a number, and the flow and step they belong to.
NUMBER_DIALOG_BUTTONS: list[tuple[str, str, str]] = [
    ("register", "community", "d:community:{n}"),
    ("register", "area", "d:area:{n}"),
    ("org", "org", "d:org:{n}"),
    ("request", "org", "d:org:{n}"),
    ("attend", "att", "d:att:{n}"),
]

# Dialog steps where a number is typed.
NUMBER_DIALOG_TEXTS: list[tuple[str, str]] = [("request", "slots"), ("request", "points")]


def callback_data(template: str, **values: object) -> str:
    """``template`` filled in, cut to the 64 bytes Telegram allows in a button's data."""
    data = template.format(**values)
    while len(data.encode()) > 64:
        data = data[:-1]
    return data
