"""A local Airflow for this project: api-server, scheduler, dag-processor and triggerer.

``make up`` / ``make down`` call this module, and the end-to-end tests start the very same
thing on a free port with their own AIRFLOW_HOME. It adds to the environment it is given
(the Makefile's exports, i.e. the same settings as ``make run``) only what a server needs:
host, port and URLs, the simple auth manager's user and password file, a small
LocalExecutor and no log-server ports.

Each component is started in its own process group; its pid (and start time, so a reused
pid is never mistaken for it) is written to ``$AIRFLOW_HOME/run/<component>.pid`` and its
output to ``$AIRFLOW_HOME/logs/local/<component>.log``. ``down`` signals exactly those
process groups (the component and the workers it forked) and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DAG_ID = "spotify_playlist_etl"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
DEFAULT_USER = "admin"
VENV_BIN = Path(sys.executable).parent
# sqlite3 gives up on a locked database after 5 s, which four components plus a CLI command
# (`airflow backfill create` clears and queues many rows at once) exceed on a busy 2-core
# machine; with SQLite, Airflow reads these through [database] sql_alchemy_connect_args(_async).
SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": 60}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, Any] = {"timeout": 60}  # its own dict: Airflow adds keys to the sync one
_MODULE = "spotify_etl.local_airflow"  # not __name__: that is "__main__" under `python -m`
# /api/v2/monitor/health names the components with underscores.
_HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}


class LauncherError(RuntimeError):
    """Airflow could not be started or stopped; the message says what to look at."""


@dataclass
class LocalAirflow:
    """Where one local Airflow lives and how it is reached."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 8080
    user: str = DEFAULT_USER
    components: tuple[str, ...] = COMPONENTS
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs" / "local"

    @property
    def password_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def log_tail(self, component: str, lines: int = 40) -> str:
        try:
            text = self.log_file(component).read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ---- configuration ---------------------------------------------------------
    def password(self, password: str | None = None) -> str:
        """The login password: ``password`` if given, else the stored one, else a new random one.

        Stored in the simple auth manager's password file (mode 0600) so it survives restarts
        and the api-server never prints a generated one of its own.
        """
        stored: dict[str, str] = {}
        if self.password_file.is_file():
            stored = json.loads(self.password_file.read_text() or "{}")
        if password is None and stored.get(self.user):
            return stored[self.user]
        stored[self.user] = password or secrets.token_urlsafe(12)
        self.home.mkdir(parents=True, exist_ok=True)
        self.password_file.touch(mode=0o600)
        self.password_file.chmod(0o600)
        self.password_file.write_text(json.dumps(stored) + "\n")
        return stored[self.user]

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` plus what the server components need; settings already in ``base`` win
        except the ones that must match this instance (home, address, auth)."""
        env = dict(base)
        env.setdefault("AIRFLOW__CORE__PARALLELISM", "4")  # LocalExecutor forks this many workers
        env.setdefault("AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES", "1")
        env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:").startswith("sqlite:"):
            env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", f"{_MODULE}.SQLITE_CONNECT_ARGS")
            env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC", f"{_MODULE}.SQLITE_CONNECT_ARGS_ASYNC")
        env.update(
            AIRFLOW_HOME=str(self.home),
            PATH=f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}",  # tasks run `airflow` from the venv
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__API__HOST=self.host,
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__WORKERS="1",
            # Links in the UI and the execution API the task runners call must use this port.
            AIRFLOW__API__BASE_URL=self.url,
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url}/execution/",
            AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{self.user}:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(self.password_file),
        )
        return env

    # ---- processes -------------------------------------------------------------
    def running(self) -> dict[str, int]:
        """Components whose pid file names a live process that is still the one started."""
        alive = {}
        for component in COMPONENTS:
            pid = _read_pid_file(self.pid_file(component))
            if pid is not None:
                alive[component] = pid
        return alive

    def migrate(self, env: Mapping[str, str], timeout: float = 600) -> None:
        """``airflow db migrate``; it also writes airflow.cfg (with its secrets) once, before
        the components start, so they never race to create it."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / "db-migrate.log"
        with log.open("wb") as out:
            proc = subprocess.run(  # noqa: S603 - fixed argv: the venv's airflow  # nosec B603
                [str(VENV_BIN / "airflow"), "db", "migrate"],
                env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                timeout=timeout, check=False,
            )
        if proc.returncode != 0:
            raise LauncherError(f"airflow db migrate failed (exit {proc.returncode}):\n{_tail(log)}")

    def use_sqlite_wal(self, env: Mapping[str, str]) -> None:
        """Switch a SQLite metadata database to write-ahead logging (a persistent setting of the file).

        In SQLite's default mode a reader blocks writers, and with four components polling the
        database a task's state update could wait 30 s for its lock; with WAL readers never block.
        """
        import sqlite3

        conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or f"sqlite:///{self.home}/airflow.db"
        if not conn.startswith("sqlite:///"):
            return
        path = conn.removeprefix("sqlite:///").split("?", 1)[0]
        with closing(sqlite3.connect(path, timeout=30)) as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LauncherError(f"could not switch {path} to WAL mode (still {mode!r}); is another process using it?")

    def refuse_if_running(self) -> None:
        already = self.running()
        if already:
            raise LauncherError(
                f"Airflow is already running from {self.home} ({', '.join(f'{c} pid {p}' for c, p in already.items())}); "
                "stop it first (make down)"
            )

    def start(self, env: Mapping[str, str]) -> None:
        self.refuse_if_running()
        if not port_is_free(self.host, self.port):
            raise LauncherError(f"port {self.port} on {self.host} is in use; choose another (make up PORT=8081)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for component in self.components:
            argv = [str(VENV_BIN / "airflow"), component]
            if component == "api-server":
                argv += ["--host", self.host, "--port", str(self.port), "--workers", "1"]
            elif component in ("scheduler", "triggerer"):
                # Their log servers would take fixed ports (8793/8794) that a second instance or a
                # parallel test run also wants; the api-server reads task logs from the local files.
                argv.append("--skip-serve-logs")
            with self.log_file(component).open("ab") as out:
                proc = subprocess.Popen(  # noqa: S603 - fixed argv: the venv's airflow  # nosec B603
                    argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group: down stops it with its workers
                )
            self.processes[component] = proc
            self.pid_file(component).write_text(f"{proc.pid} {_start_time(proc.pid)}\n")

    def check_alive(self) -> None:
        for component in self.components:
            proc = self.processes.get(component)
            died = proc.poll() is not None if proc else _read_pid_file(self.pid_file(component)) is None
            if died:
                raise LauncherError(
                    f"airflow {component} exited during start-up; last lines of {self.log_file(component)}:\n"
                    f"{self.log_tail(component)}"
                )

    def wait_healthy(self, timeout: float = 240) -> dict[str, Any]:
        """Wait (at most ``timeout`` s) until the api-server answers and reports every started
        component healthy."""
        import httpx

        deadline = time.monotonic() + timeout
        last: Any = "no answer yet"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
            else:
                last = health
                wanted = [_HEALTH_KEYS[c] for c in self.components if c in _HEALTH_KEYS] + ["metadatabase"]
                if all((health.get(k) or {}).get("status") == "healthy" for k in wanted):
                    # The api-server builds its task execution API on the first request to it,
                    # which blocks the server for ~25 s on a busy 2-core machine; pay that here
                    # rather than in the first task (whose client retries would pile up meanwhile).
                    httpx.get(f"{self.url}/execution/health", timeout=max(deadline - time.monotonic(), 5))
                    return dict(health)
            time.sleep(1)
        raise LauncherError(f"Airflow at {self.url} not healthy after {timeout:.0f}s (last: {last}); see {self.log_dir}")

    def stop(self, timeout: float = 60) -> list[str]:
        """Stop the components named in the pid files (their whole process groups); return them."""
        groups = {c: p for c, p in self.running().items()}
        for pid in groups.values():
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_group_alive(p) for p in groups.values()):
            time.sleep(0.5)
        for pid in groups.values():
            if _group_alive(pid):
                _signal_group(pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 10
        while time.monotonic() < kill_deadline and any(_group_alive(p) for p in groups.values()):
            time.sleep(0.2)
        for component in COMPONENTS:
            self.pid_file(component).unlink(missing_ok=True)
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.wait(timeout=5)
        self.processes.clear()
        return sorted(groups)


class AirflowClient:
    """The public REST API (/api/v2), authenticated as the UI is: a JWT from /auth/token."""

    def __init__(self, url: str, username: str, password: str, timeout: float = 30) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._credentials = {"username": username, "password": password}
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def token(self) -> str:
        if self._token is None:
            response = self._http.post("/auth/token", json=self._credentials)
            if response.status_code != 201:
                raise LauncherError(f"login as {self._credentials['username']!r} failed: {response.status_code} {response.text}")
            self._token = str(response.json()["access_token"])
        return self._token

    def request(self, method: str, path: str, lock_wait: float = 60.0, **kwargs: Any) -> Any:
        """``path`` below /api/v2; returns the httpx response (callers check the status).

        On SQLite the API answers 503 "Database is locked" while the scheduler writes (backfill
        creation refuses to wait); such a request is repeated for up to ``lock_wait`` seconds.
        """
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        deadline = time.monotonic() + lock_wait
        while True:
            response = self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
            if response.status_code == 401:  # expired token: log in again once
                self._token = None
                headers["Authorization"] = f"Bearer {self.token()}"
                response = self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
            locked = response.status_code == 503 and "database is locked" in response.text.lower()
            if not locked or time.monotonic() > deadline:
                return response
            time.sleep(1.0)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise LauncherError(f"{method} /api/v2{path}: {response.status_code} {response.text[:2000]}")
        return response.json()

    def wait_for_dag(self, dag_id: str = DAG_ID, timeout: float = 180, description: str | None = None) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id`` (with ``description``, if given: the
        version parsed under the current settings, not one left by an earlier start); fail early
        on an import error."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            response = self.request("GET", f"/dags/{dag_id}")
            if response.status_code == 200:
                seen = response.json().get("description")
                if description is None or seen == description:
                    return dict(response.json())
            errors = self.json("GET", "/importErrors").get("import_errors", [])
            if errors:
                raise LauncherError("the DAG files failed to import:\n" + "\n".join(
                    f"{e.get('filename')}: {e.get('stack_trace')}" for e in errors))
            time.sleep(1)
        if seen is not None:
            raise LauncherError(
                f"DAG {dag_id} is still the version parsed under other settings after {timeout:.0f}s "
                f"({seen!r}; expected {description!r}); see the dag-processor's log"
            )
        raise LauncherError(f"DAG {dag_id} did not appear within {timeout:.0f}s (is the dag-processor running?)")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.json("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})


def expected_description(env: Mapping[str, str]) -> str | None:
    """The description the DAG gets when parsed with ``env``'s settings (it carries their digest),
    computed by the same code in a child process with that environment; None if they are invalid
    (the DAG then fails to import, which ``wait_for_dag`` reports)."""
    code = "from spotify_etl.settings import Settings, dag_description; print(dag_description(Settings.from_env()))"
    proc = subprocess.run(  # noqa: S603 - fixed argv: this interpreter and a constant snippet  # nosec B603
        [sys.executable, "-c", code], env=dict(env), capture_output=True, text=True, timeout=120, check=False
    )
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


# ---- process helpers ------------------------------------------------------------
def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '-' where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "-"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in (...) may hold spaces


def _read_pid_file(path: Path) -> int | None:
    """The pid in ``path`` if that process is alive and still the one that was started."""
    try:
        pid_text, _, started = path.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if not _group_alive(pid):
        return None
    if started not in ("", "-") and _start_time(pid) not in (started, "-"):
        return None  # the pid was reused by an unrelated process
    return pid


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child (the test session starts the components itself)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A group whose members are all zombies of ours would still answer: check the leader's state.
    try:
        state = Path(f"/proc/{pgid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True  # leader gone, other members alive
    return state != "Z"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---- commands ---------------------------------------------------------------------
def up(
    instance: LocalAirflow,
    base_env: Mapping[str, str],
    *,
    password: str | None = None,
    unpause: bool = False,
    migrate: bool | None = None,
    timeout: float = 300,
) -> tuple[AirflowClient, str]:
    """Start ``instance`` and wait until it serves the DAG; return a logged-in client and the password.

    ``migrate=None`` migrates only a home that has no airflow.cfg yet (a fresh one; ``make up``
    has already migrated through ``make airflow-db``). On any failure the components already
    started are stopped again.
    """
    instance.refuse_if_running()
    secret = instance.password(password)
    env = instance.environment(base_env)
    if migrate or (migrate is None and not (instance.home / "airflow.cfg").is_file()):
        instance.migrate(env)
    instance.use_sqlite_wal(env)
    deadline = time.monotonic() + timeout
    try:
        instance.start(env)
        instance.wait_healthy(timeout=max(deadline - time.monotonic(), 1))
        client = AirflowClient(instance.url, instance.user, secret)
        client.wait_for_dag(DAG_ID, timeout=max(deadline - time.monotonic(), 1), description=expected_description(env))
        if unpause:
            client.set_paused(DAG_ID, False)
    except BaseException:
        instance.stop()
        raise
    return client, secret


def _cmd_up(args: argparse.Namespace, instance: LocalAirflow) -> int:
    print(f"Starting Airflow ({', '.join(instance.components)}) from {instance.home} ...", flush=True)
    client, secret = up(
        instance, os.environ, password=os.environ.get("AIRFLOW_UI_PASSWORD") or None, unpause=args.unpause,
        migrate=args.migrate, timeout=args.timeout,
    )
    paused = client.json("GET", f"/dags/{DAG_ID}")["is_paused"]
    client.close()
    print(
        f"\nAirflow is up: {instance.url}\n"
        f"  login:     {instance.user} / {secret}   (stored in {instance.password_file})\n"
        f"  DAG:       {instance.url}/dags/{DAG_ID}  "
        + ("(paused: unpause it in the UI or run `make up UNPAUSE=1`)" if paused else "(unpaused: runs daily)")
        + f"\n  logs:      {instance.log_dir}/<component>.log, task logs under {instance.home}/logs/\n"
        "  stop with: make down"
    )
    return 0


def _cmd_down(args: argparse.Namespace, instance: LocalAirflow) -> int:
    stopped = instance.stop(timeout=args.timeout)
    print(f"Stopped {', '.join(stopped)}." if stopped else f"No Airflow started from {instance.home} is running.")
    return 0


def _cmd_status(args: argparse.Namespace, instance: LocalAirflow) -> int:
    alive = instance.running()
    for component in COMPONENTS:
        print(f"{component:<14} {'running, pid ' + str(alive[component]) if component in alive else 'stopped'}")
    return 0 if alive else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spotify_etl.local_airflow", description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow"))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start api-server, scheduler, dag-processor and triggerer")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--unpause", action="store_true", help=f"unpause {DAG_ID} once it is parsed")
    p.add_argument("--migrate", action="store_true", default=None,
                   help="run `airflow db migrate` first (default: only in a home without airflow.cfg)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for a healthy Airflow")
    p.set_defaults(func=_cmd_up)
    p = sub.add_parser("down", help="stop the components started by `up`")
    p.add_argument("--timeout", type=float, default=60)
    p.set_defaults(func=_cmd_down)
    p = sub.add_parser("status", help="which components are running")
    p.set_defaults(func=_cmd_status)
    args = parser.parse_args(argv)
    instance = LocalAirflow(home=args.home.resolve(), host=getattr(args, "host", "127.0.0.1"),
                            port=getattr(args, "port", 8080))
    try:
        return int(args.func(args, instance))
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
