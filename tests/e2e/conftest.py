"""One real Airflow for the tests in this folder that need it, started as a user starts it.

``make up`` (``airflow standalone`` in the background, on 127.0.0.1 and a free port, with its
own AIRFLOW_HOME, its PostgreSQL metadata DB in it, and lake in a temporary folder) brings it
up once; ``make down`` stops both after the last test of this folder. Scheduled runs are turned off so the only runs are the
ones the tests create.

It runs with the alert settings (failure and deadline alerts to a local Slack-like webhook,
``Server.webhook``) and a deadline of ``DEADLINE_HOURS``, so the deadline test needs no Airflow
of its own. For the other tests that changes nothing they check: a run for a past date is
queued after its deadline, so its deadline callback sends nothing; a failed task posts one more
message to the webhook. A test on it (docs/testing.md, "Tests on the shared Airflow"): its own
logical dates, no run left queued or running (the DAG has max_active_runs=1), any setting it
changes (a pool) restored, webhook messages picked by its own run ids.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_client.client.api import DagRunApi

from devtools import airflow_standalone, postgres
from tests.e2e.airflow_api import DAG_ID, Server, connect
from tests.support.airflow_run import airflow_env, unmeasured
from tests.support.slack_webhook import SlackWebhook, slack_webhook

PROJECT = Path(__file__).resolve().parents[2]
DEADLINE_HOURS = 0.01  # 36 s after the data interval's end (for @daily in Airflow 3: the logical date)


def _make(target: str, env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(PROJECT), "--no-print-directory", target, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="package")
def airflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with slack_webhook() as webhook:  # it outlives the Airflow that posts to it
        yield from _make_up(tmp_path_factory.mktemp("e2e-airflow"), webhook)


@pytest.fixture(scope="module", autouse=True)
def _no_run_left_active(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a file on the shared Airflow (its own module fixtures ended): no run of it still
    queued or running, which would hold back every later file's runs (max_active_runs=1)."""
    items = [i for i in request.session.items if i.path == request.path]
    if not any("airflow_server" in getattr(i, "fixturenames", ()) for i in items):
        yield
        return
    server: Server = request.getfixturevalue("airflow_server")
    yield
    active = DagRunApi(server.client).get_dag_runs(DAG_ID, state=["queued", "running"]).dag_runs
    assert not active, f"{request.path.name} left runs active on the shared Airflow: " + ", ".join(
        f"{r.dag_run_id} ({r.state.value})" for r in active
    )


def _make_up(root: Path, webhook: SlackWebhook) -> Iterator[Server]:
    home, lake = root / "home", root / "lake"
    port, password = airflow_standalone.free_port(), secrets.token_urlsafe(12)
    env = unmeasured(airflow_env(
        home,
        SPOTIFY_ETL_LAKE_DIR=str(lake),
        AIRFLOW__CORE__PARALLELISM="3",
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW_UI_PASSWORD=password,
        AIRFLOW_CONN_ALERTS_WEBHOOK=json.dumps(webhook.connection()),
        SPOTIFY_ETL_ALERT_SLACK_CONN_ID="alerts_webhook",
        SPOTIFY_ETL_DEADLINE_HOURS=str(DEADLINE_HOURS),
    ))  # fmt: skip
    started = _make("up", env, f"PORT={port}", "UNPAUSE=1", timeout=900)
    if started.returncode != 0:
        airflow_standalone.stop(home)  # whatever did start
        pytest.fail(f"make up failed (exit {started.returncode}):\n{started.stdout[-4000:]}\n{started.stderr[-4000:]}")
    url = f"http://{airflow_standalone.HOST}:{port}"
    client = connect(url, airflow_standalone.USER, password)
    # What the components run with: what a CLI command needs to reach the same metadata DB as patiently.
    server_env = airflow_standalone.environment(env, port)
    server = Server(url, airflow_standalone.USER, password, home, client, server_env, lake, webhook, started.stdout)
    try:
        yield server
    finally:
        session = airflow_standalone.running(home)
        stopped = _make("down", env, timeout=180)
        leftover, database = airflow_standalone.running(home), postgres.postmaster_pid(home)
        if leftover or database:
            airflow_standalone.stop(home)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert f"Stopped airflow standalone (session {session})." in stopped.stdout, stopped.stdout
        assert not leftover, f"make down left session {leftover} running"
        assert not database, f"make down left PostgreSQL (pid {database}) running"
