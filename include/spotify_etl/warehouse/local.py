"""Local warehouse: a DuckDB database file that catalogs the Parquet tables as views.

This is the Glue crawler's job done locally: one view per table over every ``dt``
partition (Hive partitioning), in a schema named like the Glue database, so the same
validation SQL runs unchanged; then the history views, the same DDL Athena runs.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spotify_etl import history, quality, report, runlog, tables
from spotify_etl.lake import LocalLake


def _connect(path: Path, read_only: bool = False, wait_seconds: float = 120.0) -> Any:
    """Open the catalog file, waiting while another process holds its lock.

    DuckDB lets one process at a time open a database file for writing (and none read it
    meanwhile); the catalog and validate tasks of concurrent runs (a backfill runs several
    dates at once) each hold it for well under a second, so a bounded retry serialises them.
    """
    import duckdb

    deadline = time.monotonic() + wait_seconds
    delay = 0.1
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier: any character, a double quote doubled."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """``text`` as an SQL string literal (DuckDB's are standard: no backslash escapes)."""
    return "'" + text.replace("'", "''") + "'"


def _table(database: str, table_prefix: str, table: str) -> str:
    return f"{_identifier(database)}.{_identifier(table_prefix + table)}"


def register_catalog(lake: LocalLake, db_path: Path, database: str, table_prefix: str = "") -> dict[str, str]:
    """The whole catalog in one connection: :func:`register_tables`, :func:`register_run_log`, then
    the history views over them (:mod:`spotify_etl.history`); view name -> location (a history
    view's: its SQL file)."""
    with _catalog(db_path, database, table_prefix) as con:
        views = _register_tables(con, lake, database, table_prefix)
        views |= _register_run_log(con, lake, database, table_prefix)
        return views | _create_history_views(con, database, table_prefix)


def register_tables(lake: LocalLake, db_path: Path, database: str, table_prefix: str = "") -> dict[str, str]:
    """(Re)create one view per table over its partitions; return view name -> location."""
    with _catalog(db_path, database, table_prefix) as con:
        return _register_tables(con, lake, database, table_prefix)


def register_run_log(lake: LocalLake, db_path: Path, database: str, table_prefix: str = "") -> dict[str, str]:
    """(Re)create the run log's view (:mod:`spotify_etl.runlog`), empty while no run is recorded
    (the command line publishes without one); return view name -> location."""
    with _catalog(db_path, database, table_prefix) as con:
        return _register_run_log(con, lake, database, table_prefix)


def _register_tables(con: Any, lake: LocalLake, database: str, table_prefix: str) -> dict[str, str]:
    views = {}
    for table in tables.TABLE_NAMES:
        types = {c: tables.duckdb_type(table, c) for c in tables.columns(table)}
        location = _parquet_view(con, _table(database, table_prefix, table), lake.table_dir(table), types)
        views[f"{database}.{table_prefix}{table}"] = location
    return views


def _register_run_log(con: Any, lake: LocalLake, database: str, table_prefix: str) -> dict[str, str]:
    types = {name: tables.DUCKDB_TYPES[kind] for name, kind, _ in runlog.columns()}
    view = _table(database, table_prefix, runlog.TABLE)
    location = _parquet_view(con, view, lake.table_dir(runlog.TABLE), types, empty_ok=True)
    return {f"{database}.{table_prefix}{runlog.TABLE}": location}


@contextmanager
def _catalog(db_path: Path, database: str, table_prefix: str) -> Iterator[Any]:
    """The catalog open for writing, its schema ``database`` created."""
    quality.check_names(database, table_prefix)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with _connect(db_path) as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_identifier(database)}")
        yield con


def _parquet_view(con: Any, view: str, folder: str, types: dict[str, str], empty_ok: bool = False) -> str:
    """Create ``view`` over the Parquet files of ``folder``'s ``dt=`` partitions, with the columns
    ``types`` (name -> DuckDB type) and ``dt``; return its location. With no file yet, an empty
    view of those columns if ``empty_ok``, else an error.

    A view's definition cannot take bound parameters, so the lake's path goes in as a quoted
    literal, its glob characters escaped (a folder named ``it's [1]`` is read as itself).
    """
    location = f"{folder}/dt=*/*.parquet"
    if not list(Path(folder).glob("dt=*/*.parquet")):
        if not empty_ok:
            name = folder.rsplit("/", 1)[-1]
            raise FileNotFoundError(f"table {name} has no partitions under {folder}; run the transform first")
        cols = ", ".join(f"CAST(NULL AS {t}) AS {_identifier(c)}" for c, t in {**types, "dt": "VARCHAR"}.items())
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {cols} WHERE false")
        return location
    pattern = _literal(f"{glob.escape(folder)}/dt=*/*.parquet")
    # union_by_name: partitions written before a column existed (publish_id) read it as NULL;
    # a column no partition has yet is NULL too, so the view has the table's schema, as Glue's.
    options = "hive_partitioning = true, hive_types = {'dt': VARCHAR}, union_by_name = true"
    source = f"read_parquet({pattern}, {options})"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    nulls = "".join(f", CAST(NULL AS {t}) AS {_identifier(c)}" for c, t in types.items() if c not in present)
    con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT *{nulls} FROM {source}")
    return location


def _create_history_views(con: Any, database: str, table_prefix: str) -> dict[str, str]:
    views = {}
    for view in history.VIEWS:
        con.execute(history.view_sql(view, database, table_prefix))
        views[f"{database}.{table_prefix}{view}"] = f"include/sql/{history.template(view)}"
    return views


def run_validation(db_path: Path, day: str, database: str, table_prefix: str = "") -> list[quality.CheckResult]:
    """Execute the validation SQL in the DuckDB catalog and return its check rows (not judged)."""
    sql = quality.render_validation_sql(day, database, table_prefix)
    with _connect(db_path, read_only=True) as con:
        return quality.parse_rows(con.execute(sql).fetchall())


def report_data(db_path: Path, day: str, database: str, table_prefix: str = "") -> dict[str, report.Rows]:
    """The trends report's queries (:data:`spotify_etl.report.QUERIES`) in the catalog: query -> rows."""
    data = {}
    with _connect(db_path, read_only=True) as con:
        for query in report.QUERIES:
            cursor = con.execute(query.sql(day, database, table_prefix))
            data[query.name] = query.rows([d[0] for d in cursor.description], cursor.fetchall())
    return data


def row_counts(db_path: Path, day: str, database: str, table_prefix: str = "") -> dict[str, int]:
    counts = {}
    with _connect(db_path, read_only=True) as con:
        for t in tables.TABLE_NAMES:
            sql = f"SELECT count(*) FROM {_table(database, table_prefix, t)} WHERE dt = ?"
            counts[t] = con.execute(sql, [day]).fetchone()[0]
    return counts
