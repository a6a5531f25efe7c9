"""
# spotify_playlist_etl: daily Spotify playlist ETL (runbook)

**What it does.** For the run's date `dt` (the logical date, never the wall clock):

| task | what it does | safe to re-run? |
|---|---|---|
| `plan` | decides the mode and the run's playlists: **extract** live the param `playlists`, else your list in `include/config/playlists.toml` (the sample playlists only on the embedded default: `local` target without a `spotify_default` connection; with the Spotify API and no list it fails at once, naming both); **reprocess** raw already landed for `dt` (backfills and runs for past dates never call Spotify): the param's playlists, else every one landed for `dt`; or **skip** (past date with no raw) | yes |
| `extract_playlist` | one mapped instance per playlist: playlist metadata + every page of items from the Spotify Web API (or the embedded sample data on the `local` target without a `spotify_default` connection) -> `raw/playlists/dt=<dt>/playlist_id=<id>.json`. An unchanged `snapshot_id` reuses the previous items without downloading them | yes: the document for that date is replaced atomically |
| `transform` | the raw documents of the run's playlists (extracted by this run, or planned for a reprocess) -> Parquet tables `albums`, `artists`, `songs`, `song_artists`, `playlist_items` under `processed/<table>/dt=<dt>/part-00000.parquet`; runs even if some extracts failed (transforms the ones this run extracted) | yes: each partition file is replaced atomically |
| `catalog` | `local`: DuckDB views over the partitions; `aws`: Glue crawler (created/updated, run, waited for deferrably) | yes |
| `validate` | runs `include/sql/validate.sql` (DuckDB locally, Athena on AWS) and fails naming every failed check | yes |
| `check_extracts` | fails the run if any playlist's extract failed, naming them, after the rest has been transformed | yes |

**A run's tables hold exactly its playlists.** Raw documents of other playlists landed for `dt`
(an earlier run's) stay in the lake but are not published; re-running `dt` with a shorter list
publishes the shorter list. A playlist whose extract failed is absent and `check_extracts` names it.

**Assets.** `transform` updates one asset per table, `spotify_etl.tables.<table>` (URI
`x-spotify-etl://tables/<table>`), the same whatever the settings; each event's extra names
`dt`, the partition's location and its rows.

**Where data lands.** `local`: `SPOTIFY_ETL_LAKE_DIR` (default `<project>/lake`), catalog in `lake/catalog.duckdb`.
`aws`: `s3://$SPOTIFY_ETL_S3_BUCKET/$SPOTIFY_ETL_S3_PREFIX/`, Glue database `$SPOTIFY_ETL_DATABASE`.

**On failure.** `plan` "no playlists to extract": set your list in
`include/config/playlists.toml` or the param `playlists`. `extract_playlist` 404/403: the playlist is Spotify-owned or not readable by the app
(2024/2026 API rules): use a playlist you own or the owner's refresh token. 429 beyond the allowed wait:
Airflow retries later. `validate` failed: the log names each check and its numbers; fix the input or the
transform, then clear the run. Every task is idempotent for its date: clearing and re-running never duplicates.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, Param, dag, task
from spotify_etl.airflow.targets import catalog_and_validate
from spotify_etl.settings import SQL_DIR, Settings, configured_playlists, dag_description
from spotify_etl.tables import TABLE_NAMES

if TYPE_CHECKING:
    from airflow.sdk.types import DagRunProtocol, OutletEventAccessorsProtocol, TaskInstance

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
    template_searchpath=[str(SQL_DIR)],  # validate.sql, rendered by Airflow for Athena
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
    def plan(params: dict[str, Any], logical_date: dt.datetime, dag_run: DagRunProtocol, ti: TaskInstance) -> list[str]:
        from spotify_etl.airflow import tasks

        return tasks.plan(SETTINGS, params, logical_date, dag_run, ti)

    @task(max_active_tis_per_dagrun=8)
    def extract_playlist(playlist_id: str, logical_date: dt.datetime) -> dict[str, Any]:
        from spotify_etl.airflow import tasks

        return tasks.run_extract(SETTINGS, playlist_id, logical_date.date().isoformat())

    @task(trigger_rule="all_done", outlets=TABLE_ASSETS)
    def transform(mode: str, message: str, playlists: list[str], extracted: list[dict[str, Any]],
                  logical_date: dt.datetime, outlet_events: OutletEventAccessorsProtocol) -> dict[str, Any]:  # fmt: skip
        from spotify_etl.airflow import tasks

        result = tasks.run_transform(SETTINGS, logical_date.date().isoformat(), mode, message, playlists, extracted)
        tasks.describe_asset_events(outlet_events, TABLE_ASSETS, SETTINGS, result)
        return result

    @task(trigger_rule="all_done")
    def check_extracts(mode: str, expected: list[str], extracted: list[dict[str, Any]]) -> dict[str, Any]:
        from spotify_etl.airflow import tasks

        return tasks.check_extracts(mode, expected, extracted)

    planned = plan()  # returns the playlists to extract; pushes mode, message and the run's playlists
    extracted = extract_playlist.expand(playlist_id=planned)
    transformed = transform(planned["mode"], planned["message"], planned["playlists"], extracted)
    transformed >> check_extracts(planned["mode"], planned, extracted)
    catalog_and_validate(SETTINGS, transformed)


spotify_playlist_etl()
