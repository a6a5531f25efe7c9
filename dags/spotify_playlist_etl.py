"""
# spotify_playlist_etl: daily Spotify playlist ETL (runbook)

For the run's date `dt` (the logical date, never the wall clock): `plan` picks the playlists
and the mode, `extract_playlist` (one mapped task per playlist) lands each one's raw JSON,
`transform` writes five Parquet tables, `catalog` registers them (DuckDB views locally, the
Glue crawler on AWS), `validate` runs `include/sql/validate.sql`, and `check_extracts` fails
the run if any playlist failed to extract. Backfills and runs for past dates **reprocess** the
raw data already landed for `dt` and never call Spotify; a past date with no raw data is skipped.

What each task does, the lake, the settings: in the project's repository, README.md ("The
pipeline") and the pages under docs/ (docs/operate.md: triggering and backfills).

**Every task is safe to re-run for its date**: a re-run replaces that date's raw documents and
partitions atomically, so clearing and re-running never duplicates a row.

**On failure.**

- `plan` "no playlists to extract": set your list in `include/config/playlists.toml` or the
  param `playlists`.
- `extract_playlist` 404/403: the playlist is Spotify-owned or not readable by the app (2024/2026
  API rules): use a playlist the refresh token's user owns or collaborates on
  (docs/spotify-credentials.md). `invalid_grant`: get a new refresh token with `spotify-etl auth`.
  429 beyond the allowed wait: Airflow retries later.
- `transform` "raw documents are not valid": the message names the document; nothing was written.
- `catalog` on AWS, crawler changed while `RUNNING`: the retry goes on once the crawl has ended
  (or stop it: `aws glue stop-crawler`). A table missing after the first crawl:
  docs/run-on-aws.md, "A full recrawl".
- `validate` failed: the log names each check and its numbers; fix the input or the transform,
  then clear the run.
- `check_extracts` failed: it names the missing playlists; after fixing the cause, clear the
  failed `extract_playlist` with its downstream tasks and the date's tables are rebuilt with
  every playlist.

**Where data lands.** `local`: `SPOTIFY_ETL_LAKE_DIR` (default `<project>/lake`), catalog in
`lake/catalog.duckdb`. `aws`: `s3://$SPOTIFY_ETL_S3_BUCKET/$SPOTIFY_ETL_S3_PREFIX/`, Glue
database `$SPOTIFY_ETL_DATABASE`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Asset, Param, dag, task
from spotify_etl.settings import Settings, configured_playlists, dag_description
from spotify_etl.tables import TABLE_NAMES

SETTINGS = Settings.from_env()
# Identity independent of the settings: Airflow keeps one active asset per name and per URI,
# so a URI that followed the lake's location would leave the assets of a switched home inactive.
TABLE_ASSETS = [Asset(name=f"spotify_etl.tables.{t}", uri=f"x-spotify-etl://tables/{t}", group="spotify_etl")
                for t in TABLE_NAMES]


@dag(
    dag_id="spotify_playlist_etl",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["spotify", "etl", SETTINGS.target],
    doc_md=__doc__,
    description=dag_description(SETTINGS),
    default_args={
        "owner": "data-engineering",
        "retries": SETTINGS.task_retries,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=15),
    },
    params={
        "playlists": Param(
            configured_playlists(),
            type="array",
            items={"type": "string"},
            title="Playlists",
            description="Playlist ids, spotify:playlist: URIs or open.spotify.com URLs, one per line "
            "(default: include/config/playlists.toml).",
        ),
    },
)
def spotify_playlist_etl() -> None:
    @task
    def plan(params: dict[str, Any], logical_date: dt.datetime, dag_run: Any, ti: Any) -> list[str]:
        from spotify_etl import airflow_glue, pipeline

        lake = airflow_glue.open_lake(SETTINGS)
        started = (ti.start_date or logical_date).date()  # when this task really started
        requested = airflow_glue.requested_playlists(params, dag_run)
        with airflow_glue.fail_fast_on(ValueError):  # bad or missing ids: retrying cannot help
            result = pipeline.plan(
                lake, SETTINGS, logical_date.date(), started, airflow_glue.is_backfill(dag_run), requested,
                connection=lambda: airflow_glue.spotify_connection(SETTINGS),
            )
        return airflow_glue.publish_plan(ti, result)

    @task(max_active_tis_per_dagrun=8)
    def extract_playlist(playlist_id: str, logical_date: dt.datetime, ts: str) -> dict[str, Any]:
        from spotify_etl import airflow_glue

        return airflow_glue.run_extract(SETTINGS, playlist_id, logical_date.date().isoformat())

    @task(trigger_rule="all_done", outlets=TABLE_ASSETS)
    def transform(ti: Any, logical_date: dt.datetime, outlet_events: Any) -> dict[str, Any]:
        from spotify_etl import airflow_glue

        result = airflow_glue.run_transform(SETTINGS, ti, logical_date.date().isoformat())
        airflow_glue.describe_asset_events(outlet_events, TABLE_ASSETS, SETTINGS, result)
        return result

    @task(trigger_rule="all_done")
    def check_extracts(ti: Any) -> dict[str, Any]:
        from spotify_etl import airflow_glue

        return airflow_glue.check_extracts(ti)

    planned = plan()
    extracted = extract_playlist.expand(playlist_id=planned)
    transformed = transform()
    extracted >> transformed >> check_extracts()

    if SETTINGS.target == "aws":
        from spotify_etl.warehouse.aws_tasks import catalog_and_validate

        catalog_and_validate(SETTINGS, transformed)
    else:

        @task
        def catalog(logical_date: dt.datetime) -> dict[str, str]:
            from spotify_etl.warehouse import local

            lake = local.Lake.local(SETTINGS.lake_dir)
            return local.register_tables(lake, SETTINGS.duckdb_path, SETTINGS.database, SETTINGS.table_prefix)

        @task
        def validate(logical_date: dt.datetime) -> list[str]:
            from spotify_etl import airflow_glue

            return airflow_glue.validate_local(SETTINGS, logical_date.date().isoformat())

        transformed >> catalog() >> validate()


spotify_playlist_etl()
