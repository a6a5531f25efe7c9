"""The test suite's own pytest-xdist scheduler (tests/conftest.py), driven as pytest-xdist drives
it: the `make up` files go first, as one unit, to one worker; the other worker takes whole files,
the slow folders' first; and the unit's worker gets the next file once only the unit's last test
is left (a worker holds back its last test until it has another one or is told to stop: waiting
for the unit to finish left that worker idle until the other had run everything)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests import conftest

STANDALONE = sorted(conftest.STANDALONE_FILES)
COLLECTION = [
    "tests/unit/test_a.py::test_1",
    f"{STANDALONE[0]}::test_1",
    f"{STANDALONE[0]}::test_2",
    "tests/e2e/test_slow.py::test_1",
    f"{STANDALONE[1]}::test_1",
    "tests/dags/test_b.py::test_1",
    "tests/dags/test_b.py::test_2",
]


class Worker:
    """What the scheduler uses of pytest-xdist's WorkerController."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[str] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += [COLLECTION[i] for i in indices]

    def shutdown(self) -> None:
        self.shutting_down = True


def scheduled() -> tuple[Any, Worker, Worker]:
    config = SimpleNamespace(
        getvalue=lambda name: {"dist": "load", "tx": ["2*popen"]}[name],
        option=SimpleNamespace(loadscopereorder=True),
    )
    scheduler = conftest.pytest_xdist_make_scheduler(config, None)  # type: ignore[arg-type]
    first, second = Worker("gw0"), Worker("gw1")
    for worker in (first, second):
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, COLLECTION)
    scheduler.schedule()
    return scheduler, first, second


def complete(scheduler: Any, worker: Worker, nodeid: str) -> None:
    scheduler.mark_test_complete(worker, COLLECTION.index(nodeid))


def test_the_make_up_unit_goes_first_to_one_worker_and_whole_files_to_the_other() -> None:
    _, first, second = scheduled()
    assert first.sent == [t for t in COLLECTION if t.split("::")[0] in conftest.STANDALONE_FILES]
    # The other worker: the e2e file, then (two units to start with) the dags file, before unit tests.
    assert second.sent == [
        "tests/e2e/test_slow.py::test_1",
        "tests/dags/test_b.py::test_1",
        "tests/dags/test_b.py::test_2",
    ]


@pytest.mark.parametrize("done", [0, 1])
def test_the_units_worker_takes_nothing_else_while_two_of_its_tests_are_left(done: int) -> None:
    scheduler, first, _ = scheduled()
    for nodeid in first.sent[:done]:
        complete(scheduler, first, nodeid)
    assert first.sent == first.sent[:3] and not first.shutting_down  # its unit only


def test_the_units_worker_gets_the_next_file_when_only_its_last_test_is_left() -> None:
    scheduler, first, _ = scheduled()
    for nodeid in first.sent[:2]:
        complete(scheduler, first, nodeid)
    assert first.sent[3:] == ["tests/unit/test_a.py::test_1"]  # so the last test of the unit can run
    complete(scheduler, first, first.sent[2])
    complete(scheduler, first, first.sent[3])
    assert first.shutting_down  # nothing left to hand out
