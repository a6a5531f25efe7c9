"""What the DAG's TaskFlow tasks run: connections, run context and task outcomes.

Imported only inside task bodies (never at DAG parse time). Data flows between tasks as
TaskFlow arguments, the plan as one value (:func:`run_plan`); :func:`fail_fast` is the one place that turns an error no retry can
heal (``PipelineError.retryable`` false) into a failure without retries.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException
from airflow.sdk.log import mask_secret

from spotify_etl import chunks, pipeline
from spotify_etl.airflow import lineage, metrics
from spotify_etl.errors import PipelineError, first_few
from spotify_etl.lake import Lake
from spotify_etl.plan import EXTRACT, PARAM, SKIP, RunPlan
from spotify_etl.settings import MAX_DERIVED_CHUNK_SIZE, Settings
from spotify_etl.spotify.redaction import also_mask_with
from spotify_etl.targets import target

if TYPE_CHECKING:
    from airflow.sdk import Asset
    from airflow.sdk.types import DagRunProtocol, OutletEventAccessorsProtocol, TaskInstance

log = logging.getLogger(__name__)
also_mask_with(mask_secret)  # Spotify secrets also go to Airflow's masker, for every path into the task log
# A backfill's dag_run.run_type (a str enum): the value the REST API's DagRunType names "backfill"; the
# task SDK's enum lives in a private module (airflow.sdk.api.datamodels._generated).
BACKFILL_RUN_TYPE = "backfill"


@contextmanager
def fail_fast() -> Iterator[None]:
    """Fail at once, without Airflow's retries, on a :class:`PipelineError` that says no retry can
    heal it (bad input, refused credentials, a failed check). A chunk of extracts decides its
    outcome itself (:func:`run_extract_chunk`)."""
    try:
        yield
    except PipelineError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def open_lake(settings: Settings) -> Lake:
    """The settings' lake; S3 through the Airflow AWS connection (the provider's filesystem)."""

    def s3_filesystem(conn_id: str) -> Any:
        from airflow.providers.amazon.aws.fs.s3 import get_fs

        return get_fs(conn_id)

    return target(settings).open_lake(s3_filesystem)


def is_backfill(dag_run: DagRunProtocol) -> bool:
    return dag_run.run_type == BACKFILL_RUN_TYPE


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


def run_plan(settings: Settings, params: dict[str, Any], logical_date: dt.datetime, dag_run: DagRunProtocol,
             ti: TaskInstance) -> dict[str, Any]:  # fmt: skip
    """Plan the run for its logical date: the one value the later tasks take (:class:`RunPlan`, as a dict)."""
    # When this task really started, from the task context (not the wall clock, so every try and
    # test sees the time Airflow recorded): how far behind its date the run is, and a logical date
    # after it is refused (plan.decide).
    started = (ti.start_date or logical_date).date()
    with fail_fast():  # bad or missing ids: retrying cannot help
        result = pipeline.plan(
            open_lake(settings), settings, logical_date.date(), started, is_backfill(dag_run),
            requested_playlists(params, dag_run), connection=lambda: spotify_connection(settings),
        )  # fmt: skip
    return result.as_dict()


def received_plan(planned: dict[str, Any] | None) -> RunPlan:
    """The plan task's result as a later task receives it. A failed plan task returned nothing
    (None): the tasks that run anyway (trigger rule ``all_done``) fail at once, without retries."""
    if planned is None:
        raise AirflowFailException("the plan task did not succeed, so this run has no plan (see the plan task's log)")
    return RunPlan.from_dict(planned)


def plan_chunks(settings: Settings, planned: dict[str, Any] | None) -> list[list[str]]:
    """The plan's playlists to extract in chunks of ``settings.extract_chunk_size``, or of a size derived
    from their count (:func:`chunks.plan_chunks`), one mapped extract task each: Airflow maps only over
    a task's whole return value, never over one key of it."""
    return chunks.plan_chunks(
        received_plan(planned).to_extract,
        settings.spotify_pool_slots,
        MAX_DERIVED_CHUNK_SIZE,
        settings.extract_chunk_size,
    )


