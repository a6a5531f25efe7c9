"""Alerts delivered through the providers' notifiers to real local receivers.

Called as task and run callbacks are (in the task's process, the DAG processor), and through
Airflow's own ``execute_callback``, which an executor's callback process runs for a missed
deadline (the DAG's ``SyncCallback``). The webhook is a local server answering as Slack does
(tests/support/slack_webhook.py); SNS is the moto server, with an SQS queue subscribed to the
topic, read back as a subscriber would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from airflow.sdk.execution_time.callback_supervisor import execute_callback
from spotify_etl.airflow.alerts import DEADLINE, AlertNotSent, PipelineAlert

from tests.support.moto_server import MotoAws, moto_server
from tests.support.slack_webhook import TOKEN, SlackWebhook, slack_webhook

CONN_ID = "alerts_webhook"
DEADLINE_CONTEXT = {
    "dag_run": {"dag_id": "spotify_playlist_etl", "dag_run_id": "scheduled__2026-12-01T00:00:00+00:00",
                "logical_date": "2026-12-01T00:00:00Z", "state": "running",
                "queued_at": "2026-12-01T00:00:01Z"},
    "deadline": {"id": "0193", "deadline_time": "2026-12-01T06:00:00Z"},
}  # fmt: skip
FIRST_LINE = (
    "[spotify_playlist_etl] run scheduled__2026-12-01T00:00:00+00:00 for 2026-12-01 has not succeeded by its "
    "deadline 2026-12-01T06:00:00Z (state running)."
)


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackWebhook]:
    with slack_webhook() as hook:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(hook.connection()))
        yield hook


@pytest.fixture
def sns(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MotoAws, str, str]]:
    """(moto, topic ARN, URL of an SQS queue subscribed to the topic)."""
    with moto_server() as aws:
        for name, value in aws.airflow_env().items():
            monkeypatch.setenv(name, value)
        topic = aws.client("sns").create_topic(Name="spotify-etl-alerts")["TopicArn"]
        sqs = aws.client("sqs")
        queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        yield aws, topic, queue


def received(aws: MotoAws, queue: str) -> list[dict[str, Any]]:
    """The SNS notifications in the queue (SNS wraps each message in a JSON envelope)."""
    messages = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def send(alert: PipelineAlert, how: str) -> None:
    if how == "callback":
        alert(DEADLINE_CONTEXT)  # as Airflow calls a task's or a run's callback
        return
    # As an executor runs the deadline's SyncCallback: the class path and kwargs the DAG serialized.
    kwargs = {k: getattr(alert, k) for k in ("event", "slack_conn_id", "sns_topic_arn", "aws_conn_id")}
    ok, error = execute_callback(
        "spotify_etl.airflow.alerts.PipelineAlert", {**kwargs, "context": DEADLINE_CONTEXT},
        dag_rel_path="", bundle_path=None, log=structlog.get_logger(),
    )  # fmt: skip
    if not ok:
        raise RuntimeError(error)


@pytest.mark.parametrize("how", ["callback", "executor"])
def test_the_webhook_and_sns_both_get_the_message(
    webhook: SlackWebhook, sns: tuple[MotoAws, str, str], how: str
) -> None:
    aws, topic, queue = sns
    send(PipelineAlert(event=DEADLINE, slack_conn_id=CONN_ID, sns_topic_arn=topic), how)

    assert [m.splitlines()[0] for m in webhook.messages] == [FIRST_LINE]
    notifications = received(aws, queue)
    assert [(n["TopicArn"], n["Subject"]) for n in notifications] == [(topic, FIRST_LINE[:99])]
    assert notifications[0]["Message"] == webhook.messages[0]


@pytest.mark.parametrize("how", ["callback", "executor"])
def test_a_refused_webhook_does_not_stop_sns_and_fails_the_callback(
    webhook: SlackWebhook, sns: tuple[MotoAws, str, str], how: str
) -> None:
    aws, topic, queue = sns
    webhook.break_channel(410, "channel_is_archived")
    with pytest.raises(Exception, match="channel_is_archived"):
        send(PipelineAlert(event=DEADLINE, slack_conn_id=CONN_ID, sns_topic_arn=topic), how)
    assert webhook.messages == []
    assert [n["Subject"] for n in received(aws, queue)] == [FIRST_LINE[:99]]


def test_sns_to_a_topic_that_does_not_exist_fails_the_callback(sns: tuple[MotoAws, str, str]) -> None:
    _, topic, _ = sns
    with pytest.raises(Exception, match="NotFound"):
        send(PipelineAlert(event=DEADLINE, sns_topic_arn=topic.replace("alerts", "missing")), "callback")


def test_the_test_sns_refuses_a_subject_of_100_characters_as_aws_documents(sns: tuple[MotoAws, str, str]) -> None:
    from botocore.exceptions import ClientError

    aws, topic, queue = sns
    client = aws.client("sns")
    for subject in ("x" * 100, "two\nlines"):
        with pytest.raises(ClientError, match=r"\(InvalidParameter\).*Invalid parameter: Subject"):
            client.publish(TopicArn=topic, Message="m", Subject=subject)
    client.publish(TopicArn=topic, Message="m", Subject="x" * 99)
    assert [n["Subject"] for n in received(aws, queue)] == ["x" * 99]


def test_a_webhook_answering_500_shows_its_token_in_no_log_line_and_no_error(
    webhook: SlackWebhook, sns: tuple[MotoAws, str, str], caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, topic, _ = sns
    webhook.break_channel(500, "internal_error")
    caplog.set_level(logging.WARNING, logger="werkzeug")  # the test server's access log names its path
    caplog.set_level(logging.DEBUG)  # after: it sets the capturing handler's level too
    with pytest.raises(AlertNotSent) as raised:
        send(PipelineAlert(event=DEADLINE, slack_conn_id=CONN_ID, sns_topic_arn=topic), "callback")

    assert "Response body: 'internal_error', Status Code: 500" in str(raised.value)
    # The Slack SDK did log its request at DEBUG, the URL's token redacted.
    sent = [r.getMessage() for r in caplog.records if "Sending a request - url: " in r.getMessage()]
    assert sent and all(f"127.0.0.1:{webhook.server.port}/***" in m for m in sent), caplog.text
    out = capsys.readouterr()
    for where, text in {"error": str(raised.value), "log": caplog.text, "stdout": out.out, "stderr": out.err}.items():
        assert TOKEN not in text and "alertsWebhookToken0001" not in text, where
