"""Failure, retry and deadline alerts, sent through the Slack and Amazon providers' notifiers.

:class:`PipelineAlert` is one Airflow notifier for every event: the tasks' ``on_retry_callback``
and ``on_failure_callback`` (they run in the task's process), the DAG run's ``on_failure_callback``
(the DAG processor) and the deadline's ``SyncCallback`` (an executor runs it). It builds the
text with :func:`message`, the one place an alert's wording lives, and hands it to the
``SlackWebhookNotifier`` of ``SPOTIFY_ETL_ALERT_SLACK_CONN_ID`` and the ``SnsNotifier`` of
``SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN``. With neither set, the DAG gets no callback and no deadline.

Nothing here runs at parse time beyond building these objects: the providers are imported and
their connections looked up only when an alert is sent. Before it is sent, the alert
connections' secrets are registered for redaction and masking (:func:`register_secrets`).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.definitions.callback import SyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

from spotify_etl.settings import Settings
from spotify_etl.spotify import redaction

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

RETRY, FAILURE, RUN_FAILURE, DEADLINE = "retry", "failure", "run_failure", "deadline"
ERROR_CHARS = 500  # of the error's first line; the log link has the rest
SNS_SUBJECT_CHARS = 99  # SNS Publish: subjects "less than 100 characters long", no line breaks
AWS_SECRET_EXTRAS = ("aws_secret_access_key", "aws_session_token")


def first_line(error: object) -> str:
    """The error's first non-empty line, its type named, every secret the project's redaction knows
    (the Spotify client's, the alert connections') redacted, cut to :data:`ERROR_CHARS`.

    Airflow documents no redact() (only ``airflow.sdk.log.mask_secret``, which feeds its log
    masker), so the text is redacted by :mod:`spotify_etl.spotify.redaction`, which hands the same
    secrets to Airflow's masker for the task log."""
    if error is None:
        return "(no error recorded)"
    text = str(error).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if isinstance(error, BaseException):
        line = f"{type(error).__name__}: {line}" if line else type(error).__name__
    line = redaction.redact(line)
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


def connection_secrets(conn: Any) -> list[str]:
    """What of an alert connection must never be shown: its password (a Slack webhook's token,
    or the whole webhook URL, whose path is the token), an AWS connection's secret extras."""
    secrets = [conn.password or ""]
    if "://" in secrets[0]:
        secrets.append(urlsplit(secrets[0]).path.strip("/"))
    extra = conn.extra_dejson or {}
    secrets += [str(extra[key]) for key in AWS_SECRET_EXTRAS if extra.get(key)]
    return [s for s in secrets if s]


def register_secrets(conn_ids: list[str]) -> None:
    """Hand the alert connections' secrets to the project's redaction and Airflow's masker.

    Called before every alert, in whatever process sends it (task, DAG processor, executor):
    the Slack SDK logs the webhook URL at DEBUG and an HTTP error can carry it, and ``airflow
    dags test`` masks no connection secret by itself.
    """
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    redaction.also_mask_with(mask_secret)  # Airflow's masker (task processes, their supervisor)
    for conn_id in conn_ids:
        try:
            conn = Connection.get(conn_id)
        except Exception as exc:  # noqa: BLE001 - its notifier fails naming it; the other channel still sends
            log.warning("alert connection %s not read for redaction: %s", conn_id, first_line(exc))
            continue
        redaction.remember_secret(*connection_secrets(conn))


def _day(logical_date: Any) -> str:
    if not logical_date:
        return "(no logical date)"
    if isinstance(logical_date, str):
        return logical_date[:10]
    return str(logical_date.date().isoformat())


def _run_url(dag_id: str, run_id: str) -> str:
    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}"


