"""Areas of a community (buildings, streets): how a typed place is matched to a listed one.

Pure functions, used when someone registers (members) and when a request names a place (tasks).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any


def area_key(text: str) -> str:
    """How an area name compares: full-width folded, case and spaces ignored."""
    return "".join(_spaced(text).split())


def _spaced(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def match_area(areas: Iterable[Any], typed: str) -> int | None:
    """The listed area a typed address names ("building3" for "Building 3") or starts with ("3号楼2单元",
    "Building 3, flat 2"; not "Building 31"), the longest such name; else None."""
    key, spaced = area_key(typed), _spaced(typed)
    best: tuple[int, int] | None = None
    for a in areas:
        name = _spaced(str(a["name"]))
        if not name:
            continue
        hit = area_key(name) == key
        if not hit and spaced.startswith(name):
            after = spaced[len(name)]
            hit = not (_ascii_alnum(name[-1]) and _ascii_alnum(after))
        if hit and (best is None or len(name) > best[0]):
            best = (len(name), int(a["id"]))
    return best[1] if best else None


def place_from_typed(areas: list[Any], typed: str) -> tuple[int | None, str | None]:
    """(area id, private address) from a typed place: "3号楼" for the listed 3号楼 is that area and
    nothing more; "3号楼 2单元 301" is the area plus the full address (kept private); an unlisted
    place is an address only."""
    area_id = match_area(areas, typed)
    names = {int(a["id"]): str(a["name"]) for a in areas}
    exact = area_id is not None and area_key(typed) == area_key(names[area_id])
    return area_id, None if exact else typed


def _ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()
