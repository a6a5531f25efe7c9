"""What the end-to-end tests do through a running Airflow's REST API (/api/v2), with Airflow's
own client (apache-airflow-client, the version of the API it talks to); every wait bounded."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from airflow_client.client import ApiClient, Configuration
from airflow_client.client.api import BackfillApi, DagRunApi, TaskInstanceApi, XComApi
from airflow_client.client.models import BackfillResponse, DAGRunResponse, TaskInstanceResponse, TriggerDAGRunPostBody
from spotify_etl.airflow import DAG_ID

from tests.support.slack_webhook import SlackWebhook

FINISHED = {"success", "failed"}


def connect(url: str, user: str, password: str) -> ApiClient:
    """A client authenticated as the UI is: a JWT from the auth manager's /auth/token."""
    response = httpx.post(f"{url}/auth/token", json={"username": user, "password": password}, timeout=60)
    assert response.status_code == 201, f"login as {user}: {response.status_code} {response.text}"
    config = Configuration(host=url, access_token=response.json()["access_token"])
    config.retries = 0  # an error is an error: no silent retries
    return ApiClient(config)


@dataclass
class Server:
    """One running local Airflow (make up) shared by the e2e tests, and where its lake is."""

    url: str
    user: str
    password: str
    home: Path
    client: ApiClient
    env: dict[str, str]
    lake: Path
    webhook: SlackWebhook  # where its failure and deadline alerts go
    started_output: str = ""
    runs_seen: list[str] = field(default_factory=list)


def midnight(day: str) -> str:
    return f"{day}T00:00:00Z"


def trigger(client: ApiClient, logical_date: str, playlists: list[str] | None = None) -> str:
    body = TriggerDAGRunPostBody(
        logical_date=logical_date,  # pydantic parses the ISO string
        conf={"playlists": playlists} if playlists is not None else None,
    )
    return str(DagRunApi(client).trigger_dag_run(DAG_ID, body).dag_run_id)


def task_states(client: ApiClient, run_id: str) -> dict[tuple[str, int], TaskInstanceResponse]:
    listing = TaskInstanceApi(client).get_task_instances(DAG_ID, run_id, limit=100)
    return {(ti.task_id, ti.map_index): ti for ti in listing.task_instances}


def describe(client: ApiClient, run_id: str) -> str:
    states = task_states(client, run_id)
    return ", ".join(f"{t}[{m}]={ti.state.value if ti.state else None}" for (t, m), ti in sorted(states.items()))


def wait_run(client: ApiClient, run_id: str, timeout: float = 420) -> DAGRunResponse:
    """Poll the run until it has finished; fail naming each task's state if it takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        run = DagRunApi(client).get_dag_run(DAG_ID, run_id)
        if run.state in FINISHED:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(
                f"run {run_id} still {run.state.value} after {timeout:.0f}s: {describe(client, run_id)}"
            )
        time.sleep(2)


def wait_backfill(client: ApiClient, backfill_id: int, timeout: float = 600) -> BackfillResponse:
    """Poll until the scheduler has marked the backfill completed (all its runs finished)."""
    deadline = time.monotonic() + timeout
    while True:
        backfill = BackfillApi(client).get_backfill(backfill_id)
        if backfill.completed_at:
            return backfill
        if time.monotonic() > deadline:
            runs = DagRunApi(client).get_dag_runs(DAG_ID, run_type=["backfill"], limit=100).dag_runs
            raise AssertionError(
                f"backfill {backfill_id} not completed after {timeout:.0f}s; runs: "
                + "; ".join(f"{r.dag_run_id}={r.state.value}" for r in runs)
            )
        time.sleep(3)


def runs_by_day(client: ApiClient, days: list[str]) -> dict[str, list[DAGRunResponse]]:
    """Every run of the DAG whose logical date falls on one of ``days``."""
    runs = DagRunApi(client).get_dag_runs(DAG_ID, limit=100).dag_runs
    found: dict[str, list[DAGRunResponse]] = {d: [] for d in days}
    for run in runs:
        day = run.logical_date.date().isoformat() if run.logical_date else ""
        if day in found:
            found[day].append(run)
    return found


def task_log(client: ApiClient, run_id: str, task_id: str, map_index: int = -1, try_number: int | None = None) -> str:
    """The task's log as the UI fetches it (JSON lines from the api-server), one event per line."""
    if try_number is None:
        try_number = task_states(client, run_id)[(task_id, map_index)].try_number
    # Raw JSON: the client's model of a log event keeps only `event` and `timestamp`, and drops
    # the `error_detail` that holds a failed task's exception.
    response = TaskInstanceApi(client).get_log_without_preload_content(
        DAG_ID, run_id, task_id, try_number, full_content=True, map_index=map_index, accept="application/json"
    )
    assert response.status == 200, f"log of {task_id} in {run_id}: {response.status} {response.data[:500]!r}"
    lines = []
    for event in json.loads(response.data)["content"]:
        text = str(event.get("event", ""))
        error = event.get("error_detail")
        lines.append(f"{text} {error}" if error else text)
    return "\n".join(lines)


def xcom(client: ApiClient, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    entry = XComApi(client).get_xcom_entry(DAG_ID, task_id, run_id, key, map_index=map_index)
    return entry.actual_instance.value
