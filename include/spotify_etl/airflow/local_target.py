"""The ``local`` target's catalog and validate tasks: DuckDB views over the lake, then
include/sql/validate.sql in DuckDB."""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from spotify_etl.settings import Settings


def catalog_and_validate(settings: Settings, upstream: Any) -> Any:
    """Add ``catalog`` and ``validate`` downstream of ``upstream``; return ``validate``."""

    @task
    def catalog() -> dict[str, str]:
        from spotify_etl import pipeline
        from spotify_etl.airflow.tasks import open_lake

        return pipeline.catalog_local(
            open_lake(settings), settings.duckdb_path, settings.database, settings.table_prefix
        )

    @task
    def validate(ds: str) -> list[str]:
        import logging

        from spotify_etl import pipeline
        from spotify_etl.airflow import lineage
        from spotify_etl.airflow.tasks import fail_fast, open_lake

        lake = open_lake(settings)
        lineage.report(lake, inputs=lineage.partitions(lake, ds))  # what validate.sql reads, through the views
        with fail_fast():  # a failed check: the data, not the try, must change
            results = pipeline.validate_local(settings.duckdb_path, ds, settings.database, settings.table_prefix,
                                              report=logging.getLogger(__name__).info)  # fmt: skip
        return [r.describe() for r in results]

    verdict = validate()
    upstream >> catalog() >> verdict
    return verdict
