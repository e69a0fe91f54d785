"""The throwaway server itself: it answers, and each test gets a database of its own."""

from __future__ import annotations

import asyncpg

from tests.pg import PgServer


async def test_a_fresh_database_answers_over_tcp_with_the_password(pg_server: PgServer, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == pg_url.rsplit("/", 1)[1]
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await conn.close()


async def test_a_wrong_password_is_refused(pg_server: PgServer) -> None:
    import pytest

    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(pg_server.url().replace(":linli-Test-pw-7@", ":wrong@"))
