"""The layering the architecture promises, checked on the source: SQL and the database driver live
in storage/ only (one module per aggregate); nothing under bot/ (services, jobs, handlers, the
devkit, the top-level modules) holds SQL, calls the database's cursor methods or imports a driver.
Services compose storage calls in their transactions; storage/ imports nothing of bot/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_STORAGE = sorted(ROOT.glob("bot/**/*.py"))

# Files whose SQL is being moved to storage/ by work under way: (the most findings the file may
# hold, who moves it). Each must still hold SQL (an entry is removed as soon as its move lands, and
# its number lowered as parts land); nothing may be added to them, and no file may be added here.
PENDING: dict[str, tuple[int, str]] = {}

# Modules under bot/ that may hold SQL or use a driver for good, each with its reason. (The
# CLI's backup and doctor, and the demo's looks at the bot's database, call storage functions.)
EXCEPTIONS: dict[str, str] = {
    "bot/services/erasure.py": "its REGISTRY names, table by table, which rows are a person's as SQL conditions;"
                               " the rule and its data are one table, run by storage/erasure.py",
}

SQL = re.compile(r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b")
DB_CALLS = {"execute", "executemany", "executescript", "execute_fetchall", "execute_insert", "fetchone", "fetchall",
            "fetchmany", "fetchval"}
DRIVERS = {"aiosqlite", "sqlite3"}


def database_use(source: str) -> list[str]:
    """Where this module's code holds SQL, calls the database or imports a database driver."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"line {node.lineno}: SQL {node.value[:50]!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DB_CALLS:
            found.append(f"line {node.lineno}: .{node.func.attr}()")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in DRIVERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in DRIVERS:
            found.append(f"line {node.lineno}: from {node.module} import")
    return found


def test_the_scan_sees_sql_calls_and_drivers() -> None:
    assert database_use('x = "SELECT name FROM areas WHERE id = ?"')
    assert database_use("x = ('UPDATE members' ' SET reachable = 1')")
    assert database_use('x = f"INSERT OR IGNORE INTO kv (key) VALUES ({1})"')
    assert database_use('x = "DELETE FROM dialogs"')
    assert database_use("async def f(db):\n    return await db.fetchval('x')")
    assert database_use("import aiosqlite")
    assert database_use("from sqlite3 import Row")
    assert not database_use('t("Select a reward from the list, then update your settings.")')
    assert not database_use("from storage import tasks as task_store\nawait task_store.row(db, 1)")


def test_no_sql_outside_storage() -> None:
    offenders = {}
    for path in OUTSIDE_STORAGE:
        rel = path.relative_to(ROOT).as_posix()
        found = database_use(path.read_text(encoding="utf-8"))
        most = PENDING[rel][0] if rel in PENDING else 0
        if len(found) > most and rel not in EXCEPTIONS:
            offenders[rel] = found
    assert not offenders, ("SQL or database access outside storage/ (give it a named function in the storage"
                           f" module of its aggregate, and call that): {offenders}")


def test_pending_moves_are_still_pending() -> None:
    for rel in PENDING:
        path = ROOT / rel
        assert path.exists() and database_use(path.read_text(encoding="utf-8")), \
            f"{rel} holds no SQL any more: remove it from PENDING in {__file__}"


def test_the_exceptions_are_still_needed() -> None:
    for rel, reason in EXCEPTIONS.items():
        path = ROOT / rel
        assert reason and path.exists() and database_use(path.read_text(encoding="utf-8")), \
            f"{rel} needs no exception any more: remove it from EXCEPTIONS in {__file__}"


def test_storage_does_not_reach_up() -> None:
    """storage/ is the bottom layer: it imports nothing of bot/ (nor telegram)."""
    up = {}
    for path in sorted(ROOT.glob("storage/**/*.py")):
        names = [n.module or "" for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(n, ast.ImportFrom)]
        names += [a.name for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.Import)
                  for a in n.names]
        if found := [n for n in names if n.split(".")[0] in ("bot", "telegram")]:
            up[path.relative_to(ROOT).as_posix()] = found
    assert not up, f"storage/ imports from the layers above it: {up}"


def service_imports(source: str, names: set[str]) -> set[str]:
    """The other service modules a service module imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "bot.services":
            found |= {a.name for a in node.names if a.name in names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bot.services."):
            found.add((node.module or "").split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("bot.services.")}
    return found & names


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (as a path that ends where it starts), None if there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            if cycle := visit(nxt, [*path, node]):
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        if cycle := visit(start, []):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert import_cycle({"members": {"tasks"}, "tasks": {"members"}}) == ["members", "tasks", "members"]
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert service_imports("def f():\n    from bot.services import tasks\n", {"tasks"}) == {"tasks"}
    assert service_imports("from bot.services.members import x\nimport bot.services.ledger", {"members", "ledger"}) \
        == {"members", "ledger"}


def test_services_have_no_import_cycles() -> None:
    files = {p.stem: p for p in (ROOT / "bot/services").glob("*.py") if p.stem != "__init__"}
    graph = {name: service_imports(path.read_text(encoding="utf-8"), set(files)) - {name}
             for name, path in files.items()}
    assert import_cycle(graph) is None, f"services import each other in a circle: {import_cycle(graph)}"


# Functions longer than this are split (the complexity limit is ruff's C901, in pyproject.toml).
MAX_LINES = 55
DEVKIT: tuple[str, ...] = ()  # the devkit is held to the same limit
# Functions allowed to be longer, as (file, name); none at present.
LONG_PENDING: set[tuple[str, str]] = set()


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(name, lines) of every function or method longer than ``limit`` lines."""
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
            and node.end_lineno - node.lineno + 1 > limit]


def test_long_functions_are_found() -> None:
    assert long_functions("def f():\n" + "    x = 1\n" * 3, limit=3) == [("f", 4)]
    assert long_functions("class C:\n    async def g(self):\n        pass\n", limit=3) == []


def test_no_function_is_too_long_to_read() -> None:
    too_long = {}
    for path in sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("storage/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(DEVKIT):
            continue
        found = [(name, n) for name, n in long_functions(path.read_text(encoding="utf-8")) if (rel, name) not in LONG_PENDING]
        if found:
            too_long[rel] = found
    assert not too_long, f"functions over {MAX_LINES} lines (split them): {too_long}"


def test_the_default_time_zone_is_said_in_one_place() -> None:
    """BOT_TIMEZONE's default is named once (storage/timeutil.py ``DEFAULT_TIMEZONE``, which bot/config.py
    takes as the setting's default); everything else uses the setting, that name, or the community's own
    zone. Migrations keep theirs: they are history, as they ran."""
    zone = re.compile(r"""["']Asia/Shanghai["']""")
    said = [f"{path.relative_to(ROOT)}:{n}" for path in sorted(ROOT.glob("bot/**/*.py")) + sorted(ROOT.glob("storage/**/*.py"))
            if "migrations" not in path.parts and "alembic" not in path.parts
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if zone.search(line)]
    assert len(said) == 1 and said[0].startswith("storage/timeutil.py:"), said
