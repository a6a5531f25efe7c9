"""The whole-day benchmark's figures, its targets, the profile of a run, and bench/RESULTS-day.md.

Plain data in, Markdown out: nothing here talks to Airflow, so the judgement and the profile
are tested on their own (tests/bench/test_bench_day.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

# Targets of issue 14 (point 3), on a 2-core machine.
TARGET_SIZE = 1000  # playlists of TARGET_SIZE ...
TARGET_WALL_S = 180.0  # ... in at most 3 minutes, trigger to run success
TARGET_SLOPE_S = 0.1  # run time grows at most this much per added playlist
TARGET_CALLS_PER_UNCHANGED = 1.0  # a playlist whose snapshot did not change costs its metadata call only
# Targets of issue 21: the fewest requests, and a day at Spotify's real latency.
TARGET_CALLS_PER_NEW = 1.0  # a new or changed playlist of 100 entries: its entries ride on the metadata request
REAL_LATENCY_MS = 100.0  # a request's round trip from a worker to Spotify (an assumption, not measurable offline)
TARGET_REAL_WALL_S = 60.0  # 1,000 new playlists at REAL_LATENCY_MS, trigger to run success
# The figures before issue 21 at N=1,000 (bench/RESULTS-day.md of 2026-12-01, docs/performance.md): latency ms
# and run -> (wall s, API requests per playlist, load average at the start); None: not measured then.
PREVIOUS: dict[tuple[float, str], tuple[float | None, float, float | None]] = {
    (0.0, "first"): (30.9, 3.0, 0.2),
    (0.0, "changed"): (None, 3.0, None),  # a changed snapshot downloads every page, as a new playlist
    (0.0, "unchanged"): (26.5, 1.0, 0.2),
    (REAL_LATENCY_MS, "first"): (137.0, 3.0, 4.7),
    (REAL_LATENCY_MS, "changed"): (None, 3.0, None),
    (REAL_LATENCY_MS, "unchanged"): (None, 1.0, None),
}


@dataclass(frozen=True)
class TaskTiming:
    """One task instance, times in epoch seconds; ``work``: for an extract chunk, the seconds its
    playlists took inside the task (the extract's own per-playlist timing), else None."""

    task_id: str
    map_index: int
    queued: float | None
    start: float | None
    end: float | None
    work: float | None = None

    @property
    def duration(self) -> float:
        return (self.end - self.start) if self.start is not None and self.end is not None else 0.0


@dataclass(frozen=True)
class Memory:
    """Peaks over the samples of the Airflow process tree: RSS summed (pages shared between the
    forked processes counted in each) and PSS summed (shared pages split between them)."""

    peak_rss_mib: float
    peak_pss_mib: float
    processes: int  # at the RSS peak
    samples: int


@dataclass
class RunFigures:
    n: int
    phase: str  # "first" (every playlist new), "changed" (every snapshot changed), "unchanged" (same snapshots)
    run_id: str
    triggered: float  # epoch seconds, when the trigger request was sent
    run_start: float
    run_end: float
    task_instances: int
    chunks: int  # extract task instances
    api_requests: int
    token_requests: int
    unchanged: int  # playlists the extract found unchanged (reused their items)
    memory: Memory
    tasks: list[TaskTiming] = field(default_factory=list)
    latency_ms: float = 0.0  # the Spotify server's wait before each answer

    @property
    def wall_s(self) -> float:
        return self.run_end - self.triggered


@dataclass
class BackfillFigures:
    days: int
    playlists_per_day: int
    max_active_runs: int
    landing_s: float
    landed_bytes: int
    triggered: float
    completed: float  # the last backfill run's end
    runs: int
    task_instances: int
    api_requests: int
    token_requests: int
    max_concurrent_runs: int
    memory: Memory
    run_seconds: list[float] = field(default_factory=list)
    task_seconds: dict[str, float] = field(default_factory=dict)  # task id -> mean duration

    @property
    def wall_s(self) -> float:
        return self.completed - self.triggered


@dataclass
class Report:
    date: str
    machine: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    settings: dict[str, str]
    entries: int
    boot_s: float
    idle: Memory
    runs: list[RunFigures]
    backfill: BackfillFigures | None = None


# ---- figures derived from the measurements -----------------------------------------------------
def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def busy_seconds(tasks: list[TaskTiming]) -> float:
    """Seconds during which at least one task instance was running (union of their intervals)."""
    spans = sorted((t.start, t.end) for t in tasks if t.start is not None and t.end is not None)
    total, current_start, current_end = 0.0, None, None
    for start, end in spans:
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda ev: (ev[0], ev[1]))
    most = open_now = 0
    for _, step in events:
        open_now += step
        most = max(most, open_now)
    return most


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def profile(run: RunFigures) -> dict[str, float]:
    """Where a run's time went (seconds): trigger to the scheduler starting the run, time with no
    task running, and per extract chunk its duration, the playlists' own time in it and the rest
    (starting the task, imports, the token, XCom), plus the wait from queued to running."""
    extract = [t for t in run.tasks if t.task_id == "extract_playlist" and t.start is not None]
    by_task = {t.task_id: t.duration for t in run.tasks if t.map_index < 0}
    starts = [t.start for t in extract if t.start is not None]
    ends = [t.end for t in extract if t.end is not None]
    return {
        "to_run_start": run.run_start - run.triggered,
        "no_task_running": run.wall_s - busy_seconds(run.tasks),
        "plan": by_task.get("plan", 0.0) + by_task.get("chunk_playlists", 0.0),
        "extract_span": (max(ends) - min(starts)) if starts and ends else 0.0,
        "chunk_mean": _mean([t.duration for t in extract]),
        "chunk_work_mean": _mean([t.work or 0.0 for t in extract]),
        "chunk_overhead_mean": _mean([t.duration - (t.work or 0.0) for t in extract]),
        "queue_wait_mean": _mean(
            [t.start - t.queued for t in run.tasks if t.start is not None and t.queued is not None]
        ),
        "transform": by_task.get("transform", 0.0),
        "catalog_validate": by_task.get("catalog", 0.0) + by_task.get("validate", 0.0),
        "task_seconds": sum(t.duration for t in run.tasks),
    }


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured in this run (a size missing)


