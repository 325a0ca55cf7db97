"""Sort keys kept by the store itself, for the comparison view's sorts over millions.

`sortkey` holds one row per execution and sortable metric column: each metric (`m:NAME`)
and each list metric's running summary (`lm:NAME:min|max|mean|last`), with the execution's
creation date for ties. An index on (environment, key, value, created_at) makes "sort by
metric X" an index scan that stops at the page instead of a subquery per execution (2 s
at 1,000,000).

Database triggers keep it in the same transaction as the writes of metrics and list
metrics, whoever writes. Inputs and outputs are not kept: extracting them in a trigger on
every execution write doubled the endpoint hot path's store time (+90 us on SQLite).

Since migration 0021 (`carry_filters`) a metric key carries its execution's pipeline and
deployment ('' for none), as input/output keys do (store/sortindex.py), so a sort filtered
by them reads one range of one index; keys written before are filled in the background
(sortindex.fill_batch). Its status since 0023: a metric is written while its execution
runs, so the sort indexer stamps its keys when it passes the ended execution; one written
after the execution ended gets it from the trigger (a key written after the stamp would
otherwise keep none)."""

from __future__ import annotations

from collections.abc import Sequence

import peewee

AGGREGATES = {"min": "{r}.value_min", "max": "{r}.value_max", "last": "{r}.value_last",
              "mean": "{r}.value_sum / NULLIF({r}.count, 0)"}


_COLUMNS = "execution_id, key, environment_id, value, created_at"


def _carried(final: Sequence[str] | None) -> str:
    """The columns a key carries of its execution besides its date: pipeline and
    deployment (migration 0021), and since 0023 its status if it is one of `final` (a
    metric written after its execution ended; the sort indexer stamps the others). None:
    nothing (before 0021)."""
    if final is None:
        return ""
    return ", pipeline_name, deployment_name" + (", status" if final else "")


def _final_status(x: str, final: Sequence[str]) -> str:
    statuses = ", ".join(f"'{s}'" for s in final)
    return f"CASE WHEN {x}.status IN ({statuses}) THEN {x}.status END"


def _sqlite_carried(e: str, final: Sequence[str] | None) -> str:
    """Their values for the execution of id `e`."""
    if final is None:
        return ""
    of = "(SELECT {} FROM execution AS x WHERE x.execution_id = " + e + ")"
    values = [of.format("x.pipeline_name"), f"COALESCE({of.format('x.deployment_name')}, '')"]
    if final:
        values.append(of.format(_final_status("x", final)))
    return ", " + ", ".join(values)


def _pg_carried(final: Sequence[str] | None) -> str:
    """Their values, the execution joined as `x`."""
    if final is None:
        return ""
    return (", x.pipeline_name, COALESCE(x.deployment_name, '')"
            + (f", {_final_status('x', final)}" if final else ""))


# A key whose value did not change is not written: a list's append changes one or two of
# its four keys, and each written key moves its entries in three indexes (0017's filter
# indexes hold metric keys since 0021).
_UNCHANGED = " WHERE {old}.value IS {distinct} {new}.value"


def _sqlite_upsert(select: str, final: Sequence[str] | None = None) -> str:
    # An upsert, not INSERT OR REPLACE: inside a trigger, the conflict policy of the
    # statement that fired it (a metric's own upsert) overrides OR REPLACE. `WHERE true`
    # tells SQLite's parser the ON CONFLICT is the upsert's, not a join's.
    return (f'INSERT INTO "sortkey" ({_COLUMNS}{_carried(final)}) '
            f"SELECT * FROM ({select}) WHERE true "
            "ON CONFLICT (execution_id, key) DO UPDATE SET value = excluded.value"
            + (_UNCHANGED.format(old='"sortkey"', distinct="NOT", new="excluded")
               if final is not None else ""))


def _sqlite_lists(row: str, source: str = "", final: Sequence[str] | None = None) -> str:
    parts = [f"SELECT {row}.execution_id AS e, 'lm:' || {row}.name || ':{name}' AS k, "
             f"{row}.environment_id AS env, {expression.format(r=row)} AS v{source}"
             for name, expression in AGGREGATES.items()]
    return (f"SELECT e, k, env, v, (SELECT created_at FROM execution WHERE execution_id = e)"
            f"{_sqlite_carried('e', final)} "
            f"FROM ({' UNION ALL '.join(parts)}) WHERE v IS NOT NULL")


