"""Every message id used in the code has a translation in every shipped catalog."""

from __future__ import annotations

from bot.i18n import LOCALES, extract_ids, missing, normalise_language, translator


def test_every_message_id_is_translated() -> None:
    ids = extract_ids()
    assert len(ids) > 10
    problems = {lang: missing(lang, ids) for lang in LOCALES}
    assert problems == {lang: [] for lang in LOCALES}, "run: python -m bot.i18n update <part>, then translate"


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
