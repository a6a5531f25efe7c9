"""DAG integrity: imports, structure, defaults, params, parse cost and no network at parse time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from airflow.utils.dag_cycle_tester import check_cycle

from tests.support.airflow_run import airflow_env

PROJECT = Path(__file__).resolve().parents[2]
DAG_FILE = PROJECT / "dags" / "spotify_playlist_etl.py"
DAG_ID = "spotify_playlist_etl"


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_list_import_errors_cli_exits_zero(tmp_path: Path, airflow_template_db: Path) -> None:
    shutil.copyfile(airflow_template_db, tmp_path / "airflow.db")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "list-import-errors", "--local"],
        env=airflow_env(tmp_path), capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No data found" in proc.stdout


def test_structure(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[DAG_ID]
    assert set(dag.task_ids) == {"plan", "extract_playlist", "transform", "catalog", "validate", "check_extracts"}
    upstream = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}
    assert upstream["extract_playlist"] == {"plan"}
    assert upstream["transform"] == {"extract_playlist"}
    assert upstream["catalog"] == {"transform"} and upstream["validate"] == {"catalog"}
    assert upstream["check_extracts"] == {"transform"}
    assert dag.task_dict["transform"].trigger_rule == "all_done"
    assert dag.task_dict["check_extracts"].trigger_rule == "all_done"
    assert dag.task_dict["extract_playlist"].is_mapped
    check_cycle(dag)  # raises AirflowDagCycleException on a cycle


def test_schedule_defaults_and_docs(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[DAG_ID]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.start_date is not None and dag.start_date.year == 2026
    assert dag.tags and "spotify" in dag.tags
    assert "runbook" in (dag.doc_md or "") and "safe to re-run" in dag.doc_md
    for task in dag.tasks:
        assert task.owner == "data-engineering", task.task_id
        assert task.retries == dag.default_args["retries"] and task.retries >= 1, task.task_id
    assert dag.task_dict["extract_playlist"].partial_kwargs.get("retries", dag.default_args["retries"]) >= 0
    assert dag.default_args["retry_exponential_backoff"] is True
    assert set(dag.params.keys()) == {"playlists"}
    assert dag.params["playlists"] == []  # the user's list, shipped empty: never the sample playlists
    assert dag.description.startswith("Daily Spotify playlist ETL: local target, lake file:///")


def test_transform_declares_table_assets(dagbag) -> None:  # type: ignore[no-untyped-def]
    outlets = dagbag.dags[DAG_ID].task_dict["transform"].outlets
    names = ("albums", "artists", "songs", "song_artists", "playlist_items")
    # The same identity whatever the settings (tests/e2e/test_asset_switch.py switches them).
    assert sorted((a.name, a.uri) for a in outlets) == sorted(
        (f"spotify_etl.tables.{t}", f"x-spotify-etl://tables/{t}") for t in names
    )


def _run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = airflow_env(tmp_path)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=180)


def test_parse_is_fast_and_imports_nothing_heavy(tmp_path: Path) -> None:
    proc = _run_python(
        f"""
        import importlib.util, sys, time
        import airflow.sdk
        t = time.perf_counter()
        spec = importlib.util.spec_from_file_location("dagfile", {str(DAG_FILE)!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        print("SECONDS", time.perf_counter() - t)
        print("HEAVY", sorted(m for m in ("duckdb", "pyarrow", "pandas", "spotipy", "boto3") if m in sys.modules))
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    seconds = float(proc.stdout.split("SECONDS")[1].split()[0])
    assert seconds < 1.0, seconds  # "well under a second"; the real budget lives in make bench
    assert "HEAVY []" in proc.stdout


def test_no_network_at_parse_time(tmp_path: Path) -> None:
    proc = _run_python(
        f"""
        import socket
        import airflow.sdk
        def refuse(*a, **k):
            raise AssertionError("network I/O at DAG parse time")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        import importlib.util
        spec = importlib.util.spec_from_file_location("dagfile", {str(DAG_FILE)!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        print("PARSED", mod.spotify_playlist_etl.__name__ if hasattr(mod, "spotify_playlist_etl") else "")
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "PARSED" in proc.stdout


def test_dag_file_has_no_variable_or_connection_lookups() -> None:
    text = DAG_FILE.read_text()
    for banned in ("Variable.get", "get_connection(", "datetime.now", "dt.datetime.now", "utcnow"):
        assert banned not in text
    assert os.path.getsize(DAG_FILE) < 10_000  # stays a thin wiring file
