"""Schema version bookkeeping; each migration is a function run once, in order."""

from __future__ import annotations

import peewee

from .models import SchemaVersion


def _add_column(db: peewee.Database, table: str, name: str, field: peewee.Field) -> None:
    """Idempotent: a fresh database got the column from create_tables already."""
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

    if name in {c.name for c in db.get_columns(table)}:
        return
    migrator = (SqliteMigrator(db) if isinstance(db, peewee.SqliteDatabase)
                else PostgresqlMigrator(db))
    migrate(migrator.add_column(table, name, field))


def _0001_deployment_runner_token(db: peewee.Database) -> None:
    _add_column(db, "deployment", "runner_token_sealed", peewee.TextField(null=True))


# Append migrations here; never edit one that has shipped.
MIGRATIONS: list = [_0001_deployment_runner_token]


def apply(db: peewee.Database) -> None:
    row = SchemaVersion.select().first()
    current = row.version if row else 0
    for number, migration in enumerate(MIGRATIONS, start=1):
        if number > current:
            with db.atomic():
                migration(db)
    target = len(MIGRATIONS)
    if row is None:
        SchemaVersion.create(version=target)
    elif row.version != target:
        row.version = target
        row.save()
