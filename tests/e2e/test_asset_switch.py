"""One Airflow home, the settings switched between runs (issue 12, point 6b).

Airflow 3 keeps one active asset per name and per URI. Assets whose URI followed the lake's
location (the target, the lake folder, the bucket) were left inactive in a home that had
run under other settings: the transform's asset events were dropped ("Task has inactive
assets") under ``airflow dags test``, and a worker refuses such a task outright
(``AirflowInactiveAssetInInletOrOutletException``). Here: a local run, an ``aws`` run
against moto, a local run into another lake folder; every run must succeed and record one
event per table asset, whose extra names the partition it wrote.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spotify_etl import tables

from tests.support.airflow_run import DAG_ID, PROJECT, VENV_BIN, DagRunResult, airflow_env
from tests.support.moto_server import MotoAws, moto_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

TODAY = dt.datetime.now(dt.UTC).date().isoformat()
PAST = "2026-01-05"  # the aws run re-processes raw landed in the bucket: no Spotify connection needed
BUCKET, PREFIX, DATABASE, WORKGROUP = "switch-lake", "etl", "spotify_switch", "switch"
PLAYLISTS = ["4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms"]


def run(home: Path, day: str, **env: str) -> DagRunResult:
    """``airflow dags test`` in ``home``, keeping its metadata DB from run to run."""
    proc = subprocess.run(
        [str(VENV_BIN / "airflow"), "dags", "test", DAG_ID, day],
        env=airflow_env(home, **env),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT,
        check=False,
    )
    return DagRunResult(proc.returncode, proc.stdout + proc.stderr, home)


def asset_events(home: Path) -> list[tuple[str, str, dict[str, Any]]]:
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT a.name, a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id ORDER BY e.id"
        ).fetchall()
    return [(name, uri, json.loads(extra) if isinstance(extra, str) else extra) for name, uri, extra in rows]


def active_assets(home: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(home / "airflow.db") as db:
        return set(db.execute("SELECT name, uri FROM asset_active").fetchall())


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoAws]:
    with moto_server() as server:
        yield server


def aws_env(aws: MotoAws, tmp_path: Path) -> dict[str, str]:
    """The bucket with PAST's raw documents landed, and Athena primed with the checks' true answer."""
    from spotify_etl.extract import SampleSource, extract_playlist
    from spotify_etl.lake import LocalLake, S3Lake
    from spotify_etl.transform import transform_day
    from spotify_etl.warehouse import local

    aws.reset()
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("athena").create_work_group(Name=WORKGROUP, Configuration={})
    aws.set_transition("glue::crawl", {"progression": "immediate"})
    scratch = LocalLake(tmp_path / "scratch")
    for lake in (S3Lake(aws.s3fs(), BUCKET, PREFIX), scratch):
        for playlist_id in PLAYLISTS:
            extract_playlist(SampleSource(), lake, playlist_id, PAST, f"{PAST}T06:00:00+00:00")
    transform_day(scratch, PAST)
    local.register_catalog(scratch, tmp_path / "scratch.duckdb", DATABASE, "")
    checks = local.run_validation(tmp_path / "scratch.duckdb", PAST, DATABASE, "")
    aws.seed_athena_run(
        [(c.name, c.violations, c.checked_rows) for c in checks],
        ("check_name", "violations", "checked_rows"),
        local.report_data(tmp_path / "scratch.duckdb", PAST, DATABASE, ""),  # what Athena would answer
    )
    return {
        "SPOTIFY_ETL_TARGET": "aws",
        "SPOTIFY_ETL_S3_BUCKET": BUCKET,
        "SPOTIFY_ETL_S3_PREFIX": PREFIX,
        "SPOTIFY_ETL_DATABASE": DATABASE,
        "SPOTIFY_ETL_CRAWLER_ROLE": "arn:aws:iam::123456789012:role/crawler",
        "SPOTIFY_ETL_ATHENA_WORKGROUP": WORKGROUP,
        **aws.airflow_env(),
    }


def test_assets_stay_active_across_local_aws_and_another_lake_in_one_home(
    airflow_template_db: Path, aws: MotoAws, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(airflow_template_db, home / "airflow.db")
    lake_a, lake_b = tmp_path / "lake-a", tmp_path / "lake-b"
    switches = [
        ("local", TODAY, f"file://{lake_a}", {"SPOTIFY_ETL_LAKE_DIR": str(lake_a)}),
        ("aws", PAST, f"s3://{BUCKET}/{PREFIX}", aws_env(aws, tmp_path)),
        ("local", TODAY, f"file://{lake_b}", {"SPOTIFY_ETL_LAKE_DIR": str(lake_b)}),
    ]
    report = ("spotify_etl.trends_report", "x-spotify-etl://reports/trends")
    wanted = {(f"spotify_etl.tables.{t}", f"x-spotify-etl://tables/{t}") for t in tables.TABLE_NAMES} | {report}
    seen = 0
    for target, day, lake_url, env in switches:
        result = run(home, day, **env)
        assert result.succeeded, (target, lake_url, result.output[-5000:])
        assert "inactive assets" not in result.output.lower(), (target, lake_url)
        assert wanted <= active_assets(home)
        events = asset_events(home)[seen:]
        seen += len(events)
        # One event per table asset, naming the partition this run wrote under the current settings.
        assert sorted((name, uri) for name, uri, _ in events) == sorted(wanted), (target, events)
        for name, uri, extra in events:
            if (name, uri) == report:  # the trends report's page, under the current lake
                assert extra == {"dt": day, "location": f"{lake_url}/reports/dt={day}/index.html"}, extra
                continue
            table = name.rsplit(".", 1)[-1]
            assert extra["dt"] == day and extra["location"] == f"{lake_url}/processed/{table}/dt={day}", extra
            assert extra["rows"] > 0
    assert (lake_b / "processed" / "songs" / f"dt={TODAY}" / "part-00000.parquet").is_file()