def message(event: str, context: Any) -> str:
    """The alert's text: DAG, date, task and try, the error's first line (redacted) and a link.

    ``context`` is the task's context for a task or run callback, and the scheduler's
    ``{"dag_run": {...}, "deadline": {...}}`` (the run as the REST API's JSON) for a deadline.
    """
    if event == DEADLINE:
        run, deadline = context["dag_run"], context.get("deadline") or {}
        dag_id, run_id = run["dag_id"], run["dag_run_id"]
        return (
            f"[{dag_id}] run {run_id} for {_day(run.get('logical_date'))} has not succeeded by its deadline "
            f"{deadline.get('deadline_time', '?')} (state {run.get('state')}).\n"
            f"Run: {_run_url(dag_id, run_id)}"
        )
    ti, dag_run = context["ti"], context["dag_run"]
    task = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
    day = _day(dag_run.logical_date)
    what = {
        RETRY: f"task {task} failed on try {ti.try_number} and will be retried",
        FAILURE: f"task {task} failed on try {ti.try_number}",
        RUN_FAILURE: f"run {dag_run.run_id} failed ({context.get('reason') or 'no reason given'}); "
        f"last task {task}, try {ti.try_number}",
    }[event]
    lines = [f"[{ti.dag_id}] {day}: {what}."]
    if event != RUN_FAILURE:  # a run's callback has no exception, the task's log has it
        lines.append(f"Error: {first_line(context.get('exception'))}")
    lines.append(f"Log: {ti.log_url}")
    return "\n".join(lines)


def _when(value: Any) -> dt.datetime | None:
    try:
        return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None


def deadline_is_news(context: Any) -> bool:
    """Whether a missed deadline is worth an alert: the run is still queued or running, and it was
    queued before its deadline. Airflow keeps a failed run's deadline (it prunes only a succeeded
    run's), and a run queued after its deadline was asked for late: a backfill or a manual run for
    a past date (its deadline counts from its logical date). Unreadable times: alert."""
    run, deadline = context["dag_run"], context.get("deadline") or {}
    if run.get("state") not in ("queued", "running"):
        return False
    queued, due = _when(run.get("queued_at")), _when(deadline.get("deadline_time"))
    return queued is None or due is None or queued < due


def _slack_notifier(conn_id: str, text: str) -> BaseNotifier:
    """The provider's ``SlackWebhookNotifier``, its Slack SDK client logging through a logger
    that redacts. The SDK logs the webhook URL (the token is its path) at DEBUG, and on
    retries at INFO, to the logger it is given; the provider gives it the hook's structlog
    logger, whose console output Airflow does not mask under ``airflow dags test``. The
    notifier's own DEBUG line names the URL too, so ``notify`` here logs the status only.
    """
    from functools import cached_property

    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    class RedactedSlackWebhookNotifier(SlackWebhookNotifier):
        @cached_property
        def hook(self) -> SlackWebhookHook:
            return SlackWebhookHook(
                slack_webhook_conn_id=self.slack_webhook_conn_id, proxy=self.proxy, timeout=self.timeout,
                retry_handlers=self.retry_handlers, logger=redaction.redacting_logger(f"{__name__}.slack_sdk"),
            )  # fmt: skip

        def notify(self, context: Any) -> None:
            resp = self.hook.send(text=self.text)  # raises on any status but 200
            log.debug("Slack webhook answered %s", resp.status_code)

    return RedactedSlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=text)


class AlertNotSent(RuntimeError):
    """A channel refused or failed the alert; the text names which, its secrets redacted."""


