"""The DAG file with and without the alert settings: callbacks, the deadline, and what the scheduler gets."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from spotify_etl.airflow import DAG_ID

from tests.dags.conftest import AWS_SETTINGS, PARSE_OFFLINE, _dagbag
from tests.support.airflow_run import airflow_env

ALERTS = {
    "SPOTIFY_ETL_ALERT_SLACK_CONN_ID": "alerts_webhook",
    "SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:spotify-etl-alerts",
    "SPOTIFY_ETL_DEADLINE_HOURS": "4",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_without_an_alert_setting_the_dag_has_no_callback_and_no_deadline(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[DAG_ID]
    assert dag.on_failure_callback is None and not dag.deadline
    for task in dag.tasks:
        assert not task.on_failure_callback and not task.on_retry_callback, task.task_id


def test_with_alert_settings_every_task_the_run_and_the_deadline_alert(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    bag = _dagbag(tmp_path_factory, **AWS_SETTINGS, **ALERTS)  # the aws target: provider operators too
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    for task in dag.tasks:  # every task, mapped and provider operators included (default_args)
        assert [c.event for c in as_list(task.on_retry_callback)] == ["retry"], task.task_id
        assert [c.event for c in as_list(task.on_failure_callback)] == ["failure"], task.task_id
    assert dag.on_failure_callback.event == "run_failure"
    # What the scheduler reads: the deadline from the logical date (= the interval's end for
    # Airflow 3's @daily) plus the setting, its callback run by the executor.
    (deadline,) = DagSerialization.to_dict(dag)["dag"]["deadline"]
    assert deadline["reference"] == {"reference_type": "DagRunLogicalDateDeadline"}
    assert deadline["interval"]["__data__"] == 4 * 3600
    callback = deadline["callback"]
    assert callback["__classname__"] == "airflow.sdk.definitions.callback.SyncCallback"
    assert callback["__data__"] == {
        "path": "spotify_etl.airflow.alerts.PipelineAlert",
        "kwargs": {"event": "deadline", "slack_conn_id": "alerts_webhook",
                   "sns_topic_arn": ALERTS["SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN"], "aws_conn_id": "aws_default"},
        "executor": None,  # the default executor
    }  # fmt: skip
    assert DagSerialization.from_dict(DagSerialization.to_dict(dag)).deadline is not None


def test_with_alert_settings_parsing_still_needs_no_network_and_no_provider(tmp_path: Path) -> None:
    """The notifiers' providers and their connections are reached only when an alert is sent."""
    code = PARSE_OFFLINE + textwrap.dedent("""
        print("DEADLINE", len(mod.DAG.deadline))
        notifiers = ("airflow.providers.slack.notifications", "airflow.providers.slack.hooks", "slack_sdk",
                     "airflow.providers.amazon.aws.notifications", "airflow.providers.amazon.aws.hooks", "boto3")
        print("LOADED", sorted(m for m in sys.modules if m.startswith(notifiers)))
    """)
    env = airflow_env(tmp_path, **ALERTS)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DEADLINE 1" in proc.stdout and "LOADED []" in proc.stdout, proc.stdout