def _sqlite_metric(row: str, source: str = "", final: Sequence[str] | None = None) -> str:
    return (f"SELECT {row}.execution_id, 'm:' || {row}.name, {row}.environment_id, "
            f"{row}.value, (SELECT created_at FROM execution AS x "
            f"WHERE x.execution_id = {row}.execution_id)"
            f"{_sqlite_carried(f'{row}.execution_id', final)}{source}")


def _sqlite(final: Sequence[str] | None = None) -> list[str]:
    lists_keys = ", ".join(f"'lm:' || OLD.name || ':{name}'" for name in AGGREGATES)
    return [
        # An execution's keys go with it (retention, project deletion).
        'CREATE TRIGGER IF NOT EXISTS "execution_sortkey_delete" AFTER DELETE ON "execution" '
        'BEGIN DELETE FROM "sortkey" WHERE execution_id = OLD.execution_id; END',
        'CREATE TRIGGER IF NOT EXISTS "metric_sortkey_insert" AFTER INSERT ON "metric" '
        f'BEGIN {_sqlite_upsert(_sqlite_metric("NEW", final=final), final)}; END',
        'CREATE TRIGGER IF NOT EXISTS "metric_sortkey_update" AFTER UPDATE OF value ON "metric" '
        f'BEGIN {_sqlite_upsert(_sqlite_metric("NEW", final=final), final)}; END',
        'CREATE TRIGGER IF NOT EXISTS "metric_sortkey_delete" AFTER DELETE ON "metric" BEGIN '
        "DELETE FROM \"sortkey\" WHERE execution_id = OLD.execution_id "
        "AND key = 'm:' || OLD.name; END",
        'CREATE TRIGGER IF NOT EXISTS "listmetric_sortkey_insert" AFTER INSERT ON "listmetric" '
        f'BEGIN {_sqlite_upsert(_sqlite_lists("NEW", final=final), final)}; END',
        'CREATE TRIGGER IF NOT EXISTS "listmetric_sortkey_update" AFTER UPDATE OF count, '
        'value_min, value_max, value_sum, value_last ON "listmetric" '
        f'BEGIN {_sqlite_upsert(_sqlite_lists("NEW", final=final), final)}; END',
        'CREATE TRIGGER IF NOT EXISTS "listmetric_sortkey_delete" AFTER DELETE ON "listmetric" '
        'BEGIN DELETE FROM "sortkey" WHERE execution_id = OLD.execution_id '
        f"AND key IN ({lists_keys}); END",
    ]


def _pg_lists(rows: str, final: Sequence[str] | None = None) -> str:
    parts = [f"SELECT r.execution_id AS e, 'lm:' || r.name || ':{name}' AS k, "
             f"r.environment_id AS env, to_jsonb({expression.format(r='r')}) AS v "
             f"FROM {rows} AS r" for name, expression in AGGREGATES.items()]
    return (f"SELECT s.e, s.k, s.env, s.v, x.created_at{_pg_carried(final)} "
            f"FROM ({' UNION ALL '.join(parts)}) "
            "AS s LEFT JOIN execution AS x ON x.execution_id = s.e "
            "WHERE s.v IS NOT NULL AND s.v <> 'null'::jsonb")


def _pg_metric(rows: str, final: Sequence[str] | None = None) -> str:
    return ("SELECT n.execution_id, 'm:' || n.name, n.environment_id, to_jsonb(n.value), "
            f"x.created_at{_pg_carried(final)} FROM {rows} AS n "
            "LEFT JOIN execution AS x "
            "ON x.execution_id = n.execution_id")


def _pg_upsert(select: str, final: Sequence[str] | None = None) -> str:
    # DISTINCT ON: one row per key even if an item is listed twice (ON CONFLICT may not
    # touch a row twice in one statement).
    return (f'INSERT INTO "sortkey" AS s ({_COLUMNS}{_carried(final)}) '
            f"SELECT DISTINCT ON (1, 2) * FROM ({select}) AS q "
            "ON CONFLICT (execution_id, key) DO UPDATE SET value = EXCLUDED.value"
            + (_UNCHANGED.format(old="s", distinct="DISTINCT FROM", new="EXCLUDED")
               if final is not None else ""))


def _pg_function(name: str, body: str) -> str:
    return (f'CREATE OR REPLACE FUNCTION "{name}"() RETURNS trigger LANGUAGE plpgsql AS $$\n'
            f"BEGIN\n  {body};\n  RETURN NULL;\nEND $$")


