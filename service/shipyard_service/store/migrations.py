"""Schema version bookkeeping; each migration is a function run once, in order."""

from __future__ import annotations

import peewee

from .models import SchemaVersion

# Append migrations here; never edit one that has shipped.
MIGRATIONS: list = []


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
