"""Metric rows per day, kept by the store itself, so a deep metric page starts at its day.

A metric page is a slice of (created_at, id) order reached by page number (the official
client's contract), so page N skips (N - 1) x size index entries: 500,000 at page 100 of a
deployment fired every minute, 100-200 ms on PostgreSQL however narrow the index. `MetricDay`
counts, per environment, metric kind, pipeline, deployment ('' for none), metric name and day
of `created_at`, how many rows there are. A page then sums the days of its filter (a few
hundred rows a year), finds the day its first row falls in and how many rows come before that
day, and skips only within the day, on the same index.

Triggers keep the counts in the same transaction as every write to the metric tables, like
`counts.py` (statement triggers over transition tables on PostgreSQL, row triggers on
SQLite); a row whose `created_at` moves to another day (a single metric recorded again) moves
between two days. The page reads counts and rows in one statement, so both come from one
snapshot whatever is written meanwhile."""

from __future__ import annotations

import peewee

from .counts import trigger_function

TABLES = ("metric", "listmetric")
_KEY = "environment_id, kind, pipeline_name, deployment_name, name, day"
# The day of a `created_at`, in the order of created_at: SQLite stores it as ISO text.
_DAY = {"sqlite": "substr({row}.created_at, 1, 10)", "postgres": "{row}.created_at::date"}


def _key_of(table: str, row: str, engine: str) -> str:
    return (f"{row}.environment_id, '{table}', COALESCE({row}.pipeline_name, ''), "
            f"COALESCE({row}.deployment_name, ''), {row}.name, "
            + _DAY[engine].format(row=row))


def _sqlite_triggers(table: str) -> list[str]:
    def add(row: str, step: str) -> str:
        return (f'INSERT INTO "metricday" ({_KEY}, count) VALUES '
                f"({_key_of(table, row, 'sqlite')}, {step}) "
                f"ON CONFLICT ({_KEY}) DO UPDATE SET count = count + {step};")

    def take(row: str) -> str:  # a day left with no row goes: retention empties old days
        return (f"{add(row, '-1')} DELETE FROM \"metricday\" WHERE ({_KEY}) = "
                f"({_key_of(table, row, 'sqlite')}) AND count = 0;")

    moved = "substr(OLD.created_at, 1, 10) IS NOT substr(NEW.created_at, 1, 10)"
    return [
        *(f'DROP TRIGGER IF EXISTS "{table}_day_{op}"' for op in ("insert", "delete", "update")),
        f'CREATE TRIGGER "{table}_day_insert" AFTER INSERT ON "{table}" '
        f'BEGIN {add("NEW", "1")} END',
        f'CREATE TRIGGER "{table}_day_delete" AFTER DELETE ON "{table}" BEGIN {take("OLD")} END',
        f'CREATE TRIGGER "{table}_day_update" AFTER UPDATE OF created_at '
        f'ON "{table}" WHEN {moved} BEGIN {take("OLD")} {add("NEW", "1")} END',
    ]


def _postgres_triggers(table: str) -> list[str]:
    add = (f'INSERT INTO "metricday" AS c ({_KEY}, count) {{rows}} '
           f'ON CONFLICT ({_KEY}) DO UPDATE SET count = c.count + EXCLUDED.count;')
    grouped = (f"SELECT {_key_of(table, 'r', 'postgres')}, {{sign}} COUNT(*) "
               "FROM {rows} r GROUP BY 1, 2, 3, 4, 5, 6")
    one = add.format(rows="VALUES ({key}, {step})")
    # A day left with no row goes (retention empties old days). A write of that day
    # waiting on the row's lock then inserts it again, or finds it counted again and keeps it.
    emptied = (f'DELETE FROM "metricday" m USING (SELECT DISTINCT '
               f"{_key_of(table, 'r', 'postgres')} FROM old_rows r) AS k ({_KEY}) "
               f"WHERE ({', '.join('m.' + c for c in _KEY.split(', '))}) = "
               f"({', '.join('k.' + c for c in _KEY.split(', '))}) AND m.count = 0;")
    old = _key_of(table, "OLD", "postgres")
    bodies = {
        "insert": add.format(rows=grouped.format(sign="", rows="new_rows")),
        "delete": add.format(rows=grouped.format(sign="-", rows="old_rows")) + " " + emptied,
        "update": (one.format(key=old, step=-1) + " "
                   f'DELETE FROM "metricday" WHERE ({_KEY}) = ({old}) AND count = 0; '
                   + one.format(key=_key_of(table, "NEW", "postgres"), step=1)),
    }
    result = []
    for op, body in bodies.items():
        result += [trigger_function(f"{table}_day_{op}", body),
                   f'DROP TRIGGER IF EXISTS "{table}_day_{op}" ON "{table}"']
    for op, rows in (("insert", "NEW TABLE AS new_rows"), ("delete", "OLD TABLE AS old_rows")):
        # Per statement, over its rows: a bulk write updates each day once.
        result.append(f'CREATE TRIGGER "{table}_day_{op}" AFTER {op.upper()} ON "{table}" '
                      f'REFERENCING {rows} FOR EACH STATEMENT EXECUTE FUNCTION '
                      f'"{table}_day_{op}"()')
    # Per row, only when the day changes: the WHEN test runs without calling the function.
    result.append(f'CREATE TRIGGER "{table}_day_update" AFTER UPDATE OF created_at ON "{table}" '
                  "FOR EACH ROW WHEN (OLD.created_at::date IS DISTINCT FROM "
                  f'NEW.created_at::date) EXECUTE FUNCTION "{table}_day_update"()')
    return result