def _pg_trigger(name: str, table: str, when: str) -> list[str]:
    return [f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"',
            f'CREATE TRIGGER "{name}" AFTER {when} EXECUTE FUNCTION "{name}"()']


def _postgres(final: Sequence[str] | None = None) -> list[str]:
    one = "(SELECT NEW.*)"
    deleted = 'DELETE FROM "sortkey" AS s USING old_rows AS o WHERE s.execution_id = o.execution_id'
    statements = [
        _pg_function("execution_sortkey_delete", deleted),
        _pg_function("metric_sortkey_insert",
                     _pg_upsert(_pg_metric("new_rows", final), final)),
        _pg_function("metric_sortkey_update", _pg_upsert(_pg_metric(one, final), final)),
        _pg_function("metric_sortkey_delete", f"{deleted} AND s.key = 'm:' || o.name"),
        _pg_function("listmetric_sortkey_insert",
                     _pg_upsert(_pg_lists("new_rows", final), final)),
        _pg_function("listmetric_sortkey_update", _pg_upsert(_pg_lists(one, final), final)),
        _pg_function("listmetric_sortkey_delete", f"{deleted} AND s.key IN ("
                     + ", ".join(f"'lm:' || o.name || ':{n}'" for n in AGGREGATES) + ")"),
    ]
    for table in ("execution", "metric", "listmetric"):
        # Per statement, over its rows: a bulk write is one pass.
        if table != "execution":
            statements += _pg_trigger(f"{table}_sortkey_insert", table, f'INSERT ON "{table}" '
                                      "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT")
        statements += _pg_trigger(f"{table}_sortkey_delete", table, f'DELETE ON "{table}" '
                                  "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT")
    statements += _pg_trigger("metric_sortkey_update", "metric", 'UPDATE OF value ON "metric" '
                              "FOR EACH ROW WHEN (OLD.value IS DISTINCT FROM NEW.value)")
    statements += _pg_trigger("listmetric_sortkey_update", "listmetric",
                              "UPDATE OF count, value_min, value_max, value_sum, value_last "
                              'ON "listmetric" FOR EACH ROW')
    return statements


def refresh_postgres(db: peewee.Database) -> None:
    """(Re)create the PostgreSQL triggers as they were before migration 0021 (which, with
    0023, remakes them) and rewrite the metric and list-summary keys from the stored rows,
    leaving the input/output keys (store/sortindex.py) alone."""
    for statement in _postgres():
        db.execute_sql(statement)
    for select in (_pg_metric("metric"), _pg_lists("listmetric")):
        db.execute_sql(_pg_upsert(select))


def carry_filters(db: peewee.Database, final: Sequence[str] = ()) -> None:
    """Migration 0021: the metric triggers write the execution's pipeline and deployment
    with each key from now on (the keys already stored are left for the background fill:
    rewriting millions of them here would hold the migration for minutes); 0023: and its
    status if it is one of `final`."""
    if isinstance(db, peewee.SqliteDatabase):
        for statement in _sqlite(final)[1:]:  # all but the execution's delete
            db.execute_sql(f'DROP TRIGGER IF EXISTS "{statement.split(chr(34))[1]}"')
            db.execute_sql(statement)
        return
    for statement in _postgres(final):
        db.execute_sql(statement)


def install(db: peewee.Database) -> None:
    """Create the table, its index and triggers, and fill it from what is stored (a
    migration: one transaction)."""
    sqlite = isinstance(db, peewee.SqliteDatabase)
    db.execute_sql(
        'CREATE TABLE IF NOT EXISTS "sortkey" ("execution_id" VARCHAR(255) NOT NULL, '
        '"key" VARCHAR(255) NOT NULL, "environment_id" INTEGER NOT NULL, '
        f'"value" {"" if sqlite else "JSONB"}, "created_at" TIMESTAMP, '
        'PRIMARY KEY ("execution_id", "key"))' + (" WITHOUT ROWID" if sqlite else ""))
    db.execute_sql('CREATE INDEX IF NOT EXISTS "sortkey_environment_id_key_value_created_at" '
                   'ON "sortkey" ("environment_id", "key", "value", "created_at")')
    db.execute_sql('DELETE FROM "sortkey"')
    if not sqlite:
        refresh_postgres(db)
        return
    for statement in _sqlite():
        db.execute_sql(statement)
    for select in (_sqlite_metric("m", " FROM metric AS m"),
                   _sqlite_lists("l", " FROM listmetric AS l")):
        db.execute_sql(_sqlite_upsert(select))