def verdicts(report: Report) -> list[Verdict]:
    first = {r.n: r for r in report.runs if r.phase == "first" and not r.latency_ms}  # issue 14's: at 0 latency
    unchanged = [r for r in report.runs if r.phase == "unchanged"]
    out = _request_verdicts(report)
    big = first.get(TARGET_SIZE)
    out.append(
        Verdict(
            f"{TARGET_SIZE:,} playlists of {report.entries} entries in at most {TARGET_WALL_S:.0f} s, trigger to run success",
            f"{big.wall_s:.1f} s" if big else f"not measured (sizes {', '.join(map(str, sorted(first)))})",
            big.wall_s <= TARGET_WALL_S if big else None,
        )
    )
    per_playlist = slope([(r.n, r.wall_s) for r in first.values()])
    out.append(
        Verdict(
            f"at most {TARGET_SLOPE_S} s per added playlist (least-squares slope of run time over N)",
            f"{per_playlist:.3f} s" if per_playlist is not None else "not measured (one size)",
            per_playlist <= TARGET_SLOPE_S if per_playlist is not None else None,
        )
    )
    if unchanged:
        worst = max(unchanged, key=lambda r: r.api_requests / r.n)
        out.append(
            Verdict(
                f"API calls per unchanged playlist = {TARGET_CALLS_PER_UNCHANGED:.0f} (snapshot skip)",
                ", ".join(f"{r.api_requests / r.n:.2f} ({_at(r)})" for r in unchanged),
                worst.api_requests / worst.n <= TARGET_CALLS_PER_UNCHANGED
                and all(r.unchanged == r.n for r in unchanged),
            )
        )
    over = [r for r in report.runs if r.token_requests > r.chunks]
    out.append(
        Verdict(
            "token requests per run at most the number of chunks",
            ", ".join(f"{r.token_requests}/{r.chunks} ({_at(r)} {r.phase})" for r in report.runs),
            not over,
        )
    )
    if report.backfill:
        b = report.backfill
        out.append(
            Verdict(
                f"a backfill of {b.days} landed days calls Spotify 0 times",
                f"{b.api_requests} API + {b.token_requests} token requests",
                b.api_requests == b.token_requests == 0,
            )
        )
        out.append(
            Verdict(
                f"backfill concurrency bounded by max_active_runs={b.max_active_runs}",
                f"at most {b.max_concurrent_runs} runs at once",
                b.max_concurrent_runs <= b.max_active_runs,
            )
        )
    return out


