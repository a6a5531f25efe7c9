"""The alert's text and what the alert settings add to the DAG (spotify_etl.airflow.alerts).

Delivery through the providers' notifiers to real local receivers: tests/integration/test_alert_delivery.py.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable
from airflow.sdk.log import mask_secret
from spotify_etl.airflow import alerts
from spotify_etl.settings import Settings, SettingsError
from spotify_etl.spotify import redaction

LOG_URL = "http://airflow.example:8080/dags/spotify_playlist_etl/runs/scheduled__2026-12-01/tasks/extract_playlist/mapped/1?try_number=2"


def task_context(exception: object, try_number: int = 2, map_index: int = 1) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="spotify_playlist_etl", task_id="extract_playlist", map_index=map_index, try_number=try_number,
        log_url=LOG_URL,
    )  # fmt: skip
    run = SimpleNamespace(run_id="scheduled__2026-12-01", logical_date=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    return {"ti": ti, "dag_run": run, "exception": exception, "reason": "task_failure"}


def test_a_failure_names_dag_date_task_try_first_line_and_log_link() -> None:
    error = RuntimeError("3 of 25 playlists failed: 37i9 429\n  Traceback (most recent call last):\n  line 2")
    text = alerts.message(alerts.FAILURE, task_context(error))

    assert text.splitlines() == [
        "[spotify_playlist_etl] 2026-12-01: task extract_playlist[1] failed on try 2.",
        "Error: RuntimeError: 3 of 25 playlists failed: 37i9 429",
        f"Log: {LOG_URL}",
    ]


def test_an_alert_connections_secrets_are_its_token_the_urls_path_and_the_aws_secret_extras(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "T0UNIT/B0UNIT/unitWebhookToken42"  # pragma: allowlist secret
    url = f"https://hooks.slack.com/services/{token}"
    monkeypatch.setenv("AIRFLOW_CONN_UNIT_HOOK", f'{{"conn_type": "slackwebhook", "password": "{url}"}}')
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIT_AWS",
        '{"conn_type": "aws", "login": "AKIAUNIT", "password": "aws-secret-UNIT-8c1f",'  # pragma: allowlist secret
        ' "extra": {"aws_session_token": "session-token-UNIT-77e0", "region_name": "eu-west-1"}}',  # pragma: allowlist secret
    )
    alerts.register_secrets(["unit_hook", "unit_aws", "no_such_connection"])  # a missing one is the notifier's error

    said = f"POST /services/{token} to {url} with aws-secret-UNIT-8c1f and session-token-UNIT-77e0 in eu-west-1"
    assert redaction.redact(said) == "POST /*** to *** with *** and *** in eu-west-1"


def test_a_retry_says_it_will_be_retried() -> None:
    text = alerts.message(alerts.RETRY, task_context(ValueError("rate limited"), try_number=1, map_index=-1))
    assert text.splitlines()[:2] == [
        "[spotify_playlist_etl] 2026-12-01: task extract_playlist failed on try 1 and will be retried.",
        "Error: ValueError: rate limited",
    ]


def test_secrets_are_redacted_from_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # As the task module does: Spotify secrets go to Airflow's masker too.
    redaction.also_mask_with(mask_secret)
    redaction.remember_secret("spotify-refresh-CANARY-41d2")  # pragma: allowlist secret
    hook = '{"conn_type": "slackwebhook", "password": "conn-password-CANARY-93ab"}'  # pragma: allowlist secret
    monkeypatch.setenv("AIRFLOW_CONN_UNIT_ALERT_HOOK", hook)
    alerts.register_secrets(["unit_alert_hook"])  # as every alert does before its text is built
    error = PermissionError(
        "refused spotify-refresh-CANARY-41d2 and conn-password-CANARY-93ab with Authorization: Bearer abc.def-ghi"
    )
    line = alerts.first_line(error)

    assert "CANARY" not in line and "abc.def" not in line, line
    assert line == "PermissionError: refused *** and *** with Authorization: Bearer ***"


def test_the_first_line_is_cut_and_a_missing_error_is_said() -> None:
    assert len(alerts.first_line(RuntimeError("x" * 5000))) == alerts.ERROR_CHARS
    assert alerts.first_line(None) == "(no error recorded)"
    assert alerts.first_line("\n\n  killed by the executor \nmore") == "killed by the executor"


def test_a_run_failure_names_the_reason_and_the_last_task() -> None:
    text = alerts.message(alerts.RUN_FAILURE, task_context(None, try_number=1, map_index=-1))
    assert text.splitlines() == [
        "[spotify_playlist_etl] 2026-12-01: run scheduled__2026-12-01 failed (task_failure); "
        "last task extract_playlist, try 1.",
        f"Log: {LOG_URL}",
    ]


def test_a_missed_deadline_names_the_run_and_links_to_it() -> None:
    # The context the scheduler gives a deadline callback: the run as the REST API's JSON, and the deadline.
    context = {
        "dag_run": {"dag_id": "spotify_playlist_etl", "dag_run_id": "manual__2026-12-01T00:00:00+00:00",
                    "logical_date": "2026-12-01T00:00:00Z", "state": "running"},
        "deadline": {"id": "0193", "deadline_time": "2026-12-01T06:00:00Z"},
    }  # fmt: skip
    text = alerts.message(alerts.DEADLINE, context)
    assert text.splitlines()[0] == (
        "[spotify_playlist_etl] run manual__2026-12-01T00:00:00+00:00 for 2026-12-01 has not succeeded by its "
        "deadline 2026-12-01T06:00:00Z (state running)."
    )
    assert text.splitlines()[1].endswith("/dags/spotify_playlist_etl/runs/manual__2026-12-01T00%3A00%3A00%2B00%3A00")


@pytest.mark.parametrize(
    ("state", "queued_at", "news"),
    [
        ("running", "2026-12-01T00:00:05Z", True),  # the daily run, late
        ("queued", "2026-12-01T00:00:05Z", True),  # waiting for the previous one, late
        ("failed", "2026-12-01T00:00:05Z", False),  # failed: its own alert said so; Airflow keeps its deadline
        ("running", "2026-12-03T10:00:00Z", False),  # a backfill or a manual run for a past date: late on creation
        ("running", None, True),  # no queue time read: alert rather than miss one
    ],
)
def test_a_missed_deadline_alerts_only_for_a_run_still_going_that_was_queued_in_time(
    state: str, queued_at: str | None, news: bool
) -> None:
    context = {
        "dag_run": {"dag_id": "spotify_playlist_etl", "dag_run_id": "r", "state": state, "queued_at": queued_at},
        "deadline": {"deadline_time": "2026-12-01T06:00:00+00:00"},
    }
    assert alerts.deadline_is_news(context) is news


def test_no_alert_setting_adds_nothing() -> None:
    settings = Settings.from_env({})
    timetable = DAG("x", schedule="@daily", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).timetable
    assert alerts.task_callbacks(settings) == {}
    assert alerts.run_failure_callback(settings) is None
    assert alerts.deadline(settings, timetable) is None


@pytest.mark.parametrize(
    "env",
    [
        {"SPOTIFY_ETL_ALERT_SLACK_CONN_ID": "alerts_webhook"},
        {"SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:spotify-etl-alerts"},
    ],
)
def test_either_alert_setting_adds_every_callback_and_the_deadline(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    timetable = DAG("x", schedule="@daily", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).timetable
    callbacks = alerts.task_callbacks(settings)
    assert {k: v.event for k, v in callbacks.items()} == {
        "on_retry_callback": "retry",
        "on_failure_callback": "failure",
    }
    assert alerts.run_failure_callback(settings).event == "run_failure"  # type: ignore[union-attr]
    deadline = alerts.deadline(settings, timetable)
    assert deadline is not None and deadline.interval == dt.timedelta(hours=6)
    assert deadline.callback.path == "spotify_etl.airflow.alerts.PipelineAlert"
    assert deadline.callback.kwargs["event"] == "deadline"


def test_the_deadline_counts_from_the_data_interval_end() -> None:
    # Airflow 3's default @daily ends its interval at the logical date; a data-interval cron one a day later.
    settings = Settings.from_env({"SPOTIFY_ETL_ALERT_SLACK_CONN_ID": "a", "SPOTIFY_ETL_DEADLINE_HOURS": "2.5"})
    trigger = DAG("x", schedule="@daily", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).timetable
    interval = CronDataIntervalTimetable("@daily", timezone="UTC")
    assert alerts.deadline(settings, trigger).interval == dt.timedelta(hours=2.5)  # type: ignore[union-attr]
    assert alerts.deadline(settings, interval).interval == dt.timedelta(days=1, hours=2.5)  # type: ignore[union-attr]
    no_deadline = Settings.from_env({"SPOTIFY_ETL_ALERT_SLACK_CONN_ID": "a", "SPOTIFY_ETL_DEADLINE_HOURS": "0"})
    assert alerts.deadline(no_deadline, trigger) is None


@pytest.mark.parametrize("hours", ["-1", "soon", "nan"])
def test_a_bad_deadline_is_refused_naming_the_setting(hours: str) -> None:
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_DEADLINE_HOURS"):
        Settings.from_env({"SPOTIFY_ETL_DEADLINE_HOURS": hours})
