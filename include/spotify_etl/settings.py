"""Typed settings, read from ``SPOTIFY_ETL_*`` environment variables.

This module is imported when the DAG file is parsed, so it only reads the environment:
no network, no Airflow Variables, no heavy imports. The README's settings table is
generated from :data:`SETTINGS_DOC` (a test keeps them in step).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import astuple, dataclass
from pathlib import Path

INCLUDE_DIR = Path(__file__).resolve().parents[1]
PROJECT_DIR = INCLUDE_DIR.parent
SQL_DIR = INCLUDE_DIR / "sql"
SAMPLE_DATA_DIR = INCLUDE_DIR / "sample_data"
PLAYLISTS_CONFIG = INCLUDE_DIR / "config" / "playlists.toml"

TARGETS = ("local", "aws")

# name -> (default, description); the single place a setting is declared.
SETTINGS_DOC: dict[str, tuple[str, str]] = {
    "SPOTIFY_ETL_TARGET": ("local", "`local` (folder lake + DuckDB) or `aws` (S3 + Glue + Athena)"),
    "SPOTIFY_ETL_LAKE_DIR": ("<project>/lake", "local target: folder that holds the lake"),
    "SPOTIFY_ETL_DUCKDB_PATH": ("<lake>/catalog.duckdb", "local target: DuckDB catalog file"),
    "SPOTIFY_ETL_S3_BUCKET": ("", "aws target: lake bucket (required)"),
    "SPOTIFY_ETL_S3_PREFIX": ("spotify-etl", "aws target: key prefix inside the bucket"),
    "SPOTIFY_ETL_AWS_CONN_ID": ("aws_default", "Airflow connection for S3, Glue and Athena"),
    "SPOTIFY_ETL_SPOTIFY_CONN_ID": ("spotify_default", "Airflow connection holding Spotify credentials"),
    "SPOTIFY_ETL_DATABASE": ("spotify_etl", "Glue database / DuckDB schema of the tables"),
    "SPOTIFY_ETL_TABLE_PREFIX": ("", "prefix for catalog table names (Glue crawler table prefix)"),
    "SPOTIFY_ETL_CRAWLER_NAME": ("spotify_etl_processed", "aws target: Glue crawler name"),
    "SPOTIFY_ETL_CRAWLER_ROLE": ("", "aws target: IAM role ARN the crawler assumes (required)"),
    "SPOTIFY_ETL_ATHENA_WORKGROUP": ("primary", "aws target: Athena workgroup"),
    "SPOTIFY_ETL_ATHENA_OUTPUT": ("s3://<bucket>/athena-results/", "aws target: Athena result location"),
    "SPOTIFY_ETL_MAX_RETRY_AFTER": ("120", "longest Spotify 429 Retry-After (s) waited in-task; longer fails the try"),
    "SPOTIFY_ETL_TASK_RETRIES": ("3", "Airflow retries per task (exponential backoff from 30 s)"),
    "SPOTIFY_ETL_LIVE_GRACE_DAYS": ("1", "a run more than this many days behind its start date reprocesses raw instead of calling Spotify"),
}


def _env(name: str) -> str:
    return os.environ.get(name, SETTINGS_DOC[name][0])


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    target: str = "local"
    lake_dir: Path = PROJECT_DIR / "lake"
    duckdb_path: Path = PROJECT_DIR / "lake" / "catalog.duckdb"
    s3_bucket: str = ""
    s3_prefix: str = "spotify-etl"
    aws_conn_id: str = "aws_default"
    spotify_conn_id: str = "spotify_default"
    database: str = "spotify_etl"
    table_prefix: str = ""
    crawler_name: str = "spotify_etl_processed"
    crawler_role: str = ""
    athena_workgroup: str = "primary"
    athena_output: str = ""
    max_retry_after: float = 120.0
    live_grace_days: int = 1
    task_retries: int = 3

    @classmethod
    def from_env(cls) -> Settings:
        target = _env("SPOTIFY_ETL_TARGET").strip().lower()
        if target not in TARGETS:
            raise SettingsError(f"SPOTIFY_ETL_TARGET must be one of {TARGETS}, got {target!r}")
        lake_dir = Path(os.environ.get("SPOTIFY_ETL_LAKE_DIR") or PROJECT_DIR / "lake").resolve()
        duckdb_path = Path(os.environ.get("SPOTIFY_ETL_DUCKDB_PATH") or lake_dir / "catalog.duckdb").resolve()
        bucket = _env("SPOTIFY_ETL_S3_BUCKET").strip()
        athena_output = os.environ.get("SPOTIFY_ETL_ATHENA_OUTPUT") or (
            f"s3://{bucket}/athena-results/" if bucket else ""
        )
        try:
            max_retry_after = float(_env("SPOTIFY_ETL_MAX_RETRY_AFTER"))
            grace = int(_env("SPOTIFY_ETL_LIVE_GRACE_DAYS"))
            task_retries = int(_env("SPOTIFY_ETL_TASK_RETRIES"))
        except ValueError as exc:
            raise SettingsError(f"numeric setting is not a number: {exc}") from exc
        return cls(
            target=target,
            lake_dir=lake_dir,
            duckdb_path=duckdb_path,
            s3_bucket=bucket,
            s3_prefix=_env("SPOTIFY_ETL_S3_PREFIX").strip("/"),
            aws_conn_id=_env("SPOTIFY_ETL_AWS_CONN_ID"),
            spotify_conn_id=_env("SPOTIFY_ETL_SPOTIFY_CONN_ID"),
            database=_env("SPOTIFY_ETL_DATABASE"),
            table_prefix=_env("SPOTIFY_ETL_TABLE_PREFIX"),
            crawler_name=_env("SPOTIFY_ETL_CRAWLER_NAME"),
            crawler_role=_env("SPOTIFY_ETL_CRAWLER_ROLE"),
            athena_workgroup=_env("SPOTIFY_ETL_ATHENA_WORKGROUP"),
            athena_output=athena_output,
            max_retry_after=max_retry_after,
            live_grace_days=grace,
            task_retries=task_retries,
        )

    @property
    def lake_url(self) -> str:
        """Root URL of the lake: ``file:///...`` locally, ``s3://bucket/prefix`` on AWS."""
        if self.target == "aws":
            if not self.s3_bucket:
                raise SettingsError("SPOTIFY_ETL_S3_BUCKET is required when SPOTIFY_ETL_TARGET=aws")
            return f"s3://{self.s3_bucket}/{self.s3_prefix}".rstrip("/")
        return self.lake_dir.as_uri()

    def table_url(self, table: str) -> str:
        return f"{self.lake_url}/processed/{table}"


def configured_playlists(config: Path = PLAYLISTS_CONFIG) -> list[str]:
    """The user's playlist list (``include/config/playlists.toml``; empty as shipped).

    These are playlists the Spotify connection's user owns or collaborates on; the sample
    playlists are not a default here (see :func:`spotify_etl.pipeline.plan`).
    """
    with config.open("rb") as fh:
        data = tomllib.load(fh)
    values = data.get("playlists", [])
    if not isinstance(values, list):
        raise SettingsError(f"{config}: 'playlists' must be a list")
    return [str(v) for v in values]


def dag_description(settings: Settings) -> str:
    """The DAG's description: where it writes, and a digest of every setting it was parsed with.

    A serialized DAG carries parse-time settings (target, asset URIs, retries); the digest
    lets ``make up`` wait for the version parsed with the current ones.
    """
    digest = hashlib.sha256(repr(astuple(settings)).encode()).hexdigest()[:12]
    # lake_url raises a clear error for a missing required setting (aws: the bucket).
    return f"Daily Spotify playlist ETL: {settings.target} target, lake {settings.lake_url} (settings {digest})"
