"""The spec generator keeps methods, reachable types, limits and discriminators."""

from __future__ import annotations

import json
from pathlib import Path

from bot.devkit.sandbox.make_spec import build, main

SOURCE = {
    "version": "Bot API test",
    "methods": {
        "sendThing": {
            "name": "sendThing",
            "returns": ["Message"],
            "fields": [
                {"name": "text", "types": ["String"], "required": True,
                 "description": "Text, 1-4096 characters after entities parsing"},
                {"name": "reply_markup", "types": ["Markup"], "required": False, "description": "Markup"},
            ],
        }
    },
    "types": {
        "Markup": {"name": "Markup", "fields": [
            {"name": "rows", "types": ["Array of Array of Button"], "required": True, "description": "Rows"}]},
        "Button": {"name": "Button", "fields": [
            {"name": "data", "types": ["String"], "required": False, "description": "Data, 1-64 bytes"}]},
        "Scope": {"name": "Scope", "description": ["x"], "subtypes": ["ScopeChat"]},
        "ScopeChat": {"name": "ScopeChat", "fields": [
            {"name": "type", "types": ["String"], "required": True, "description": "Scope type, must be chat"}]},
        "Unreachable": {"name": "Unreachable", "fields": []},
    },
}


def test_build_keeps_reachable_types_and_limits() -> None:
    spec = build(SOURCE)
    assert set(spec["types"]) == {"Markup", "Button"}
    text = spec["methods"]["sendThing"]["fields"][0]
    assert text == {"name": "text", "types": ["String"], "required": True, "limit": [1, 4096, "characters"],
                    "parsed": True}
    assert spec["types"]["Button"]["fields"][0]["limit"] == [1, 64, "bytes"]
    assert "description" not in json.dumps(spec)


def test_main_writes_compact_json(tmp_path: Path) -> None:
    source = tmp_path / "api.json"
    source.write_text(json.dumps(SOURCE), encoding="utf-8")
    output = tmp_path / "out.json"
    assert main([str(source), str(output)]) == 0
    text = output.read_text(encoding="utf-8")
    assert "\n" not in text.strip() and json.loads(text)["version"] == "Bot API test"
