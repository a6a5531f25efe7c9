"""The `make up` / `make down` launcher (devtools/airflow_standalone.py) on its own, no Airflow
started: what `down` stops, the login it sets up, the settings it adds, refusing a busy port,
and waiting for the DAG parsed with the current settings."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow_client.client import ApiClient, Configuration
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from devtools import airflow_standalone
from devtools.airflow_standalone import DAG_ID, LauncherError

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]
PROJECT = Path(__file__).resolve().parents[2]


def _gone(pid: int, timeout: float = 20) -> bool:
    """True once ``pid`` no longer runs (exited, possibly a zombie waiting for init)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def _wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return path.read_text()


def test_down_stops_the_whole_session_and_nothing_else(tmp_path: Path) -> None:
    pids = tmp_path / "pids.json"
    # A "standalone" in its own session (as `up` starts it) with a component in its process
    # group and a task process that moved to a process group of its own (as Airflow's do).
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, os, subprocess, sys, time\n"
            f"component = subprocess.Popen({SLEEPER!r})\n"
            f"task = subprocess.Popen({SLEEPER!r}, process_group=0)\n"
            f"open({str(pids)!r}, 'w').write(json.dumps([component.pid, task.pid]))\n"
            "time.sleep(300)",
        ],
        start_new_session=True,
    )
    bystander = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        component, task = json.loads(_wait_for_file(pids))
        assert os.getpgid(task) != leader.pid  # beyond the reach of the leader's process group
        airflow_standalone.pid_file(tmp_path).write_text(f"{leader.pid} {airflow_standalone._start_time(leader.pid)}\n")

        assert airflow_standalone.running(tmp_path) == leader.pid
        assert airflow_standalone.stop(tmp_path, timeout=20) == leader.pid

        assert leader.wait(timeout=20) is not None
        assert _gone(component), "the component survived make down"
        assert _gone(task), "the task process (own process group) survived make down"
        assert bystander.poll() is None, "make down signalled a process it did not start"
        assert not airflow_standalone.pid_file(tmp_path).exists()
    finally:
        for proc in (leader, bystander):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_down_leaves_a_process_that_reused_the_recorded_pid_alone(tmp_path: Path) -> None:
    bystander = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        # Its pid, but another start time: the pid file is stale, the process someone else's.
        airflow_standalone.pid_file(tmp_path).write_text(f"{bystander.pid} 1\n")
        proc = subprocess.run(
            [sys.executable, "-m", "devtools.airflow_standalone", "--home", str(tmp_path), "down"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=PROJECT,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"No Airflow started from {tmp_path} is running."
        assert bystander.poll() is None
        assert not airflow_standalone.pid_file(tmp_path).exists()
    finally:
        bystander.kill()
        bystander.wait(timeout=10)


def test_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["make", "-C", str(PROJECT), "--no-print-directory", "down"],
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"No Airflow started from {tmp_path} is running."


def test_password_file_is_private_and_keeps_a_chosen_password(tmp_path: Path) -> None:
    path = airflow_standalone.password_file({}, tmp_path / "home")
    assert path == tmp_path / "home" / "simple_auth_manager_passwords.json.generated"  # Airflow's default
    airflow_standalone.set_password(path, None)  # the api-server generates one into it
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert airflow_standalone.read_password(path) == ""
    path.write_text(json.dumps({"admin": "generated", "viewer": "v"}) + "\n")  # as Airflow writes it
    airflow_standalone.set_password(path, None)
    assert airflow_standalone.read_password(path) == "generated"
    airflow_standalone.set_password(path, "chosen")
    assert airflow_standalone.read_password(path) == "chosen"
    assert json.loads(path.read_text())["viewer"] == "v"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    configured = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "p.json")}
    assert airflow_standalone.password_file(configured, tmp_path) == tmp_path / "p.json"


def test_environment_points_every_url_at_its_own_port_and_keeps_given_settings(tmp_path: Path) -> None:
    base = {
        "PATH": "/usr/bin",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "SPOTIFY_ETL_LAKE_DIR": "/x",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
        "AIRFLOW_HOME": str(tmp_path),
    }
    env = airflow_standalone.environment(base, 18123)
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18123"  # the execution API follows it
    assert (env["AIRFLOW__API__HOST"], env["AIRFLOW__API__PORT"]) == ("127.0.0.1", "18123")
    assert env["AIRFLOW__CORE__PARALLELISM"] == "2"  # the caller's (Makefile) value wins
    assert env["SPOTIFY_ETL_LAKE_DIR"] == "/x"
    assert env["PATH"].split(os.pathsep)[0] == str(airflow_standalone.VENV_BIN)  # standalone runs `airflow`
    assert airflow_standalone.environment({}, 1)["AIRFLOW__CORE__PARALLELISM"] == "4"  # never the default 32
    log_ports = {env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"], env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]}
    assert len(log_ports) == 2 and not log_ports & {"8793", "8794"}
    # No PostgreSQL of make up runs from this AIRFLOW_HOME: the given metadata DB is kept
    # (tests/e2e/test_postgres.py: the running one's URL replaces it).
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path}/airflow.db"


