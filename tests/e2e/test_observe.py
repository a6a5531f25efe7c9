"""Lineage and run metrics of a real DAG run (``airflow dags test`` on the local target).

With Airflow's standard settings on (the OpenLineage provider's file transport, ``[metrics]
statsd_on`` towards a StatsD listener of this test on 127.0.0.1), one run writes START and
COMPLETE events per task naming the objects it read and wrote, and sends every declared
``spotify_etl`` metric with the values the lake holds. With neither configured, a run of the
same date sends nothing, writes no event and logs no OpenLineage warning. A chunk that fails
after landing one of its playlists counts both, and its FAIL event names what it landed.

``airflow dags test`` runs every task in one process, and Airflow's hook lineage collector
lives as long as the process: each event also carries what the earlier tasks of the run
reported (a worker runs each task in a fresh process, so there an event holds its task's
datasets only). The checks therefore read a task's datasets as what its COMPLETE event adds
to the earlier tasks' ones, in the order the tasks ran.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from spotify_etl import tables
from spotify_etl.airflow.metrics import COUNTER, GAUGE, METRICS, PREFIX, TIMER
from spotify_etl.transform import REASONS

from tests.support.airflow_run import DAG_ID, dags_test

pytestmark = pytest.mark.e2e

DAY = dt.datetime.now(dt.UTC).date().isoformat()  # a live run: the plan extracts (sample data)
NAMESPACE = "spotify_etl_test"
STATSD_TYPES = {"c": COUNTER, "g": GAUGE, "ms": TIMER}
SAMPLE_PLAYLIST = "1h9q8vXXDl2vHOmwdsuXms"  # one of the recorded playlists in include/sample_data
TASKS = ("plan", "chunk_playlists", "extract_playlist", "transform", "check_extracts", "catalog", "validate")


class StatsdListener:
    """A UDP StatsD receiver on 127.0.0.1 and a free port; keeps every line it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                packet = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.lines += packet.decode().splitlines()

    def __enter__(self) -> StatsdListener:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def ours(self, prefix: str) -> dict[str, list[tuple[str, float]]]:
        """``spotify_etl`` metric name -> [(type, value)...] of the lines under ``prefix``."""
        found: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for line in self.lines:
            name, _, rest = line.partition(":")
            if name.startswith(f"{prefix}.{PREFIX}."):
                value, kind = rest.split("|")[:2]
                found[name.removeprefix(f"{prefix}.{PREFIX}.")].append((STATSD_TYPES[kind], float(value)))
        return found


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def datasets(event: dict[str, Any], key: str) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in event.get(key, [])}


@pytest.fixture(scope="module")
def observed(airflow_template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("e2e-observe")
    lake = root / "lake"
    env = {
        "SPOTIFY_ETL_LAKE_DIR": str(lake),
        "SPOTIFY_ETL_DUCKDB_PATH": str(root / "catalog.duckdb"),
        "SPOTIFY_ETL_EXTRACT_CHUNK_SIZE": "25",  # one chunk: one extract task instance, one event pair per task
    }
    ol_file = root / "openlineage.jsonl"
    with StatsdListener() as statsd:
        run = dags_test(
            airflow_template_db, root / "on", DAY,
            AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "file", "log_file_path": str(ol_file), "append": True}),
            AIRFLOW__OPENLINEAGE__NAMESPACE=NAMESPACE,
            AIRFLOW__METRICS__STATSD_ON="True",
            AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
            AIRFLOW__METRICS__STATSD_PORT=str(statsd.port),
            AIRFLOW__METRICS__STATSD_PREFIX="etltest",
            **env,
        )  # fmt: skip
    with StatsdListener() as quiet:
        # Neither turned on; the StatsD port points at this listener, so anything sent all the same arrives.
        off = dags_test(airflow_template_db, root / "off", DAY, AIRFLOW__METRICS__STATSD_PORT=str(quiet.port), **env)
    yield {"run": run, "off": off, "lake": lake, "ol_file": ol_file, "statsd": statsd, "quiet": quiet, "root": root}


def test_a_failed_chunk_counts_its_failure_and_names_what_it_landed(airflow_template_db: Path, tmp_path: Path) -> None:
    """One playlist of the chunk is not in the sample data: the chunk task fails at once after
    landing the other; its FAIL event names the landed document, the counters count both."""
    lake, ol_file, missing = tmp_path / "lake", tmp_path / "openlineage.jsonl", "0" * 22
    with StatsdListener() as statsd:
        run = dags_test(
            airflow_template_db, tmp_path / "home", DAY, conf={"playlists": [SAMPLE_PLAYLIST, missing]},
            AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "file", "log_file_path": str(ol_file), "append": True}),
            AIRFLOW__METRICS__STATSD_ON="True", AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
            AIRFLOW__METRICS__STATSD_PORT=str(statsd.port),
            SPOTIFY_ETL_LAKE_DIR=str(lake), SPOTIFY_ETL_DUCKDB_PATH=str(tmp_path / "catalog.duckdb"),
            SPOTIFY_ETL_EXTRACT_CHUNK_SIZE="2",  # one chunk of both
        )  # fmt: skip
    assert f"playlist {missing} is not in the embedded sample data" in run.output, run.output[-4000:]
    got = statsd.ours("airflow")  # Airflow's default prefix
    assert [v for _, v in got["extract.playlists_landed"]] == [1]
    assert [v for _, v in got["extract.playlists_failed"]] == [1]
    document = lake / "raw" / "playlists" / f"dt={DAY}" / f"playlist_id={SAMPLE_PLAYLIST}.json"
    assert [v for _, v in got["extract.items"]] == [json.loads(document.read_text())["total"]]
    assert [v for _, v in got["extract.bytes"]] == [document.stat().st_size]
    (extract,) = [e for e in events(ol_file) if e["job"]["name"] == f"{DAG_ID}.extract_playlist"
                  and e["eventType"] != "START"]  # fmt: skip
    assert extract["eventType"] == "FAIL"
    assert datasets(extract, "outputs") == {("file", str(document))}


