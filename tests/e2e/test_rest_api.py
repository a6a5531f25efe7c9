"""The running Airflow through its REST API, as the UI uses it: login, trigger with params,
what a run leaves in the lake, the numbers in logs and XCom, and a failing validation."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import httpx
import pytest
from airflow_client.client.api import DAGApi, MonitorApi, PoolApi, TaskInstanceApi
from spotify_etl import tables
from spotify_etl.airflow.pool import SPOTIFY_POOL
from spotify_etl.lake import LocalLake
from spotify_etl.paths import SAMPLE_DATA_DIR
from spotify_etl.settings import Settings

from devtools import airflow_standalone
from tests.e2e import lake_view
from tests.e2e.airflow_api import DAG_ID, Server, midnight, task_log, task_states, trigger, wait_run, xcom
from tests.support.raw import land
from tests.unit.test_validation_sql import CHECKS  # the rows of include/sql/validate.sql, counted once

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

TWO_PLAYLISTS = ["4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms"]


def test_make_up_serves_ui_and_api_behind_the_printed_login(airflow_server: Server) -> None:
    url = airflow_server.url
    assert f"Airflow is up: {url}" in airflow_server.started_output
    assert f"login:     admin / {airflow_server.password}" in airflow_server.started_output
    assert airflow_standalone.running(airflow_server.home) is not None
    health = MonitorApi(airflow_server.client).get_health()
    assert health.metadatabase.status == "healthy"
    for component in (health.scheduler, health.dag_processor, health.triggerer):
        assert component is not None and component.status == "healthy", health

    assert httpx.get(f"{url}/api/v2/dags", timeout=30).status_code == 401
    wrong = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": "not-it"}, timeout=30)
    assert wrong.status_code == 401
    login_page = httpx.get(f"{url}/auth/login", timeout=30)
    assert login_page.status_code == 200 and "<html" in login_page.text.lower()

    # make up created the extract tasks' pool (Airflow leaves tasks of a missing pool queued).
    pool = PoolApi(airflow_server.client).get_pool(SPOTIFY_POOL)
    assert (pool.name, pool.slots) == (SPOTIFY_POOL, Settings().spotify_pool_slots)

    details = DAGApi(airflow_server.client).get_dag_details(DAG_ID)
    assert details.is_paused is False  # make up UNPAUSE=1
    assert details.doc_md and details.doc_md.startswith("# spotify_playlist_etl: daily Spotify playlist ETL (runbook)")
    tasks = (
        "plan",
        "chunk_playlists",
        "extract_playlist",
        "transform",
        "catalog",
        "validate",
        "check_extracts",
        "report",
    )
    for task in tasks:
        assert f"`{task}`" in details.doc_md
    # The config file's list: the user's, shipped empty.
    assert details.params and details.params["playlists"]["value"] == []


def test_trigger_with_two_playlists_lands_exactly_those_and_validates(airflow_server: Server, tmp_path: Path) -> None:
    client, lake = airflow_server.client, airflow_server.lake
    day = dt.datetime.now(dt.UTC).date().isoformat()
    run_id = trigger(client, midnight(day), TWO_PLAYLISTS)
    run = wait_run(client, run_id)
    states = task_states(client, run_id)
    assert run.state == "success", {k: v.state for k, v in states.items()}
    assert run.conf == {"playlists": TWO_PLAYLISTS}

    # The lake: exactly those two raw documents, and tables equal to the library's transform of them.
    assert lake_view.raw_playlists(lake, day) == sorted(TWO_PLAYLISTS)
    raw_files = sorted(lake_view.raw_dir(lake, day).glob("playlist_id=*.json"))
    landed = lake_view.tables_of_day(lake, day)
    assert landed == lake_view.reference_tables(raw_files, tmp_path / "reference", day)
    numbers = {p: lake_view.sample_numbers(p) for p in TWO_PLAYLISTS}
    items = lake_view.partition_rows(lake, "playlist_items", day)
    assert len(items) == sum(n["items"] for n in numbers.values())
    assert {r["playlist_id"] for r in items} == set(TWO_PLAYLISTS)
    for table in tables.TABLE_NAMES:
        assert lake_view.duplicated_keys(lake_view.partition_rows(lake, table, day), table) == []

    # Plan: live extract of the two playlists, one value; the extract maps over its chunks.
    message = f"dt={day}: extracting 2 playlists live"
    assert xcom(client, run_id, "plan") == {
        "dt": day,
        "mode": "extract",
        "playlists": TWO_PLAYLISTS,
        "message": message,
    }
    assert message in task_log(client, run_id, "plan")
    # One chunk each: the chunk size is derived from the day's count, and a small day spreads over the pool's slots.
    assert xcom(client, run_id, "chunk_playlists") == [[p] for p in TWO_PLAYLISTS]
    chunk_log = task_log(client, run_id, "chunk_playlists")
    assert "extract: 2 playlists in 2 chunks of at most 1 (derived from their count and " in chunk_log

    # Extract: one mapped task per chunk, named in the UI by its playlist, in the pool
    # spotify_api; each playlist's numbers in its XCom outcome and its log.
    api_calls = 0
    for index, playlist in enumerate(TWO_PLAYLISTS):
        extract = TaskInstanceApi(client).get_mapped_task_instance(DAG_ID, run_id, "extract_playlist", index)
        assert extract.rendered_map_index == playlist and extract.pool == SPOTIFY_POOL
        outcome = xcom(client, run_id, "extract_playlist", map_index=index)
        assert outcome["failed"] == [] and [r["playlist_id"] for r in outcome["landed"]] == [playlist]
        log = task_log(client, run_id, "extract_playlist", map_index=index)
        assert "USING EMBEDDED SAMPLE DATA" in log
        (summary,) = outcome["landed"]
        expected = numbers[playlist]
        # A snapshot unchanged since an earlier date in this lake (the backfill test lands some)
        # is reused: one metadata call instead of every page.
        calls = 1 if summary["unchanged"] else expected["api_calls"]
        assert (summary["items"], summary["pages"], summary["api_calls"]) == (
            expected["items"],
            expected["pages"],
            calls,
        )
        raw_file = lake_view.raw_dir(lake, day) / f"playlist_id={playlist}.json"
        assert summary["bytes_written"] == raw_file.stat().st_size
        assert summary["source"] == "sample" and summary["seconds"] >= 0
        line = next(x for x in log.splitlines() if f"playlist {playlist} (" in x and " items in " in x)
        assert (
            f"{expected['items']} items in {expected['pages']} pages, {calls} API calls, "
            f"{summary['bytes_written']} bytes"
        ) in line
        assert ("(unchanged snapshot)" in line) == summary["unchanged"]
        api_calls += calls

    # Transform: rows per table, rejects by reason, bytes and seconds, in XCom and log.
    summary = xcom(client, run_id, "transform")
    assert summary["documents"] == 2 and summary["entries"] == len(items)
    assert summary["rows"] == {t: len(landed[t]) for t in tables.TABLE_NAMES}
    assert summary["rows"]["songs"] + sum(summary["rejected"].values()) <= summary["entries"]
    assert summary["rejected"] == {"local_file": 8}  # the LSDream Theatre sample holds 8 local files
    for table in tables.TABLE_NAMES:
        assert summary["bytes_written"][table] == lake_view.partition_files(lake, table, day)[0].stat().st_size
    assert summary["seconds"] > 0
    log = task_log(client, run_id, "transform")
    # The log keeps the tables' order; the XCom comes back from PostgreSQL's JSONB with its keys reordered.
    logged_rows = {t: summary["rows"][t] for t in tables.TABLE_NAMES}
    assert f"dt={day}: 2 documents, {len(items)} entries -> {logged_rows}" in log
    assert "not loaded as songs: {'local_file': 8}" in log

    # Validation succeeded, every check logged as PASS; the extract summary adds up the API calls.
    results = xcom(client, run_id, "validate")
    assert len(results) == CHECKS and all(r.startswith("PASS ") for r in results)
    assert states[("validate", -1)].state == "success"
    assert "PASS songs_not_empty: 0 violations" in task_log(client, run_id, "validate")
    assert xcom(client, run_id, "check_extracts") == {"mode": "extract", "playlists": 2, "api_calls": api_calls}


def _bad_popularity_pages() -> list[dict]:
    """One page whose only entry is a real sample track with popularity 150 (rejected)."""
    page = json.loads((SAMPLE_DATA_DIR / "playlists" / TWO_PLAYLISTS[1] / "items_offset_0.json").read_text())
    entry = copy.deepcopy(page["items"][0])
    entry["track"]["popularity"] = 150
    return [{"items": [entry], "offset": 0, "limit": 50, "total": 1, "next": None}]


def test_failing_validation_fails_the_run_and_its_log_names_the_check(airflow_server: Server) -> None:
    client, lake = airflow_server.client, airflow_server.lake
    day = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=20)).isoformat()
    land(LocalLake(lake), day, TWO_PLAYLISTS[1], _bad_popularity_pages())

    run_id = trigger(client, midnight(day))  # a past date: re-processes what was landed
    run = wait_run(client, run_id)
    states = task_states(client, run_id)
    assert run.state == "failed"
    assert {k[0]: v.state for k, v in states.items() if k[0] != "extract_playlist"} == {
        "plan": "success",
        "chunk_playlists": "success",
        "transform": "success",
        "catalog": "success",
        "check_extracts": "success",
        "validate": "failed",
        "report": "upstream_failed",  # a failed validation holds the report back
    }
    assert xcom(client, run_id, "plan")["mode"] == "reprocess"
    assert xcom(client, run_id, "transform")["rejected"] == {"invalid_popularity": 1}
    assert "not loaded as songs: {'invalid_popularity': 1}" in task_log(client, run_id, "transform")

    log = task_log(client, run_id, "validate")
    assert "FAIL songs_not_empty: 1 violations in 0 rows" in log
    assert "ValidationFailed" in log
    assert f"dt={day}: " in log and "checks failed" in log
    assert lake_view.partition_rows(lake, "songs", day) == []
