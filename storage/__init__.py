"""Linli storage: one SQLite database behind a single writer (see storage.db)."""

from storage.db import Database, DatabaseError, open_database

__all__ = ["Database", "DatabaseError", "open_database"]
