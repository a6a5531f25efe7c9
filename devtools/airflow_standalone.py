"""``make up`` / ``make down``: Airflow's own ``airflow standalone`` in the background.

``airflow standalone`` runs api-server, scheduler, dag-processor and triggerer under one
parent, in the foreground. This adds what ``make up`` promises on top of it:

* its own session (setsid), output to ``$AIRFLOW_HOME/logs/standalone.log``, pid (and start
  time, so a reused pid is never mistaken for it) in ``$AIRFLOW_HOME/standalone.pid``;
* the metadata DB on PostgreSQL (devtools/postgres.py: started first, under
  ``$AIRFLOW_HOME/postgres``, migrated and given the extract pool before Airflow starts):
  four components write to it at once, which SQLite refuses ("database is locked");
* the settings it needs here: 127.0.0.1 and the chosen port (links and the task execution
  API follow it), one api-server worker, a small LocalExecutor, the log servers on free
  ports, and the venv's ``airflow`` on PATH (standalone runs its components by name);
* a bounded wait until the API answers, every component is healthy and the DAG is parsed
  with the current settings (its description carries their digest), then the login;
* ``down``: SIGTERM, then SIGKILL, for every process of that session (the components, their
  workers and task processes) and nothing outside it; then PostgreSQL.

A development tool: the runtime package (and so the MWAA bundle) does not contain it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from airflow_client.client import ApiClient, Configuration
from airflow_client.client.api import DAGApi, ImportErrorApi
from airflow_client.client.exceptions import NotFoundException
from airflow_client.client.models import DAGPatchBody
from spotify_etl.airflow import DAG_ID

from devtools import postgres

HOST = "127.0.0.1"
USER = "admin"  # the simple auth manager's default user (role admin) that standalone sets up
VENV_BIN = Path(sys.executable).parent
# /api/v2/monitor/health names the components with underscores.
HEALTH_KEYS = ("metadatabase", "scheduler", "dag_processor", "triggerer")


class LauncherError(RuntimeError):
    """Airflow could not be started or stopped; the message says what to look at."""


def pid_file(home: Path) -> Path:
    return home / "standalone.pid"


def log_file(home: Path) -> Path:
    return home / "logs" / "standalone.log"


def password_file(env: Mapping[str, str], home: Path) -> Path:
    """Where the simple auth manager keeps the passwords (its own default unless configured)."""
    configured = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    return Path(configured) if configured else home / "simple_auth_manager_passwords.json.generated"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def airflow_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow").resolve()


def environment(base: Mapping[str, str], port: int) -> dict[str, str]:
    """``base`` (the Makefile's exports) plus what standalone needs here; given settings win
    except the ones that must match this instance (address, URLs, and the metadata DB: the
    PostgreSQL of ``base``'s AIRFLOW_HOME, when it runs)."""
    env = dict(base)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}"
    env.setdefault("AIRFLOW__CORE__PARALLELISM", "4")  # LocalExecutor workers; Airflow's default is 32
    env.setdefault("AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES", "1")
    env.setdefault("AIRFLOW__API__WORKERS", "1")
    # The scheduler's and triggerer's log servers would take fixed ports (8793/8794) that
    # another local Airflow or a parallel test run also wants.
    env.setdefault("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(free_port()))
    env.setdefault("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", str(free_port()))
    conn = postgres.url(airflow_home(env))
    if conn:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = conn
    env.update(
        AIRFLOW__API__HOST=HOST,
        AIRFLOW__API__PORT=str(port),
        # Links in the UI and the task execution API ({base_url}/execution/) follow the port.
        AIRFLOW__API__BASE_URL=f"http://{HOST}:{port}",
    )
    return env


def prepare_database(home: Path, env: Mapping[str, str]) -> None:
    """``airflow db migrate`` (a no-op at the current version) and the extract tasks' pool (the
    scheduler never schedules tasks of a missing pool), as `make airflow-db` does for SQLite."""
    for name, argv in (
        ("db-migrate", [str(VENV_BIN / "airflow"), "db", "migrate"]),
        ("pool", [str(VENV_BIN / "python"), "-m", "spotify_etl.airflow.pool"]),
    ):
        log = home / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.run(  # noqa: S603 - fixed argv: the venv's programs
                argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, timeout=600, check=False
            )
        if proc.returncode != 0:
            raise LauncherError(f"{' '.join(argv[1:])} failed (exit {proc.returncode}):\n{log.read_text()[-4000:]}")


def set_password(path: Path, password: str | None) -> None:
    """Create the password file private (0600) before Airflow writes to it; store ``password``
    for the admin user if given (else the api-server generates one on its first start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    if password:
        stored = json.loads(path.read_text().strip() or "{}")
        path.write_text(json.dumps({**stored, USER: password}) + "\n")


def read_password(path: Path) -> str:
    return str(json.loads(path.read_text().strip() or "{}").get(USER, ""))


# ---- the standalone process and its session ---------------------------------------
def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str:
    fields = _stat(pid)
    return fields[19] if fields else "-"  # field 22 of stat: start time in clock ticks since boot


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``: standalone, its components, their
    workers and the task processes (which move to process groups of their own)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[3] == str(sid) and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def running(home: Path) -> int | None:
    """The session id of the standalone ``make up`` started from ``home``, if any of it runs."""
    try:
        pid_text, _, started = pid_file(home).read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    leader = _stat(pid)
    if leader is not None and leader[0] != "Z" and _start_time(pid) != started:
        return None  # the pid now belongs to an unrelated process
    return pid if session_members(pid) else None


def _signal_all(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(sid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while session_members(sid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop(home: Path, timeout: float = 60) -> int | None:
    """Stop the session ``up`` started, then its PostgreSQL; return the session's id, or None if
    nothing of it was running.

    SIGTERM to every process of the session (each component shuts down on it; standalone
    itself has no handler for it and just ends), SIGKILL for what is left after ``timeout``.
    """
    sid = running(home)
    if sid is not None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            _signal_all(session_members(sid), sig)
            if _wait_gone(sid, wait):
                break
    pid_file(home).unlink(missing_ok=True)
    postgres.stop(home)
    return sid


def refuse_to_start(home: Path, port: int) -> None:
    """Fail, before anything is touched, if ``up`` already runs from ``home`` or ``port`` is taken."""
    sid = running(home)
    if sid is not None:
        raise LauncherError(f"Airflow is already running from {home} (session {sid}); stop it first (make down)")
    if not port_is_free(port):
        raise LauncherError(f"port {port} on {HOST} is in use; choose another (make up PORT=8081)")


def start(home: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    log_file(home).parent.mkdir(parents=True, exist_ok=True)
    with log_file(home).open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv: the venv's airflow
            [str(VENV_BIN / "airflow"), "standalone"],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file(home).write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
    return proc


def log_tail(home: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log_file(home).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# ---- waiting until it serves the DAG ------------------------------------------------
def wait_healthy(url: str, proc: subprocess.Popen[bytes], home: Path, timeout: float) -> None:
    """Until the API answers and reports every component healthy (at most ``timeout`` s)."""
    deadline, last = time.monotonic() + timeout, "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LauncherError(
                f"airflow standalone exited (code {proc.returncode}); last lines of {log_file(home)}:\n{log_tail(home)}"
            )
        try:
            health = httpx.get(f"{url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError) as exc:
            last = repr(exc)
        else:
            last = json.dumps(health)
            if all((health.get(key) or {}).get("status") == "healthy" for key in HEALTH_KEYS):
                # The api-server builds its task execution API on the first request to it, which
                # blocks it for ~25 s on a busy 2-core machine: pay that here, not in the first task.
                httpx.get(f"{url}/execution/health", timeout=max(deadline - time.monotonic(), 5))
                return
        time.sleep(1)
    raise LauncherError(f"Airflow at {url} not healthy after {timeout:.0f}s (last: {last}); see {log_file(home)}")


def login(url: str, password: str) -> ApiClient:
    """The official REST client with a JWT from /auth/token, as the UI logs in."""
    response = httpx.post(f"{url}/auth/token", json={"username": USER, "password": password}, timeout=30)
    if response.status_code != 201:
        raise LauncherError(f"login as {USER!r} failed: {response.status_code} {response.text}")
    return ApiClient(Configuration(host=url, access_token=response.json()["access_token"]))


def expected_description(env: Mapping[str, str]) -> str | None:
    """The description the DAG gets when parsed with ``env``'s settings (it carries their digest),
    computed by the same code in a child process with that environment; None if they are invalid
    (the DAG then fails to import, which ``wait_for_dag`` reports)."""
    code = (
        "from spotify_etl.airflow.description import dag_description; from spotify_etl.settings import Settings; "
        "print(dag_description(Settings.from_env()))"
    )
    proc = subprocess.run(  # noqa: S603 - fixed argv: this interpreter and a constant snippet
        [sys.executable, "-c", code], env=dict(env), capture_output=True, text=True, timeout=120, check=False
    )
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def wait_for_dag(client: ApiClient, description: str | None, timeout: float) -> None:
    """Until the dag-processor has parsed the DAG (with ``description``, if given: the version
    parsed under the current settings, not one left by an earlier start); fail early on an
    import error."""
    dags, errors = DAGApi(client), ImportErrorApi(client)
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            seen = dags.get_dag(DAG_ID).description
        except NotFoundException:
            pass
        else:
            if description is None or seen == description:
                return
        failed = errors.get_import_errors().import_errors
        if failed:
            raise LauncherError(
                "the DAG files failed to import:\n" + "\n".join(f"{e.filename}: {e.stack_trace}" for e in failed)
            )
        time.sleep(1)
    if seen is not None:
        raise LauncherError(
            f"DAG {DAG_ID} is still the version parsed under other settings after {timeout:.0f}s "
            f"({seen!r}; expected {description!r}); see {DAG_ID}'s parsing in the standalone log"
        )
    raise LauncherError(f"DAG {DAG_ID} did not appear within {timeout:.0f}s (is the dag-processor running?)")


# ---- commands ---------------------------------------------------------------------
def up(home: Path, port: int, unpause: bool, timeout: float) -> str:
    """Start, wait until the DAG is served, unpause if asked; return what to tell the user.
    On any failure whatever was started is stopped again."""
    refuse_to_start(home, port)
    deadline = time.monotonic() + timeout
    try:
        postgres.start(home)
        print(f"PostgreSQL runs on {postgres.HOST}:{postgres.port(home)} (log: {postgres.log_file(home)})", flush=True)
        env = environment({**os.environ, "AIRFLOW_HOME": str(home)}, port)
        url = env["AIRFLOW__API__BASE_URL"]
        passwords = password_file(env, home)
        set_password(passwords, os.environ.get("AIRFLOW_UI_PASSWORD") or None)
        print(f"airflow db migrate and the extract pool (logs: {home}/db-migrate.log, pool.log) ...", flush=True)
        prepare_database(home, env)
        print(f"airflow standalone (log: {log_file(home)}) ...", flush=True)
        proc = start(home, env)
        wait_healthy(url, proc, home, timeout)
        with login(url, read_password(passwords)) as client:
            wait_for_dag(client, expected_description(env), max(deadline - time.monotonic(), 1))
            if unpause:
                DAGApi(client).patch_dag(DAG_ID, DAGPatchBody(is_paused=False))
            paused = DAGApi(client).get_dag(DAG_ID).is_paused
    except BaseException:
        stop(home)
        raise
    return (
        f"Airflow is up: {url}\n"
        f"  login:     {USER} / {read_password(passwords)}   (stored in {passwords})\n"
        f"  DAG:       {url}/dags/{DAG_ID}  "
        + ("(paused: unpause it in the UI or run `make up UNPAUSE=1`)" if paused else "(unpaused: runs daily)")
        + f"\n  logs:      {log_file(home)}, task logs under {home}/logs/\n"
        f"  metadata:  PostgreSQL on {postgres.HOST}:{postgres.port(home)}, data and log in {postgres.root_dir(home)}\n"
        "  stop with: make down"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.airflow_standalone", description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow"))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start airflow standalone in the background and wait until it serves the DAG")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--unpause", action="store_true", help=f"unpause {DAG_ID} once it is parsed")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for it")
    sub.add_parser("down", help="stop what `up` started")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    try:
        if args.command == "up":
            print(f"Starting Airflow from {home} ...", flush=True)
            print(up(home, args.port, args.unpause, args.timeout))
        else:
            sid = stop(home)
            print(
                f"Stopped airflow standalone (session {sid})." if sid else f"No Airflow started from {home} is running."
            )
    except (LauncherError, postgres.PostgresError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