def test_up_refuses_a_port_in_use_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LauncherError, match=f"port {port} on 127.0.0.1 is in use"):
            airflow_standalone.up(tmp_path, port, unpause=False, timeout=5)
    assert list(tmp_path.iterdir()) == []  # no pid file, no password file, no log


def test_up_refuses_to_start_a_second_airflow_from_the_same_home(tmp_path: Path) -> None:
    running = subprocess.Popen(SLEEPER, start_new_session=True)  # a standalone started earlier
    try:
        airflow_standalone.pid_file(tmp_path).write_text(
            f"{running.pid} {airflow_standalone._start_time(running.pid)}\n"
        )
        with pytest.raises(LauncherError, match=f"already running from {tmp_path} \\(session {running.pid}\\)"):
            airflow_standalone.up(tmp_path, airflow_standalone.free_port(), unpause=False, timeout=5)
        assert running.poll() is None
    finally:
        running.kill()
        running.wait(timeout=10)


def _dag(description: str) -> dict[str, object]:
    """GET /api/v2/dags/{dag_id} as Airflow 3.3 answers it (the fields its schema requires)."""
    return {
        "dag_id": DAG_ID,
        "dag_display_name": DAG_ID,
        "description": description,
        "file_token": "t",
        "fileloc": "/dags/spotify_playlist_etl.py",
        "has_import_errors": False,
        "has_task_concurrency_limits": False,
        "is_backfillable": True,
        "is_paused": True,
        "is_stale": False,
        "max_active_tasks": 16,
        "max_consecutive_failed_dag_runs": 0,
        "owners": ["airflow"],
        "tags": [],
        "timetable_partitioned": False,
        "timetable_periodic": True,
    }


def _scripted_api(httpserver: HTTPServer, descriptions: list[str | None], import_errors: list[dict]) -> list[str]:
    """The REST API as `up` sees it while the dag-processor (re)parses; returns the paths asked."""
    asked: list[str] = []

    def answer(request: Request) -> Response:
        asked.append(request.path)
        if request.path == "/api/v2/importErrors":
            return Response(
                json.dumps({"import_errors": import_errors, "total_entries": len(import_errors)}),
                content_type="application/json",
            )
        description = descriptions[min(asked.count(request.path) - 1, len(descriptions) - 1)]
        if description is None:
            return Response(json.dumps({"detail": "not found"}), status=404, content_type="application/json")
        return Response(json.dumps(_dag(description)), content_type="application/json")

    httpserver.expect_request(f"/api/v2/dags/{DAG_ID}", method="GET").respond_with_handler(answer)
    httpserver.expect_request("/api/v2/importErrors", method="GET").respond_with_handler(answer)
    return asked


def test_up_waits_for_the_dag_parsed_with_the_current_settings(tmp_path: Path, httpserver: HTTPServer) -> None:
    env = {**os.environ, "SPOTIFY_ETL_LAKE_DIR": str(tmp_path / "lake-b")}
    expected = airflow_standalone.expected_description(env)
    old = airflow_standalone.expected_description({**os.environ, "SPOTIFY_ETL_LAKE_DIR": str(tmp_path / "lake-a")})
    assert expected and old and expected != old and str(tmp_path / "lake-b") in expected
    client = ApiClient(Configuration(host=httpserver.url_for("/").rstrip("/")))

    # The version an earlier start left (other lake) is served first; `up` waits for the new one.
    asked = _scripted_api(httpserver, [None, old, old, expected], [])
    airflow_standalone.wait_for_dag(client, expected, timeout=30)
    assert asked.count(f"/api/v2/dags/{DAG_ID}") == 4
    # Bounded: the old version only, and the message says so.
    httpserver.clear()
    _scripted_api(httpserver, [old], [])
    with pytest.raises(LauncherError, match="still the version parsed under other settings"):
        airflow_standalone.wait_for_dag(client, expected, timeout=2)
    assert airflow_standalone.expected_description({**os.environ, "SPOTIFY_ETL_TARGET": "gcp"}) is None


def test_up_fails_at_once_when_the_dag_file_does_not_import(httpserver: HTTPServer) -> None:
    error = {
        "import_error_id": 1,
        "filename": "spotify_playlist_etl.py",
        "stack_trace": "ValueError: bad setting",
        "timestamp": "2026-12-01T00:00:00Z",
        "bundle_name": "dags-folder",
    }
    _scripted_api(httpserver, [None], [error])
    client = ApiClient(Configuration(host=httpserver.url_for("/").rstrip("/")))
    started = time.monotonic()
    with pytest.raises(LauncherError, match=re.escape("failed to import:\nspotify_playlist_etl.py: ValueError: bad")):
        airflow_standalone.wait_for_dag(client, "any", timeout=60)
    assert time.monotonic() - started < 30
