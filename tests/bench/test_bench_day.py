"""The whole-day benchmark's harness (``make bench-day``), so it cannot rot.

Its pieces on their own: the generated playlists as the local Spotify server serves them
to the real extract (rules, requests, tokens, the snapshot skip), the landed days for the
backfill, the memory sampler, the judgement and profile of the figures; and, once, the whole
harness at two playlists and one backfilled day against a real ``make up`` Airflow.
Timings are not asserted (they belong to ``bench/RESULTS-day.md``), except the server's own
answer time, which every figure of the benchmark depends on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from airflow.sdk import Connection
from spotify_etl import chunks, tables
from spotify_etl.lake import LocalLake
from spotify_etl.spotify.client import SpotifySource
from spotify_etl.transform import transform_day

from devtools import airflow_standalone
from tests.support.airflow_run import COVERAGE_VARIABLES
from tests.support.partitions import partition_data
from tests.support.spotify_server import SpotifyServer

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import day  # noqa: E402 - bench/ is a folder of scripts, not a package
import day_data  # noqa: E402
import day_report  # noqa: E402
from day_report import Memory, RunFigures, TaskTiming  # noqa: E402

DAY, NEXT_DAY = "2026-11-25", "2026-11-26"


def _source(server: SpotifyServer, **extra: str) -> SpotifySource:
    conn = Connection.from_json(json.dumps(server.connection(**extra)), conn_id="spotify_default")
    return SpotifySource.from_connection(conn)


@pytest.fixture(scope="module")
def pool() -> list[dict]:
    return day_data.track_pool(500)


def test_generated_playlists_are_extracted_in_a_chunk_with_one_token_and_skipped_when_unchanged(
    tmp_path: Path, pool: list[dict]
) -> None:
    lake = LocalLake(tmp_path / "lake")
    with SpotifyServer() as server:
        playlists = day_data.generated_playlists(0, 4, server.user_id, pool, entries=100)
        server.playlists.update(playlists)
        ids = list(playlists)
        owners = [server.playlists[p].owner for p in ids]
        assert owners == [server.user_id, day_data.OTHER_USER] * 2  # half the user's, half shared with the user

        first = chunks.extract_chunk(lambda: _source(server), lake, ids, DAY, "t", run="r1")
        assert not first.failed and [r["items"] for r in first.landed] == [100] * 4
        # 100 entries: all of them came with the metadata request (its embedded first page)
        assert [r["pages"] for r in first.landed] == [1] * 4 and [r["api_calls"] for r in first.landed] == [1] * 4
        assert len(server.api_requests()) == 4 and len(server.token_requests()) == 1  # one token per chunk

        second = chunks.extract_chunk(lambda: _source(server), lake, ids, NEXT_DAY, "t", run="r2")
        assert [(r["unchanged"], r["api_calls"]) for r in second.landed] == [(True, 1)] * 4  # the snapshot skip
        assert len(server.api_requests()) == 8 and len(server.token_requests()) == 2

        # Development-mode rules hold for them: an app-only token gets no items (a lake without the
        # earlier documents, so the items are asked for).
        app_only = chunks.extract_chunk(
            lambda: _source(server, user=False, auth_mode="client_credentials"),
            LocalLake(tmp_path / "other"), ids[:1], DAY, "t", run="r3",
        )  # fmt: skip
        assert app_only.failed and "403" in app_only.failed[0]["error"]

    result = transform_day(lake, DAY, playlists=ids)
    assert result.rows["playlist_items"] == 400 and result.rejected == {}


def test_generated_playlists_are_deterministic_and_apart_per_range(pool: list[dict]) -> None:
    a = day_data.generated_playlists(0, 3, "u", pool)
    again = day_data.generated_playlists(0, 3, "u", pool)
    later = day_data.generated_playlists(3, 3, "u", pool)
    assert {p: (v.meta, v.entries) for p, v in a.items()} == {p: (v.meta, v.entries) for p, v in again.items()}
    assert not set(a) & set(later)
    assert all(len({id(e) for e in v.entries}) == 100 for v in a.values())  # no entry twice in a playlist
    with pytest.raises(ValueError, match="pool of at least"):
        day_data.generated_playlists(0, 1, "u", pool[:50])


def test_landed_days_are_the_extracts_documents_under_other_dates(tmp_path: Path, pool: list[dict]) -> None:
    lake = LocalLake(tmp_path / "lake")
    with SpotifyServer() as server:
        playlists = day_data.generated_playlists(0, 3, server.user_id, pool)
        server.playlists.update(playlists)
        chunks.extract_chunk(lambda: _source(server), lake, list(playlists), DAY, "t", run="r")
    days = ["2026-10-01", "2026-10-02"]
    written = day_data.land_days(lake, DAY, list(playlists), days)

    source = {p: json.loads(Path(lake.raw_path(DAY, p)).read_bytes()) for p in playlists}
    assert written == sum(len(Path(lake.raw_path(d, p)).read_bytes()) for d in days for p in playlists)
    for landed_day in days:
        assert list(lake.raw_documents(landed_day)) == sorted(playlists)
        for pid, document in source.items():
            assert json.loads(Path(lake.raw_path(landed_day, pid)).read_bytes()) == {**document, "dt": landed_day}
    transform_day(lake, DAY)
    expected = {t: partition_data(lake, t, DAY) for t in tables.TABLE_NAMES}
    transform_day(lake, days[1])
    for table in tables.TABLE_NAMES:
        copied = partition_data(lake, table, days[1])
        assert copied.equals(expected[table]), table  # dt is the partition folder, not a column

    Path(lake.raw_path(DAY, next(iter(playlists)))).write_text(json.dumps({"dt": DAY}))
    with pytest.raises(ValueError, match="not a raw document as the extract writes it"):
        day_data.land_days(lake, DAY, list(playlists), days)


def test_the_local_server_answers_without_waiting_for_delayed_acks() -> None:
    """Headers and body in two writes with Nagle's algorithm on took ~40 ms per keep-alive request
    (the body waited for the client's delayed ACK): 1,000 playlists would have spent minutes there."""
    with SpotifyServer() as server, requests.Session() as session:
        token = session.post(
            server.token_url, data={"grant_type": "client_credentials"}, auth=(server.client_id, server.client_secret)
        ).json()["access_token"]
        url = f"{server.api_base_url}playlists/{next(iter(server.playlists))}"
        session.get(url, headers={"Authorization": f"Bearer {token}"}).raise_for_status()  # the connection is open
        started = time.perf_counter()
        for _ in range(20):
            session.get(url, headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        assert time.perf_counter() - started < 0.5  # 20 x 40 ms = 0.8 s with the delays


def test_the_local_server_can_answer_like_a_distant_one() -> None:
    with SpotifyServer(latency=0.05) as server, requests.Session() as session:
        started = time.perf_counter()
        for _ in range(4):
            session.post(
                server.token_url,
                data={"grant_type": "client_credentials"},
                auth=(server.client_id, server.client_secret),
            )
        assert time.perf_counter() - started >= 0.2


def test_sampler_finds_the_peak_memory_of_a_process_session(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; block = bytearray(80 * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep(30)"],
        start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(1.5)
        # Recorded as make up records standalone; no PostgreSQL runs from this home.
        airflow_standalone.pid_file(tmp_path).write_text(f"{child.pid} {airflow_standalone._start_time(child.pid)}\n")
        with day.TreeSampler(tmp_path, interval=0.1) as sampler:
            time.sleep(0.5)
        memory = sampler.memory()
    finally:
        child.kill()
        child.wait(timeout=10)
    assert memory.samples >= 3 and memory.processes == 1
    assert 80 <= memory.peak_rss_mib < 200 and 80 <= memory.peak_pss_mib <= memory.peak_rss_mib


def test_a_wait_ends_once_the_scheduler_stayed_unhealthy(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([{"scheduler": {"status": "unhealthy"}}, {"scheduler": {"status": "healthy"}}]
                   + [{"scheduler": {"status": "unhealthy"}}] * 2)  # fmt: skip
    monkeypatch.setattr(day.httpx, "get", lambda url, timeout: SimpleNamespace(json=lambda: next(answers)))
    watch = day.SchedulerWatch(SimpleNamespace(configuration=SimpleNamespace(host="http://127.0.0.1:1")), every=0.0)
    watch.check()
    watch.check()  # healthy again: counting starts over
    watch.check()
    with pytest.raises(day.BenchError, match="the scheduler is unhealthy for over 0s"):
        watch.check()


def _run(
    n: int, phase: str, wall: float, api: int, tokens: int = 1, chunks: int = 1, latency_ms: float = 0.0
) -> RunFigures:
    tasks = [
        TaskTiming("plan", -1, 0.0, 1.0, 2.0),
        TaskTiming("chunk_playlists", -1, 2.0, 2.0, 2.5),  # counted in the plan
        TaskTiming("extract_playlist", 0, 2.0, 3.0, 5.0, work=0.5),
        TaskTiming("extract_playlist", 1, 2.0, 3.5, 6.0, work=1.5),
        TaskTiming("transform", -1, 7.0, 8.0, wall - 1.0),
    ]
    return RunFigures(
        n, phase, f"r{n}{phase}", 0.0, 0.5, wall, len(tasks), chunks, api, tokens,
        n if phase == "unchanged" else 0, Memory(100.0, 60.0, 3, 10), tasks, latency_ms,
    )  # fmt: skip


def _report(runs: list[RunFigures]) -> day_report.Report:
    return day_report.Report(
        "2026-12-01 09:00 UTC", "2 cores", (1.0, 1.0, 1.0), (2.0, 2.0, 2.0),
        {"parallelism": "4", "chunk size": "25", "pool slots": "4"}, 100, 40.0,
        Memory(50.0, 30.0, 10, 1), runs,
    )  # fmt: skip


def test_profile_and_interval_arithmetic() -> None:
    run = _run(10, "first", 12.0, 30)
    p = day_report.profile(run)
    assert p["to_run_start"] == 0.5 and p["plan"] == 1.5 and p["extract_span"] == 3.0 and p["transform"] == 3.0
    assert p["chunk_mean"] == 2.25 and p["chunk_work_mean"] == 1.0 and p["chunk_overhead_mean"] == 1.25
    assert p["no_task_running"] == 12.0 - (1.5 + 3.0 + 3.0)  # busy: 1-2.5, 3-6, 8-11
    assert p["queue_wait_mean"] == (1.0 + 0.0 + 1.0 + 1.5 + 1.0) / 5
    assert day_report.max_overlap([(0, 2), (1, 3), (2.5, 4), (5, 6)]) == 2
    assert day_report.slope([(10, 12.0), (100, 21.0), (1000, 111.0)]) == pytest.approx(0.1)
    assert day_report.slope([(10, 1.0)]) is None


def test_verdicts_and_results_file_name_every_target() -> None:
    runs = [
        _run(10, "first", 10.0, 10),
        _run(10, "unchanged", 9.0, 10),
        _run(1000, "first", 150.0, 1000, tokens=40, chunks=40),
        _run(1000, "changed", 140.0, 3000, tokens=40, chunks=40),
        _run(1000, "unchanged", 120.0, 1000, tokens=41, chunks=40),
        _run(1000, "first", 59.0, 1000, tokens=40, chunks=40, latency_ms=100.0),
    ]
    report = _report(runs)
    found = {v.target: (v.measured, v.met) for v in day_report.verdicts(report)}
    assert found["API requests per new or changed playlist of 100 entries = 1"] == (
        "1.00 (N=10 first), 1.00 (N=1000 first), 3.00 (N=1000 changed), 1.00 (N=1000 at 100 ms first)",
        False,
    )
    assert found["1,000 new playlists at 100 ms per request in at most 60.0 s, trigger to run success"] == (
        "59.0 s",
        True,
    )
    slower = (
        "1,000 new playlists at 0 ms per request in at most 30.9 s, trigger to run success (before issue 21: 30.9 s)"
    )
    assert found[slower] == ("150.0 s", False)
    assert found["1,000 playlists of 100 entries in at most 180 s, trigger to run success"] == ("150.0 s", True)
    assert found["at most 0.1 s per added playlist (least-squares slope of run time over N)"] == ("0.141 s", False)
    text = day_report.render(report, "make bench-day")
    assert "| 1,000 playlists of 100 entries in at most 180 s, trigger to run success | 150.0 s | met |" in text
    assert (
        "| at most 0.1 s per added playlist (least-squares slope of run time over N) | 0.141 s | **missed** |" in text
    )
    assert "| API calls per unchanged playlist = 1 (snapshot skip) | 1.00 (N=10), 1.00 (N=1000) | met |" in text
    assert "41/40 (N=1000 unchanged), 40/40 (N=1000 at 100 ms first) | **missed** |" in text
    assert "| 1,000 | 0 | first | 150.0 | 5 | 40 | 1,000 | 1.00 | 40 |" in text
    assert "| 1,000 | 100 | first | 59.0 | 5 | 40 | 1,000 | 1.00 | 40 |" in text
    # Side by side with the figures before issue 21 (load average at the start in brackets).
    assert "| 0 | first | 3.00 | 1.00 | 30.9 (0.2) | 150.0 (1.0) |" in text
    assert "| 0 | changed | 3.00 | 3.00 | not measured | 140.0 (1.0) |" in text
    assert "| 100 | first | 3.00 | 1.00 | 137.0 (4.7) | 59.0 (1.0) |" in text
    assert (
        "At N=1,000 (first run, 0 ms per request) the 150.0 s were: 0.5 s until the scheduler started the run" in text
    )
    assert "At N=1,000 (first run, 100 ms per request) the 59.0 s were:" in text
    assert "(40 chunk task instances of 2.25 s on average: 1.00 s the playlists' own work, 1.25 s, 56%" in text
    assert "each slot was also idle 0.00 s per chunk" in text
    assert "an added playlist costs 0.003 s of extract" in text
    assert "## Backfill" not in text

    small = _report([_run(10, "first", 10.0, 10), _run(10, "unchanged", 9.0, 11)])
    assert [v.met for v in day_report.verdicts(small)] == [True, None, None, None, None, False, True]


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_the_whole_harness_at_two_playlists_and_one_backfilled_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in COVERAGE_VARIABLES:  # its Airflow unmeasured, as the one of tests/e2e
        monkeypatch.delenv(name, raising=False)
    results = tmp_path / "RESULTS-day.md"
    report = day.main(
        ["--sizes", "2", "--backfill-days", "1", "--api-latency", "0.01", "--work-dir", str(tmp_path / "work"),
         "--results", str(results)]
    )  # fmt: skip
    first, changed, unchanged = report.runs
    assert [(r.latency_ms, r.phase) for r in report.runs] == [(10.0, p) for p in ("first", "changed", "unchanged")]
    # Two playlists, four pool slots: the derived chunk size is 1, so two chunks and two tokens.
    assert (first.phase, first.api_requests, first.token_requests, first.chunks) == ("first", 2, 2, 2)
    assert (changed.api_requests, changed.unchanged) == (2, 0)  # new snapshots: the entries again, in one request
    assert (unchanged.phase, unchanged.api_requests, unchanged.unchanged) == ("unchanged", 2, 2)
    # plan, chunk_playlists, two extract chunks, transform, catalog, validate, report, check_extracts
    assert first.task_instances == 9 and first.memory.peak_rss_mib > 0 and first.wall_s > 0
    backfill = report.backfill
    assert backfill is not None and (backfill.runs, backfill.api_requests, backfill.token_requests) == (1, 0, 0)
    assert backfill.task_instances == 8 and backfill.max_concurrent_runs == 1
    text = results.read_text()
    assert (
        "Written by `make bench-day N=2 BACKFILL_DAYS=1 API_LATENCY=0.01`" in text
        and "| a backfill of 1 landed days calls Spotify 0 times |" in text
    )
    assert day.airflow_standalone.running(tmp_path / "work" / "home") is None  # stopped
