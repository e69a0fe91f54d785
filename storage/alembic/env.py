"""Alembic's environment for Linli's PostgreSQL schema (storage/pg.py runs it; see README.md here).

``storage.pg.upgrade`` opens an asyncpg connection and hands its synchronous face to Alembic in
``config.attributes["connection"]``; run by hand (``alembic`` with a config naming this folder) the
URL comes from ``sqlalchemy.url`` or DATABASE_URL. Schema only: there is no ORM metadata, every
revision is hand-written SQL (``op.execute``), the twin of a numbered SQLite migration.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from storage.pg import asyncpg_url

config = context.config


def _migrate(connection: Any) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


async def _online(url: str) -> None:
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_migrate)
            await conn.commit()
    finally:
        await engine.dispose()


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "")


if context.is_offline_mode():  # `alembic upgrade --sql`: the SQL, for a DBA to read or run
    context.configure(url=asyncpg_url(_url()), literal_binds=True, dialect_name="postgresql")
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _migrate(given)
else:
    asyncio.run(_online(_url()))
