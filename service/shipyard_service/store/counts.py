"""Row counts kept by the store itself, for totals over millions of rows.

`RowCount` holds, per environment, how many metric and list-metric rows each (pipeline,
deployment, metric name) has, and how many executions each (pipeline, deployment,
status). Database triggers keep it in the same transaction as every
write to those tables, whoever writes (the API, retention, project deletion, a bulk load
straight into the tables): a page's `total_count` then sums a handful of counter rows
instead of counting a million index entries (100-200 ms on PostgreSQL at 1,000,000).

SQLite gets row triggers; PostgreSQL gets statement triggers over transition tables, so a
bulk insert or delete updates each counter once, not once per row. An execution's status
change moves it between two counters (a row trigger that fires on status changes only)."""

from __future__ import annotations

import peewee
from peewee import fn

from .models import RowCount

# The tables counted, and which column each counts by besides pipeline and deployment
# (RowCount.name holds it): the metric name, or the execution's status.
COUNTED = {"metric": "name", "listmetric": "name", "execution": "status"}
_KEY = "environment_id, kind, pipeline_name, deployment_name, name"


def _key_of(table: str, row: str) -> str:
    return (f"{row}.environment_id, '{table}', COALESCE({row}.pipeline_name, ''), "
            f"COALESCE({row}.deployment_name, ''), {row}.{COUNTED[table]}")


def _sqlite_triggers(table: str) -> list[str]:
    def add(row: str, step: str) -> str:
        return (f'INSERT INTO "rowcount" ({_KEY}, count) VALUES ({_key_of(table, row)}, {step}) '
                f"ON CONFLICT ({_KEY}) DO UPDATE SET count = count + {step};")

    triggers = [
        f'CREATE TRIGGER IF NOT EXISTS "{table}_count_insert" AFTER INSERT ON "{table}" '
        f'BEGIN {add("NEW", "1")} END',
        f'CREATE TRIGGER IF NOT EXISTS "{table}_count_delete" AFTER DELETE ON "{table}" '
        f'BEGIN {add("OLD", "-1")} END',
    ]
    if table == "execution":  # its status moves; the other counted columns never do
        column = COUNTED[table]
        triggers.append(
            f'CREATE TRIGGER IF NOT EXISTS "{table}_count_update" AFTER UPDATE OF {column} '
            f'ON "{table}" WHEN OLD.{column} IS NOT NEW.{column} '
            f'BEGIN {add("OLD", "-1")} {add("NEW", "1")} END')
    return triggers


def trigger_function(name: str, body: str) -> str:
    """A PostgreSQL trigger function running `body` (statements ending with ';')."""
    return (f'CREATE OR REPLACE FUNCTION "{name}"() RETURNS trigger LANGUAGE plpgsql AS $$\n'
            f"BEGIN\n  {body}\n  RETURN NULL;\nEND $$")


def _postgres_triggers(table: str) -> list[str]:
    column = COUNTED[table]
    grouped = (f"SELECT environment_id, TG_TABLE_NAME, COALESCE(pipeline_name, ''), "
               f"COALESCE(deployment_name, ''), {column}, {{sign}} COUNT(*) FROM {{rows}} "
               "GROUP BY 1, 2, 3, 4, 5")
    add = (f'INSERT INTO "rowcount" AS c ({_KEY}, count) {{rows}} '
           f'ON CONFLICT ({_KEY}) DO UPDATE SET count = c.count + EXCLUDED.count;')
    both = {"insert": add.format(rows=grouped.format(sign="", rows="new_rows")),
            "delete": add.format(rows=grouped.format(sign="-", rows="old_rows"))}
    result = []
    for op, body in both.items():
        rows = "NEW TABLE AS new_rows" if op == "insert" else "OLD TABLE AS old_rows"
        result += [
            trigger_function(f"{table}_count_{op}", body),
            f'DROP TRIGGER IF EXISTS "{table}_count_{op}" ON "{table}"',
            # Per statement, over its rows: a bulk write updates each counter once.
            f'CREATE TRIGGER "{table}_count_{op}" AFTER {op.upper()} ON "{table}" '
            f'REFERENCING {rows} FOR EACH STATEMENT EXECUTE FUNCTION "{table}_count_{op}"()',
        ]
    if table == "execution":
        # Per row, and only when the status changed: the WHEN test runs without calling
        # the function, so the hot path's other updates (pid, end, outputs) pay nothing.
        one = ("INSERT INTO \"rowcount\" AS c ({key}, count) VALUES ("
               "{row}.environment_id, 'execution', COALESCE({row}.pipeline_name, ''), "
               "COALESCE({row}.deployment_name, ''), {row}.status, {step}) "
               "ON CONFLICT ({key}) DO UPDATE SET count = c.count + EXCLUDED.count;")
        body = (one.format(key=_KEY, row="OLD", step=-1) + " "
                + one.format(key=_KEY, row="NEW", step=1))
        result += [
            trigger_function(f"{table}_count_update", body),
            f'DROP TRIGGER IF EXISTS "{table}_count_update" ON "{table}"',
            f'CREATE TRIGGER "{table}_count_update" AFTER UPDATE OF {column} ON "{table}" '
            f"FOR EACH ROW WHEN (OLD.{column} IS DISTINCT FROM NEW.{column}) "
            f'EXECUTE FUNCTION "{table}_count_update"()',
        ]
    return result


