"""spotify_etl.airflow.metrics, without a DAG run (tests/e2e/test_observe.py runs one).

The metrics table in docs/observe.md is ``metrics.METRICS``, row for row (regenerate it with
``python -m tests.unit.test_metrics``); a retried extract chunk does not count again what an
earlier try landed; the transform sends every declared metric.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spotify_etl.airflow import metrics
from spotify_etl.tables import TABLE_NAMES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "observe.md"
START, END = "<!-- metrics-table:start -->", "<!-- metrics-table:end -->"
PLAYLIST = "37i9dQZF1DXcBWIGoYBM5M"


def metrics_table() -> str:
    rows = [f"| `{metrics.PREFIX}.{name}` | {kind} | {what} |" for name, (kind, what) in metrics.METRICS.items()]
    return "\n".join(["| metric | type | what |", "|---|---|---|", *rows])


def write_metrics_table() -> None:
    head, rest = PAGE.read_text(encoding="utf-8").split(START, 1)
    PAGE.write_text(f"{head}{START}\n{metrics_table()}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")


def test_docs_list_every_declared_metric() -> None:
    table = PAGE.read_text(encoding="utf-8").split(START)[1].split(END)[0]
    assert table.strip() == metrics_table(), "run: .venv/bin/python -m tests.unit.test_metrics"


class Recorder:
    """A metrics backend that keeps what it is given (Airflow's StatsLogger methods)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def incr(self, stat: str, count: int = 1, rate: float = 1, **_: Any) -> None:
        self.sent.append(("incr", stat, count))

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False, **_: Any) -> None:
        self.sent.append(("gauge", stat, value))

    def timing(self, stat: str, dt: Any, **_: Any) -> None:
        self.sent.append(("timing", stat, dt))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability import stats

    backend = Recorder()
    stats.initialize(factory=lambda: backend, export_legacy_names=False)
    try:
        yield backend
    finally:
        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)


def landed(playlist: str, items: int, resumed: bool = False) -> dict[str, Any]:
    result = {"playlist_id": playlist, "items": items, "pages": 1, "api_calls": 0 if resumed else 2,
              "bytes_written": 0 if resumed else 100, "seconds": 0.0 if resumed else 0.25}  # fmt: skip
    return {**result, "resumed": True} if resumed else result


def test_a_retry_counts_only_what_it_landed_itself(recorder: Recorder) -> None:
    metrics.extract_chunk([landed(PLAYLIST, 40, resumed=True), landed("6rqhFgbbKwnb9MLmUQDhG6", 7)], failed=1)
    counters = {stat: value for kind, stat, value in recorder.sent if kind == "incr"}
    assert counters == {
        "spotify_etl.extract.playlists_landed": 1,
        "spotify_etl.extract.playlists_failed": 1,
        "spotify_etl.extract.items": 7,
        "spotify_etl.extract.pages": 1,
        "spotify_etl.extract.api_calls": 2,
        "spotify_etl.extract.bytes": 100,
    }
    assert [(s, v) for k, s, v in recorder.sent if k == "timing"] == [
        ("spotify_etl.extract.seconds", dt.timedelta(seconds=0.25))
    ]


def test_transform_sends_every_reason_and_table_even_when_zero(recorder: Recorder) -> None:
    from spotify_etl.transform import REASONS, STEPS

    result = {"documents": 1, "entries": 3, "rows": dict.fromkeys(TABLE_NAMES, 2), "rejected": {"local_file": 1},
              "bytes_written": dict.fromkeys(TABLE_NAMES, 10), "seconds": 1.5, "step_seconds": {"read": 0.5}}  # fmt: skip
    metrics.transform(result)
    sent = {stat.removeprefix("spotify_etl."): value for _, stat, value in recorder.sent}
    assert sorted(sent) == sorted(name for name in metrics.METRICS if name.startswith("transform."))
    assert [sent[f"transform.rejected.{r}"] for r in REASONS] == [1 if r == "local_file" else 0 for r in REASONS]
    assert sent["transform.step.read"] == dt.timedelta(seconds=0.5) and len(STEPS) > 1
    assert sent["transform.step.publish"] == dt.timedelta(0)


def test_an_undeclared_metric_is_refused() -> None:
    with pytest.raises(KeyError, match="not declared"):
        metrics._name("extract.nothing")


if __name__ == "__main__":
    write_metrics_table()
