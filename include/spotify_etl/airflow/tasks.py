"""What the DAG's TaskFlow tasks run: connections, run context and task outcomes.

Imported only inside task bodies (never at DAG parse time). Data flows between tasks as
TaskFlow arguments; :func:`fail_fast` is the one place that turns an error no retry can
heal (``PipelineError.retryable`` false) into a failure without retries.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.api.datamodels._generated import DagRunType  # the type of the context's dag_run.run_type
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException
from airflow.sdk.log import mask_secret

from spotify_etl import pipeline
from spotify_etl.errors import PipelineError
from spotify_etl.lake import Lake
from spotify_etl.plan import EXTRACT, PARAM, SKIP
from spotify_etl.settings import Settings
from spotify_etl.spotify.redaction import also_mask_with

if TYPE_CHECKING:
    from airflow.sdk import Asset
    from airflow.sdk.types import DagRunProtocol, OutletEventAccessorsProtocol, TaskInstance

log = logging.getLogger(__name__)
also_mask_with(mask_secret)  # Spotify secrets also go to Airflow's masker, for every path into the task log
PLAN_FAILED = "plan_failed"  # the mode a failed plan task publishes


@contextmanager
def fail_fast(playlist_id: str | None = None) -> Iterator[None]:
    """Fail at once, without Airflow's retries, on a :class:`PipelineError` that says no retry can
    heal it (bad input, refused credentials, a failed check). ``playlist_id`` prefixes the message."""
    try:
        yield
    except PipelineError as exc:
        if exc.retryable:
            raise
        message = f"{type(exc).__name__}: {exc}"
        if playlist_id is not None:
            message = str(exc) if str(exc).startswith(f"playlist {playlist_id}") else f"playlist {playlist_id}: {exc}"
        raise AirflowFailException(message) from (None if playlist_id else exc)


def open_lake(settings: Settings) -> Lake:
    """The settings' lake; S3 through the Airflow AWS connection (the provider's filesystem)."""

    def s3_filesystem(conn_id: str) -> Any:
        from airflow.providers.amazon.aws.fs.s3 import get_fs

        return get_fs(conn_id)

    return Lake.from_settings(settings, s3_filesystem)


def is_backfill(dag_run: DagRunProtocol) -> bool:
    return dag_run.run_type == DagRunType.BACKFILL


def spotify_connection(settings: Settings) -> Any | None:
    try:
        return BaseHook.get_connection(settings.spotify_conn_id)
    except AirflowNotFoundException:
        return None


def requested_playlists(params: dict[str, Any], dag_run: DagRunProtocol) -> list[Any] | None:
    """The ``playlists`` param if the run was given it (in its conf), else None.

    ``params`` always holds a value (the default from include/config/playlists.toml); only
    the conf tells a list someone chose for this run from the default, which a reprocess
    ignores (it publishes every playlist landed for the date).
    """
    conf = dag_run.conf or {}
    return params.get(PARAM) if PARAM in conf else None


def plan(settings: Settings, params: dict[str, Any], logical_date: dt.datetime, dag_run: DagRunProtocol,
         ti: TaskInstance) -> list[str]:  # fmt: skip
    """Plan the run for its logical date; return the playlists to extract (the extract task maps over them).

    The plan's mode, message and scope are pushed beside the return value, and the later tasks
    take them as arguments (``planned["mode"]``...): Airflow maps only over a task's return
    value, never over one key of ``multiple_outputs``. A failed plan pushes ``mode`` =
    :data:`PLAN_FAILED`: the later tasks run anyway (trigger rule ``all_done``) and, with the
    keys absent, would fail on XComNotFound only after their retries; this way they fail at once.
    """
    started = (ti.start_date or logical_date).date()  # when this task really started
    try:
        with fail_fast():  # bad or missing ids: retrying cannot help
            result = pipeline.plan(
                open_lake(settings), settings, logical_date.date(), started, is_backfill(dag_run),
                requested_playlists(params, dag_run), connection=lambda: spotify_connection(settings),
            )  # fmt: skip
    except Exception:
        _publish(ti, PLAN_FAILED, "the plan task did not succeed (see its log)", [])
        raise
    _publish(ti, result.mode, result.message, result.playlists)
    return result.to_extract


def _publish(ti: TaskInstance, mode: str, message: str, playlists: list[str]) -> None:
    ti.xcom_push(key="mode", value=mode)
    ti.xcom_push(key="message", value=message)
    ti.xcom_push(key="playlists", value=list(playlists))


def extract_results(extracted: Iterable[dict[str, Any] | None] | None) -> list[dict[str, Any]]:
    """The mapped extract's results as the TaskFlow argument holds them: one per instance that
    succeeded (a failed instance pushed no result, so it is absent)."""
    return [r for r in (extracted or []) if r]


def run_scope(mode: str, planned: list[str], extracted: list[dict[str, Any]]) -> list[str]:
    """The playlists this run's tables hold: those extracted by this run (a failed extract is
    absent), or for a reprocess the plan's list. Never every document landed for the date."""
    if mode == EXTRACT:
        return pipeline.extracted_playlists(planned, extracted)
    return list(planned)


