"""End to end on the local target: the real DAG through `airflow dags test`.

Covers a live-mode run on the embedded sample data, an identical re-run of that date,
a run for two playlists on the same date publishing only those two, a past date
re-processed from landed raw without calling Spotify (every playlist landed, or the ones
given), and a past date with no raw data that is skipped with the documented message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from spotify_etl import tables

from tests.support.airflow_run import dags_test

pytestmark = pytest.mark.e2e

TODAY = dt.datetime.now(dt.UTC).date()
PAST = (TODAY - dt.timedelta(days=30)).isoformat()
EMPTY_PAST = (TODAY - dt.timedelta(days=60)).isoformat()
SAMPLE_PLAYLISTS = 6


def snapshot(lake: Path) -> dict[str, str]:
    return {
        str(p.relative_to(lake)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(lake.rglob("*"))
        if p.is_file() and p.suffix in {".json", ".parquet"}
    }


def published(files: dict[str, str]) -> dict[str, str]:
    """The tables' files of a snapshot; not the run log's, which gains a file per run (test_run_log.py)."""
    return {
        k: v for k, v in files.items() if k.startswith("processed/") and not k.startswith("processed/pipeline_runs/")
    }


def rows(lake: Path, table: str, day: str) -> list[dict]:
    return pq.read_table(lake / "processed" / table / f"dt={day}" / "part-00000.parquet").to_pylist()


@pytest.fixture(scope="module")
def lake_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("e2e-local")
    return {"SPOTIFY_ETL_LAKE_DIR": str(root / "lake"), "SPOTIFY_ETL_DUCKDB_PATH": str(root / "catalog.duckdb")}


def test_run_today_then_rerun_changes_nothing(
    airflow_template_db: Path, tmp_path: Path, lake_env: dict[str, str]
) -> None:
    lake, day = Path(lake_env["SPOTIFY_ETL_LAKE_DIR"]), TODAY.isoformat()
    first = dags_test(airflow_template_db, tmp_path / "run1", day, **lake_env)
    assert first.succeeded, first.output[-4000:]
    assert "USING EMBEDDED SAMPLE DATA" in first.output
    assert len(list((lake / "raw" / "playlists" / f"dt={day}").glob("playlist_id=*.json"))) == SAMPLE_PLAYLISTS
    counts = {t: len(rows(lake, t, day)) for t in tables.TABLE_NAMES}
    assert counts == {"albums": 146, "artists": 136, "songs": 212, "song_artists": 242, "playlist_items": 224,
                      "playlists": 6}  # fmt: skip
    with duckdb.connect(lake_env["SPOTIFY_ETL_DUCKDB_PATH"], read_only=True) as con:
        assert con.execute("SELECT count(*) FROM spotify_etl.songs WHERE dt = ?", [day]).fetchone() == (212,)
    assert "PASS songs_pk_unique_not_null: 0 violations in 212 rows" in first.output
    processed_before = published(snapshot(lake))

    second = dags_test(airflow_template_db, tmp_path / "run2", day, **lake_env)
    assert second.succeeded, second.output[-4000:]
    after = snapshot(lake)
    assert published(after).keys() == processed_before.keys()
    assert {t: rows(lake, t, day) for t in tables.TABLE_NAMES} == {t: rows(lake, t, day) for t in tables.TABLE_NAMES}
    assert {t: len(rows(lake, t, day)) for t in tables.TABLE_NAMES} == counts


def test_a_run_for_two_playlists_publishes_only_those_two(
    airflow_template_db: Path, tmp_path: Path, lake_env: dict[str, str]
) -> None:
    """After the embedded run of today (6 sample playlists), a run for two of them: the tables hold
    exactly those two; the other raw documents of the date stay in the lake, untouched."""
    lake, day = Path(lake_env["SPOTIFY_ETL_LAKE_DIR"]), TODAY.isoformat()
    raw_before = {k: v for k, v in snapshot(lake).items() if k.startswith("raw/")}
    if len(raw_before) != SAMPLE_PLAYLISTS:
        pytest.fail("needs the raw data landed by test_run_today_then_rerun_changes_nothing")
    two = ["5RDmNvuz0prl7bLqtZNkDe", "1h9q8vXXDl2vHOmwdsuXms"]
    result = dags_test(airflow_template_db, tmp_path / "run", day, conf={"playlists": two}, **lake_env)
    assert result.succeeded, result.output[-4000:]
    assert f"dt={day}: extracting 2 playlists live" in result.output
    assert {r["playlist_id"] for r in rows(lake, "playlist_items", day)} == set(two)
    with duckdb.connect(lake_env["SPOTIFY_ETL_DUCKDB_PATH"], read_only=True) as con:
        assert con.execute(
            "SELECT list(DISTINCT playlist_id ORDER BY playlist_id) FROM spotify_etl.playlist_items WHERE dt = ?", [day]
        ).fetchone() == (sorted(two),)
    raw_after = {k: v for k, v in snapshot(lake).items() if k.startswith("raw/")}
    assert raw_after.keys() == raw_before.keys()  # nothing landed is ever deleted
    assert "PASS songs_not_empty" in result.output


def test_past_date_with_raw_is_reprocessed_without_spotify(
    airflow_template_db: Path, tmp_path: Path, lake_env: dict[str, str]
) -> None:
    lake = Path(lake_env["SPOTIFY_ETL_LAKE_DIR"])
    source = lake / "raw" / "playlists" / f"dt={TODAY.isoformat()}"
    if not source.exists():
        pytest.fail("needs the raw data landed by test_run_today_then_rerun_changes_nothing")
    shutil.copytree(source, lake / "raw" / "playlists" / f"dt={PAST}")
    raw_before = {k: v for k, v in snapshot(lake).items() if f"dt={PAST}" in k}

    result = dags_test(airflow_template_db, tmp_path / "run", PAST, **lake_env)
    assert result.succeeded, result.output[-4000:]
    assert f"dt={PAST}: run date is 30 days before the run started; re-processing the 6 raw documents" in result.output
    assert "USING EMBEDDED SAMPLE DATA" not in result.output  # no source was opened at all
    assert {k: v for k, v in snapshot(lake).items() if f"dt={PAST}" in k and k.startswith("raw/")} == raw_before
    assert len(rows(lake, "songs", PAST)) == 212
    assert "PASS songs_not_empty" in result.output

    # A reprocess given a list publishes exactly that list (a backfill with --conf does the same).
    given = ["4XOGDpHMrVoH33uJEwHWU5", "4dn0iEoAxn69ea0Tyov8V5"]
    again = dags_test(airflow_template_db, tmp_path / "again", PAST, conf={"playlists": given}, **lake_env)
    assert again.succeeded, again.output[-4000:]
    assert (
        f"dt={PAST}: run date is 30 days before the run started; re-processing the 2 of the 2 requested" in again.output
    )
    assert {r["playlist_id"] for r in rows(lake, "playlist_items", PAST)} == set(given)
    assert {k: v for k, v in snapshot(lake).items() if f"dt={PAST}" in k and k.startswith("raw/")} == raw_before


def test_past_date_without_raw_is_skipped(airflow_template_db: Path, tmp_path: Path, lake_env: dict[str, str]) -> None:
    lake = Path(lake_env["SPOTIFY_ETL_LAKE_DIR"])
    result = dags_test(airflow_template_db, tmp_path / "run", EMPTY_PAST, **lake_env)
    assert result.succeeded, result.output[-4000:]
    assert f"dt={EMPTY_PAST}: run date is 60 days before the run started and no raw data was landed" in result.output
    assert not list(lake.glob(f"*/*/dt={EMPTY_PAST}")) and not list(lake.glob(f"raw/playlists/dt={EMPTY_PAST}"))


def test_a_spotify_connection_without_a_playlist_list_fails_at_plan_naming_where_to_set_it(
    airflow_template_db: Path, tmp_path: Path
) -> None:
    """With a real Spotify connection the sample playlists are never the default: no list, no run
    (the connection is only looked up, never called; the failure is not retried)."""
    connection = {
        "conn_type": "generic",
        "login": "id",
        "password": "secret",  # pragma: allowlist secret
        "extra": {"refresh_token": "t"},
    }  # pragma: allowlist secret
    result = dags_test(
        airflow_template_db,
        tmp_path / "home",
        TODAY.isoformat(),
        AIRFLOW_CONN_SPOTIFY_DEFAULT=json.dumps(connection),
        SPOTIFY_ETL_TASK_RETRIES="2",
        SPOTIFY_ETL_LAKE_DIR=str(tmp_path / "lake"),
        SPOTIFY_ETL_DUCKDB_PATH=str(tmp_path / "catalog.duckdb"),
    )
    assert not result.succeeded
    assert "no playlists to extract from the Spotify Web API (local target)" in result.output
    assert "include/config/playlists.toml" in result.output and "DAG param 'playlists'" in result.output
    with sqlite3.connect(tmp_path / "home" / "airflow.db") as db:
        rows = db.execute("SELECT task_id, state, try_number FROM task_instance WHERE map_index = -1").fetchall()
    tries = {task: (state, try_number) for task, state, try_number in rows}
    assert tries["plan"] == ("failed", 1)  # failed at once, no retry
    # The tasks that run anyway (trigger rule all_done) have no plan: they too fail at once, saying why.
    assert tries["transform"] == tries["check_extracts"] == ("failed", 1), tries
    assert "the plan task did not succeed, so this run has no plan" in result.output
    assert tries["chunk_playlists"][0] == tries["extract_playlist"][0] == "upstream_failed"
    assert not (tmp_path / "lake" / "raw").exists()  # nothing was extracted


def test_a_future_logical_date_fails_at_plan_naming_both_dates(airflow_template_db: Path, tmp_path: Path) -> None:
    """Spotify serves only today's playlists: a run dated after the day it runs must not publish them
    under that date. The plan fails at once (no retry) and nothing is extracted."""
    future = (TODAY + dt.timedelta(days=400)).isoformat()
    lake = tmp_path / "lake"
    result = dags_test(airflow_template_db, tmp_path / "home", future, SPOTIFY_ETL_TASK_RETRIES="2",
                       SPOTIFY_ETL_LAKE_DIR=str(lake), SPOTIFY_ETL_DUCKDB_PATH=str(tmp_path / "catalog.duckdb"))  # fmt: skip
    assert not result.succeeded
    assert f"the run's logical date {future} is after the day it started ({TODAY.isoformat()})" in result.output
    with sqlite3.connect(tmp_path / "home" / "airflow.db") as db:
        tries = db.execute("SELECT state, try_number FROM task_instance WHERE task_id = 'plan'").fetchone()
    assert tries == ("failed", 1)
    assert not (lake / "raw").exists()
