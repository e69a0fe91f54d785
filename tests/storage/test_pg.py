"""PostgreSQL without a server (storage/pg.py): URLs recognised in their spellings, turned into the
forms the drivers take and shown to people without the password; every SQLite migration has its
Alembic twin (storage/alembic/README.md says how to add one)."""

from __future__ import annotations

import pytest

from storage import pg
from storage.migrate import load_migrations


@pytest.mark.parametrize("url", ["postgresql://u:p@h/db", "postgres://u@h/db", "postgresql+asyncpg://h/db", "POSTGRESQL://h/d"])
def test_postgres_urls_are_recognised(url: str) -> None:
    assert pg.is_postgres_url(url)
    assert pg.asyncpg_url(url).startswith("postgresql+asyncpg://")
    assert pg.plain_url(url).startswith("postgresql://")


@pytest.mark.parametrize("url", ["sqlite:///data/linli.db", "mysql://h/db", "data/linli.db"])
def test_other_urls_are_not(url: str) -> None:
    assert not pg.is_postgres_url(url)


def test_the_password_is_hidden_and_handed_to_tools_decoded() -> None:
    url = "postgresql://linli:p%40ss%2Fw0rd@db.example:6543/linli_prod"
    assert pg.shown_url(url) == "postgresql://linli:***@db.example:6543/linli_prod"
    assert pg.shown_url("postgresql://linli@db.example/linli") == "postgresql://linli@db.example/linli"
    where = pg.Target.parse(url)
    assert (where.host, where.port, where.user, where.database, where.password) == \
        ("db.example", 6543, "linli", "linli_prod", "p@ss/w0rd")
    assert pg.Target.parse("postgresql://h").port == 5432


def test_every_sqlite_migration_has_its_postgresql_twin() -> None:
    covered: dict[int, str] = {}
    for script in pg.revisions():
        for number in getattr(script.module, "sqlite_versions", None) or (int(script.revision),):
            assert number not in covered, f"SQLite migration {number:04d} has two twins: {covered[number]}, {script.revision}"
            covered[number] = script.revision
    numbers = {m.version: m.name for m in load_migrations()}
    head = pg.head_revision()
    missing = [
        f"storage/migrations/{n:04d}_{numbers[n]}.sql has no PostgreSQL twin: add "
        f"storage/alembic/versions/{n:04d}_{numbers[n]}.py with revision = \"{n:04d}\" and "
        f"down_revision = \"{head}\" (the newest so far), doing the same in PostgreSQL's words"
        for n in sorted(set(numbers) - set(covered))]
    assert not missing, "\n".join(missing)
    stray = sorted(set(covered) - set(numbers))
    assert not stray, f"Alembic revisions stand for SQLite migrations that do not exist: {stray}"
    assert head == f"{max(numbers):04d}" or max(numbers) in pg.revisions()[-1].module.sqlite_versions
