"""The service tests run on both databases (tests/both.py): SQLite, and PostgreSQL under the
``postgres`` marker."""

from tests.both import both_db, pg_server

__all__ = ["both_db", "pg_server"]
