"""Generate ``bot_api_spec.json`` from a machine-readable copy of the Bot API docs.

Usage::

    python -m bot.devkit.sandbox.make_spec SOURCE.json [OUTPUT.json]

Only the parts the sandbox needs are kept: every method with its parameters, and
every type reachable from method parameters (for nested validation). Descriptions
are dropped; length limits ("1-64 bytes", "0-200 characters") and constant
discriminators ("must be photo", 'always "emoji"') are extracted from them.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUTPUT = Path(__file__).with_name("bot_api_spec.json")

_LIMIT_RE = re.compile(r"\b(\d+)-(\d+) (characters|bytes)\b")
_CONST_RE = re.compile(r"(?:must be|always) \"?([a-z0-9_]+)\"?")
_PRIMITIVES = {"Integer", "String", "Boolean", "Float", "InputFile", "True"}


def _base(type_name: str) -> str:
    while type_name.startswith("Array of "):
        type_name = type_name[len("Array of ") :]
    return type_name


def _field(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": raw["name"], "types": raw["types"], "required": bool(raw["required"])}
    desc = raw.get("description") or ""
    if isinstance(desc, list):
        desc = " ".join(desc)
    match = _LIMIT_RE.search(desc)
    if match and raw["types"] == ["String"]:
        out["limit"] = [int(match.group(1)), int(match.group(2)), match.group(3)]
        if "after entities parsing" in desc:
            out["parsed"] = True
    if raw["name"] in {"type", "source", "status"} and raw["types"] == ["String"]:
        const = _CONST_RE.search(desc)
        if const:
            out["const"] = const.group(1)
    return out


def build(source: dict[str, Any]) -> dict[str, Any]:
    all_types: dict[str, Any] = source["types"]
    methods: dict[str, Any] = {}
    todo: list[str] = []
    for name, method in sorted(source["methods"].items()):
        fields = [_field(f) for f in method.get("fields", [])]
        methods[name] = {"fields": fields, "returns": method.get("returns", [])}
        for f in fields:
            todo.extend(_base(t) for t in f["types"])
    types: dict[str, Any] = {}
    while todo:
        name = todo.pop()
        if name in types or name in _PRIMITIVES or name not in all_types:
            continue
        raw = all_types[name]
        entry: dict[str, Any] = {"fields": [_field(f) for f in raw.get("fields", [])]}
        if raw.get("subtypes"):
            entry["subtypes"] = raw["subtypes"]
            todo.extend(raw["subtypes"])
        types[name] = entry
        for f in entry["fields"]:
            todo.extend(_base(t) for t in f["types"])
    return {
        "version": source.get("version"),
        "methods": methods,
        "types": dict(sorted(types.items())),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__)
        return 2
    source = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    output = Path(args[1]) if len(args) > 1 else DEFAULT_OUTPUT
    spec = build(source)
    output.write_text(json.dumps(spec, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {output}: {len(spec['methods'])} methods, {len(spec['types'])} types")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
