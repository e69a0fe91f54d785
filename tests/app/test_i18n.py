"""Every message id used in the code has a translation in every shipped catalog."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot import i18n
from bot.i18n import LOCALES, duplicated, extract_ids, missing, normalise_language, prune, translator, unused


def test_every_message_id_is_translated() -> None:
    ids = extract_ids()
    assert len(ids) > 10
    problems = {lang: missing(lang, ids) for lang in LOCALES}
    assert problems == {lang: [] for lang in LOCALES}, "run: python -m bot.i18n update <part>, then translate"


def test_no_catalog_holds_an_entry_no_code_uses() -> None:
    stale = {str(path): ids for path, ids in unused(extract_ids()).items()}
    assert stale == {}, "texts replaced or removed: run python -m bot.i18n prune"


def test_no_message_id_is_in_two_parts_of_a_catalog() -> None:
    assert duplicated() == {}, "keep each id in one part (python -m bot.i18n check names them)"


def _po(path: Path, locale: str, entries: dict[str, str]) -> None:
    catalog = Catalog(locale=locale, project="linli", charset="utf-8")
    for mid, text in entries.items():
        catalog.add(mid, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog)


def test_an_id_in_two_parts_is_found(tmp_path: Path) -> None:
    """Found in the catalogs: ``update`` of a second part copied an id another part held, with an
    empty Chinese text; only one of the two is read, so a translation could silently stop showing."""
    zh, en = tmp_path / "zh_CN" / "LC_MESSAGES", tmp_path / "en" / "LC_MESSAGES"
    _po(zh / "core.po", "zh_CN", {"Hello": "你好", "Thank you": "谢谢"})
    _po(zh / "rewards.po", "zh_CN", {"Thank you": "", "Points": "积分"})
    _po(en / "core.po", "en", {"Hello": "Hello", "Thank you": "Thank you"})
    _po(en / "rewards.po", "en", {"Points": "Points"})
    assert duplicated(tmp_path) == {"zh_CN": {"Thank you": [zh / "core.po", zh / "rewards.po"]}}


def test_check_fails_on_an_id_in_two_parts_and_names_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(i18n.LOCALE_DIR, tmp_path / "locales")
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locales")
    try:
        assert i18n.main(["check"]) == 0
        with (tmp_path / "locales" / "zh_CN" / "LC_MESSAGES" / "core.po").open("rb") as fh:
            core = read_po(fh)
        mid = next(m.id for m in core if isinstance(m.id, str) and m.id and m.string)
        _po(tmp_path / "locales" / "zh_CN" / "LC_MESSAGES" / "zz_extra.po", "zh_CN", {mid: ""})
        capsys.readouterr()
        assert i18n.main(["check"]) == 1
    finally:
        i18n._messages.cache_clear()
    out = capsys.readouterr().out
    assert f"zh_CN: {mid!r} is in 2 parts (core.po, zz_extra.po)" in out and "1 ids in more than one part" in out


def test_prune_drops_only_the_entries_no_code_uses(tmp_path: Path) -> None:
    folder = tmp_path / "zh_CN" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    catalog = Catalog(locale="zh_CN", project="linli", charset="utf-8")
    catalog.add("Still used", "还在用")
    catalog.add("Replaced long ago", "早就换掉了")
    catalog.add(("{n} place", "{n} places"), ("{n} 个名额",))
    with (folder / "part.po").open("wb") as fh:
        write_po(fh, catalog)
    used = {"Still used", "{n} place", "Used but not in this catalog"}
    assert unused(used, tmp_path) == {folder / "part.po": ["Replaced long ago"]}
    assert prune(used, tmp_path) == {folder / "part.po": ["Replaced long ago"]}
    with (folder / "part.po").open("rb") as fh:
        kept = read_po(fh)
    assert [(m.id, m.string) for m in kept if m.id] == [("Still used", "还在用"), (("{n} place", "{n} places"), ("{n} 个名额",))]
    assert unused(used, tmp_path) == {} and prune(used, tmp_path) == {}


def test_extraction_finds_every_call_however_nested(tmp_path: Path) -> None:
    """A t() inside another call inside t()'s arguments, or inside an f-string, was missed (so
    "Phone: not given" showed "not given" in English to Chinese readers); so was both()."""
    (tmp_path / "handlers.py").write_text(
        'x = t("plain")\n'
        'reply(update, t("Phone: {v}", v=esc(m.phone or t("not given"))))\n'
        'y = rc.t(HONOURS.get(code, N_("a milestone")))\n'
        'z = f"{t(\'in an f-string\')} and {ctx.t(\'another {n}\', n=len(t(\'deeper\')))}"\n'
        'w = both("in both languages") + t.np("one place", "{n} places", n)\n'
        'v = t(variable) + t(f"not a literal {x}") + other("not a message")\n',
        encoding="utf-8")
    (tmp_path / "devkit" / "sandbox").mkdir(parents=True)
    (tmp_path / "devkit" / "sandbox" / "stand_in.py").write_text('t("the stand-in is not translated")\n')
    ids = extract_ids(tmp_path)
    assert set(ids) == {"plain", "Phone: {v}", "not given", "a milestone", "in an f-string", "another {n}", "deeper",
                        "in both languages", "one place"}
    assert ids["not given"] == ("handlers.py:2", None)
    assert ids["one place"] == ("handlers.py:5", "{n} places")


def test_chinese_catalog_is_really_chinese() -> None:
    t = translator("zh")
    assert t("Sorry, you are not allowed to do that.") != "Sorry, you are not allowed to do that."


def test_language_codes() -> None:
    assert normalise_language("zh-hans") == "zh"
    assert normalise_language("en-GB") == "en"
    assert normalise_language("ru", "en") == "en"
    assert normalise_language(None) == "zh"


def test_formatting_parameters() -> None:
    t = translator("en")
    assert t("Hello {name}", name="A") == "Hello A"


def test_english_counts_of_one_are_singular() -> None:
    en, zh = translator("en"), translator("zh")
    assert en("You have {n} points.", n=1) == "You have 1 point."
    assert en("You have {n} points.", n=11) == "You have 11 points."
    assert en("You have {n} points.", n=0) == "You have 0 points."
    assert en("Voucher {code} is cancelled. {n} points are back; you now have {b}.", code="AB", n=1, b=1) == (
        "Voucher AB is cancelled. 1 point is back; you now have 1.")
    assert en.agree("1 volunteers have claimed it; 21 volunteers have not") == (
        "1 volunteer has claimed it; 21 volunteers have not")
    assert en.agree("task #1 tasks, 0.1 points, 1,000 points, 2.1 points") == (
        "task #1 tasks, 0.1 points, 1,000 points, 2.1 points")
    assert zh("You have {n} points.", n=1) == zh("You have {n} points.", n=2).replace("2", "1")


def test_waitlist_hold_time_in_minutes_under_an_hour_and_hours_otherwise() -> None:
    from bot.conversations.waitlist import hold_words

    en, zh = translator("en"), translator("zh")
    assert [hold_words(en, m) for m in (1, 30, 60, 120, 360)] == ["1 minute", "30 minutes", "1 hour", "2 hours",
                                                                  "6 hours"]
    assert [hold_words(zh, m) for m in (30, 120)] == ["30 分钟", "2 小时"]
    offer = zh("Good news: a place on “{title}” has freed and it is yours now. Please press “Keep my place”"
               " within {hold}; otherwise it goes to the next one waiting.", title="x", hold=hold_words(zh, 30))
    assert "30 分钟内" in offer


def test_update_does_not_copy_an_id_another_part_holds_untranslated(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """How the duplicates came: the id is "missing" in Chinese (its text is empty in core.po), so
    ``update rewards`` added it to rewards.po too. Now it says where to translate it instead."""
    zh, en = tmp_path / "zh_CN" / "LC_MESSAGES", tmp_path / "en" / "LC_MESSAGES"
    _po(zh / "core.po", "zh_CN", {"Thank you": ""})
    _po(en / "core.po", "en", {"Thank you": "Thank you"})
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    monkeypatch.setattr(i18n, "extract_ids", lambda: {"Thank you": ("x.py:1", None), "Points": ("x.py:2", None)})
    try:
        i18n._update("rewards")
    finally:
        i18n._messages.cache_clear()
    assert duplicated(tmp_path) == {}
    for folder in (zh, en):
        with (folder / "rewards.po").open("rb") as fh:
            assert [m.id for m in read_po(fh) if m.id] == ["Points"]


def test_a_list_is_written_the_way_each_language_writes_one() -> None:
    en, zh = translator("en"), translator("zh")
    assert [en.join(x) for x in ([], ["A"], ["A", "B"], ["A", "B", "C"])] == ["", "A", "A and B", "A, B and C"]
    assert zh.join(["甲", "乙", "丙"]) == "甲、乙、丙"


def test_an_english_report_lists_its_tops_without_chinese_punctuation() -> None:
    from bot.report_files.summary import summary_text
    from bot.services.reports import Stats

    fields = {name: 0 for name in Stats.__dataclass_fields__}  # type: ignore[attr-defined]
    st = Stats(**{**fields, "counts": {}, "no_shows": [], "top_areas": [], "top_volunteers": [],
                  "top_organisations": [], "top_categories": [("escort", 1), ("shopping", 2)],
                  "median_claim_minutes": None, "median_complete_minutes": None, "no_show_rate": None})
    assert "Top categories: escort (1) and shopping (2)" in summary_text(translator("en"), st, title="June")
    assert "escort (1)、shopping (2)" in summary_text(translator("zh"), st, title="六月")
