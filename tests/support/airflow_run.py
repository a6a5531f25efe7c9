"""Run the real DAG with ``airflow dags test`` in a subprocess, isolated per test.

Each run gets its own AIRFLOW_HOME holding a copy of one migrated SQLite database, so
tests never share metadata state. That database is migrated once per virtualenv and kept
(:func:`template_db`), not once per test session or xdist worker: `airflow db migrate` and
the pool take three Airflow start-ups (about 14 s of CPU).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spotify_etl.airflow import DAG_ID

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def airflow_env(home: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SPOTIFY_ETL_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT / "plugins"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="120",  # parallel test load on 2 cores
        SPOTIFY_ETL_TASK_RETRIES="0",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.update(overrides)
    return env


# Coverage (``patch = subprocess``, pyproject.toml) measures every Python process started with these.
COVERAGE_VARIABLES = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def unmeasured(env: dict[str, str]) -> dict[str, str]:
    """``env`` without :data:`COVERAGE_VARIABLES`. For an Airflow as ``make up`` starts it: its four
    components and their task processes run the DAG's code that the `airflow dags test` runs measure
    too, and measuring them made every test on it slower (docs/testing.md)."""
    return {k: v for k, v in env.items() if k not in COVERAGE_VARIABLES}


def migrate(home: Path) -> Path:
    """Create a migrated metadata database in ``home`` (once per test session)."""
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"], env=airflow_env(home), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The extract tasks' pool, as make airflow-db creates it: the scheduler never schedules tasks of a missing pool.
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "spotify_etl.airflow.pool"], env=airflow_env(home), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home / "airflow.db"


def template_db(copy_to: Path) -> Path:
    """A copy in ``copy_to`` of the migrated metadata database (with the pool) that this virtualenv keeps.

    Kept in ``<venv>/airflow-template/<key>.db``; the key covers what the database depends on:
    Airflow's version, the pool ``migrate`` sets and this module (its environment). A changed key
    migrates anew and drops the older files. A lock makes concurrent sessions and xdist workers
    migrate once and copy it whole.
    """
    from spotify_etl.airflow.pool import pool_command
    from spotify_etl.settings import Settings

    inputs = [importlib.metadata.version("apache-airflow"), *pool_command(Settings.from_env({}))]
    key = hashlib.sha256("\0".join([*inputs, Path(__file__).read_text(encoding="utf-8")]).encode()).hexdigest()[:16]
    cache = Path(sys.prefix) / "airflow-template"
    cache.mkdir(exist_ok=True)
    kept = cache / f"{key}.db"
    with (cache / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not kept.exists():
            for old in cache.glob("*.db"):
                old.unlink()
            build = cache / f"build-{os.getpid()}"
            shutil.rmtree(build, ignore_errors=True)
            os.replace(migrate(build), kept)
            shutil.rmtree(build)
        copy_to.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(kept, copy_to / "airflow.db"))


@dataclass
class DagRunResult:
    returncode: int
    output: str
    home: Path

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and "state=success" in self.output


def dags_test(
    template_db: Path, home: Path, day: str, timeout: int = 420, conf: dict[str, Any] | None = None, **env: str
) -> DagRunResult:
    """``airflow dags test spotify_playlist_etl <day>`` with its own copy of the metadata DB.

    ``conf`` becomes the run's ``--conf`` (DAG params); ``env`` holds extra environment
    variables (SPOTIFY_ETL_*, AIRFLOW_CONN_*...).
    """
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_db, home / "airflow.db")
    proc = subprocess.run(
        [str(VENV_BIN / "airflow"), "dags", "test", DAG_ID, day, *(["--conf", json.dumps(conf)] if conf else [])],
        env=airflow_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT,
    )
    return DagRunResult(proc.returncode, proc.stdout + proc.stderr, home)
