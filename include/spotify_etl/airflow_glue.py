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
from spotify_etl.plan import SKIP, RunPlan
from spotify_etl.settings import Settings

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


def publish_plan(ti: Any, result: RunPlan) -> list[str]:
    """Push the plan's mode and message for later tasks; return the playlists to extract (mapped over)."""
    ti.xcom_push(key="mode", value=result.mode)
    ti.xcom_push(key="message", value=result.message)
    return list(result.playlists)


def run_extract(source: Any, lake: Lake, playlist_id: str, day: str) -> dict[str, Any]:
    extracted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")  # metadata only, not the partition
    try:
        return pipeline.extract(source, lake, playlist_id, day, extracted_at).as_dict()
    except RuntimeError as exc:
        if getattr(exc, "retryable", True) is False:  # 404/403, refused credentials: retrying cannot help
            raise AirflowFailException(str(exc)) from None
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

    with fail_fast_on(TransformError):
        return transform_day(open_lake(settings), day, memory_limit=settings.duckdb_memory_limit,
                             threads=settings.duckdb_threads).as_dict()


def check_extracts(ti: Any) -> dict[str, Any]:
    mode = ti.xcom_pull(task_ids="plan", key="mode")
    if mode is None:
        raise AirflowFailException("the plan task did not succeed (see its log)")
    expected = ti.xcom_pull(task_ids="plan") or []
    results = ti.xcom_pull(task_ids="extract_playlist", key="return_value") or []
    if isinstance(results, dict):
        results = [results]
    missing = pipeline.missing_extracts(expected, list(results))
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
