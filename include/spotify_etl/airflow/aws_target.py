"""The ``aws`` target's catalog and validate stages: Glue crawler, then Athena.

The Amazon provider's operators are imported inside :func:`catalog_and_validate`, so they
are loaded at parse time only when the DAG is built for ``SPOTIFY_ETL_TARGET=aws``. Nothing
here calls AWS while the DAG is parsed: the crawler config is built from settings; every
AWS call happens in a task.

``GlueCrawlerOperator`` (the design's choice) is deprecated in amazon provider 9.39; the
``catalog`` group keeps its behaviour with the current operators: create the crawler if
it is missing, recreate it if its config changed, then run it and wait in the triggerer.
A changed crawler is recreated, not updated: AWS refuses new S3 targets for a
``CRAWL_NEW_FOLDERS_ONLY`` crawler and such a crawler adds no table after its first crawl,
while a new crawler's first crawl is a full one (AWS's documented way to re-baseline it).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import TaskGroup, task

from spotify_etl import quality
from spotify_etl.errors import PipelineError
from spotify_etl.settings import Settings
from spotify_etl.targets import AwsTarget
from spotify_etl.warehouse import aws

log = logging.getLogger(__name__)

# Crawls take minutes and Athena checks seconds; the triggerer polls, so short delays cost no worker.
CRAWLER_POLL_SECONDS = 5  # the provider's trigger gives up after 1500 polls
ATHENA_POLL_SECONDS = 5
ATHENA_MAX_POLLS = 360  # 30 min; the checks scan one day of six small tables


def athena_query(template: str, *names: str) -> str:
    """The query Airflow renders from ``include/sql/<template>`` (on the DAG's template_searchpath)
    with the names spotify_etl.quality renders it with for DuckDB, so both targets run the same
    text: ``database`` and ``table_prefix`` from the task's params, and ``names`` (``dt=ds``)."""
    bound = ", ".join((*names, "database=params.database", "table_prefix=params.table_prefix"))
    return f"{{% with {bound} %}}{{% include '{template}' %}}{{% endwith %}}"


VALIDATION_QUERY = athena_query("validate.sql", "dt=ds")


class CrawlerBusy(PipelineError, RuntimeError):
    """The crawler must change but is crawling; a retry after the crawl ends can change it."""


def _busy(name: str, state: str, changes: list[str]) -> CrawlerBusy:
    return CrawlerBusy(
        f"crawler {name} differs from the settings in {', '.join(changes)} but is {state}, and AWS changes no "
        f"running crawler: this task retries; to go on now, wait for the crawl to end or stop it "
        f"(aws glue stop-crawler --name {name})"
    )


def choose_crawler_action(hook: Any, config: dict[str, Any], create_id: str, recreate_id: str, run_id: str) -> str:
    """Branch target: create a missing crawler, recreate a changed one, else go straight to the run."""
    name = config["Name"]
    if not hook.has_crawler(name):
        log.info("crawler %s does not exist: creating it", name)
        return create_id
    current = hook.get_crawler(name)
    changes = aws.crawler_changes(current, config)
    if not changes:
        log.info("crawler %s is up to date", name)
        return run_id
    if current.get("State", "READY") != "READY":
        raise _busy(name, current["State"], changes)
    log.info(
        "crawler %s differs in %s: recreating it (its first crawl then reads every folder)", name, ", ".join(changes)
    )
    return recreate_id


def recreate_crawler(hook: Any, config: dict[str, Any]) -> None:
    """Delete the crawler and create it with ``config``. Idempotent: a retry after the delete
    only creates it, a retry after the create leaves it alone."""
    name = config["Name"]
    errors = hook.glue_client.exceptions
    try:
        current = hook.get_crawler(name)
    except errors.EntityNotFoundException:
        log.info("crawler %s is already gone (an earlier try deleted it)", name)
    else:
        changes = aws.crawler_changes(current, config)
        if not changes:
            log.info("crawler %s already has this config (an earlier try recreated it)", name)
            return
        if current.get("State", "READY") != "READY":
            raise _busy(name, current["State"], changes)
        try:
            hook.glue_client.delete_crawler(Name=name)
        except errors.CrawlerRunningException as exc:  # started since the check
            raise _busy(name, "RUNNING", changes) from exc
        log.info("deleted crawler %s", name)
    hook.create_crawler(**config)


def judge_athena_result(hook: Any, query_execution_id: str, day: str) -> list[str]:
    """Judge the finished validation query like the local target does; a failed check fails without retries."""
    from spotify_etl.airflow.tasks import fail_fast

    results = AwsTarget.check_results(aws.query_result_pages(hook, query_execution_id))
    log.info("Athena query %s returned %d checks", query_execution_id, len(results))
    with fail_fast():  # a finished query's result never changes
        quality.report_and_judge(results, day, report=log.info)
    return [r.describe() for r in results]


def catalog_and_validate(settings: Settings, transformed: Any) -> Any:
    """Add ``catalog`` (Glue) and ``validate`` (Athena) downstream of ``transformed``; return ``validate``."""
    from airflow.providers.amazon.aws.operators.athena import AthenaOperator

    conn: dict[str, Any] = {"aws_conn_id": settings.aws_conn_id}
    catalog = _catalog(settings, AwsTarget(settings).crawler_config(), conn)
    athena_validation = AthenaOperator(task_id="athena_validation", query=VALIDATION_QUERY, **_athena(settings))

    @task(task_id="validate")
    def validate(query_execution_id: str, day: str) -> list[str]:
        from airflow.providers.amazon.aws.hooks.athena import AthenaHook

        return judge_athena_result(AthenaHook(aws_conn_id=settings.aws_conn_id), query_execution_id, day)

    verdict = validate(athena_validation.output, day="{{ ds }}")
    transformed >> catalog >> athena_validation
    return verdict


def _athena(settings: Settings) -> dict[str, Any]:
    """The arguments every Athena query of the DAG takes: where it runs, its template's params, polling."""
    return {
        "database": settings.database,
        "params": {"database": settings.database, "table_prefix": settings.table_prefix},
        "workgroup": settings.athena_workgroup,
        "output_location": settings.athena_output or None,
        "deferrable": True,
        "sleep_time": ATHENA_POLL_SECONDS,
        "max_polling_attempts": ATHENA_MAX_POLLS,
        "aws_conn_id": settings.aws_conn_id,
    }


def _catalog(settings: Settings, config: dict[str, Any], conn: dict[str, Any]) -> TaskGroup:
    """The ``catalog`` group: the Glue database, then the crawler created, recreated or left as it
    is (:func:`choose_crawler_action`), then its run, waited for in the triggerer, then the history
    views (``CREATE OR REPLACE VIEW``, one Athena query each: Athena runs one statement per query)."""
    from airflow.providers.amazon.aws.operators.athena import AthenaOperator
    from airflow.providers.amazon.aws.operators.glue_catalog import GlueCatalogCreateDatabaseOperator
    from airflow.providers.amazon.aws.operators.glue_crawler import GlueCrawlerCreateOperator, GlueCrawlerRunOperator

    with TaskGroup("catalog", tooltip="Glue database and crawler over the Parquet tables") as catalog:
        database = GlueCatalogCreateDatabaseOperator(
            task_id="database",
            database_name=settings.database,
            if_exists="skip",
            description="Spotify playlist tables (spotify_playlist_etl)",
            **conn,
        )
        create_crawler = GlueCrawlerCreateOperator(task_id="create_crawler", config=config, **conn)
        run_crawler = GlueCrawlerRunOperator(
            task_id="run_crawler",
            crawler_name=settings.crawler_name,
            deferrable=True,
            poll_interval=CRAWLER_POLL_SECONDS,
            trigger_rule="none_failed_min_one_success",
            **conn,
        )

        @task(task_id="recreate_crawler")
        def recreate() -> None:
            from airflow.providers.amazon.aws.hooks.glue_crawler import GlueCrawlerHook

            recreate_crawler(GlueCrawlerHook(aws_conn_id=settings.aws_conn_id), config)

        recreate_task = recreate()
        recreate_id = recreate_task.operator.task_id  # type: ignore[attr-defined]  # a PlainXComArg

        @task.branch(task_id="crawler_action")
        def crawler_action() -> str:
            from airflow.providers.amazon.aws.hooks.glue_crawler import GlueCrawlerHook

            hook = GlueCrawlerHook(aws_conn_id=settings.aws_conn_id)
            return choose_crawler_action(hook, config, create_crawler.task_id, recreate_id, run_crawler.task_id)

        action = crawler_action()
        database >> action >> [create_crawler, recreate_task, run_crawler]
        [create_crawler, recreate_task] >> run_crawler
        for view, template in AwsTarget.history_view_templates().items():
            run_crawler >> AthenaOperator(task_id=f"view_{view}", query=athena_query(template), **_athena(settings))
    return catalog
