"""bot.fit: a long HTML text fits one Telegram message without breaking a tag or an entity, and says
what it left out; or becomes several messages."""

from __future__ import annotations

import html

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.devkit.sandbox.html import parse_html
from bot.fit import MESSAGE_LIMIT, clip, fit, pages, visible_len
from bot.i18n import translator

EN, ZH = translator("en"), translator("zh")


def shown(text: str) -> str:
    """What Telegram shows (raises as Telegram refuses: a broken tag or entity)."""
    return parse_html(text)[0]


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def roster(n: int) -> str:
    return "<b>Volunteers of “Tree &amp; planting”</b>\n" + "\n".join(
        f"{i}. <i>{html.escape('Li & <Wang>', quote=False)} {i}</i> · 100%" for i in range(1, n + 1))


def test_a_text_that_fits_is_left_alone() -> None:
    text = roster(20)
    assert fit(text, EN) == text


def test_exactly_at_the_limit_is_left_alone_and_one_more_is_cut() -> None:
    text = "<b>" + "a" * (MESSAGE_LIMIT - 1) + "</b>&amp;"
    assert visible_len(text) == MESSAGE_LIMIT and fit(text, EN) == text
    longer = text + "b"
    assert fit(longer, EN) != longer and units(shown(fit(longer, EN))) <= MESSAGE_LIMIT


def test_a_long_list_is_cut_at_a_line_and_says_how_many_lines_are_left() -> None:
    text = roster(400)
    fitted = fit(text, EN)
    visible = shown(fitted)
    assert units(visible) <= MESSAGE_LIMIT
    kept = visible.split("\n")[:-1]
    assert kept[-1].endswith("· 100%")           # whole lines only
    assert visible.endswith(f"… ({401 - len(kept)} more lines)")
    assert text.startswith(fitted.rsplit("\n", 1)[0])


def test_the_marker_is_in_the_readers_language() -> None:
    assert shown(fit(roster(400), ZH)).split("\n")[-1].startswith("…（还有 ")
    two_left = "x" * 4090 + "\nlast\nline"
    assert shown(fit(two_left, EN)).endswith("… (2 more lines)")


def test_one_long_line_of_a_residents_words_is_cut_inside_outside_any_entity() -> None:
    words = html.escape("I need help with the shopping & the stairs <3rd floor> " * 90, quote=False)
    text = "<b>A new request waits for your review:</b>\n" + words + "\n<i>Approve or reject below.</i>"
    fitted = fit(text, EN)
    visible = shown(fitted)      # parses: no "&am" and no "<b>Na"
    assert units(visible) <= MESSAGE_LIMIT
    assert visible.startswith("A new request waits for your review:\nI need help")
    assert visible.endswith("…\n… (1 more line)")
    assert "&am" not in fitted.replace("&amp;", "") and "&l" not in fitted.replace("&lt;", "")


def test_tags_open_at_the_cut_are_closed() -> None:
    text = "<blockquote><b>" + "\n".join(f"line {i} &lt;" for i in range(1000)) + "</b></blockquote>"
    fitted = fit(text, EN)
    assert units(shown(fitted)) <= MESSAGE_LIMIT
    assert "</b></blockquote>" in fitted


def test_a_cut_in_a_line_with_nothing_after_says_the_rest_is_cut() -> None:
    fitted = fit("<b>Title</b>\n" + "&amp;" * 5000, EN)
    assert shown(fitted).endswith("…\n(the rest is too long to show)")


@pytest.mark.parametrize("char", ["邻", "😀", "👨‍👩‍👧"])
def test_emoji_and_chinese_count_as_telegram_counts_them(char: str) -> None:
    text = "\n".join(char * 30 for _ in range(300))
    visible = shown(fit(text, ZH))
    assert units(visible) <= MESSAGE_LIMIT
    assert visible.split("\n")[-2] == char * 30


def test_pages_keep_everything_in_order() -> None:
    text = roster(400)
    parts = pages(text)
    assert len(parts) > 1
    assert all(units(shown(p)) <= MESSAGE_LIMIT for p in parts)
    assert "\n".join(shown(p) for p in parts) == shown(text)


def test_pages_of_one_huge_line_reopen_its_tags() -> None:
    text = "<b>" + "&amp;x" * 5000 + "</b>"
    parts = pages(text)
    assert len(parts) == 3 and all(p.startswith("<b>") and p.endswith("</b>") for p in parts)
    assert "".join(shown(p) for p in parts) == "&x" * 5000


def test_clip_shortens_words_before_they_are_escaped() -> None:
    assert clip("short", 10) == "short"
    assert clip("a" * 20, 10) == "a" * 9 + "…"


_PIECES = st.sampled_from(["a", "邻", "😀", "&amp;", "&lt;", "&gt;", "&quot;", "&#128512;", "&nbsp;", "\n", "<b>x</b>",
                           "<i>y\nz</i>", '<a href="https://example.org/?a=1&amp;b=2">link</a>', " ", "abc def"])


@settings(max_examples=60, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=3000), st.integers(min_value=50, max_value=600))
def test_any_well_formed_text_fits_and_still_parses(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    assert visible_len(text) == units(shown(text))
    fitted = fit(text, EN, limit)
    assert units(shown(fitted)) <= limit
    if visible_len(text) > limit:
        assert "…" in shown(fitted)
    assert all(units(shown(p)) <= limit for p in pages(text, limit))
