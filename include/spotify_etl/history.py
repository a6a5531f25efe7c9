"""The history views: what changed in each playlist, date by date (docs/tables.md).

Views over every ``dt`` partition of the tables, never copies, so a rerun, a backfill or a
reprocessed date can never leave history out of step with the tables. Each is one SQL file,
``include/sql/history/<view>.sql``: a ``CREATE OR REPLACE VIEW`` that DuckDB (the local
catalog) and Athena run as the same text, rendered here for DuckDB and by Airflow for Athena.
"""

from __future__ import annotations

from spotify_etl.quality import render_sql

VIEWS = ("playlist_changes", "playlist_song_spans")


def template(view: str) -> str:
    """``view``'s SQL file, relative to include/sql (the DAG's template_searchpath)."""
    if view not in VIEWS:
        raise ValueError(f"no history view {view!r}; the views are {', '.join(VIEWS)}")
    return f"history/{view}.sql"


def view_sql(view: str, database: str, table_prefix: str = "") -> str:
    """``view``'s DDL over the tables of ``database`` named with ``table_prefix``."""
    return render_sql(template(view), database, table_prefix)
