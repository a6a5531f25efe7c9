"""
# spotify_playlist_etl: daily Spotify playlist ETL (runbook)

For the run's date `dt` (the logical date, never the wall clock): `plan` picks the playlists
and the mode (one value, its XCom), `chunk_playlists` splits the playlists to extract into chunks,
`extract_playlist` (one mapped task per chunk, named by its first playlist and count; pool
`spotify_api`) lands each one's raw JSON, `transform` writes six Parquet tables and the run's
row of the run log `pipeline_runs`, `catalog` registers them (DuckDB views locally, the Glue
crawler on AWS) and (re)creates the history views `playlist_changes` and `playlist_song_spans`
(DuckDB, or Athena on AWS), `validate` runs `include/sql/validate.sql`, `report` writes the date's
trends report (`reports/dt=<date>/index.html` in the lake, from `include/sql/report/`), and `check_extracts`
fails the run if any playlist failed to extract. Backfills and runs for past dates **reprocess**
the raw data already landed for `dt` and never call Spotify; a past date with no raw data is skipped.

What each task does, the lake, the settings: in the project's repository, README.md ("The
pipeline") and the pages under docs/ (docs/operate.md: triggering and backfills).

**Every task is safe to re-run for its date**: a re-run replaces that date's raw documents
atomically and its six tables as one unit (one publisher per date, a publish interrupted
between its swaps completed by the next), so clearing and re-running never duplicates a row.

**On failure.** With an alert setting (`SPOTIFY_ETL_ALERT_SLACK_CONN_ID`, `SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN`),
each retry, failed task, failed run and missed deadline (`SPOTIFY_ETL_DEADLINE_HOURS` after the
data interval) sends an alert with the error's first line and a link to the log (docs/operate.md, "Alerts").

- `plan` "no playlists to extract": set your list in `include/config/playlists.toml` or the
  param `playlists`.
- `plan` "logical date ... is after the day it started": trigger with today's date or an earlier one.
- `transform`, `check_extracts` "the plan task did not succeed, so this run has no plan": fix what
  the `plan` task's log names, then clear the run.
- The DAG does not load (import error `SettingsError: SPOTIFY_ETL_<NAME>='<value>': ...`): fix
  that setting; the message says what it allows (docs/settings.md).
- `extract_playlist` names each failed playlist of its chunk; the others landed. It is retried
  only for a failure a retry can heal (rate limit, Spotify unavailable), and a retry extracts only
  the playlists this run has not landed yet. Queued, not running: the pool `spotify_api` is full
  (other runs are extracting) or missing (`python -m spotify_etl.airflow.pool`).
- `extract_playlist` 404/403: the playlist is Spotify-owned or not readable by the app (2024/2026
  API rules): use a playlist the refresh token's user owns or collaborates on
  (docs/spotify-credentials.md). `invalid_grant`: get a new refresh token with `spotify-etl auth`.
  429 beyond the allowed wait: Airflow retries later.
- `transform` "raw documents are not valid" or "cannot read raw documents": the message names the
  document; nothing was written. "DuckDB ran out of memory": memory, not the input (a document
  too large even alone at a raised limit); Airflow retries it; raise `SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT`.
- `transform` "another publish holds the lock": another run is publishing the same date (the
  message names it); Airflow retries. A crashed holder's lock is taken over at its lease (15 min).
- `catalog` on AWS, crawler changed while `RUNNING`: the retry goes on once the crawl has ended
  (or stop it: `aws glue stop-crawler`). A table missing after the first crawl:
  docs/run-on-aws.md, "A full recrawl". `catalog.view_*` failed: Athena's message names what the
  view's SQL (`include/sql/history/`) could not resolve, usually a table the crawl has not made yet.
- `validate` failed: the log names each check and its numbers; fix the input or the transform,
  then clear the run. `tables_one_publish` alone: a publish was interrupted between its swaps;
  clear `transform` and its downstream tasks (it completes that publish, then publishes anew).
- `report` failed: the message names the trends report and why. The tables and their validation
  stand; Airflow retries it; after fixing the cause, clear `report` alone.
- `check_extracts` failed: it names the missing playlists and their errors; after fixing the
  cause, clear the failed `extract_playlist` with its downstream tasks (its chunk is extracted
  again) and the date's tables are rebuilt with every playlist.

**Where data lands.** `local`: `SPOTIFY_ETL_LAKE_DIR` (default `<project>/lake`), catalog in
`lake/catalog.duckdb`. `aws`: `s3://$SPOTIFY_ETL_S3_BUCKET/$SPOTIFY_ETL_S3_PREFIX/`, Glue
database `$SPOTIFY_ETL_DATABASE`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, Param, dag, task
from spotify_etl.airflow import DAG_ID, alerts
from spotify_etl.airflow.description import dag_description
from spotify_etl.airflow.pool import SPOTIFY_POOL
from spotify_etl.airflow.targets import catalog_and_validate
from spotify_etl.paths import SQL_DIR
from spotify_etl.settings import Settings, configured_playlists
from spotify_etl.tables import TABLE_NAMES

if TYPE_CHECKING:
    from airflow.sdk.types import DagRunProtocol, OutletEventAccessorsProtocol, TaskInstance

SETTINGS = Settings.from_env()
# Identity independent of the settings: Airflow keeps one active asset per name and per URI,
# so a URI that followed the lake's location would leave the assets of a switched home inactive.
TABLE_ASSETS = [
    Asset(name=f"spotify_etl.tables.{t}", uri=f"x-spotify-etl://tables/{t}", group="spotify_etl") for t in TABLE_NAMES
]
REPORT_ASSET = Asset(name="spotify_etl.trends_report", uri="x-spotify-etl://reports/trends", group="spotify_etl")


@dag(
    dag_id=DAG_ID,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["spotify", "etl", SETTINGS.target],
    doc_md=__doc__,
    description=dag_description(SETTINGS),
    template_searchpath=[str(SQL_DIR)],  # validate.sql, rendered by Airflow for Athena
    default_args={
        "owner": "data-engineering",
        "retries": SETTINGS.task_retries,
        "retry_delay": dt.timedelta(seconds=SETTINGS.retry_delay),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=15),
        **alerts.task_callbacks(SETTINGS),  # nothing without an alert setting
    },
    on_failure_callback=alerts.run_failure_callback(SETTINGS),
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
    # Each task body lives in spotify_etl.airflow.tasks, imported only when the task runs (parse cost: docs/performance.md).
    @task
    def plan(params: dict[str, Any], logical_date: dt.datetime, dag_run: DagRunProtocol,
             ti: TaskInstance) -> dict[str, Any]:  # fmt: skip
        from spotify_etl.airflow import tasks

        return tasks.run_plan(SETTINGS, params, logical_date, dag_run, ti)

    @task
    def chunk_playlists(planned: dict[str, Any]) -> list[list[str]]:
        from spotify_etl.airflow import tasks

        return tasks.plan_chunks(SETTINGS, planned)

    # One task per chunk of playlists; the pool is the one Spotify budget of every run and backfill.
    @task(pool=SPOTIFY_POOL, map_index_template="{{ chunk_label }}")
    def extract_playlist(chunk: list[str], logical_date: dt.datetime, dag_run: DagRunProtocol,
                         ti: TaskInstance) -> dict[str, Any]:  # fmt: skip
        from airflow.sdk import get_current_context
        from spotify_etl.airflow import tasks

        day = logical_date.date().isoformat()
        return tasks.run_extract_chunk(SETTINGS, chunk, day, dag_run, ti, get_current_context())

    @task(trigger_rule="all_done", outlets=TABLE_ASSETS)
    def transform(planned: dict[str, Any] | None, extracted: list[dict[str, Any]], logical_date: dt.datetime,
                  dag_run: DagRunProtocol, outlet_events: OutletEventAccessorsProtocol) -> dict[str, Any]:  # fmt: skip
        from spotify_etl.airflow import tasks

        result = tasks.run_transform(SETTINGS, logical_date.date().isoformat(), planned, extracted, dag_run)
        tasks.describe_asset_events(outlet_events, TABLE_ASSETS, SETTINGS, result)
        return result

    @task(trigger_rule="all_done")
    def check_extracts(planned: dict[str, Any] | None, extracted: list[dict[str, Any]]) -> dict[str, Any]:
        from spotify_etl.airflow import tasks

        return tasks.check_extracts(planned, extracted)

    @task(outlets=[REPORT_ASSET])  # after validation: a failed report leaves the validated tables as they are
    def report(logical_date: dt.datetime, outlet_events: OutletEventAccessorsProtocol) -> str:
        from spotify_etl.airflow import tasks

        return tasks.run_report(SETTINGS, logical_date.date().isoformat(), outlet_events[REPORT_ASSET])

    planned = plan()  # the run's plan, one value (None in the later tasks if the plan task failed)
    extracted = extract_playlist.expand(chunk=chunk_playlists(planned))  # Airflow maps over a whole return value
    transformed = transform(planned, extracted)
    transformed >> check_extracts(planned, extracted)
    catalog_and_validate(SETTINGS, transformed) >> report()


DAG = spotify_playlist_etl()
DAG.deadline = alerts.deadline(SETTINGS, DAG.timetable)  # needs the timetable the DAG built from its schedule