def test_every_task_has_a_start_and_a_complete_event(observed: dict[str, Any]) -> None:
    assert observed["run"].succeeded, observed["run"].output[-4000:]
    seen = [(e["job"]["namespace"], e["job"]["name"], e["eventType"]) for e in events(observed["ol_file"])]
    for task in TASKS:
        job = f"{DAG_ID}.{task}"
        assert seen.count((NAMESPACE, job, "START")) == 1, (job, seen)
        assert seen.count((NAMESPACE, job, "COMPLETE")) == 1, (job, seen)
    assert not [s for s in seen if s[2] == "FAIL"]


def test_events_name_the_raw_documents_and_partitions_each_task_read_and_wrote(observed: dict[str, Any]) -> None:
    lake: Path = observed["lake"]
    raw = {("file", str(p)) for p in (lake / "raw" / "playlists" / f"dt={DAY}").glob("playlist_id=*.json")}
    parts = {("file", str(lake / "processed" / t / f"dt={DAY}")) for t in tables.TABLE_NAMES}
    assert len(raw) == 6 and all(Path(name, "part-00000.parquet").is_file() for _, name in parts)
    complete = {e["job"]["name"]: e for e in events(observed["ol_file"]) if e["eventType"] == "COMPLETE"}
    inputs: set[tuple[str, str]] = set()
    outputs: set[tuple[str, str]] = set()
    added = {}
    for task in TASKS:  # the order dags test runs them in
        event = complete[f"{DAG_ID}.{task}"]
        now_in, now_out = datasets(event, "inputs"), datasets(event, "outputs")
        assert now_in >= inputs and now_out >= outputs, task  # see the module docstring
        added[task] = (now_in - inputs, now_out - outputs)
        inputs, outputs = now_in, now_out
    assert added == {
        "plan": (set(), set()),
        "chunk_playlists": (set(), set()),
        "extract_playlist": (set(), raw),
        "transform": (raw, parts),
        "check_extracts": (set(), set()),
        "catalog": (set(), set()),
        "validate": (parts, set()),
    }


def test_metrics_arrive_under_the_prefix_with_the_values_of_the_lake(observed: dict[str, Any]) -> None:
    assert observed["run"].succeeded, observed["run"].output[-4000:]
    got = observed["statsd"].ours("etltest")
    assert sorted(got) == sorted(METRICS), "every declared metric, and only those"
    for name, samples in got.items():
        assert {kind for kind, _ in samples} == {METRICS[name][0]}, name

    def total(name: str) -> float:
        return sum(value for _, value in got[name])

    def last(name: str) -> float:
        return got[name][-1][1]

    lake: Path = observed["lake"]
    partition = {t: lake / "processed" / t / f"dt={DAY}" / "part-00000.parquet" for t in tables.TABLE_NAMES}
    items = pq.read_table(partition["playlist_items"]).to_pylist()
    raw_files = list((lake / "raw" / "playlists" / f"dt={DAY}").glob("*.json"))
    assert total("extract.playlists_landed") == len(raw_files) == last("transform.documents") == 6
    assert total("extract.playlists_failed") == 0
    assert total("extract.items") == len(items) == last("transform.entries")
    assert total("extract.bytes") == sum(f.stat().st_size for f in raw_files)
    assert len(got["extract.seconds"]) == 6
    summary = next(line for line in observed["run"].output.splitlines() if "extract summary:" in line)
    assert f"'api_calls': {int(total('extract.api_calls'))}" in summary and total("extract.api_calls") > 0
    for table, path in partition.items():
        assert last(f"transform.rows.{table}") == pq.ParquetFile(path).metadata.num_rows, table
        assert last(f"transform.bytes.{table}") == path.stat().st_size, table
    rejected = {reason: last(f"transform.rejected.{reason}") for reason in REASONS}
    assert sum(rejected.values()) == sum(1 for row in items if row["song_id"] is None) > 0


def test_with_nothing_configured_nothing_is_sent_or_written(observed: dict[str, Any]) -> None:
    off = observed["off"]
    assert off.succeeded, off.output[-4000:]
    assert observed["quiet"].lines == []
    assert "openlineage" not in off.output.lower()
    assert sorted(p.name for p in observed["root"].glob("*.jsonl")) == ["openlineage.jsonl"]
