"""Peewee models and database set-up (SQLite by default, PostgreSQL by URL)."""

from .db import close_db, database, db_session, init_db, release_connection, utcnow

__all__ = ["database", "db_session", "init_db", "close_db", "release_connection", "utcnow"]
