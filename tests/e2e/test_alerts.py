"""Alerts from a real run (``airflow dags test``): a retried then failed extract, and the failed run.

Both channels at once: the webhook setting points at a local server that answers as Slack's
incoming webhooks do (tests/support/slack_webhook.py), held in an ``AIRFLOW_CONN_<ID>``
connection as a user sets it; the SNS topic is moto's, read back through a subscribed SQS queue.
The deadline alert under a real scheduler and executor: tests/e2e/test_deadline_alert.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from spotify_etl.airflow import DAG_ID

from tests.e2e.test_spotify_dag import CLIENT_SECRET, REFRESH_TOKEN, leaks, run_dag, task_tries
from tests.support.moto_server import moto_server
from tests.support.slack_webhook import TOKEN, SlackWebhook, slack_webhook
from tests.support.spotify_server import LSD, RAP_RU, SpotifyServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def webhook() -> Iterator[SlackWebhook]:
    with slack_webhook() as hook:
        yield hook


def test_a_retry_and_the_failures_each_send_one_alert_naming_task_try_error_and_log(
    airflow_template_db: Path, tmp_path: Path, webhook: SlackWebhook
) -> None:
    with SpotifyServer(client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN) as server, moto_server() as aws:
        topic = aws.client("sns").create_topic(Name="spotify-etl-alerts")["TopicArn"]
        queue = aws.client("sqs").create_queue(QueueName="alerts-inbox")["QueueUrl"]
        queue_arn = aws.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        # RAP_RU meets a rate limit longer than a task may wait, on both tries (one retry allowed).
        server.fail(f"/v1/playlists/{RAP_RU}\\?", 429, headers={"Retry-After": "999"}, times=2)
        day, output = run_dag(
            airflow_template_db,
            tmp_path,
            [LSD, RAP_RU],
            SPOTIFY_ETL_EXTRACT_CHUNK_SIZE="2",  # one chunk of both
            AIRFLOW_CONN_SPOTIFY_DEFAULT=json.dumps(server.connection(user=True)),
            AIRFLOW_CONN_ALERTS_WEBHOOK=json.dumps(webhook.connection()),
            SPOTIFY_ETL_ALERT_SLACK_CONN_ID="alerts_webhook",
            SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN=topic,
            AIRFLOW__API__BASE_URL="http://airflow.test:8080",
            **aws.airflow_env(),  # aws_default: moto's endpoint, fake credentials
        )
        published = []
        for _ in range(5):  # SQS hands out at most 10 messages a call, not necessarily all of them
            batch = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            published += [json.loads(m["Body"])["Message"] for m in batch.get("Messages", [])]

    tries = task_tries(tmp_path / "home")
    assert tries[("extract_playlist", 0)] == ("failed", 2), output[-4000:]
    assert tries[("check_extracts", -1)] == ("failed", 1)
    heads = [m.splitlines()[0] for m in webhook.messages]
    assert heads[:3] == [
        f"[{DAG_ID}] {day}: task extract_playlist[0] failed on try 1 and will be retried.",
        f"[{DAG_ID}] {day}: task extract_playlist[0] failed on try 2.",
        f"[{DAG_ID}] {day}: task check_extracts failed on try 1.",
    ], webhook.messages
    retry, failure = webhook.messages[0].splitlines(), webhook.messages[1].splitlines()
    assert retry[1].startswith("Error: ChunkIncomplete: 1 of 2 playlists failed: ") and "429" in retry[1], retry
    assert failure[1].startswith("Error: AirflowFailException: 1 of 2 playlists failed: "), failure
    # The log link is the task instance's own: the UI's base URL, the run, the mapped task, the try.
    run_id = re.search(r"/runs/(manual__[^/]+)/", retry[2]).group(1)  # type: ignore[union-attr]
    base = f"Log: http://airflow.test:8080/dags/{DAG_ID}/runs/{run_id}/tasks"
    assert retry[2] == f"{base}/extract_playlist/mapped/0?try_number=1", retry
    assert failure[2] == f"{base}/extract_playlist/mapped/0?try_number=2", failure
    # The run's failure callback (in dags test: in-process; else the DAG processor) names the last failed task.
    assert webhook.messages[3].splitlines() == [
        f"[{DAG_ID}] {day}: run {unquote(run_id)} failed (task_failure); last task check_extracts, try 1.",
        f"Log: http://airflow.test:8080/dags/{DAG_ID}/runs/{run_id}/tasks/check_extracts?try_number=1",
    ], webhook.messages
    assert len(webhook.messages) == 4
    # SNS got the same four messages (SQS does not keep their order).
    assert sorted(published) == sorted(webhook.messages), published


AWS_SECRET = "aws-secret-CANARY-0d7b2e91c4f6"  # pragma: allowlist secret


def test_a_webhook_answering_500_never_shows_its_token_nor_the_alert_connections_secrets(
    airflow_template_db: Path, tmp_path: Path, webhook: SlackWebhook
) -> None:
    """Issue 22: the webhook's token was printed at INFO when Slack answered 500, and at DEBUG by
    the providers' HTTP clients. The run: a playlist missing from the embedded sample data fails
    its extract (no Spotify needed), so the task, check and run alerts all go out, at DEBUG."""
    webhook.break_channel(500, "internal_error")
    with moto_server() as aws:
        topic = aws.client("sns").create_topic(Name="spotify-etl-alerts")["TopicArn"]
        aws_env = aws.airflow_env()
        aws_env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({**aws.connection(), "password": AWS_SECRET})
        _, output = run_dag(
            airflow_template_db,
            tmp_path,
            [LSD, "0" * 22],
            SPOTIFY_ETL_EXTRACT_CHUNK_SIZE="2",  # one chunk of both
            AIRFLOW_CONN_ALERTS_WEBHOOK=json.dumps(webhook.connection()),
            SPOTIFY_ETL_ALERT_SLACK_CONN_ID="alerts_webhook",
            SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN=topic,
            AIRFLOW__LOGGING__LOGGING_LEVEL="DEBUG",
            **aws_env,
        )

    assert task_tries(tmp_path / "home")[("extract_playlist", 0)] == ("failed", 1), output[-4000:]
    assert (
        webhook.refused >= 3
        and "SlackWebhookNotifier failed: AirflowException: Response body: 'internal_error', Status Code: 500" in output
    ), output[-4000:]
    found = leaks([TOKEN, AWS_SECRET], tmp_path / "home", tmp_path / "lake", output)
    # As in test_spotify_dag: at DEBUG Airflow's supervisor logs the message that registers a
    # secret for masking; SECURITY.md says never to run workers at DEBUG. Nothing else may show it.
    leaked = [f for f in found if f != "output: airflow MaskSecret"]
    assert leaked == [], "\n".join(leaked)
