"""Shared test fixtures: paths to the recorded Spotify payloads and a fresh local lake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "spotify_api"
# The test files that start an Airflow as `make up` does (airflow standalone: four components
# and their task processes): the e2e tests on the shared `make up` Airflow (fixture
# airflow_server), the deadline test's own one and the whole-day harness.
STANDALONE_FILES = frozenset(
    {
        "tests/e2e/test_backfill.py",
        "tests/e2e/test_rest_api.py",
        "tests/e2e/test_trends_plugin.py",
        "tests/e2e/test_ui_browser.py",
        "tests/e2e/test_deadline_alert.py",
        "tests/bench/test_bench_day.py",
    }
)


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: -p no:xdist still runs
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist (make check, make unit, make test-mwaa: ``-n auto``) hands out whole files,
    so a file's module fixtures (a moto server, a DAG run several tests check) start once, and
    the STANDALONE_FILES as one unit: the shared `make up` Airflow starts once, and no two
    Airflows compete for the cores and their time limits. They go first (collection order, the
    bench folder's harness is collected first). Not ``--dist loadgroup`` and xdist_group marks:
    with pytest 9.2 they no longer group anything (pytest-xdist issue 1386).
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "airflow-standalone" if path in STANDALONE_FILES else path

    config.option.loadscopereorder = False
    return FileScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test on the shared `make up` Airflow outside STANDALONE_FILES would start a second one."""
    for item in items:
        path = item.path.relative_to(config.rootpath).as_posix()
        if "airflow_server" in getattr(item, "fixturenames", ()) and path not in STANDALONE_FILES:
            raise pytest.UsageError(f"{path} uses airflow_server: add it to STANDALONE_FILES in tests/conftest.py")


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def lake(lake_dir: Path):  # type: ignore[no-untyped-def]
    from spotify_etl.lake import LocalLake

    return LocalLake(lake_dir)


@pytest.fixture(scope="session")
def airflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrated Airflow metadata DB (kept per virtualenv: support.airflow_run.template_db); copy it per run."""
    from tests.support.airflow_run import template_db

    return template_db(tmp_path_factory.mktemp("airflow-template"))