# The status filter's index: Failed executions are few among millions, and a partial index
# is never written on the success path (a full status index cost every write ~30 us).
FAILED_INDEX = ('CREATE INDEX IF NOT EXISTS "execution_failed_environment_id_created_at" '
                'ON "execution" ("environment_id", "created_at", "execution_id") '
                "WHERE status = 'Failed'")


def install(db: peewee.Database) -> None:
    """Create the counters' table and triggers and count what the tables already hold (a
    migration: run once, in its transaction, so no write slips between the count and the
    triggers); and the failed executions' index."""
    sqlite = isinstance(db, peewee.SqliteDatabase)
    db.execute_sql(
        'CREATE TABLE IF NOT EXISTS "rowcount" ("environment_id" INTEGER NOT NULL '
        'REFERENCES "environment" ("id") ON DELETE CASCADE, "kind" VARCHAR(255) NOT NULL, '
        '"pipeline_name" VARCHAR(255) NOT NULL, "deployment_name" VARCHAR(255) NOT NULL, '
        f'"name" VARCHAR(255) NOT NULL, "count" BIGINT NOT NULL DEFAULT 0, PRIMARY KEY ({_KEY}))'
        + (" WITHOUT ROWID" if sqlite else ""))
    db.execute_sql('DELETE FROM "rowcount"')
    db.execute_sql(FAILED_INDEX)
    for table in COUNTED:
        for statement in (_sqlite_triggers(table) if sqlite else _postgres_triggers(table)):
            db.execute_sql(statement)
        db.execute_sql(
            f'INSERT INTO "rowcount" ({_KEY}, count) SELECT environment_id, \'{table}\', '
            "COALESCE(pipeline_name, ''), COALESCE(deployment_name, ''), "
            f'{COUNTED[table]}, COUNT(*) FROM "{table}" GROUP BY 1, 2, 3, 4, 5')


def total(kind: str, environment_id: int, filters: dict[str, str]) -> int:
    """How many `kind` rows of the environment match `filters` (any of pipeline_name,
    deployment_name, name; a null pipeline or deployment is counted under '')."""
    condition = (RowCount.environment == environment_id) & (RowCount.kind == kind)
    for key in ("pipeline_name", "deployment_name", "name"):
        if filters.get(key):
            condition &= getattr(RowCount, key) == filters[key]
    return int(RowCount.select(fn.COALESCE(fn.SUM(RowCount.count), 0)).where(condition).scalar())


def breakdown(kind: str, environment_id: int, filters: dict[str, str], by: str) -> dict[str, int]:
    """{value of `by` (pipeline_name, deployment_name or name): rows} over the rows matching
    `filters`, values with no row left out."""
    condition = (RowCount.environment == environment_id) & (RowCount.kind == kind)
    for key in ("pipeline_name", "deployment_name", "name"):
        if filters.get(key):
            condition &= getattr(RowCount, key) == filters[key]
    column = getattr(RowCount, by)
    total_ = fn.SUM(RowCount.count)
    return {value: int(n) for value, n in RowCount.select(column, total_).where(condition)
            .group_by(column).having(total_ > 0).tuples()}


# Sort keys (store/sortindex.py, sortkeys.py) carrying their execution's filter columns,
# counted per key (RowCount.kind: the key itself, `in:NAME`, `m:NAME`, ...; `name`: the
# status, '' on a metric key the indexer has not stamped): a filtered sort's last pages
# know how many executions hold a value without counting half a million index entries.
# SQLite: row triggers with a WHEN, so a key without filter columns (one written before
# they were filled) passes the test without a function call. PostgreSQL: inserts and deletes are
# counted per statement over its rows, as the tables above are (metric keys carry their
# filter columns since 0021, and a per-row function call made a bulk load 3.2x slower);
# a change of filter columns (the fills, a metric key's stamp) per row.
_SORT_KEY_ROW = ("{r}.environment_id, {r}.key, {r}.pipeline_name, {r}.deployment_name, "
                 "COALESCE({r}.status, '')")