class PipelineAlert(BaseNotifier):
    """Send :func:`message` for ``event`` to every configured channel.

    The text is final when it is sent: the providers' notifiers are called without their Jinja
    rendering, so braces in an error message stay text.
    """

    def __init__(self, *, event: str, slack_conn_id: str = "", sns_topic_arn: str = "",
                 aws_conn_id: str = "aws_default", **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)  # a deadline's executor passes context=...
        self.event = event
        self.slack_conn_id = slack_conn_id
        self.sns_topic_arn = sns_topic_arn
        self.aws_conn_id = aws_conn_id

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render (no template fields). Skipping it matters under ``airflow dags test``,
        whose run callbacks get a serialized DAG without the Jinja environment the base class asks for."""

    def notifiers(self, text: str) -> list[BaseNotifier]:
        found: list[BaseNotifier] = []
        if self.slack_conn_id:
            found.append(_slack_notifier(self.slack_conn_id, text))
        if self.sns_topic_arn:
            from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

            subject = text.splitlines()[0][:SNS_SUBJECT_CHARS]
            found.append(
                SnsNotifier(aws_conn_id=self.aws_conn_id, target_arn=self.sns_topic_arn, message=text, subject=subject)
            )
        return found

    def notify(self, context: Context) -> None:
        if self.event == DEADLINE and not deadline_is_news(context):
            log.info("deadline of run %s passed: no alert, the run is done or was queued late", context["dag_run"])
            return
        register_secrets([c for c in (self.slack_conn_id, self.sns_topic_arn and self.aws_conn_id) if c])
        text = message(self.event, context)
        errors = []
        for notifier in self.notifiers(text):  # one channel failing does not silence the other
            try:
                notifier.notify(context)
            except Exception as exc:  # noqa: BLE001 - logged and raised below, redacted
                # Its text, redacted; not its traceback: an HTTP error's text may hold the webhook URL.
                errors.append(f"alert via {type(notifier).__name__} failed: {first_line(exc)}")
                log.error("%s", errors[-1])
        if errors:
            raise AlertNotSent("; ".join(errors))


def _alert(settings: Settings, event: str) -> PipelineAlert:
    return PipelineAlert(
        event=event,
        slack_conn_id=settings.alert_slack_conn_id,
        sns_topic_arn=settings.alert_sns_topic_arn,
        aws_conn_id=settings.aws_conn_id,
    )


def configured(settings: Settings) -> bool:
    return bool(settings.alert_slack_conn_id or settings.alert_sns_topic_arn)


def task_callbacks(settings: Settings) -> dict[str, Any]:
    """The DAG's ``default_args`` for task alerts; empty with no alert setting."""
    if not configured(settings):
        return {}
    return {"on_retry_callback": _alert(settings, RETRY), "on_failure_callback": _alert(settings, FAILURE)}


def run_failure_callback(settings: Settings) -> PipelineAlert | None:
    """The DAG's ``on_failure_callback``; None with no alert setting."""
    return _alert(settings, RUN_FAILURE) if configured(settings) else None


def interval_end_after_logical_date(timetable: Any) -> dt.timedelta:
    """How long after a scheduled run's logical date its data interval ends.

    Airflow's deadline references start at the logical date (or the queue time), not at the
    data interval's end. Airflow 3 builds ``@daily`` as a ``CronTriggerTimetable`` (``[scheduler]
    create_cron_data_intervals = False``, the default): its interval ends at the logical date.
    With ``create_cron_data_intervals = True`` the logical date starts a one-day interval.
    """
    return dt.timedelta(0) if isinstance(timetable, CronTriggerTimetable) else dt.timedelta(days=1)


def deadline(settings: Settings, timetable: Any) -> DeadlineAlert | None:
    """The run's deadline, ``SPOTIFY_ETL_DEADLINE_HOURS`` after its data interval ends; None
    with no alert setting or 0 hours.

    Its callback is a ``SyncCallback``: the executor runs it with the DAG bundle on ``sys.path``,
    so this module imports wherever the DAG does (MWAA does not put its dags folder on the
    triggerer's path, which an ``AsyncCallback`` would need).
    """
    if not configured(settings) or not settings.deadline_hours:
        return None
    alert = _alert(settings, DEADLINE)
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=interval_end_after_logical_date(timetable) + dt.timedelta(hours=settings.deadline_hours),
        callback=SyncCallback(
            PipelineAlert,
            kwargs={
                "event": DEADLINE,
                "slack_conn_id": alert.slack_conn_id,
                "sns_topic_arn": alert.sns_topic_arn,
                "aws_conn_id": alert.aws_conn_id,
            },
        ),
        name="spotify_etl_run_deadline",
    )
