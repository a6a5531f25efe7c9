"""Create or update the extract tasks' Airflow pool (``python -m spotify_etl.airflow.pool``).

The scheduler never schedules a task whose pool does not exist, so every setup step that prepares
a metadata database runs this: ``make airflow-db`` (``make run`` / ``make up``), the compose
init and the tests' Airflow homes. Slots: ``SPOTIFY_ETL_SPOTIFY_POOL_SLOTS``. On MWAA
``make deploy`` creates it through MWAA's REST API endpoint (deploy/deploy.py, ensure_pool).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from spotify_etl.settings import Settings

SPOTIFY_POOL = "spotify_api"  # the Airflow pool of the extract tasks: one Spotify budget for every run
DESCRIPTION = "Spotify Web API: extract tasks calling Spotify at once, across all runs and backfills"


def pool_command(settings: Settings) -> list[str]:
    """The ``airflow pools set`` arguments (after ``airflow``) that create or update the pool."""
    return ["pools", "set", SPOTIFY_POOL, str(settings.spotify_pool_slots), DESCRIPTION]


def main() -> int:
    airflow = Path(sys.executable).with_name("airflow")
    command = [str(airflow if airflow.exists() else "airflow"), *pool_command(Settings.from_env())]
    return subprocess.run(command, check=False).returncode  # noqa: S603 - fixed arguments, no shell


if __name__ == "__main__":
    sys.exit(main())