def _at(run: RunFigures) -> str:
    return f"N={run.n}" + (f" at {run.latency_ms:.0f} ms" if run.latency_ms else "")


def _largest_first(report: Report, latency_ms: float) -> RunFigures | None:
    runs = [r for r in report.runs if r.phase == "first" and r.latency_ms == latency_ms]
    return max(runs, key=lambda r: r.n) if runs else None


def _request_verdicts(report: Report) -> list[Verdict]:
    """Issue 21's: requests per new or changed playlist, and 1,000 new playlists at Spotify's latency and at none."""
    loaded = [r for r in report.runs if r.phase in ("first", "changed")]
    out = []
    if loaded:
        out.append(
            Verdict(
                f"API requests per new or changed playlist of {report.entries} entries = {TARGET_CALLS_PER_NEW:.0f}",
                ", ".join(f"{r.api_requests / r.n:.2f} ({_at(r)} {r.phase})" for r in loaded),
                all(r.api_requests / r.n <= TARGET_CALLS_PER_NEW for r in loaded),
            )
        )
    for latency, limit in ((REAL_LATENCY_MS, TARGET_REAL_WALL_S), (0.0, PREVIOUS[(0.0, "first")][0])):
        run = next((r for r in report.runs if (r.n, r.phase, r.latency_ms) == (TARGET_SIZE, "first", latency)), None)
        out.append(
            Verdict(
                f"{TARGET_SIZE:,} new playlists at {latency:.0f} ms per request in at most {limit} s, trigger to run "
                "success" + (" (before issue 21: 30.9 s)" if not latency else ""),
                f"{run.wall_s:.1f} s" if run else "not measured",
                run.wall_s <= (limit or 0) if run else None,
            )
        )
    return out


# ---- the Markdown ------------------------------------------------------------------------------
def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "**missed**"