_SORT_KEY_CHANGED = ("OLD.pipeline_name IS DISTINCT FROM NEW.pipeline_name OR "
                     "OLD.deployment_name IS DISTINCT FROM NEW.deployment_name OR "
                     "OLD.status IS DISTINCT FROM NEW.status")


def _sort_key_step(row: str, step: str, upsert: str) -> str:
    return (f'INSERT INTO "rowcount" ({_KEY}, count) SELECT {_SORT_KEY_ROW.format(r=row)}, '
            f"{step} WHERE {row}.pipeline_name IS NOT NULL "
            f'ON CONFLICT ({_KEY}) DO UPDATE SET count = "rowcount".count + {upsert};')


def _sort_key_statement(rows: str, sign: str) -> str:
    return (f'INSERT INTO "rowcount" AS c ({_KEY}, count) SELECT {_SORT_KEY_ROW.format(r="r")}, '
            f"{sign}COUNT(*) FROM {rows} AS r WHERE r.pipeline_name IS NOT NULL "
            "GROUP BY 1, 2, 3, 4, 5 "
            f"ON CONFLICT ({_KEY}) DO UPDATE SET count = c.count + EXCLUDED.count;")


def _sort_key_triggers(sqlite: bool) -> list[str]:
    step = {"NEW": "1", "OLD": "-1"}
    # SQLite's upsert adds the literal; PostgreSQL's names the proposed row.
    bodies = {op: " ".join(_sort_key_step(r, step[r], step[r] if sqlite else "EXCLUDED.count")
                           for r in rows)
              for op, rows in (("insert", ["NEW"]), ("delete", ["OLD"]),
                               ("update", ["OLD", "NEW"]))}
    whens = {"insert": "NEW.pipeline_name IS NOT NULL", "delete": "OLD.pipeline_name IS NOT NULL",
             "update": _SORT_KEY_CHANGED}
    events = {"insert": "INSERT", "delete": "DELETE",
              "update": "UPDATE OF pipeline_name, deployment_name, status"}
    statements = []
    for op, body in bodies.items():
        name = f"sortkey_count_{op}"
        if sqlite:
            when = whens[op].replace("IS DISTINCT FROM", "IS NOT")
            statements += [f'DROP TRIGGER IF EXISTS "{name}"',
                           f'CREATE TRIGGER "{name}" AFTER {events[op]} ON '
                           f'"sortkey" WHEN {when} BEGIN {body} END']
        elif op == "update":
            statements += [
                trigger_function(name, body),
                f'DROP TRIGGER IF EXISTS "{name}" ON "sortkey"',
                f'CREATE TRIGGER "{name}" AFTER {events[op]} ON "sortkey" FOR EACH ROW '
                f'WHEN ({whens[op]}) EXECUTE FUNCTION "{name}"()']
        else:
            rows = "new_rows" if op == "insert" else "old_rows"
            statements += [
                trigger_function(name, _sort_key_statement(rows, "" if op == "insert" else "-")),
                f'DROP TRIGGER IF EXISTS "{name}" ON "sortkey"',
                f'CREATE TRIGGER "{name}" AFTER {events[op]} ON "sortkey" REFERENCING '
                f'{"NEW" if op == "insert" else "OLD"} TABLE AS {rows} FOR EACH STATEMENT '
                f'EXECUTE FUNCTION "{name}"()']
    return statements


def sort_key_triggers(db: peewee.Database) -> None:
    """(Re)make the sort keys' counter triggers (migration 0021: a metric key's null
    status is counted under '')."""
    for statement in _sort_key_triggers(isinstance(db, peewee.SqliteDatabase)):
        db.execute_sql(statement)


def install_sort_keys(db: peewee.Database) -> None:
    """The sort keys' counters: triggers, and a count of the keys that carry
    their filter columns already (a migration: none in a store filled before it but the
    keys written since; the sort indexer's fill counts the rest through the triggers)."""
    sort_key_triggers(db)
    RowCount.delete().where(RowCount.kind.not_in(list(COUNTED))).execute()
    db.execute_sql(
        f'INSERT INTO "rowcount" ({_KEY}, count) SELECT {_SORT_KEY_ROW.format(r="s")}, '
        'COUNT(*) FROM "sortkey" AS s WHERE s.pipeline_name IS NOT NULL '
        "GROUP BY 1, 2, 3, 4, 5")
