"""Texts in Chinese and English from gettext catalogs (Babel).

Catalogs are ``bot/locales/<locale>/LC_MESSAGES/<part>.po``: one file per part of the bot, all
merged at load time, so people working on different parts never edit the same file. Message ids
are the English texts. Use a ``Translator``::

    t = translator("zh")
    t("Hello, {name}!", name=html.escape(name))

``python -m bot.i18n check`` lists message ids used in the code but missing from a catalog,
catalog entries no code uses any more (a text replaced or removed), and ids that two parts of one
language hold (only one of them is read); it fails on any of these.
``python -m bot.i18n update PART [FILE ...]`` adds the missing ones (only those used in the given
source files, if any) to ``PART.po`` of each language (the
English entry is filled with the id itself, the Chinese one is left empty for a translator and
the test suite fails until it is filled), and drops unused entries from every catalog;
``python -m bot.i18n prune`` only drops them.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

LOCALES = {"zh": "zh_CN", "en": "en"}
SUPPORTED = tuple(LOCALES)
LOCALE_DIR = Path(__file__).parent / "locales"
# Functions whose first string argument is a message id (``np``: its first two, singular and
# plural), called by name or as an attribute (``t("…")``, ``rc.t("…")``, ``t.np("…", "…", n)``).
KEYWORDS = {"_": 1, "N_": 1, "t": 1, "both": 1, "np": 2}
# Not product code: the Telegram stand-in's own texts are not translated.
NOT_EXTRACTED = ("devkit/sandbox/",)


def normalise_language(code: str | None, default: str = "zh") -> str:
    """Telegram ``language_code`` (``zh-hans``, ``en-US``, ...) or a stored choice → ``zh``/``en``."""
    if not code:
        return default
    low = code.strip().lower()
    if low.startswith("zh"):
        return "zh"
    if low.startswith("en"):
        return "en"
    return default


@cache
def _messages(lang: str) -> dict[str, str | tuple[str, ...]]:
    locale = LOCALES[lang]
    merged: dict[str, str | tuple[str, ...]] = {}
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            value = message.string
            if isinstance(value, tuple | list):
                if any(value):
                    merged[key] = tuple(value)
            elif value:
                merged[key] = value
    return merged


class Translator:
    """Translate and format texts for one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LOCALES else "zh"
        self._msgs = _messages(self.lang)

    def __call__(self, message: str, /, **params: object) -> str:
        found = self._msgs.get(message, message)
        text = found if isinstance(found, str) else found[0]
        return self.agree(text.format(**params)) if params else text

    def agree(self, text: str) -> str:
        """English only: "1 points" → "1 point" (and "1 volunteers have" → "1 volunteer has").

        Message ids are written with plural nouns ("You have {n} points."); Chinese has no plural,
        so rather than a second message id for every count, English texts are corrected after the
        numbers are filled in. Only a bare 1 (not 11, 0.1 or 1,000) before a known noun changes.
        """
        if self.lang != "en" or "1 " not in text:
            return text
        return _ONE.sub(_singular, text)

    def join(self, items: Iterable[str]) -> str:
        """A list as the language writes one: "A、B、C" in Chinese; "A", "A and B", "A, B and C" in English."""
        parts = list(items)
        if self.lang != "en":
            return "、".join(parts)
        if len(parts) < 3:
            return " and ".join(parts)
        return ", ".join(parts[:-1]) + " and " + parts[-1]

    def np(self, singular: str, plural: str, n: int, /, **params: object) -> str:
        found = self._msgs.get(singular)
        if isinstance(found, tuple):
            # Chinese has one form; English two (n == 1 and the rest).
            text = found[0] if len(found) == 1 or n == 1 else found[1]
        else:
            text = singular if n == 1 else plural
        return text.format(n=n, **params)

    def __repr__(self) -> str:
        return f"Translator({self.lang!r})"


_NOUNS = {"points": "point", "volunteers": "volunteer", "people": "person", "tasks": "task", "members": "member",
          "days": "day", "hours": "hour", "minutes": "minute", "weeks": "week", "months": "month",
          "vouchers": "voucher", "times": "time", "requests": "request", "places": "place", "entries": "entry",
          "messages": "message", "items": "item", "helpers": "helper", "residents": "resident", "events": "event",
          "rewards": "reward", "organisations": "organisation", "no-shows": "no-show", "pts": "pt"}
