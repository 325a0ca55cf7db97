"""Statements of a fixed shape whose SQL is built once per kind of database.

Peewee builds the SQL text of every query anew, about 0.3 ms per statement on our
machines: as much as SQLite takes to write the row. The endpoint hot path (an execution
inserted, its end updated, the environment's variables read) uses these instead. Values
still go through each field's `db_value`, so they are stored exactly as Peewee stores them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import peewee

from .db import database

# Per statement. SQLite's default limit is 32,766 (Debian builds raise it to 250,000;
# psycopg2 inlines parameters, so PostgreSQL sees none): a bound for the stricter builds.
MAX_PARAMS = 30_000
_sql: dict[tuple, str] = {}
_lock = threading.Lock()


def _statement(key: tuple, build) -> str:
    db = database.obj
    # The text depends only on the dialect's quotes and parameter mark: apps on stores of
    # one kind share it (an id(db) key grew with every app and could be reused by another).
    full_key = (db.quote, db.param, *key)
    sql = _sql.get(full_key)
    if sql is None:
        sql = build(db)
        with _lock:
            _sql[full_key] = sql
    return sql


def _name(db: peewee.Database, name: str) -> str:
    return name.join(db.quote)


def _where(db: peewee.Database, fields: Iterable[peewee.Field], guard: tuple | None) -> str:
    parts = [f"{_name(db, f.column_name)} = {db.param}" for f in fields]
    if guard is not None:
        field, values = guard
        marks = ", ".join([db.param] * len(values))
        parts.append(f"{_name(db, field.column_name)} IN ({marks})")
    return " AND ".join(parts)


def create(model: type[peewee.Model], **values: Any) -> peewee.Model:
    """`model.create(**values)` (defaults applied by the model), for models whose primary
    key is given (no id to read back)."""
    return insert(model(**values))


def insert(instance: peewee.Model) -> peewee.Model:
    """INSERT an instance built earlier (its primary key given), with its values now."""
    model = type(instance)
    data = instance.__data__
    fields = model._meta.fields
    names = tuple(name for name in data if name in fields)

    def build(db):
        table = _name(db, model._meta.table_name)
        columns = ", ".join(_name(db, fields[n].column_name) for n in names)
        marks = ", ".join([db.param] * len(names))
        return f"INSERT INTO {table} ({columns}) VALUES ({marks})"

    sql = _statement(("insert", model, names), build)
    database.execute_sql(sql, [fields[n].db_value(data[n]) for n in names])
    instance._dirty.clear()
    return instance


def insert_many(model: type[peewee.Model], rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT; every row has the same keys (no defaults applied)."""
    if not rows:
        return
    fields = model._meta.fields
    names = tuple(rows[0])
    db = database.obj
    columns = ", ".join(_name(db, fields[n].column_name) for n in names)
    group = "(" + ", ".join([db.param] * len(names)) + ")"
    head = f"INSERT INTO {_name(db, model._meta.table_name)} ({columns}) VALUES "
    per_statement = max(1, MAX_PARAMS // len(names))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        database.execute_sql(head + ", ".join([group] * len(chunk)),
                             [fields[n].db_value(row[n]) for row in chunk for n in names])


def update(model: type[peewee.Model], changes: dict[str, Any], where: dict[str, Any],
           guard: tuple[peewee.Field, tuple] | None = None) -> int:
    """UPDATE ... SET changes WHERE each `where` field equals its value [AND guard field
    IN guard values]; the number of rows changed."""
    fields = model._meta.fields
    set_names, where_names = tuple(changes), tuple(where)

    def build(db):
        sets = ", ".join(f"{_name(db, fields[n].column_name)} = {db.param}" for n in set_names)
        condition = _where(db, [fields[n] for n in where_names], guard)
        return f"UPDATE {_name(db, model._meta.table_name)} SET {sets} WHERE {condition}"

    guard_key = None if guard is None else (guard[0].name, len(guard[1]))
    sql = _statement(("update", model, set_names, where_names, guard_key), build)
    params = [fields[n].db_value(changes[n]) for n in set_names]
    params += [fields[n].db_value(where[n]) for n in where_names]
    if guard is not None:
        params += [guard[0].db_value(v) for v in guard[1]]
    return database.execute_sql(sql, params).rowcount


def select(model: type[peewee.Model], columns: tuple[str, ...],
           where: dict[str, Any]) -> list[tuple]:
    """Rows of `columns` (as Python values) where each `where` field equals its value."""
    fields = model._meta.fields
    where_names = tuple(where)

    def build(db):
        names = ", ".join(_name(db, fields[n].column_name) for n in columns)
        condition = _where(db, [fields[n] for n in where_names], None)
        return f"SELECT {names} FROM {_name(db, model._meta.table_name)} WHERE {condition}"

    sql = _statement(("select", model, columns, where_names), build)
    cursor = database.execute_sql(sql, [fields[n].db_value(where[n]) for n in where_names])
    converters = [fields[n].python_value for n in columns]
    return [tuple(convert(v) for convert, v in zip(converters, row)) for row in cursor.fetchall()]
