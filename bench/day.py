"""Whole-day benchmark (``make bench-day``): a day of N playlists under a real scheduler.

For each size N (default 10, 100 and 1,000 playlists of 100 entries) it triggers the DAG on
an Airflow started the way ``make up`` starts it (``airflow standalone``, in its own
AIRFLOW_HOME ``.airflow-bench/home`` and lake ``.airflow-bench/lake``, on 127.0.0.1 and free
ports), with the ``spotify_default`` connection pointing spotipy at the local Spotify-compatible
server (``tests/support/spotify_server.py``) in this process, serving generated playlists
(``bench/day_data.py``). Three runs per size: the first finds every playlist new; the second, on
the next logical date, every snapshot changed; the third, the date after, every snapshot
unchanged. The whole set runs once per API latency (default 0 and 0.1 s per request, the round
trip to the real Spotify), each with playlists of its own. Per run: wall time from the trigger
request to the run's end, task instances, the API and token requests the server received, the
extract chunks, and the peak memory of the Airflow process tree, sampled; then where the time
went (``bench/day_report.py``). The runs' own results are checked (every playlist extracted, the
extract's API-call count equal to the server's, every entry in the tables), so a figure never
comes from a run that did not do the work.

Then a backfill: the largest size's raw documents are copied to 30 past dates and
``POST /api/v2/backfills`` reprocesses them with bounded concurrency; the server must see no
request. Everything goes to ``bench/RESULTS-day.md``. Airflow is stopped at the end, also on
failure or Ctrl-C (every process of its session).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
for _path in (str(PROJECT_DIR), str(BENCH_DIR)):  # devtools/, tests/ and the bench scripts
    if _path not in sys.path:
        sys.path.insert(0, _path)

import day_data  # noqa: E402
import day_report  # noqa: E402
import httpx  # noqa: E402
from airflow_client.client import ApiClient  # noqa: E402
from airflow_client.client.api import BackfillApi, DagRunApi, TaskInstanceApi, XComApi  # noqa: E402
from airflow_client.client.models import (  # noqa: E402
    BackfillPostBody,
    ReprocessBehavior,
    TriggerDAGRunPostBody,
)
from spotify_etl.lake import Lake, LocalLake  # noqa: E402
from spotify_etl.settings import Settings  # noqa: E402

from devtools import airflow_standalone, postgres  # noqa: E402
from tests.e2e.airflow_api import DAG_ID, connect  # noqa: E402
from tests.support.spotify_server import SpotifyServer  # noqa: E402

DEFAULT_SIZES = (10, 100, 1000)
DEFAULT_LATENCIES = (0.0, 0.1)  # seconds per request: as fast as this machine answers, and Spotify's real latency
ENTRIES = 100
BACKFILL_DAYS = 30
BACKFILL_FIRST = 40  # the backfill covers the dates 40 .. 11 days before today: no day run touches them
RESULTS = BENCH_DIR / "RESULTS-day.md"
WORK_DIR = PROJECT_DIR / ".airflow-bench"
SAMPLE_EVERY = 0.5  # s, memory samples and run polls
PAGE = 100  # the REST API's largest page


class BenchError(RuntimeError):
    """The benchmark could not measure (Airflow did not start, a run failed or did less than asked)."""


# ---- the Airflow process tree's memory ------------------------------------------------------
def _proc_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in kB from /proc/<pid>/smaps_rollup; (0, 0) once it is gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return rss, pss


class TreeSampler:
    """Peak memory of what ``make up`` runs from ``home``: standalone's session (its components,
    their workers and the task processes) and the PostgreSQL of its metadata DB, sampled every
    ``interval`` s in a thread until :meth:`stop`, at most ``limit`` s."""

    def __init__(self, home: Path, interval: float = SAMPLE_EVERY, limit: float = 7200) -> None:
        sid = airflow_standalone.running(home)
        if sid is None:
            raise BenchError(f"no Airflow runs from {home}")
        self.sid, self.home, self.interval, self.limit = sid, home, interval, limit
        self.peak_rss = self.peak_pss = self.processes = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        members = airflow_standalone.session_members(self.sid) + postgres.server_processes(self.home)
        sizes = [_proc_memory(pid) for pid in members]
        rss, pss = sum(s[0] for s in sizes), sum(s[1] for s in sizes)
        if rss > self.peak_rss:
            self.peak_rss, self.processes = rss, len(members)
        self.peak_pss = max(self.peak_pss, pss)
        self.samples += 1

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        self.sample()
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            self.sample()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def memory(self) -> day_report.Memory:
        return day_report.Memory(self.peak_rss / 1024, self.peak_pss / 1024, self.processes, self.samples)


# ---- Airflow: start, runs, stop --------------------------------------------------------------
def bench_env(home: Path, lake: Path, server: SpotifyServer, password: str) -> dict[str, str]:
    """The environment of ``make up`` for the bench: its own home and lake (any other Airflow's
    settings, connections and SPOTIFY_ETL_ lake settings removed), scheduled runs off (the only runs
    are the bench's), the Spotify connection to the local server. Other settings pass through, so
    ``SPOTIFY_ETL_EXTRACT_CHUNK_SIZE=10 make bench-day`` measures another chunk size."""
    cleared = {"AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API__BASE_URL", "AIRFLOW__API__PORT"}
    mine = ("SPOTIFY_ETL_TARGET", "SPOTIFY_ETL_LAKE_DIR", "SPOTIFY_ETL_DUCKDB_PATH", "SPOTIFY_ETL_SPOTIFY_CONN_ID")
    env = {
        k: v for k, v in os.environ.items() if k not in cleared and k not in mine and not k.startswith("AIRFLOW_CONN_")
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_DIR / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT_DIR / "plugins"),
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW_UI_PASSWORD=password,
        AIRFLOW_CONN_SPOTIFY_DEFAULT=json.dumps(server.connection(user=True)),
        SPOTIFY_ETL_TARGET="local",
        SPOTIFY_ETL_LAKE_DIR=str(lake),
        SPOTIFY_ETL_DUCKDB_PATH=str(lake / "catalog.duckdb"),
        # The runs of two days ago stay live even if the bench runs over midnight (UTC).
        SPOTIFY_ETL_LIVE_GRACE_DAYS=os.environ.get("SPOTIFY_ETL_LIVE_GRACE_DAYS", "3"),
    )
    return env


def start_airflow(env: dict[str, str], home: Path, port: int, timeout: float) -> None:
    """``make up`` (migrate, the pool, standalone, wait until the DAG is parsed, unpause)."""
    home.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            ["make", "-C", str(PROJECT_DIR), "--no-print-directory", "up", f"PORT={port}", "UNPAUSE=1"],
            env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise BenchError(
            f"make up did not finish within {timeout:.0f}s; see {airflow_standalone.log_file(home)}"
        ) from exc
    (home / "make-up.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise BenchError(f"make up failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")


def task_instances(client: ApiClient, run_id: str) -> list[Any]:
    found: list[Any] = []
    for offset in range(0, 100_000, PAGE):  # bounded: at most 100,000 task instances
        page = TaskInstanceApi(client).get_task_instances(DAG_ID, run_id, limit=PAGE, offset=offset)
        found += page.task_instances
        if len(found) >= page.total_entries or not page.task_instances:
            break
    return found


def xcom(client: ApiClient, run_id: str, task_id: str, map_index: int = -1) -> Any:
    entry = XComApi(client).get_xcom_entry(DAG_ID, task_id, run_id, "return_value", map_index=map_index)
    value = entry.actual_instance.value
    return json.loads(value) if isinstance(value, str) else value


def _epoch(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value else None


class SchedulerWatch:
    """Ends a wait early once the scheduler has not been healthy at two checks ``every`` s apart:
    standalone does not restart a scheduler that exited, so the run would never finish."""

    def __init__(self, client: ApiClient, every: float = 30.0) -> None:
        self.url = f"{client.configuration.host}/api/v2/monitor/health"
        self.every, self.next, self.unhealthy = every, time.monotonic() + every, 0

    def check(self) -> None:
        if time.monotonic() < self.next:
            return
        self.next = time.monotonic() + self.every
        try:
            status = httpx.get(self.url, timeout=10).json()["scheduler"]["status"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            status = f"unknown ({exc!r})"
        self.unhealthy = self.unhealthy + 1 if status != "healthy" else 0
        if self.unhealthy >= 2:
            raise BenchError(f"the scheduler is {status} for over {self.every:.0f}s; see its lines in standalone.log")


def wait_run(client: ApiClient, run_id: str, timeout: float) -> Any:
    deadline, watch = time.monotonic() + timeout, SchedulerWatch(client)
    while time.monotonic() < deadline:
        run = DagRunApi(client).get_dag_run(DAG_ID, run_id)
        if run.state in ("success", "failed"):
            return run
        watch.check()
        time.sleep(SAMPLE_EVERY)
    states = ", ".join(f"{t.task_id}[{t.map_index}]={t.state}" for t in task_instances(client, run_id))
    raise BenchError(f"run {run_id} not finished after {timeout:.0f}s: {states}")


def measure_run(client: ApiClient, server: SpotifyServer, home: Path, n: int, phase: str, playlists: list[str],
                logical_date: str, timeout: float) -> day_report.RunFigures:  # fmt: skip
    latency_ms = server.latency * 1000
    run_id = f"bench__{n}_{phase}_{latency_ms:.0f}ms__{logical_date}"
    seen = len(server.requests)
    with TreeSampler(home) as sampler:
        triggered = time.time()
        body = TriggerDAGRunPostBody(dag_run_id=run_id, logical_date=logical_date, conf={"playlists": playlists})
        DagRunApi(client).trigger_dag_run(DAG_ID, body)
        run = wait_run(client, run_id, timeout)
    tis = task_instances(client, run_id)
    if run.state != "success":
        states = ", ".join(f"{t.task_id}[{t.map_index}]={t.state}" for t in tis)
        raise BenchError(f"run {run_id} {run.state}: {states}")
    requests = server.requests[seen:]
    api = sum(1 for r in requests if r.path.startswith("/v1/"))
    tokens = sum(1 for r in requests if r.path == "/api/token")
    chunks = sorted((t for t in tis if t.task_id == "extract_playlist" and t.map_index >= 0), key=lambda t: t.map_index)
    landed = {t.map_index: xcom(client, run_id, "extract_playlist", t.map_index)["landed"] for t in chunks}
    results = [r for chunk in landed.values() for r in chunk]
    summary, transformed = xcom(client, run_id, "check_extracts"), xcom(client, run_id, "transform")
    # The run did what it was asked, and the extract's own count agrees with the server's.
    expected = {"mode": "extract", "playlists": n, "api_calls": api}
    unchanged = sum(1 for r in results if r["unchanged"])
    if (
        summary != expected
        or transformed["rows"]["playlist_items"] != n * ENTRIES
        or unchanged != (n if phase == "unchanged" else 0)
    ):
        raise BenchError(
            f"run {run_id}: {summary}, {transformed['rows']} and {unchanged} unchanged, expected {expected}, "
            f"{n * ENTRIES} items and {n if phase == 'unchanged' else 0} unchanged"
        )
    return day_report.RunFigures(
        n=n, phase=phase, run_id=run_id, triggered=triggered,
        run_start=_epoch(run.start_date) or triggered, run_end=_epoch(run.end_date) or time.time(),
        task_instances=len(tis), chunks=len(chunks), api_requests=api, token_requests=tokens,
        unchanged=unchanged, memory=sampler.memory(), latency_ms=latency_ms,
        tasks=[
            day_report.TaskTiming(t.task_id, t.map_index, _epoch(t.queued_when), _epoch(t.start_date), _epoch(t.end_date),
                                  sum(r["seconds"] for r in landed[t.map_index]) if t.map_index in landed else None)
            for t in tis
        ],
    )  # fmt: skip


def backfill_runs(client: ApiClient, days: list[str]) -> list[Any]:
    runs: list[Any] = []
    for offset in range(0, 100_000, PAGE):
        page = DagRunApi(client).get_dag_runs(DAG_ID, run_type=["backfill"], limit=PAGE, offset=offset)
        runs += page.dag_runs
        if len(runs) >= page.total_entries or not page.dag_runs:
            break
    return [r for r in runs if r.logical_date and r.logical_date.date().isoformat() in days]


def measure_backfill(client: ApiClient, server: SpotifyServer, home: Path, lake: Lake, source_day: str,
                     playlists: list[str], days: list[str], max_active_runs: int,
                     timeout: float) -> day_report.BackfillFigures:  # fmt: skip
    started = time.monotonic()
    landed_bytes = day_data.land_days(lake, source_day, playlists, days)
    landing_s = time.monotonic() - started
    seen = len(server.requests)
    with TreeSampler(home) as sampler:
        triggered = time.time()
        # Created while the DAG is unpaused and the scheduler runs, as a user does from the UI.
        backfill = BackfillApi(client).create_backfill(
            BackfillPostBody(dag_id=DAG_ID, from_date=f"{days[0]}T00:00:00Z", to_date=f"{days[-1]}T00:00:00Z",
                             max_active_runs=max_active_runs, reprocess_behavior=ReprocessBehavior.NONE)
        )  # fmt: skip
        deadline, watch = time.monotonic() + timeout, SchedulerWatch(client)
        while not BackfillApi(client).get_backfill(backfill.id).completed_at:
            if time.monotonic() > deadline:
                raise BenchError(f"backfill {backfill.id} not completed after {timeout:.0f}s")
            watch.check()
            time.sleep(1)
    runs = backfill_runs(client, days)
    failed = [f"{r.dag_run_id}={r.state}" for r in runs if r.state != "success"]
    if len(runs) != len(days) or failed:
        raise BenchError(f"backfill {backfill.id}: {len(runs)} runs for {len(days)} days; not successful: {failed}")
    tis: list[Any] = []
    for run in runs:
        tis += task_instances(client, run.dag_run_id)
        summary, transformed = xcom(client, run.dag_run_id, "check_extracts"), xcom(client, run.dag_run_id, "transform")
        if summary["mode"] != "reprocess" or transformed["rows"]["playlist_items"] != len(playlists) * ENTRIES:
            raise BenchError(f"backfill run {run.dag_run_id}: {summary}, {transformed['rows']}")
    requests = server.requests[seen:]
    spans = [(r.start_date.timestamp(), r.end_date.timestamp()) for r in runs]
    durations: dict[str, list[float]] = {}
    for t in tis:
        if t.start_date and t.end_date:
            durations.setdefault(t.task_id, []).append((t.end_date - t.start_date).total_seconds())
    return day_report.BackfillFigures(
        days=len(days), playlists_per_day=len(playlists), max_active_runs=max_active_runs, landing_s=landing_s,
        landed_bytes=landed_bytes, triggered=triggered, completed=max(end for _, end in spans), runs=len(runs),
        task_instances=len(tis), api_requests=sum(1 for r in requests if r.path.startswith("/v1/")),
        token_requests=sum(1 for r in requests if r.path == "/api/token"),
        max_concurrent_runs=day_report.max_overlap(spans), memory=sampler.memory(),
        run_seconds=[end - start for start, end in spans],
        task_seconds={task: sum(v) / len(v) for task, v in durations.items()},
    )  # fmt: skip


# ---- the whole benchmark ----------------------------------------------------------------------
def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    from importlib.metadata import version

    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 2**20:.1f} GiB memory, Linux {platform.release()}; "
        f"Python {platform.python_version()}, Airflow {version('apache-airflow-core')}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/day.py", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="playlist counts, comma-separated")
    parser.add_argument("--backfill-days", type=int, default=BACKFILL_DAYS, help="0: no backfill")
    parser.add_argument("--backfill-max-active-runs", type=int, default=4)
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR, help="AIRFLOW_HOME and lake; emptied first")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--run-timeout", type=float, default=1200, help="seconds per run")
    parser.add_argument(
        "--api-latency",
        default=",".join(f"{v:g}" for v in DEFAULT_LATENCIES),
        help="seconds the Spotify server waits before each answer (a round trip), comma-separated: one set of runs each",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(s) for s in str(args.sizes).split(",") if s.strip()})
    if not args.sizes or min(args.sizes) < 1 or len(args.sizes) > 24:
        parser.error("--sizes: 1 to 24 positive playlist counts")
    try:
        args.api_latency = sorted({float(s) for s in str(args.api_latency).split(",") if s.strip()})
    except ValueError:
        parser.error("--api-latency: seconds, comma-separated")
    if not args.api_latency or min(args.api_latency) < 0 or max(args.api_latency) > 5 or len(args.api_latency) > 4:
        parser.error("--api-latency: 1 to 4 latencies from 0 to 5 seconds")
    return args


def main(argv: Sequence[str] | None = None) -> day_report.Report:
    args = parse_args(argv)
    work = args.work_dir.resolve()
    home, lake_dir = work / "home", work / "lake"
    airflow_standalone.stop(home)  # an Airflow a killed bench left running from this home
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    load_before = os.getloadavg()
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    yesterday = today - dt.timedelta(days=1)
    dates = {"first": today - dt.timedelta(days=2), "changed": yesterday, "unchanged": today}
    pool = day_data.track_pool(max(2_000, 5 * ENTRIES))
    with SpotifyServer() as server:
        sized: dict[tuple[float, int], list[str]] = {}  # (latency, N) -> its playlists
        first = 0
        for latency in args.api_latency:
            for n in args.sizes:
                generated = day_data.generated_playlists(first, n, server.user_id, pool, ENTRIES)
                server.playlists.update(generated)
                sized[(latency, n)], first = list(generated), first + n
        password, port = secrets.token_urlsafe(12), airflow_standalone.free_port()
        env = bench_env(home, lake_dir, server, password)
        booted = time.monotonic()
        try:
            start_airflow(env, home, port, timeout=900)
            boot_s = time.monotonic() - booted
            client = connect(f"http://{airflow_standalone.HOST}:{port}", airflow_standalone.USER, password)
            idle = TreeSampler(home)
            idle.sample()
            runs = []
            for hour, (latency, n) in enumerate(sized):  # a distinct logical date per latency, size and run
                server.latency = latency
                for phase, day in dates.items():
                    if phase == "changed":  # every playlist edited since the first run: a new snapshot
                        for pid in sized[(latency, n)]:
                            server.playlists[pid].meta["snapshot_id"] += "-changed"
                    print(f"N={n} {phase} at {latency:g} s per request ...", flush=True)
                    figures = measure_run(
                        client, server, home, n, phase, sized[(latency, n)], f"{day}T{hour:02d}:00:00Z",
                        args.run_timeout,
                    )  # fmt: skip
                    print(f"N={n} {phase}: {figures.wall_s:.1f} s, {figures.api_requests} API / {figures.token_requests} token requests", flush=True)  # fmt: skip
                    runs.append(figures)
            backfill = None
            if args.backfill_days:
                days = [(today - dt.timedelta(days=BACKFILL_FIRST - i)).isoformat() for i in range(args.backfill_days)]
                largest = args.sizes[-1]
                print(f"backfill of {len(days)} days of {largest} playlists ...", flush=True)
                backfill = measure_backfill(
                    client, server, home, LocalLake(lake_dir), today.isoformat(), sized[(args.api_latency[0], largest)],
                    days,
                    args.backfill_max_active_runs, timeout=args.run_timeout * 3,
                )  # fmt: skip
                print(f"backfill: {backfill.wall_s:.1f} s, {backfill.api_requests} API requests", flush=True)
        finally:
            airflow_standalone.stop(home)
    settings = Settings.from_env(env)
    report = day_report.Report(
        date=now.strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine(),
        load_before=load_before,
        load_after=os.getloadavg(),
        settings={
            "parallelism": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
            "chunk size": str(settings.extract_chunk_size or "derived from the day's count"),
            "in flight per chunk": str(settings.extract_in_flight),
            "pool slots": str(settings.spotify_pool_slots),
            "API latency": " and ".join(f"{v * 1000:.0f} ms" for v in args.api_latency),
        },
        entries=ENTRIES,
        boot_s=boot_s,
        idle=idle.memory(),
        runs=runs,
        backfill=backfill,
    )
    command = "make bench-day" + ("" if args.sizes == list(DEFAULT_SIZES) else f" N={','.join(map(str, args.sizes))}")
    command += "" if args.backfill_days == BACKFILL_DAYS else f" BACKFILL_DAYS={args.backfill_days}"
    if args.api_latency != list(DEFAULT_LATENCIES):
        command += f" API_LATENCY={','.join(f'{v:g}' for v in args.api_latency)}"
    args.results.write_text(day_report.render(report, command))
    print(f"wrote {args.results}")
    if args.json:
        print(json.dumps(day_report.as_json(report), indent=1, default=str))
    shutil.rmtree(lake_dir / "raw", ignore_errors=True)  # GBs of copied documents; the home keeps the logs
    return report


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        print(
            f"error: {exc}\n(Airflow's logs: {WORK_DIR / 'home' / 'logs'}, unless --work-dir said otherwise)",
            file=sys.stderr,
        )
        sys.exit(1)