_VERBS = {"are": "is", "have": "has", "were": "was"}
_ONE = re.compile(r"(?<![\d.,#\w])([+-]?1) (" + "|".join(re.escape(n) for n in _NOUNS) + r")\b(?:(\s+)(are|have|were)\b)?")


def _singular(m: re.Match[str]) -> str:
    verb = f"{m.group(3)}{_VERBS[m.group(4)]}" if m.group(4) else ""
    return f"{m.group(1)} {_NOUNS[m.group(2)]}{verb}"


@cache
def translator(lang: str | None) -> Translator:
    return Translator(normalise_language(lang))


def both(message: str, /, **params: object) -> str:
    """The same text in both languages, Chinese first (for group chats and shared places)."""
    zh = translator("zh")(message, **params)
    en = translator("en")(message, **params)
    return zh if zh == en else f"{zh}\n{en}"


# -- catalog maintenance ------------------------------------------------------------------
def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _message_calls(source: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, message id, plural id or None) of every keyword call with a literal id, in source
    order. The syntax tree holds every call wherever it is nested (inside another call's
    arguments, in an f-string), which a token scanner can miss."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        count = KEYWORDS.get(name)
        if count is None or len(node.args) < 1 or (singular := _literal(node.args[0])) is None:
            continue
        plural = _literal(node.args[1]) if count == 2 and len(node.args) > 1 else None
        calls.append((node.lineno, node.col_offset, singular, plural))
    for line, _col, singular, plural in sorted(calls):
        yield line, singular, plural


def extract_ids(root: Path | None = None) -> dict[str, tuple[str, str | None]]:
    """Every message id used in the code: id → (first place it is used, plural id or None)."""
    root = root or Path(__file__).parent
    found: dict[str, tuple[str, str | None]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(NOT_EXTRACTED):
            continue
        for line, singular, plural in _message_calls(path.read_text(encoding="utf-8")):
            if singular and singular not in found:
                found[singular] = (f"{rel}:{line}", plural)
    return found


def missing(lang: str, ids: Iterable[str] | None = None) -> list[str]:
    _messages.cache_clear()
    have = _messages(lang)
    wanted = ids if ids is not None else extract_ids()
    return sorted(i for i in wanted if i not in have)


def _catalog_ids(catalog: Catalog) -> list[str]:
    return [m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id]


def unused(ids: Iterable[str] | None = None, locale_dir: Path | None = None) -> dict[Path, list[str]]:
    """The entries of each catalog that no code uses any more (a text replaced or removed)."""
    used = set(ids if ids is not None else extract_ids())
    found: dict[Path, list[str]] = {}
    for path in sorted((locale_dir or LOCALE_DIR).glob("*/LC_MESSAGES/*.po")):
        with path.open("rb") as fh:
            catalog = read_po(fh)
        if stale := [mid for mid in _catalog_ids(catalog) if mid not in used]:
            found[path] = stale
    return found


def duplicated(locale_dir: Path | None = None) -> dict[str, dict[str, list[Path]]]:
    """Message ids that more than one part of a language's catalog holds: locale → id → the files.
    (Only one of them is used, whichever is read last with a translation; ``update`` of a second
    part once copied an id with an empty Chinese text.)"""
    found: dict[str, dict[str, list[Path]]] = {}
    for folder in sorted((locale_dir or LOCALE_DIR).glob("*/LC_MESSAGES")):
        where: dict[str, list[Path]] = {}
        for path in sorted(folder.glob("*.po")):
            with path.open("rb") as fh:
                for mid in _catalog_ids(read_po(fh)):
                    where.setdefault(mid, []).append(path)
        if twice := {mid: paths for mid, paths in where.items() if len(paths) > 1}:
            found[folder.parent.name] = twice
    return found


def prune(ids: Iterable[str] | None = None, locale_dir: Path | None = None) -> dict[Path, list[str]]:
    """Drop the entries no code uses from every catalog; returns what was dropped, by file."""
    dropped = unused(ids, locale_dir)
    for path, stale in dropped.items():
        with path.open("rb") as fh:
            catalog = read_po(fh)
        for message in list(catalog):
            if message.id and (message.id if isinstance(message.id, str) else message.id[0]) in stale:
                catalog.delete(message.id, context=message.context)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, sort_output=False)
    _messages.cache_clear()
    return dropped


def _prune(ids: Iterable[str]) -> None:
    root = LOCALE_DIR.parent
    for path, stale in prune(ids).items():
        print(f"{path.relative_to(root)}: {len(stale)} unused entries dropped")


