"""Shared test fixtures: paths to the recorded Spotify payloads and a fresh local lake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "spotify_api"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def lake(lake_dir: Path):  # type: ignore[no-untyped-def]
    from spotify_etl.lake import LocalLake

    return LocalLake(lake_dir)


@pytest.fixture(scope="session")
def airflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated Airflow metadata DB per session; copy it per run via support.airflow_run.dags_test."""
    from tests.support.airflow_run import migrate

    return migrate(tmp_path_factory.mktemp("airflow-template"))