def run_extract(settings: Settings, playlist_id: str, day: str) -> dict[str, Any]:
    """Land one playlist. The source is built here, so a connection that cannot work fails at once too."""
    extracted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")  # metadata only, not the partition
    with fail_fast(playlist_id):  # a missing or unusable connection, 404/403, refused credentials
        source = pipeline.choose_source(settings, spotify_connection(settings))
        return pipeline.extract(source, open_lake(settings), playlist_id, day, extracted_at).as_dict()


def run_transform(settings: Settings, day: str, mode: str, message: str, planned: list[str],
                  extracted: Iterable[dict[str, Any] | None] | None) -> dict[str, Any]:  # fmt: skip
    """Transform the run's scope; ``mode``, ``message`` and ``planned`` (the run's playlists) come from the plan."""
    from spotify_etl.transform import transform_day

    if mode == PLAN_FAILED:
        raise AirflowFailException("the plan task did not succeed; nothing to transform (see the plan task's log)")
    if mode == SKIP:
        log.info(message)  # Airflow does not log a skip exception's message
        raise AirflowSkipException(message)
    playlists = run_scope(mode, list(planned), extract_results(extracted))
    with fail_fast():
        result = transform_day(
            open_lake(settings),
            day,
            playlists=playlists,
            memory_limit=settings.duckdb_memory_limit,
            threads=settings.duckdb_threads,
        )
        return result.as_dict()


def describe_asset_events(outlet_events: OutletEventAccessorsProtocol, assets: list[Asset], settings: Settings,
                          result: dict[str, Any]) -> None:  # fmt: skip
    """Each table asset's event names the partition this run wrote: ``dt``, its location and rows.

    The assets' identity does not follow the settings (see the DAG file); the events do.
    """
    for asset in assets:
        table = asset.name.rsplit(".", 1)[-1]
        outlet_events[asset].extra = {
            "dt": result["dt"],
            "location": f"{settings.table_url(table)}/dt={result['dt']}",
            "rows": result["rows"][table],
        }


def check_extracts(mode: str, expected: list[str] | None,
                   extracted: Iterable[dict[str, Any] | None] | None) -> dict[str, Any]:  # fmt: skip
    """Fail naming every planned playlist whose extract failed; ``expected``: the plan's playlists to extract."""
    if mode == PLAN_FAILED:
        raise AirflowFailException("the plan task did not succeed (see its log)")
    expected = list(expected or [])
    results = extract_results(extracted)
    missing = pipeline.missing_extracts(expected, results)
    if missing:
        raise AirflowFailException(
            f"{len(missing)} of {len(expected)} playlists failed to extract and are missing from this date's "
            f"tables: {', '.join(missing)} (see their extract_playlist task logs); the others were transformed"
        )
    summary = {"mode": mode, "playlists": len(expected), "api_calls": sum(r.get("api_calls", 0) for r in results)}
    log.info("extract summary: %s", summary)
    return summary
