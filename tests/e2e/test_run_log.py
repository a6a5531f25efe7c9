"""The run log through the real DAG (``airflow dags test``, local target, embedded sample data):
three dates extracted, then the middle date reprocessed, with the exact rows of ``pipeline_runs``
before and after.

The reprocess of the middle date stands in for its backfill: ``airflow dags test`` runs one DAG
run in-process (no scheduler), so the run is ``manual``, made a reprocess by
``SPOTIFY_ETL_LIVE_GRACE_DAYS=0`` (the date is then a day behind); what the run log records of
a reprocess is the same, and ``run_type`` is Airflow's (``backfill`` for a backfill:
tests/unit/test_runlog.py). A backfill on the shared Airflow is tests/e2e/test_backfill.py's.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from spotify_etl import tables

from tests.support.airflow_run import dags_test

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

TODAY = dt.datetime.now(dt.UTC).date()
DAYS = [(TODAY - dt.timedelta(days=n)).isoformat() for n in (2, 1, 0)]
SAMPLE_PLAYLISTS = 6
RUN_COLUMNS = (
    "dt, run_id, run_type, mode, publish_id, started_at, published_at, playlists_planned, playlists_landed, "
    "playlists_unchanged, playlists_failed, spotify_requests, items_read, transform_seconds"
)


def run_log(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every row of the catalog's pipeline_runs, by date and publish."""
    with duckdb.connect(env["SPOTIFY_ETL_DUCKDB_PATH"], read_only=True) as con:
        cursor = con.execute("SELECT * FROM spotify_etl.pipeline_runs ORDER BY dt, publish_id")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def raw_documents(lake: Path, day: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((lake / "raw" / "playlists" / f"dt={day}").glob("*.json"))]


def published(env: dict[str, str], day: str) -> dict[str, Any]:
    """What the date's tables hold now, from the catalog: their one publish id, rows per table, and
    the entries that did not become songs (each counted under one reject reason)."""
    with duckdb.connect(env["SPOTIFY_ETL_DUCKDB_PATH"], read_only=True) as con:
        ids = con.execute("SELECT DISTINCT publish_id FROM spotify_etl.songs WHERE dt = ?", [day]).fetchall()
        rows = {}
        for table in tables.TABLE_NAMES:
            query = f"SELECT count(*) FROM spotify_etl.{table} WHERE dt = ? AND publish_id = ?"  # noqa: S608 - fixed names
            rows[table] = con.execute(query, [day, ids[0][0]]).fetchone()[0]
        rejected = con.execute(
            "SELECT count(*) FROM spotify_etl.playlist_items WHERE dt = ? AND song_id IS NULL", [day]
        ).fetchone()[0]
    assert len(ids) == 1, ids
    return {"publish_id": ids[0][0], "rows": rows, "rejected": rejected}


def expected_extract(lake: Path, day: str, tables_now: dict[str, Any]) -> dict[str, Any]:
    """The row of the run that extracted ``day``, from what it landed (the raw documents record
    their API calls and whether the snapshot was unchanged) and what it published."""
    docs = raw_documents(lake, day)
    assert len(docs) == SAMPLE_PLAYLISTS
    return {
        "dt": day, "run_type": "manual", "mode": "extract", "publish_id": tables_now["publish_id"],
        "playlists_planned": SAMPLE_PLAYLISTS, "playlists_landed": SAMPLE_PLAYLISTS,
        "playlists_unchanged": sum(d["unchanged_since"] is not None for d in docs), "playlists_failed": 0,
        "spotify_requests": sum(d["api_calls"] for d in docs),
        "items_read": sum(d["total"] for d in docs if d["unchanged_since"] is None),
    }  # fmt: skip


def check_counts(row: dict[str, Any], tables_now: dict[str, Any]) -> None:
    """The row's rows per table and rejects are the date's tables as that run published them."""
    assert {t: row[f"rows_{t}"] for t in tables.TABLE_NAMES} == tables_now["rows"]
    assert sum(v for k, v in row.items() if k.startswith("rejected_")) == tables_now["rejected"]
    assert row["transform_seconds"] > 0
    midnight = dt.datetime.fromisoformat(row["dt"]).replace(tzinfo=dt.UTC)
    # `airflow dags test` records the run's start as its logical date: the row takes Airflow's record.
    assert row["started_at"] == midnight < row["published_at"]
    assert row["run_id"].startswith("manual__")


def test_three_dates_then_a_reprocess_of_the_middle_one(airflow_template_db: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    env = {
        "SPOTIFY_ETL_LAKE_DIR": str(lake),
        "SPOTIFY_ETL_DUCKDB_PATH": str(tmp_path / "catalog.duckdb"),
        "SPOTIFY_ETL_LIVE_GRACE_DAYS": "2",  # the three dates are extracted live
    }
    expected, counts = {}, {}
    for day in DAYS:
        run = dags_test(airflow_template_db, tmp_path / f"run-{day}", day, **env)
        assert run.succeeded, run.output[-4000:]
        assert f"dt={day}: extracting {SAMPLE_PLAYLISTS} playlists live" in run.output
        tables_now = published(env, day)
        expected[day], counts[day] = expected_extract(lake, day, tables_now), tables_now

    before = run_log(env)
    assert [{k: row[k] for k in expected[row["dt"]]} for row in before] == [expected[day] for day in DAYS]
    for row in before:
        check_counts(row, counts[row["dt"]])
    first, later = expected[DAYS[0]], expected[DAYS[1]]
    assert first["playlists_unchanged"] == 0 and first["items_read"] == counts[DAYS[0]]["rows"]["playlist_items"]
    assert later["playlists_unchanged"] == SAMPLE_PLAYLISTS and later["items_read"] == 0  # snapshots as the day before
    assert later["spotify_requests"] == SAMPLE_PLAYLISTS < first["spotify_requests"]  # one metadata request each
    assert len({row["run_id"] for row in before}) == 3

    middle = DAYS[1]
    again = dags_test(
        airflow_template_db, tmp_path / "reprocess", middle, **(env | {"SPOTIFY_ETL_LIVE_GRACE_DAYS": "0"})
    )
    assert again.succeeded, again.output[-4000:]
    assert f"dt={middle}: run date is 1 days before the run started; re-processing the 6 raw documents" in again.output
    after = run_log(env)
    reprocessed = published(env, middle)
    (added,) = [row for row in after if row not in before]
    assert [row for row in after if row != added] == before  # the other runs' rows are untouched
    assert {k: added[k] for k in expected[middle]} == expected[middle] | {
        "mode": "reprocess", "publish_id": reprocessed["publish_id"], "playlists_landed": 0,
        "playlists_unchanged": 0, "spotify_requests": 0, "items_read": 0,
    }  # fmt: skip
    check_counts(added, reprocessed)
    assert added["publish_id"] != expected[middle]["publish_id"] and added["run_id"] not in {
        r["run_id"] for r in before
    }
    assert [row["dt"] for row in after] == [DAYS[0], middle, middle, DAYS[2]]
    # The run log joins to the rows each run published: only the reprocess's are the date's tables now.
    with duckdb.connect(env["SPOTIFY_ETL_DUCKDB_PATH"], read_only=True) as con:
        joined = con.execute(
            "SELECT r.mode, count(s.song_id) FROM spotify_etl.pipeline_runs r LEFT JOIN spotify_etl.songs s "
            "ON s.dt = r.dt AND s.publish_id = r.publish_id WHERE r.dt = ? GROUP BY r.mode ORDER BY r.mode",
            [middle],
        ).fetchall()
    assert joined == [("extract", 0), ("reprocess", reprocessed["rows"]["songs"])]
