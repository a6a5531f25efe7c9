"""The ``local`` target's catalog and validate tasks: DuckDB views over the lake, then
include/sql/validate.sql in DuckDB."""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from spotify_etl.settings import Settings
from spotify_etl.targets import LocalTarget


def catalog_and_validate(settings: Settings, upstream: Any) -> Any:
    """Add ``catalog`` and ``validate`` downstream of ``upstream``; return ``validate``."""

    local = LocalTarget(settings)

    @task
    def catalog() -> dict[str, str]:
        return local.catalog(local.open_lake())

    @task
    def validate(ds: str) -> list[str]:
        import logging

        from spotify_etl import quality
        from spotify_etl.airflow import lineage
        from spotify_etl.airflow.tasks import fail_fast

        lake = local.open_lake()
        lineage.report(lake, inputs=lineage.partitions(lake, ds))  # what validate.sql reads, through the views
        with fail_fast():  # a failed check: the data, not the try, must change
            results = quality.report_and_judge(local.check_results(ds), ds, report=logging.getLogger(__name__).info)
        return [r.describe() for r in results]

    verdict = validate()
    upstream >> catalog() >> verdict
    return verdict
