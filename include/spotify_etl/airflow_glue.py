"""The thin layer between Airflow tasks and the library: connections, XCom and task outcomes.

Imported only inside task bodies (never at DAG parse time).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException

from spotify_etl import pipeline
from spotify_etl.lake import Lake
from spotify_etl.plan import EXTRACT, PARAM, SKIP, RunPlan
from spotify_etl.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def open_lake(settings: Settings) -> Lake:
    if settings.target == "aws":
        from airflow.providers.amazon.aws.fs.s3 import get_fs

        settings.lake_url  # noqa: B018 - raises a clear error when the bucket is not set
        return Lake.s3(get_fs(settings.aws_conn_id), settings.s3_bucket, settings.s3_prefix,
                       sse=settings.s3_sse, kms_key_id=settings.s3_sse_kms_key_id)
    return pipeline.local_lake(settings)


def is_backfill(dag_run: Any) -> bool:
    return str(getattr(dag_run, "run_type", "")).lower().endswith("backfill")


def spotify_connection(settings: Settings) -> Any | None:
    try:
        return BaseHook.get_connection(settings.spotify_conn_id)
    except AirflowNotFoundException:
        return None


@contextmanager
def fail_fast_on(*errors: type[BaseException]) -> Iterator[None]:
    """Turn errors that a retry cannot heal (bad input, failed checks) into a failure without retries."""
    try:
        yield
    except errors as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def requested_playlists(params: dict[str, Any], dag_run: Any) -> list[Any] | None:
    """The ``playlists`` param if the run was given it (in its conf), else None.

    ``params`` always holds a value (the default from include/config/playlists.toml); only
    the conf tells a list someone chose for this run from the default, which a reprocess
    ignores (it publishes every playlist landed for the date).
    """
    conf = getattr(dag_run, "conf", None) or {}
    return params.get(PARAM) if PARAM in conf else None


def publish_plan(ti: Any, result: RunPlan) -> list[str]:
    """Push the plan's mode, message and scope for later tasks; return the playlists to extract (mapped over)."""
    ti.xcom_push(key="mode", value=result.mode)
    ti.xcom_push(key="message", value=result.message)
    ti.xcom_push(key="playlists", value=list(result.playlists))
    return result.to_extract


def _extract_results(ti: Any) -> list[dict[str, Any]]:
    results = ti.xcom_pull(task_ids="extract_playlist", key="return_value") or []
    return [results] if isinstance(results, dict) else list(results)


def run_scope(ti: Any, mode: str) -> list[str]:
    """The playlists this run's tables hold: those extracted by this run (a failed extract is
    absent), or for a reprocess the plan's list. Never every document landed for the date."""
    planned = ti.xcom_pull(task_ids="plan", key="playlists") or []
    if mode == EXTRACT:
        return pipeline.extracted_playlists(planned, _extract_results(ti))
    return list(planned)


def run_extract(settings: Settings, playlist_id: str, day: str) -> dict[str, Any]:
    """Land one playlist. The source is built here, so a connection that cannot work fails at once too."""
    extracted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")  # metadata only, not the partition
    try:
        source = pipeline.choose_source(settings, spotify_connection(settings))
        return pipeline.extract(source, open_lake(settings), playlist_id, day, extracted_at).as_dict()
    except (SettingsError, RuntimeError) as exc:
        # A missing or unusable connection, 404/403, refused credentials: retrying cannot help.
        if isinstance(exc, SettingsError) or getattr(exc, "retryable", True) is False:
            message = str(exc) if str(exc).startswith(f"playlist {playlist_id}") else f"playlist {playlist_id}: {exc}"
            raise AirflowFailException(message) from None
        raise


def run_transform(settings: Settings, ti: Any, day: str) -> dict[str, Any]:
    from spotify_etl.transform import transform_day

    mode = ti.xcom_pull(task_ids="plan", key="mode")
    if mode is None:
        raise AirflowFailException("the plan task did not succeed; nothing to transform (see the plan task's log)")
    if mode == SKIP:
        message = ti.xcom_pull(task_ids="plan", key="message")
        log.info(message)  # Airflow does not log a skip exception's message
        raise AirflowSkipException(message)
    from spotify_etl.transform import TransformError

    playlists = run_scope(ti, mode)
    with fail_fast_on(TransformError):
        result = transform_day(
            open_lake(settings),
            day,
            playlists=playlists,
            memory_limit=settings.duckdb_memory_limit,
            threads=settings.duckdb_threads,
        )
        return result.as_dict()


def describe_asset_events(outlet_events: Any, assets: list[Any], settings: Settings, result: dict[str, Any]) -> None:
    """Each table asset's event names the partition this run wrote: ``dt``, its location and rows.

    The assets' identity does not follow the settings (see the DAG file); the events do.
    """
    for asset in assets:
        table = asset.name.rsplit(".", 1)[-1]
        outlet_events[asset].extra = {
            "dt": result["dt"], "location": f"{settings.table_url(table)}/dt={result['dt']}", "rows": result["rows"][table],
        }


def check_extracts(ti: Any) -> dict[str, Any]:
    mode = ti.xcom_pull(task_ids="plan", key="mode")
    if mode is None:
        raise AirflowFailException("the plan task did not succeed (see its log)")
    expected = ti.xcom_pull(task_ids="plan") or []
    results = _extract_results(ti)
    missing = pipeline.missing_extracts(expected, results)
    if missing:
        raise AirflowFailException(
            f"{len(missing)} of {len(expected)} playlists failed to extract and are missing from this date's "
            f"tables: {', '.join(missing)} (see their extract_playlist task logs); the others were transformed"
        )
    summary = {"mode": mode, "playlists": len(expected), "api_calls": sum(r.get("api_calls", 0) for r in results)}
    log.info("extract summary: %s", summary)
    return summary


def validate_local(settings: Settings, day: str) -> list[str]:
    from spotify_etl import quality
    from spotify_etl.warehouse import local

    results = local.run_validation(settings.duckdb_path, day, settings.database, settings.table_prefix)
    for r in results:
        log.info(r.describe())
    with fail_fast_on(quality.ValidationFailed):
        quality.judge(results, day)
    return [r.describe() for r in results]
