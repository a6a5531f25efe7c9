"""The run's deadline (Airflow 3 Deadline Alerts) under a real scheduler and executor, and a
failed run's alert from the dag-processor.

An Airflow of its own (``make up``, as tests/e2e/conftest.py starts one) with the webhook alert
setting and a deadline of 36 s. The extract's pool gets 0 slots, so a run triggered for now
is held back: its extract tasks stay scheduled. The scheduler finds the deadline missed and
queues the alert's callback (a SyncCallback); the LocalExecutor runs it, and it posts to the
local Slack-like webhook.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from airflow_client.client.api import DagRunApi
from airflow_client.client.models import DagRunMutableStates, DAGRunPatchBody

from devtools import airflow_standalone, postgres
from tests.e2e.airflow_api import DAG_ID, connect, task_states, trigger, wait_run
from tests.support.airflow_run import PROJECT, VENV_BIN, airflow_env
from tests.support.slack_webhook import SlackWebhook, slack_webhook

pytestmark = pytest.mark.e2e
DEADLINE_HOURS = 0.01  # 36 s after the data interval's end (for @daily in Airflow 3: the logical date)


def _make(target: str, env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(PROJECT), "--no-print-directory", target, *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def webhook() -> Iterator[SlackWebhook]:
    with slack_webhook() as hook:
        yield hook


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, webhook: SlackWebhook) -> Iterator[tuple[str, dict[str, str]]]:
    """(UI URL, {"password", "home"}) of an Airflow started with the alert settings."""
    root = tmp_path_factory.mktemp("deadline-airflow")
    home, port, password = root / "home", airflow_standalone.free_port(), secrets.token_urlsafe(12)
    env = airflow_env(
        home,
        SPOTIFY_ETL_LAKE_DIR=str(root / "lake"),
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",  # the only run is the test's
        AIRFLOW_UI_PASSWORD=password,
        AIRFLOW_CONN_ALERTS_WEBHOOK=json.dumps(webhook.connection()),
        SPOTIFY_ETL_ALERT_SLACK_CONN_ID="alerts_webhook",
        SPOTIFY_ETL_DEADLINE_HOURS=str(DEADLINE_HOURS),
    )
    started = _make("up", env, f"PORT={port}", "UNPAUSE=1", timeout=900)
    try:
        assert started.returncode == 0, started.stdout[-4000:] + started.stderr[-4000:]
        server_env = airflow_standalone.environment(env, port)
        # Hold every extract back: a pool of 0 slots never lets its tasks start.
        held = subprocess.run(
            [str(VENV_BIN / "airflow"), "pools", "set", "spotify_api", "0", "held back by the deadline test"],
            env=server_env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert held.returncode == 0, held.stdout + held.stderr
        yield f"http://{airflow_standalone.HOST}:{port}", {"password": password, "home": str(home)}
    finally:
        stopped = _make("down", env, timeout=180)
        if airflow_standalone.running(home):
            airflow_standalone.stop(home)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def test_a_run_held_past_its_deadline_alerts_through_the_webhook(
    airflow: tuple[str, dict[str, str]], webhook: SlackWebhook
) -> None:
    url, secrets_ = airflow
    client = connect(url, airflow_standalone.USER, secrets_["password"])
    logical = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run_id = trigger(client, logical.isoformat())

    messages = webhook.wait_for("has not succeeded by its deadline", timeout=300)

    (alert,) = [m for m in messages if "deadline" in m]
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
    assert len([m for m in webhook.messages if "deadline" in m]) == 1  # one deadline, one alert


def handled_deadline(home: str, run_id: str, timeout: float) -> str:
    """The state of the run's deadline callback once the scheduler found the deadline missed and it ran."""
    end = time.monotonic() + timeout
    url = postgres.url(Path(home))  # make up's metadata DB
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


def test_a_failed_run_alerts_from_the_dag_processor(airflow: tuple[str, dict[str, str]], webhook: SlackWebhook) -> None:
    url, secrets_ = airflow
    client = connect(url, airflow_standalone.USER, secrets_["password"])
    # max_active_runs=1: end the held run first (by hand: no callback, no alert).
    for run in DagRunApi(client).get_dag_runs(DAG_ID, state=["running", "queued"]).dag_runs:
        DagRunApi(client).patch_dag_run(DAG_ID, run.dag_run_id, DAGRunPatchBody(state=DagRunMutableStates.FAILED))
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
    assert handled_deadline(secrets_["home"], run_id, timeout=240) == "success"
    assert not [m for m in webhook.messages if f"run {run_id} " in m and "deadline" in m], webhook.messages


def test_a_run_for_a_past_date_is_late_on_creation_and_not_alerted(
    airflow: tuple[str, dict[str, str]], webhook: SlackWebhook
) -> None:
    url, secrets_ = airflow
    client = connect(url, airflow_standalone.USER, secrets_["password"])
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    run_id = trigger(client, yesterday.isoformat())  # still extracts (SPOTIFY_ETL_LIVE_GRACE_DAYS=1): held
    assert handled_deadline(secrets_["home"], run_id, timeout=240) == "success"
    assert DagRunApi(client).get_dag_run(DAG_ID, run_id).state.value == "running"  # late, and still going
    assert not [m for m in webhook.messages if f"run {run_id} " in m], webhook.messages
