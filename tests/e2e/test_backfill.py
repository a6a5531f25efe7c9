"""Backfills run by the scheduler: created through the REST API, rerun with the documented CLI.

Three past dates: two with raw documents landed beforehand (``spotify-etl extract``), one
with none. Dates with raw are re-processed from it without calling Spotify, the empty date
is skipped with the documented message, nothing is duplicated, and a rerun with
reprocessing changes nothing. Then 30 dates at once, as a user asks from the UI, created
while the scheduler runs the DAG unpaused: every run is created and finishes.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx
import pytest
from airflow_client.client.api import BackfillApi, DagRunApi
from airflow_client.client.models import BackfillPostBody, DAGRunResponse, ReprocessBehavior
from spotify_etl import tables

from tests.e2e import lake_view
from tests.e2e.airflow_api import DAG_ID, Server, midnight, runs_by_day, task_log, task_states, wait_backfill, xcom

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

TODAY = dt.datetime.now(dt.UTC).date()
DAYS = [(TODAY - dt.timedelta(days=n)).isoformat() for n in (12, 11, 10)]
LANDED = {DAYS[0]: ["4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms"], DAYS[1]: ["5RDmNvuz0prl7bLqtZNkDe"]}
EMPTY = DAYS[2]
SKIP_MESSAGE = "no raw data was landed for that date; skipping"


def _check_backfill_runs(server: Server, tmp_path: Path, try_number: int) -> dict[str, dict[str, list[str]]]:
    """Assert what every backfilled date did; return the landed tables by date."""
    client, lake = server.client, server.lake
    runs = runs_by_day(client, DAYS)
    assert {d: len(r) for d, r in runs.items()} == dict.fromkeys(DAYS, 1), runs  # one run per date, ever
    results = {}
    for day in DAYS:
        run = runs[day][0]
        run_id = run.dag_run_id
        states = {task: ti.state for (task, _), ti in task_states(client, run_id).items()}
        assert run.run_type == "backfill" and run.state == "success", (day, run.state, states)
        plan_log = task_log(client, run_id, "plan")
        assert task_states(client, run_id)[("plan", -1)].try_number == try_number
        assert "USING EMBEDDED SAMPLE DATA" not in plan_log
        assert states["extract_playlist"] == "skipped"  # mapped over no playlists: Spotify is never called
        plan = xcom(client, run_id, "plan")
        assert plan["message"] in plan_log and plan["dt"] == day
        if day == EMPTY:
            assert (plan["mode"], plan["playlists"]) == ("skip", [])
            assert f"dt={day}: backfill run and {SKIP_MESSAGE}" in plan_log
            assert states == {
                "plan": "success",
                "chunk_playlists": "success",  # no chunk
                "extract_playlist": "skipped",
                "transform": "skipped",
                "catalog": "skipped",
                "validate": "skipped",
                "report": "skipped",  # no tables for the date: no report
                "check_extracts": "success",
            }
            assert not lake_view.raw_dir(lake, day).exists()
            assert all(day not in lake_view.processed_days(lake, t) for t in tables.TABLE_NAMES)
            continue
        playlists = LANDED[day]
        assert (plan["mode"], plan["playlists"]) == ("reprocess", sorted(playlists))
        assert (
            f"dt={day}: backfill run; re-processing the {len(playlists)} raw documents landed for that "
            "date without calling Spotify"
        ) in plan_log
        assert states["transform"] == states["catalog"] == states["validate"] == "success", states
        assert "USING EMBEDDED SAMPLE DATA" not in task_log(client, run_id, "transform")
        assert xcom(client, run_id, "check_extracts") == {"mode": "reprocess", "playlists": 0, "api_calls": 0}
        raw_files = sorted(lake_view.raw_dir(lake, day).glob("playlist_id=*.json"))
        landed = lake_view.tables_of_day(lake, day)
        assert landed == lake_view.reference_tables(raw_files, tmp_path / f"reference-{try_number}-{day}", day)
        assert xcom(client, run_id, "transform")["rows"] == {t: len(landed[t]) for t in tables.TABLE_NAMES}
        results[day] = landed
    return results


def _assert_no_duplicates(server: Server) -> None:
    """Every partition in the lake has one file and unique keys; the catalog counts each row once."""
    lake = server.lake
    with duckdb.connect(
        server.env.get("SPOTIFY_ETL_DUCKDB_PATH") or str(lake / "catalog.duckdb"), read_only=True
    ) as con:
        for table in tables.TABLE_NAMES:
            for day in lake_view.processed_days(lake, table):
                rows = lake_view.partition_rows(lake, table, day)
                assert lake_view.duplicated_keys(rows, table) == [], (table, day)
                query = f'SELECT count(*) FROM "spotify_etl"."{table}" WHERE dt = ?'  # noqa: S608 - fixed names
                counted = con.execute(query, [day]).fetchone()
                assert counted == (len(rows),), (table, day)


def _create_backfill_with_the_cli(airflow_server: Server) -> None:
    """``airflow backfill create`` for DAYS with reprocessing, as docs/operate.md documents it,
    against make up's metadata DB (server.env carries its URL) while the scheduler runs."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "backfill", "create", "--dag-id", DAG_ID,
         "--from-date", DAYS[0], "--to-date", DAYS[-1], "--reprocess-behavior", "completed"],
        env=airflow_server.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def test_backfill_reprocesses_landed_raw_skips_empty_dates_and_reruns_identically(
    airflow_server: Server, tmp_path: Path
) -> None:
    client, lake = airflow_server.client, airflow_server.lake
    for day, playlists in LANDED.items():
        lake_view.land_with_cli(lake, day, playlists)
    raw_before = {day: lake_view.raw_digests(lake, day) for day in DAYS}

    backfill = BackfillApi(client).create_backfill(
        BackfillPostBody(
            dag_id=DAG_ID,
            from_date=midnight(DAYS[0]),
            to_date=midnight(DAYS[-1]),
            reprocess_behavior=ReprocessBehavior.COMPLETED,
        )
    )
    done = wait_backfill(client, backfill.id)
    assert done.reprocess_behavior == "completed"
    first = _check_backfill_runs(airflow_server, tmp_path, try_number=1)
    assert {day: lake_view.raw_digests(lake, day) for day in DAYS} == raw_before  # raw untouched, byte for byte
    _assert_no_duplicates(airflow_server)

    # Rerun the same range from the CLI, as docs/operate.md documents it, the DAG unpaused and
    # the scheduler running: the same runs are cleared and run again (try 2), and nothing in
    # the lake changes.
    _create_backfill_with_the_cli(airflow_server)
    backfills = BackfillApi(client).list_backfills(DAG_ID).backfills
    rerun = max(backfills, key=lambda b: b.id)
    assert rerun.id != backfill.id
    wait_backfill(client, rerun.id)
    second = _check_backfill_runs(airflow_server, tmp_path, try_number=2)
    assert second == first
    assert {day: lake_view.raw_digests(lake, day) for day in DAYS} == raw_before
    _assert_no_duplicates(airflow_server)


