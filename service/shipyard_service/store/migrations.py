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


def _0002_execution_indexes(db: peewee.Database) -> None:
    """Six single-column indexes on executions become two composite ones (and the token
    one stays): fewer index writes per execution."""
    for column in ("environment_id", "pipeline_name", "deployment_name", "status", "created_at"):
        db.execute_sql(f'DROP INDEX IF EXISTS "execution_{column}"')
    for columns in (("environment_id", "pipeline_name", "created_at"),
                    ("environment_id", "deployment_name", "created_at")):
        name = "execution_" + "_".join(columns)
        quoted = ", ".join(f'"{c}"' for c in columns)
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "execution" ({quoted})')


# Append migrations here; never edit one that has shipped.
MIGRATIONS: list = [_0001_deployment_runner_token, _0002_execution_indexes]


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
