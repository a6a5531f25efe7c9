"""What the end-to-end tests do through a running Airflow's REST API (/api/v2), every wait bounded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spotify_etl.local_airflow import DAG_ID, AirflowClient, LocalAirflow

FINISHED = {"success", "failed"}


@dataclass
class Server:
    """One running local Airflow shared by the e2e tests, and where its lake is."""

    instance: LocalAirflow
    client: AirflowClient
    password: str
    env: dict[str, str]
    lake: Path
    started_output: str = ""
    runs_seen: list[str] = field(default_factory=list)


def midnight(day: str) -> str:
    return f"{day}T00:00:00Z"


def trigger(client: AirflowClient, logical_date: str, playlists: list[str] | None = None) -> str:
    body: dict[str, Any] = {"logical_date": logical_date}
    if playlists is not None:
        body["conf"] = {"playlists": playlists}
    return str(client.json("POST", f"/dags/{DAG_ID}/dagRuns", json=body)["dag_run_id"])


def task_states(client: AirflowClient, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    listing = client.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    return {(ti["task_id"], ti["map_index"]): ti for ti in listing["task_instances"]}


def describe(client: AirflowClient, run_id: str) -> str:
    states = task_states(client, run_id)
    return ", ".join(f"{t}[{m}]={ti['state']}" for (t, m), ti in sorted(states.items()))


def wait_run(client: AirflowClient, run_id: str, timeout: float = 420) -> dict[str, Any]:
    """Poll the run until it has finished; fail naming each task's state if it takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = client.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
        if run["state"] in FINISHED:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['state']} after {timeout:.0f}s: {describe(client, run_id)}")
        time.sleep(2)


def wait_backfill(client: AirflowClient, backfill_id: int, timeout: float = 600) -> dict[str, Any]:
    """Poll until the scheduler has marked the backfill completed (all its runs finished)."""
    deadline = time.monotonic() + timeout
    while True:
        backfill: dict[str, Any] = client.json("GET", f"/backfills/{backfill_id}")
        if backfill["completed_at"]:
            return backfill
        if time.monotonic() > deadline:
            runs = client.json("GET", f"/dags/{DAG_ID}/dagRuns", params={"run_type": "backfill"})["dag_runs"]
            raise AssertionError(
                f"backfill {backfill_id} not completed after {timeout:.0f}s; runs: "
                + "; ".join(f"{r['dag_run_id']}={r['state']}" for r in runs)
            )
        time.sleep(3)


def runs_by_day(client: AirflowClient, days: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every run of the DAG whose logical date falls on one of ``days``."""
    runs = client.json("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"]
    found: dict[str, list[dict[str, Any]]] = {d: [] for d in days}
    for run in runs:
        day = (run["logical_date"] or "")[:10]
        if day in found:
            found[day].append(run)
    return found


def task_log(client: AirflowClient, run_id: str, task_id: str, map_index: int = -1, try_number: int | None = None) -> str:
    """The task's log as the UI fetches it (JSON lines from the api-server), one event per line."""
    if try_number is None:
        try_number = task_states(client, run_id)[(task_id, map_index)]["try_number"]
    response = client.request(
        "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
        params={"map_index": map_index, "full_content": "true"}, headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, f"log of {task_id} in {run_id}: {response.status_code} {response.text[:500]}"
    lines = []
    for event in response.json()["content"]:
        text = str(event.get("event", ""))
        error = event.get("error_detail")
        lines.append(f"{text} {error}" if error else text)
    return "\n".join(lines)


def xcom(client: AirflowClient, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    entry = client.json(
        "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
        params={"map_index": map_index},
    )
    return entry["value"]
