"""Shared test fixtures: paths to the recorded Spotify payloads and a fresh local lake."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "spotify_api"
# The test files that start an Airflow as `make up` does (airflow standalone: four components
# and their task processes): the e2e tests on the shared `make up` Airflow (fixture
# airflow_server, tests/e2e/conftest.py; a new file using it goes here) and the whole-day harness.
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
STANDALONE = "airflow-standalone"
# The other files' folders, those whose files start the most processes (`airflow dags test`,
# the benchmark, linters, fresh interpreters) first: the shortest files end the run, so the
# two workers finish close together.
FOLDER_ORDER = (
    "tests/e2e/",
    "tests/integration/",
    "tests/bench/",
    "tests/deploy/",
    "tests/dags/",
    "tests/reliability/",
)


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: -p no:xdist still runs
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist (make check, make unit, make test-mwaa: ``-n auto``) hands out whole files,
    so a file's module fixtures (a moto server, a DAG run several tests check) start once, and
    the STANDALONE_FILES as one unit: the shared `make up` Airflow starts once, and no two
    Airflows compete for the cores and their time limits. That unit, the longest, goes first,
    and its worker takes nothing else until its last test; the other files go to whichever worker
    is free, the slow folders' first (FOLDER_ORDER). Not ``--dist loadgroup`` and xdist_group
    marks: with pytest 9.2 they no longer group anything (pytest-xdist issue 1386).
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return STANDALONE if path in STANDALONE_FILES else path

        def _assign_work_unit(self, node: Any) -> None:
            if not self.assigned_work.get(node):  # the first units: order the queue once
                self.workqueue = OrderedDict(sorted(self.workqueue.items(), key=lambda unit: _rank(unit[0])))
            super()._assign_work_unit(node)

        def _reschedule(self, node: Any) -> None:
            # A worker holds back its last test until it has another one or is told to stop, so the
            # unit's worker gets the next file once only the unit's last test is left, not after it.
            if sum(not done for done in self.assigned_work.get(node, {}).get(STANDALONE, {}).values()) <= 1:
                super()._reschedule(node)

    config.option.loadscopereorder = False
    return FileScheduling(config, log)


def _rank(scope: str) -> int:
    """A unit's place in the queue: the standalone unit, then FOLDER_ORDER's folders, then the rest."""
    if scope == STANDALONE:
        return -1
    return next((i for i, folder in enumerate(FOLDER_ORDER) if scope.startswith(folder)), len(FOLDER_ORDER))


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
