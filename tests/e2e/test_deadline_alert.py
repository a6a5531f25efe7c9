"""The run's deadline (Airflow 3 Deadline Alerts) under a real scheduler and executor, and a
failed run's alert from the dag-processor.

On the shared ``make up`` Airflow of tests/e2e (conftest.py: started with the webhook alert
setting and a deadline of 36 s). While this file runs, the extract's pool has 0 slots, so a run
triggered for now is held back: its extract tasks stay scheduled. The scheduler finds the
deadline missed and queues the alert's callback (a SyncCallback); the LocalExecutor runs it, and
it posts to the local Slack-like webhook. Afterwards the pool gets its slots back and the runs
held are ended, so the other tests on that Airflow find it as make up left it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from airflow_client.client.api import DagRunApi, PoolApi
from airflow_client.client.models import DagRunMutableStates, DAGRunPatchBody, PoolPatchBody
from spotify_etl.airflow.pool import SPOTIFY_POOL

from devtools import postgres
from tests.e2e.airflow_api import DAG_ID, Server, task_states, trigger, wait_run
from tests.e2e.conftest import DEADLINE_HOURS

pytestmark = pytest.mark.e2e


def _end_active_runs(server: Server) -> None:
    """Fail the DAG's queued and running runs by hand (no callback, no alert): max_active_runs=1."""
    for run in DagRunApi(server.client).get_dag_runs(DAG_ID, state=["running", "queued"]).dag_runs:
        DagRunApi(server.client).patch_dag_run(
            DAG_ID, run.dag_run_id, DAGRunPatchBody(state=DagRunMutableStates.FAILED)
        )


@pytest.fixture(scope="module")
def airflow(airflow_server: Server) -> Iterator[Server]:
    """The shared Airflow with every extract held back: a pool of 0 slots never lets its tasks start."""
    pools = PoolApi(airflow_server.client)
    pool = pools.get_pool(SPOTIFY_POOL)

    def set_slots(slots: int) -> None:
        body = PoolPatchBody(pool=pool.name, slots=slots, include_deferred=pool.include_deferred)
        pools.patch_pool(pool.name, body, update_mask=["slots"])

    set_slots(0)
    try:
        yield airflow_server
    finally:
        _end_active_runs(airflow_server)
        set_slots(pool.slots)


def test_a_run_held_past_its_deadline_alerts_through_the_webhook(airflow: Server) -> None:
    url, client, webhook = airflow.url, airflow.client, airflow.webhook
    before = len(webhook.messages)
    logical = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run_id = trigger(client, logical.isoformat())

    webhook.wait_for(f"run {run_id} for {logical.date().isoformat()} has not succeeded by its deadline", timeout=300)

    (alert,) = [m for m in webhook.messages[before:] if "deadline" in m]
    deadline = logical + dt.timedelta(hours=DEADLINE_HOURS)
    first, link = alert.splitlines()
    assert first.startswith(
        f"[{DAG_ID}] run {run_id} for {logical.date().isoformat()} has not succeeded by its deadline "
    )
    assert first.endswith(" (state running)."), first
    # The deadline the scheduler computed: the logical date plus the setting (to the second).
    stamp = first.split("deadline ", 1)[1].split(" (state", 1)[0]
    assert abs(dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) - deadline) < dt.timedelta(seconds=1), stamp
    assert link.startswith(f"Run: {url}/dags/{DAG_ID}/runs/"), link
    # Still held back when the alert came: the run is running, no extract has started.
    assert DagRunApi(client).get_dag_run(DAG_ID, run_id).state.value == "running"
    extracts = {k: ti.state.value if ti.state else None for k, ti in task_states(client, run_id).items()
                if k[0] == "extract_playlist"}  # fmt: skip
    assert extracts and set(extracts.values()) <= {"scheduled", None}, extracts
    assert len([m for m in webhook.messages[before:] if "deadline" in m]) == 1  # one deadline, one alert


def handled_deadline(home: Path, run_id: str, timeout: float) -> str:
    """The state of the run's deadline callback once the scheduler found the deadline missed and it ran."""
    end = time.monotonic() + timeout
    url = postgres.url(home)  # make up's metadata DB
    assert url, f"no PostgreSQL of make up runs from {home}"
    while True:
        with psycopg2.connect(url.replace("+psycopg2", ""), connect_timeout=30) as db, db.cursor() as cur:
            cur.execute(
                "SELECT d.missed, c.state FROM deadline d JOIN dag_run r ON d.dagrun_id = r.id "
                "LEFT JOIN callback c ON d.callback_id = c.id WHERE r.run_id = %s",
                (run_id,),
            )
            row = cur.fetchone()
        db.close()
        if row and row[0] and row[1] in ("success", "failed"):
            return str(row[1])
        if time.monotonic() > end:
            raise AssertionError(f"deadline of {run_id} not handled within {timeout:.0f}s: {row}")
        time.sleep(2)


def test_a_failed_run_alerts_from_the_dag_processor(airflow: Server) -> None:
    url, client, webhook = airflow.url, airflow.client, airflow.webhook
    _end_active_runs(airflow)  # max_active_runs=1: the held run first
    before = len(webhook.messages)
    logical = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run_id = trigger(client, logical.isoformat(), playlists=["not-a-playlist"])  # the plan fails at once
    assert wait_run(client, run_id, timeout=300).state.value == "failed"

    webhook.wait_for(f"run {run_id} failed", timeout=180)
    new = webhook.messages[before:]
    day = logical.date().isoformat()
    heads = sorted(m.splitlines()[0] for m in new)
    assert f"[{DAG_ID}] {day}: task plan failed on try 1." in heads, new
    (run_alert,) = [m for m in new if f"run {run_id} failed" in m]
    assert run_alert.splitlines()[0].startswith(f"[{DAG_ID}] {day}: run {run_id} failed (task_failure); last task ")
    assert run_alert.splitlines()[1].startswith(f"Log: {url}/dags/{DAG_ID}/runs/"), run_alert
    plan_alert = next(m for m in new if "task plan failed" in m)
    assert "not a Spotify playlist id, URI or URL: 'not-a-playlist'" in plan_alert.splitlines()[1], plan_alert
    # Airflow keeps a failed run's deadline; when it passes, the callback runs and sends nothing.
    assert handled_deadline(airflow.home, run_id, timeout=240) == "success"
    assert not [m for m in webhook.messages if f"run {run_id} " in m and "deadline" in m], webhook.messages


def test_a_run_for_a_past_date_is_late_on_creation_and_not_alerted(airflow: Server) -> None:
    client, webhook = airflow.client, airflow.webhook
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    run_id = trigger(client, yesterday.isoformat())  # still extracts (SPOTIFY_ETL_LIVE_GRACE_DAYS=1): held
    assert handled_deadline(airflow.home, run_id, timeout=240) == "success"
    assert DagRunApi(client).get_dag_run(DAG_ID, run_id).state.value == "running"  # late, and still going
    assert not [m for m in webhook.messages if f"run {run_id} " in m], webhook.messages