def test_a_backfill_of_30_dates_from_the_rest_api_creates_and_finishes_every_run(airflow_server: Server) -> None:
    """POST /api/v2/backfills, the call the UI's backfill dialog makes, for 30 dates while the
    scheduler runs the DAG unpaused: one run per date, all created at once and all finished;
    the scheduler is still healthy afterwards (on SQLite such a request could meet "database is
    locked", lose the runs it had created, and the scheduler holding one exited). No raw data
    was landed for those dates, so each run is its quick skip."""
    client = airflow_server.client
    days = [(TODAY - dt.timedelta(days=n)).isoformat() for n in range(129, 99, -1)]  # no other test's dates
    backfill = BackfillApi(client).create_backfill(
        BackfillPostBody(dag_id=DAG_ID, from_date=midnight(days[0]), to_date=midnight(days[-1]), max_active_runs=10)
    )

    def backfill_runs() -> dict[str, list[DAGRunResponse]]:
        listed = DagRunApi(client).get_dag_runs(
            DAG_ID, logical_date_gte=midnight(days[0]), logical_date_lte=midnight(days[-1]), limit=100
        )
        found: dict[str, list[DAGRunResponse]] = {}
        for run in listed.dag_runs:
            found.setdefault(run.logical_date.date().isoformat(), []).append(run)
        return found

    assert sorted(backfill_runs()) == days  # every date's run exists once the request has returned
    wait_backfill(client, backfill.id, timeout=900)
    runs = backfill_runs()
    assert {day: [(r.run_type, r.state) for r in found] for day, found in runs.items()} == {
        day: [("backfill", "success")] for day in days
    }
    for day in (days[0], days[-1]):  # the plan's choice: skip (no raw data for the date)
        run_id = runs[day][0].dag_run_id
        assert xcom(client, run_id, "plan")["mode"] == "skip"
        states = {task: ti.state for (task, _), ti in task_states(client, run_id).items()}
        assert states["plan"] == states["check_extracts"] == "success" and states["transform"] == "skipped", states
    health = httpx.get(f"{airflow_server.url}/api/v2/monitor/health", timeout=30).json()
    assert health["scheduler"]["status"] == "healthy", health
