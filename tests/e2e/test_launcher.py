"""The `make up` / `make down` launcher on its own (no Airflow started): what `down` stops,
the login it hands out, the settings it adds, and refusing a busy port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from spotify_etl import local_airflow
from spotify_etl.local_airflow import LauncherError, LocalAirflow

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]


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


def test_down_stops_the_started_process_groups_and_nothing_else(tmp_path: Path) -> None:
    instance = LocalAirflow(home=tmp_path)
    instance.run_dir.mkdir(parents=True)
    worker_pid_file = tmp_path / "worker.pid"
    # A "scheduler" in its own process group (as `up` starts them) that forked a worker.
    leader = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time\n"
         f"w = subprocess.Popen({SLEEPER!r})\n"
         f"open({str(worker_pid_file)!r}, 'w').write(str(w.pid))\n"
         "time.sleep(300)"],
        start_new_session=True,
    )
    # A process that happens to have the pid a stale pid file names (recorded start time differs).
    bystander = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not worker_pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = int(worker_pid_file.read_text())
        instance.pid_file("scheduler").write_text(f"{leader.pid} {local_airflow._start_time(leader.pid)}\n")
        instance.pid_file("triggerer").write_text(f"{bystander.pid} 1\n")
        instance.pid_file("dag-processor").write_text("999999999 1\n")  # long gone

        assert instance.running() == {"scheduler": leader.pid}
        assert instance.stop(timeout=20) == ["scheduler"]

        assert leader.wait(timeout=20) is not None
        assert _gone(worker), "the scheduler's worker survived make down"
        assert bystander.poll() is None, "make down signalled a process it did not start"
        assert sorted(instance.run_dir.glob("*.pid")) == []
    finally:
        for proc in (leader, bystander):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "spotify_etl.local_airflow", "--home", str(tmp_path), "down"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"No Airflow started from {tmp_path} is running."


def test_password_is_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    instance = LocalAirflow(home=tmp_path / "home")
    first = instance.password()
    assert len(first) >= 16
    assert instance.password() == first
    assert oct(instance.password_file.stat().st_mode & 0o777) == "0o600"
    assert instance.password("chosen") == "chosen"
    assert instance.password() == "chosen"


def test_environment_points_every_url_at_its_own_port_and_keeps_given_settings(tmp_path: Path) -> None:
    instance = LocalAirflow(home=tmp_path, port=18123)
    env = instance.environment({"PATH": "/usr/bin", "AIRFLOW__CORE__PARALLELISM": "2", "SPOTIFY_ETL_LAKE_DIR": "/x"})
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18123"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18123/execution/"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "2"  # the caller's (Makefile) value wins
    assert env["SPOTIFY_ETL_LAKE_DIR"] == "/x"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(tmp_path / "simple_auth_manager_passwords.json")
    assert env["AIRFLOW_HOME"] == str(tmp_path)
    assert env["PATH"].split(os.pathsep)[0] == str(local_airflow.VENV_BIN)
    assert instance.environment({})["AIRFLOW__CORE__PARALLELISM"] == "4"  # never the 32-worker default
    # SQLite: every component (and a CLI run with this environment) waits up to 60 s for a lock.
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] == "spotify_etl.local_airflow.SQLITE_CONNECT_ARGS"
    assert local_airflow.SQLITE_CONNECT_ARGS["timeout"] == 60
    postgres = instance.environment({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://db/airflow"})
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS" not in postgres


def test_up_refuses_a_port_in_use_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        instance = LocalAirflow(home=tmp_path, port=busy.getsockname()[1])
        with pytest.raises(LauncherError, match=f"port {instance.port} on 127.0.0.1 is in use"):
            instance.start({})
    assert instance.processes == {}
    assert sorted(instance.run_dir.glob("*.pid")) == []


class ScriptedClient(local_airflow.AirflowClient):
    """The REST API as `up` sees it while the dag-processor (re)parses: scripted descriptions."""

    def __init__(self, descriptions: list[str | None]) -> None:
        self.descriptions = descriptions
        self.calls = 0

    def request(self, method: str, path: str, lock_wait: float = 60.0, **kwargs: object) -> httpx.Response:
        assert (method, path) == ("GET", f"/dags/{local_airflow.DAG_ID}")
        description = self.descriptions[min(self.calls, len(self.descriptions) - 1)]
        self.calls += 1
        if description is None:
            return httpx.Response(404, json={"detail": "not found"})
        return httpx.Response(200, json={"dag_id": local_airflow.DAG_ID, "description": description})

    def json(self, method: str, path: str, **kwargs: object) -> dict[str, object]:
        assert path == "/importErrors"
        return {"import_errors": []}


def test_up_waits_for_the_dag_parsed_with_the_current_settings(tmp_path: Path) -> None:
    env = {**os.environ, "SPOTIFY_ETL_LAKE_DIR": str(tmp_path / "lake-b")}
    expected = local_airflow.expected_description(env)
    old = local_airflow.expected_description({**os.environ, "SPOTIFY_ETL_LAKE_DIR": str(tmp_path / "lake-a")})
    assert expected and old and expected != old and str(tmp_path / "lake-b") in expected

    # The version an earlier start left (other lake) is served first; `up` waits for the new one.
    client = ScriptedClient([None, old, old, expected])
    assert client.wait_for_dag(timeout=30, description=expected)["description"] == expected
    assert client.calls == 4
    # Bounded: the old version only, and the message says so.
    with pytest.raises(LauncherError, match="still the version parsed under other settings"):
        ScriptedClient([old]).wait_for_dag(timeout=2, description=expected)
    assert local_airflow.expected_description({**os.environ, "SPOTIFY_ETL_TARGET": "gcp"}) is None