def install_triggers(db: peewee.Database) -> None:
    """(Re)make the triggers; days already at zero go (migration 0019: the first triggers
    kept them)."""
    sqlite = isinstance(db, peewee.SqliteDatabase)
    for table in TABLES:
        for statement in (_sqlite_triggers(table) if sqlite else _postgres_triggers(table)):
            db.execute_sql(statement)
    db.execute_sql('DELETE FROM "metricday" WHERE count = 0')


def install(db: peewee.Database) -> None:
    """Create the table, its indexes and triggers, and count what the tables already hold
    (a migration: one transaction, so no write slips between the count and the triggers)."""
    sqlite = isinstance(db, peewee.SqliteDatabase)
    engine = "sqlite" if sqlite else "postgres"
    db.execute_sql(
        'CREATE TABLE IF NOT EXISTS "metricday" ("environment_id" INTEGER NOT NULL '
        'REFERENCES "environment" ("id") ON DELETE CASCADE, "kind" VARCHAR(255) NOT NULL, '
        '"pipeline_name" VARCHAR(255) NOT NULL, "deployment_name" VARCHAR(255) NOT NULL, '
        f'"name" VARCHAR(255) NOT NULL, "day" {"TEXT" if sqlite else "DATE"} NOT NULL, '
        f'"count" BIGINT NOT NULL DEFAULT 0, PRIMARY KEY ({_KEY}))'
        + (" WITHOUT ROWID" if sqlite else ""))
    # The primary key serves a pipeline filter; these, a deployment or a name alone.
    for column in ("deployment_name", "name"):
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "metricday_{column}" ON "metricday" '
                       f'("environment_id", "kind", "{column}", "day")')
    db.execute_sql('DELETE FROM "metricday"')
    install_triggers(db)
    for table in TABLES:
        db.execute_sql(f'INSERT INTO "metricday" ({_KEY}, count) SELECT '
                       f'{_key_of(table, "m", engine)}, COUNT(*) FROM "{table}" m '
                       "GROUP BY 1, 2, 3, 4, 5, 6")


def page_start(kind: str, environment_id: int, filters: dict[str, str], offset: int,
               param: str) -> tuple[tuple[str, list], tuple[str, list]]:
    """Where the page at row `offset` (0-based) starts, as two scalar subqueries with their
    parameters, to put in the page's own statement: the day of that row, and how many rows of
    that day come before it. Past the last row the day is NULL: the page is empty."""
    condition = f"environment_id = {param} AND kind = {param}"
    params: list = [environment_id, kind]
    for key in ("pipeline_name", "deployment_name", "name"):
        if filters.get(key):
            condition += f" AND {key} = {param}"
            params.append(filters[key])
    start = (f"SELECT day, before FROM (SELECT day, SUM(n) OVER (ORDER BY day) - n AS before, n "
             f"FROM (SELECT day, SUM(count) AS n FROM metricday WHERE {condition} "
             f"GROUP BY day) d) w WHERE before <= {param} AND {param} < before + n")
    params += [offset, offset]
    return ((f"(SELECT day FROM ({start}) s)", params),
            (f"COALESCE((SELECT {param} - before FROM ({start}) s), 0)", [offset, *params]))
