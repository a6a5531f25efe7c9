"""Shared test fixtures: paths to the recorded Spotify payloads and a fresh local lake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "spotify_api"
# Tests that start an Airflow as `make up` does (airflow standalone: four components and their
# task processes): the e2e tests on the shared `make up` Airflow, the deadline test's own one
# and the whole-day harness. pytest_collection_modifyitems puts them in one xdist group.
STANDALONE_FIXTURE = "airflow_server"
STANDALONE_FILES = ("tests/e2e/test_deadline_alert.py", "tests/bench/test_bench_day.py")


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist's ``--dist loadgroup`` (make check, make unit, make test-mwaa).

    A file's tests run on one worker, one after another, so its module fixtures (a moto server,
    a DAG run several tests check) start once. The tests that start an Airflow as `make up` does
    run on one worker too, one after another: the shared `make up` Airflow starts once, and two
    of them never compete for the cores and their time limits. Without xdist the marks do nothing.
    """
    for item in items:
        path = item.path.relative_to(config.rootpath).as_posix()
        standalone = STANDALONE_FIXTURE in getattr(item, "fixturenames", ()) or path in STANDALONE_FILES
        item.add_marker(pytest.mark.xdist_group("airflow-standalone" if standalone else path))


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def lake(lake_dir: Path):  # type: ignore[no-untyped-def]
    from spotify_etl.lake import Lake

    return Lake.local(lake_dir)


@pytest.fixture(scope="session")
def airflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrated Airflow metadata DB (kept per virtualenv: support.airflow_run.template_db); copy it per run."""
    from tests.support.airflow_run import template_db

    return template_db(tmp_path_factory.mktemp("airflow-template"))
