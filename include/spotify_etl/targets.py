"""The targets, one class each, named in one map (:data:`TARGETS`), like dlt's destinations.

A target owns all that differs between ``local`` (a folder lake, DuckDB as catalog) and ``aws``
(S3, a Glue crawler, Athena): where the lake is and how to open it, where a table lives, whether
the embedded sample data may stand in for Spotify, and its share of cataloging and validating.
Nothing else asks which target runs; the Airflow layer keeps one builder per target over these
(:mod:`spotify_etl.airflow.targets`). The history views (:mod:`spotify_etl.history`) and reports
(the dashboards issue) belong here too, one method per concern on each class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from spotify_etl.lake import LocalLake, S3Lake, table_path

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from spotify_etl.lake import Lake
    from spotify_etl.quality import CheckResult
    from spotify_etl.report import Rows
    from spotify_etl.settings import Settings

# Opens S3 for an AWS connection id; the Airflow layer passes the Amazon provider's get_fs.
S3Filesystem = Callable[[str], "AbstractFileSystem"]
# Makes an Athena client for the settings' AWS connection; the Airflow layer passes the provider's AthenaHook.
AthenaClient = Callable[[], Any]


class Target(ABC):
    """Where a run writes, built from the settings (it reads nothing else and calls nothing)."""

    samples_allowed: ClassVar[bool]  # may the embedded sample data stand in for a missing Spotify connection
    # Are the lake and its catalog files on this machine (``make run`` runs the DAG here and reads its tables)?
    on_this_machine: ClassVar[bool]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    @abstractmethod
    def lake_url(self) -> str:
        """Root URL of the lake; raises a clear error for a missing required setting."""

    def table_url(self, table: str) -> str:
        return f"{self.lake_url}/{table_path(table)}"

    @abstractmethod
    def open_lake(self, s3_filesystem: S3Filesystem | None = None) -> Lake:
        """The lake; ``s3_filesystem`` opens S3 for an AWS connection id."""

    @abstractmethod
    def report_data(self, day: str, athena: AthenaClient | None = None) -> dict[str, Rows]:
        """The trends report's query results for ``day`` (:mod:`spotify_etl.report`): query -> rows,
        from the target's catalog; ``athena`` makes the Athena client where the catalog is Athena's."""


class LocalTarget(Target):
    """A folder lake, cataloged as DuckDB views and validated in DuckDB."""

    samples_allowed = True
    on_this_machine = True

    @property
    def lake_url(self) -> str:
        return self.settings.lake_dir.as_uri()

    def open_lake(self, s3_filesystem: S3Filesystem | None = None) -> LocalLake:
        return LocalLake(self.settings.lake_dir)

    def catalog(self, lake: LocalLake) -> dict[str, str]:
        """DuckDB views over the lake's tables and its run log (the Glue crawler's job on AWS), then
        the history views over them: view name -> location (a history view's: its SQL file)."""
        from spotify_etl.warehouse import local

        s = self.settings
        return local.register_catalog(lake, s.duckdb_path, s.database, s.table_prefix)

    def check_results(self, day: str) -> list[CheckResult]:
        """include/sql/validate.sql's rows for ``day`` from the DuckDB catalog (not judged)."""
        from spotify_etl.warehouse import local

        s = self.settings
        return local.run_validation(s.duckdb_path, day, s.database, s.table_prefix)

    def report_data(self, day: str, athena: AthenaClient | None = None) -> dict[str, Rows]:
        """The report's queries in the DuckDB catalog."""
        from spotify_etl.warehouse import local

        s = self.settings
        return local.report_data(s.duckdb_path, day, s.database, s.table_prefix)


class AwsTarget(Target):
    """An S3 lake, cataloged by a Glue crawler and validated in Athena."""

    samples_allowed = False
    on_this_machine = False

    @property
    def lake_url(self) -> str:
        from spotify_etl.settings import refused

        if not self.settings.s3_bucket:
            raise refused("SPOTIFY_ETL_S3_BUCKET", "", "required when SPOTIFY_ETL_TARGET=aws")
        return f"s3://{self.settings.s3_bucket}/{self.settings.s3_prefix}".rstrip("/")

    def open_lake(self, s3_filesystem: S3Filesystem | None = None) -> S3Lake:
        s = self.settings
        self.lake_url  # noqa: B018 - raises a clear error when the bucket is not set
        if s3_filesystem is None:
            raise ValueError("the 'aws' target's lake needs an S3 filesystem (s3_filesystem)")
        return S3Lake(
            s3_filesystem(s.aws_conn_id), s.s3_bucket, s.s3_prefix, sse=s.s3_sse, kms_key_id=s.s3_sse_kms_key_id
        )

    def crawler_config(self) -> dict[str, Any]:
        """The Glue crawler's CreateCrawler arguments (:func:`spotify_etl.warehouse.aws.crawler_config`)."""
        from spotify_etl.warehouse import aws

        return aws.crawler_config(self)

    @staticmethod
    def history_view_templates() -> dict[str, str]:
        """View -> its ``CREATE OR REPLACE VIEW`` template under include/sql, run in Athena after the
        crawl (:mod:`spotify_etl.airflow.aws_target`; DuckDB runs the same text locally)."""
        from spotify_etl import history

        return {view: history.template(view) for view in history.VIEWS}

    def report_data(self, day: str, athena: AthenaClient | None = None) -> dict[str, Rows]:
        """The report's queries in Athena, one after the other, through ``athena()`` (an AthenaHook)."""
        from spotify_etl.warehouse import aws

        if athena is None:
            raise ValueError("the 'aws' target's report needs an Athena client (athena)")
        return aws.report_data(athena(), self.settings, day)

    @staticmethod
    def check_results(pages: Iterable[Mapping[str, Any]]) -> list[CheckResult]:
        """Athena's answer to include/sql/validate.sql (GetQueryResults pages) as check rows (not judged)."""
        from spotify_etl.warehouse import aws

        return aws.check_results(pages)


# The one map of the targets; SPOTIFY_ETL_TARGET takes its keys.
TARGETS: dict[str, type[Target]] = {"local": LocalTarget, "aws": AwsTarget}


def target(settings: Settings) -> Target:
    """The target ``settings`` name."""
    return TARGETS[settings.target](settings)