def chunk_outcomes(extracted: Sequence[dict[str, Any] | None] | None) -> list[dict[str, Any] | None]:
    """The mapped extract's chunk outcomes, as the TaskFlow argument holds them, read at once: Airflow
    hands a lazy sequence that asks the API server once per chunk each time it is iterated, and once
    in all for a slice. A chunk task that pushed no outcome (killed, say) is None."""
    return [] if extracted is None else list(extracted[:])


def extract_results(outcomes: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """The landed playlists' results from the chunk outcomes (:func:`chunk_outcomes`)."""
    return [r for chunk in outcomes if chunk for r in chunk.get("landed", [])]


def extract_failures(outcomes: Iterable[dict[str, Any] | None]) -> dict[str, str]:
    """Playlist id -> error text of every playlist a chunk reported as failed."""
    return {f["playlist_id"]: f["error"] for chunk in outcomes if chunk for f in chunk.get("failed", [])}


def run_scope(plan: RunPlan, extracted: list[dict[str, Any]]) -> list[str]:
    """The playlists this run's tables hold: of the run's playlists (``plan.playlists``), those extracted
    by this run (a failed extract is absent), or for a reprocess all of them. Never every document landed for the date."""
    if plan.mode == EXTRACT:
        return pipeline.extracted_playlists(plan.playlists, extracted)
    return list(plan.playlists)


class ChunkIncomplete(PipelineError, RuntimeError):
    """Some playlists of the chunk failed and a retry may land them."""


def run_extract_chunk(settings: Settings, chunk: list[str], day: str, dag_run: DagRunProtocol,
                      ti: TaskInstance, context: Any) -> dict[str, Any]:  # fmt: skip
    """Land a chunk of playlists with one source (one Spotify token); return its outcome.

    Every playlist that can land does. Then, if some failed: with a retryable failure and a
    try left, the task fails to be retried (the retry skips what this run landed, see
    :mod:`spotify_etl.chunks`); otherwise (only failures no retry can heal, or the last try)
    the outcome is pushed as the task's result, so the transform still publishes the landed
    playlists and ``check_extracts`` names the failed ones, and the task fails at once.
    """
    context["chunk_label"] = chunks.chunk_label(chunk)  # the UI's rendered map index
    extracted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")  # metadata only, not the partition
    lake = open_lake(settings)
    outcome = chunks.extract_chunk(
        lambda: pipeline.choose_source(settings, spotify_connection(settings)),
        lake, chunk, day, extracted_at,
        run=chunks.run_marker(dag_run.run_id, getattr(dag_run, "clear_number", 0)),
        resume=ti.try_number > 1, in_flight=settings.extract_in_flight,
    )  # fmt: skip
    metrics.extract_chunk(outcome.landed, len(outcome.failed))
    lineage.report(lake, outputs=[r["path"] for r in outcome.landed])
    result = outcome.as_dict()
    if not outcome.failed:
        return result
    message = f"{len(outcome.failed)} of {len(chunk)} playlists failed: {outcome.describe_failures()}"
    if any(f["retryable"] for f in outcome.failed) and ti.try_number <= ti.max_tries:
        raise ChunkIncomplete(f"{message}; a retry extracts only these")
    ti.xcom_push(key="return_value", value=result)  # a failed task returns nothing: push its outcome itself
    raise AirflowFailException(message)


def run_transform(settings: Settings, day: str, planned: dict[str, Any] | None,
                  extracted: Sequence[dict[str, Any] | None] | None, dag_run: DagRunProtocol) -> dict[str, Any]:  # fmt: skip
    """Transform the run's scope (:func:`run_scope`), then record the run in the run log;
    ``planned``: the plan task's result."""
    from spotify_etl.transform import transform_day

    plan = received_plan(planned)
    if plan.mode == SKIP:
        log.info(plan.message)  # Airflow does not log a skip exception's message
        raise AirflowSkipException(plan.message)
    landed = extract_results(chunk_outcomes(extracted))
    playlists = run_scope(plan, landed)
    lake = open_lake(settings)
    with fail_fast():
        result = transform_day(
            lake,
            day,
            playlists=playlists,
            memory_limit=settings.duckdb_memory_limit,
            threads=settings.duckdb_threads,
        ).as_dict()
    record_run(lake, dag_run, plan, landed, result)
    metrics.transform(result)
    lineage.report(lake, inputs=lineage.raw_documents(lake, day, playlists), outputs=lineage.partitions(lake, day))
    return result


def record_run(lake: Lake, dag_run: DagRunProtocol, plan: RunPlan,
               landed: list[dict[str, Any]], result: dict[str, Any]) -> None:  # fmt: skip
    """Write the run's row of the run log (:mod:`spotify_etl.runlog`); ``landed``: the extract's
    results (:func:`extract_results`). Who ran and when come from the DAG run (its start as Airflow
    recorded it, ``run_after`` before it has one), never the clock."""
    from spotify_etl import runlog

    row = runlog.build_row(
        run_id=dag_run.run_id,
        run_type=getattr(dag_run.run_type, "value", dag_run.run_type),  # the enum's value: "backfill"...
        started_at=dag_run.start_date or dag_run.run_after,
        mode=plan.mode,
        planned=plan.playlists,
        extracted=landed,
        transformed=result,
    )
    runlog.write_row(lake, row)


def describe_asset_events(outlet_events: OutletEventAccessorsProtocol, assets: list[Asset], settings: Settings,
                          result: dict[str, Any]) -> None:  # fmt: skip
    """Each table asset's event names the partition this run wrote: ``dt``, its location and rows.

    The assets' identity does not follow the settings (see the DAG file); the events do.
    """
    for asset in assets:
        table = asset.name.rsplit(".", 1)[-1]
        outlet_events[asset].extra = {
            "dt": result["dt"],
            "location": f"{target(settings).table_url(table)}/dt={result['dt']}",
            "rows": result["rows"][table],
        }


def run_report(settings: Settings, day: str, event: Any) -> str:
    """Make ``day``'s trends report from the target's catalog (:mod:`spotify_etl.report`), name it in
    the report asset's ``event``; return its URL. A failure is retried (a report only reads the
    published tables and writes under ``reports/``)."""
    from spotify_etl import report

    def athena() -> Any:
        from airflow.providers.amazon.aws.hooks.athena import AthenaHook

        return AthenaHook(aws_conn_id=settings.aws_conn_id)

    lake = open_lake(settings)
    url = report.make_report(lake, day, lambda: target(settings).report_data(day, athena), settings.database)
    event.extra = {"dt": day, "location": url}
    return url


def check_extracts(planned: dict[str, Any] | None,
                   extracted: Sequence[dict[str, Any] | None] | None) -> dict[str, Any]:  # fmt: skip
    """Fail naming the plan's playlists to extract whose extract failed (the first few, with their
    errors, and how many more); ``planned``: the plan task's result."""
    plan = received_plan(planned)
    to_extract = plan.to_extract
    outcomes = chunk_outcomes(extracted)
    results = extract_results(outcomes)
    missing = pipeline.missing_extracts(to_extract, results)
    if missing:
        errors = extract_failures(outcomes)
        named = [errors.get(p, f"playlist {p}: its extract task reported nothing") for p in missing]
        raise AirflowFailException(
            f"{len(missing)} of {len(to_extract)} playlists failed to extract and are missing from this date's "
            f"tables: {first_few(missing)} (see their extract_playlist task logs); the others were transformed. "
            f"Errors: {first_few(named, sep='; ')}"
        )
    summary = {
        "mode": plan.mode,
        "playlists": len(to_extract),
        "api_calls": sum(r.get("api_calls", 0) for r in results),
    }
    log.info("extract summary: %s", summary)
    return summary