def render(report: Report, command: str) -> str:
    lines = [
        "# Whole day",
        "",
        f"Written by `{command}` on {report.date}. Rerun it to replace this file; a quiet machine gives "
        "the figures the targets are about.",
        "",
        f"- Machine: {report.machine}",
        f"- Load average (1 / 5 / 15 min) before: {_load(report.load_before)}, after: {_load(report.load_after)} "
        "(other work on the machine slows every figure down)",
        "- Airflow as `make up` runs it (`airflow standalone`: api-server, scheduler, dag-processor, triggerer; "
        "LocalExecutor; metadata in make up's PostgreSQL, whose memory is counted too) in its own AIRFLOW_HOME, against the local Spotify-compatible "
        "server (`tests/support/spotify_server.py`, development-mode rules, a user's refresh token); "
        + ", ".join(f"{k}={v}" for k, v in report.settings.items()),
        f"- Playlists of {report.entries} entries (all of them embedded in the metadata request: 1 API request "
        "when new or changed, as when unchanged; 3 before issue 21: metadata and 2 `/items` pages of 50); "
        f"starting Airflow took {report.boot_s:.0f} s; idle, its processes held "
        f"{report.idle.peak_rss_mib:,.0f} MiB RSS / {report.idle.peak_pss_mib:,.0f} MiB PSS",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *(f"| {v.target} | {v.measured} | {_verdict(v.met)} |" for v in verdicts(report)),
        "",
        "## Runs",
        "",
        "Wall: trigger request sent to the run's end (the scheduler's end date). Latency: the Spotify server's "
        "wait before each answer. First: every playlist new to the lake; changed: the next logical date, every "
        "snapshot changed; unchanged: the date after, the same snapshots. Memory: "
        "peaks of the Airflow process tree and its PostgreSQL sampled every 0.5 s (RSS summed over the processes, and "
        "PSS, which splits the pages the forked processes share).",
        "",
        "| N | latency ms | run | wall s | task instances | chunks | API requests | per playlist | token requests "
        "| peak RSS MiB | peak PSS MiB | processes |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.runs:
        lines.append(
            f"| {r.n:,} | {r.latency_ms:.0f} | {r.phase} | {r.wall_s:.1f} | {r.task_instances} | {r.chunks} | "
            f"{r.api_requests:,} | "
            f"{r.api_requests / r.n:.2f} | {r.token_requests} | {r.memory.peak_rss_mib:,.0f} | "
            f"{r.memory.peak_pss_mib:,.0f} | {r.memory.processes} |"
        )
    first = sorted((r for r in report.runs if r.phase == "first" and not r.latency_ms), key=lambda r: r.n)
    per_playlist = slope([(r.n, r.wall_s) for r in first])
    if per_playlist is not None:
        steps = ", ".join(
            f"{(b.wall_s - a.wall_s) / (b.n - a.n):.3f} s from {a.n:,} to {b.n:,}" for a, b in itertools.pairwise(first)
        )
        intercept = sum(r.wall_s for r in first) / len(first) - per_playlist * sum(r.n for r in first) / len(first)
        lines += [
            "",
            f"Seconds per added playlist (first runs at 0 ms): {per_playlist:.3f} (least squares; {steps}); "
            f"the fixed part of a run is about {intercept:.1f} s.",
        ]
    lines += _before_after_section(report)
    lines += _profile_section(report)
    if report.backfill:
        lines += _backfill_section(report.backfill)
    return "\n".join(lines) + "\n"


def _profile_section(report: Report) -> list[str]:
    lines = [
        "",
        "## Where a run's time goes",
        "",
        "From the task instances' queued/start/end times (Airflow's REST API) and the extract's own "
        "per-playlist timing. *To run start*: trigger to the scheduler starting the run. *No task running*: "
        "wall time with no task instance running (scheduling, queueing, starting task processes). *Plan*: the "
        "plan and chunk_playlists tasks. "
        "*Chunk*: mean extract task instance; *work*: its playlists' own seconds (requests, lake reads and "
        "writes), summed: with several playlists in flight they overlap, so their wall time in the task is "
        "less; *overhead*: the task less that sum (task start, imports, Spotify token, XCom; an underestimate "
        "when playlists overlap). *Queue wait*: "
        "mean time from queued to running, every task instance.",
        "",
        "| N | latency ms | run | wall s | to run start | no task running | plan | extract span | chunk | work "
        "| overhead | queue wait | transform | catalog + validate | all task time |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.runs:
        p = profile(r)
        lines.append(
            f"| {r.n:,} | {r.latency_ms:.0f} | {r.phase} | {r.wall_s:.1f} | {p['to_run_start']:.1f} | {p['no_task_running']:.1f} | "
            f"{p['plan']:.1f} | {p['extract_span']:.1f} | {p['chunk_mean']:.2f} | {p['chunk_work_mean']:.2f} | "
            f"{p['chunk_overhead_mean']:.2f} | {p['queue_wait_mean']:.2f} | {p['transform']:.1f} | "
            f"{p['catalog_validate']:.1f} | {p['task_seconds']:.1f} |"
        )
    latencies = sorted({r.latency_ms for r in report.runs})
    return [*lines, *(line for latency in latencies for line in ("", explain(report, latency)))]


def _before_after_section(report: Report) -> list[str]:
    """This run's figures at N=1,000 beside those before issue 21 (:data:`PREVIOUS`)."""
    rows = [r for r in report.runs if r.n == TARGET_SIZE and (r.latency_ms, r.phase) in PREVIOUS]
    if not rows:
        return []
    lines = [
        "",
        f"## Before and after issue 21 (N={TARGET_SIZE:,})",
        "",
        "Before: chunks of 25 playlists one after another, 3 requests per new playlist (bench/RESULTS-day.md of "
        "2026-12-01 and docs/performance.md; load average at the start in brackets, which moves a wall time by "
        "up to 2x). Now: chunk size derived from the day's count, playlists in flight per chunk, 1 request.",
        "",
        "| latency ms | run | requests per playlist before | now | wall s before | now |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        wall, calls, load = PREVIOUS[(r.latency_ms, r.phase)]
        before = "not measured" if wall is None else f"{wall:.1f} ({load})"
        lines.append(
            f"| {r.latency_ms:.0f} | {r.phase} | {calls:.2f} | {r.api_requests / r.n:.2f} | {before} | "
            f"{r.wall_s:.1f} ({report.load_before[0]:.1f}) |"
        )
    return lines


def explain(report: Report, latency_ms: float = 0.0) -> str:
    """The largest first run's time at ``latency_ms``, phase by phase, and what an added playlist costs in it."""
    run = _largest_first(report, latency_ms)
    if run is None:
        return ""
    p = profile(run)
    slots = min(int(report.settings.get("pool slots", "0") or 0), int(report.settings.get("parallelism", "0") or 0))
    overhead_share = p["chunk_overhead_mean"] / p["chunk_mean"] if p["chunk_mean"] else 0.0
    text = (
        f"At N={run.n:,} (first run, {latency_ms:.0f} ms per request) the {run.wall_s:.1f} s were: {p['to_run_start']:.1f} s until the scheduler "
        f"started the run, plan {p['plan']:.1f} s, the extract {p['extract_span']:.1f} s ({run.chunks} chunk task "
        f"instances of {p['chunk_mean']:.2f} s on average: {p['chunk_work_mean']:.2f} s the playlists' own work, "
        f"{p['chunk_overhead_mean']:.2f} s, {overhead_share:.0%}, the task around it), transform "
        f"{p['transform']:.1f} s, catalog and validate {p['catalog_validate']:.1f} s; no task ran for "
        f"{p['no_task_running']:.1f} s of it. Task instances ran {p['task_seconds']:.0f} s in all, "
        f"{p['task_seconds'] / run.wall_s:.1f} at a time on average on {report.machine.split(' ', 1)[0]} cores."
    )
    if slots and run.chunks:
        at_once = min(slots, run.chunks)
        between = p["extract_span"] * at_once / run.chunks - p["chunk_mean"]
        per_playlist = p["extract_span"] / run.n
        text += (
            f" With {slots} chunks at once, each slot was also idle {max(between, 0.0):.2f} s per chunk (scheduling, "
            "queueing and starting the next task process, or no chunk left for it at the end); an added playlist "
            f"costs {per_playlist:.3f} s of extract."
        )
    return text


def _backfill_section(b: BackfillFigures) -> list[str]:
    mean_run = _mean(b.run_seconds)
    tasks = ", ".join(f"{task} {seconds:.1f} s" for task, seconds in b.task_seconds.items())
    return [
        "",
        "## Backfill",
        "",
        f"{b.days} past dates, each with the raw documents of {b.playlists_per_day:,} playlists landed "
        f"(the largest first run's documents copied to each date with its `dt` rewritten: "
        f"{b.landed_bytes / 2**20:,.0f} MiB in {b.landing_s:.1f} s), then `POST /api/v2/backfills` with "
        f"max_active_runs={b.max_active_runs}: every run reprocesses its date's raw documents.",
        "",
        "| days | wall s | per day | runs | task instances | at once (max) | API requests | token requests "
        "| peak RSS MiB | peak PSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {b.days} | {b.wall_s:.1f} | {b.wall_s / b.days:.1f} | {b.runs} | {b.task_instances} | "
        f"{b.max_concurrent_runs} | {b.api_requests} | {b.token_requests} | {b.memory.peak_rss_mib:,.0f} | "
        f"{b.memory.peak_pss_mib:,.0f} |",
        "",
        f"Wall: the request to the last run's end. A run took {mean_run:.1f} s on average "
        f"(start to end); mean task durations: {tasks}.",
    ]


def as_json(report: Report) -> dict[str, Any]:
    """The figures for a machine reader (printed by bench/day.py --json)."""
    from dataclasses import asdict

    data = asdict(report)
    for run, figures in zip(data["runs"], report.runs, strict=True):
        run["wall_s"] = figures.wall_s
        run.pop("tasks")
        run["profile"] = profile(figures)
    if report.backfill:
        data["backfill"]["wall_s"] = report.backfill.wall_s
    data["verdicts"] = [asdict(v) for v in verdicts(report)]
    return data