def _held_elsewhere(path: Path) -> dict[str, Path]:
    """The ids the other parts of ``path``'s language hold: id → the part holding it."""
    held: dict[str, Path] = {}
    for other in sorted(path.parent.glob("*.po")):
        if other != path:
            with other.open("rb") as fh:
                held.update(dict.fromkeys(_catalog_ids(read_po(fh)), other))
    return held


def _update(part: str, files: list[str] | None = None) -> None:
    ids = extract_ids()
    if files:
        wanted = {str(Path(f).resolve().relative_to(Path(__file__).parent)) for f in files}
        ids = {k: v for k, v in ids.items() if v[0].rsplit(":", 1)[0] in wanted}
    for lang, locale in LOCALES.items():
        lacking = missing(lang, ids)
        if not lacking:
            continue
        path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{part}.po"
        if path.exists():
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=locale)
        else:
            catalog = Catalog(locale=locale, project="linli", charset="utf-8")
        # An id another part holds untranslated is translated there, not copied here.
        elsewhere = _held_elsewhere(path)
        added = 0
        for mid in lacking:
            where, plural = ids[mid]
            if lang == "en":
                value: str | tuple[str, str] = (mid, plural) if plural else mid
                key: str | tuple[str, str] = (mid, plural) if plural else mid
            else:
                value = ("", "") if plural else ""
                key = (mid, plural) if plural else mid
            if key in catalog or mid in catalog or mid in elsewhere:
                continue
            catalog.add(key, value, locations=[(where.rsplit(":", 1)[0], int(where.rsplit(":", 1)[1]))])
            added += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, sort_output=False)
        print(f"{path.relative_to(LOCALE_DIR.parent)}: {added} new entries")
        for mid in sorted(elsewhere.keys() & set(lacking)):
            print(f"{locale}: {mid!r} is in {elsewhere[mid].name} already, untranslated: translate it there")


def _fill(part: str, json_file: str) -> None:
    import json

    mapping = json.loads(Path(json_file).read_text(encoding="utf-8"))
    path = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / f"{part}.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    filled = 0
    for message in catalog:
        key = message.id if isinstance(message.id, str) else (message.id[0] if message.id else "")
        if key and key in mapping:
            value = mapping[key]
            message.string = (value, value) if isinstance(message.id, tuple) else value
            message.flags.discard("fuzzy")
            filled += 1
    with path.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False, sort_output=False)
    print(f"{path.relative_to(LOCALE_DIR.parent)}: {filled} translations set")


def _problems(ids: dict[str, tuple[str, str | None]]) -> tuple[int, int, int]:
    """Print what ``check`` finds: (missing translations, unused entries, ids in more than one part)."""
    bad = 0
    for lang in LOCALES:
        lacking = missing(lang, ids)
        for mid in lacking:
            print(f"{lang}: missing {mid!r} ({ids[mid][0]})")
        bad += len(lacking)
    stale = unused(ids)
    for path, entries in stale.items():
        for mid in entries:
            print(f"{path.relative_to(LOCALE_DIR.parent)}: unused {mid!r} (no code uses it: python -m bot.i18n prune)")
    twice = duplicated()
    for locale, where in twice.items():
        for mid, paths in where.items():
            print(f"{locale}: {mid!r} is in {len(paths)} parts ({', '.join(p.name for p in paths)}):"
                  " keep it in one, with its translation")
    return bad, sum(len(v) for v in stale.values()), sum(len(v) for v in twice.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.i18n")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="list message ids lacking a translation, unused, or in two parts")
    fill = sub.add_parser("fill", help="set Chinese translations in PART.po from a JSON object {msgid: text}")
    fill.add_argument("part")
    fill.add_argument("json_file")
    up = sub.add_parser("update", help="add missing ids to PART.po in every language, drop unused entries everywhere")
    up.add_argument("part")
    up.add_argument("files", nargs="*", help="only ids used in these source files (default: all)")
    sub.add_parser("prune", help="drop the entries no code uses from every catalog")
    args = parser.parse_args(argv)
    if args.cmd == "update":
        _update(args.part, args.files)
    if args.cmd in ("update", "prune"):
        _prune(extract_ids())
    if args.cmd == "fill":
        _fill(args.part, args.json_file)
    ids = extract_ids()
    bad, n_stale, n_twice = _problems(ids)
    if args.cmd == "check":
        print(f"{len(ids)} message ids, {bad} missing translations, {n_stale} unused catalog entries,"
              f" {n_twice} ids in more than one part")
        return 1 if bad or n_stale or n_twice else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
