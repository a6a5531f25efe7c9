"""Typed settings, read from ``SPOTIFY_ETL_*`` environment variables.

This module is imported when the DAG file is parsed, so it only reads the environment:
no network, no Airflow Variables, no heavy imports. The settings table in docs/settings.md is
generated from :data:`SETTINGS_DOC` (a test keeps them in step).
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from spotify_etl.errors import PipelineError

INCLUDE_DIR = Path(__file__).resolve().parents[1]
PROJECT_DIR = INCLUDE_DIR.parent
SQL_DIR = INCLUDE_DIR / "sql"
SAMPLE_DATA_DIR = INCLUDE_DIR / "sample_data"
PLAYLISTS_CONFIG = INCLUDE_DIR / "config" / "playlists.toml"

TARGETS = ("local", "aws")
# What SPOTIFY_ETL_S3_SSE may request; empty sends no header and the bucket's default applies.
S3_SSE_ALGORITHMS = ("AES256", "aws:kms")
# Measured on 1M playlist items (docs/performance.md): the transform's peak RSS is ~470 MiB at
# 256MB, ~500 at 320MB, ~590 at 512MB (DuckDB's own memory plus ~110 MiB of Python and
# libraries and the Arrow batches it hands out), so the default fits one task slot of the
# smallest MWAA worker with room to spare; DuckDB spills beyond it.
DUCKDB_MEMORY_LIMIT = "256MB"
# DuckDB's own syntax: a size (512MB, 1.5GB, 1GiB) or a share of the machine's memory (50%).
_DUCKDB_MEMORY = re.compile(r"\d+(\.\d+)?\s*(%|[KMGT]i?B|B)", re.IGNORECASE)

SPOTIFY_POOL = "spotify_api"  # the Airflow pool of the extract tasks: one Spotify budget for every run

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
    "SPOTIFY_ETL_EXTRACT_CHUNK_SIZE": (
        "25",
        "playlists per extract task (one Spotify token each), extracted one after another (docs/pipeline.md)",
    ),
    "SPOTIFY_ETL_SPOTIFY_POOL_SLOTS": (
        "4",
        f"slots of the Airflow pool `{SPOTIFY_POOL}` every extract task runs in: extract tasks calling Spotify at once, across all runs",
    ),
    "SPOTIFY_ETL_LIVE_GRACE_DAYS": (
        "1",
        "a run more than this many days behind its start date reprocesses raw instead of calling Spotify",
    ),
    "SPOTIFY_ETL_S3_SSE": (
        "",
        "aws target: encryption asked for on each write: empty sends none and the bucket's default encryption applies; `AES256` (SSE-S3) or `aws:kms` (SSE-KMS)",
    ),
    "SPOTIFY_ETL_S3_SSE_KMS_KEY_ID": (
        "",
        "aws target, with `aws:kms`: KMS key id or ARN; empty = the bucket's default key (or `aws/s3`)",
    ),
    "SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": (
        DUCKDB_MEMORY_LIMIT,
        "transform: DuckDB `memory_limit` (`512MB`, `2GB`, `50%`); beyond it DuckDB spills to disk. The default keeps the transform's peak RSS under 512 MiB at a million playlist items; more makes it faster only where it spilled (docs/performance.md, docs/deploy-mwaa.md)",
    ),
    "SPOTIFY_ETL_DUCKDB_THREADS": (
        "",
        "transform: DuckDB threads; empty = one per CPU DuckDB sees. 1 uses ~25% less CPU time than 2 and was as fast on a busy 2-core machine (docs/performance.md)",
    ),
    "SPOTIFY_ETL_ALERT_SLACK_CONN_ID": (
        "",
        "Airflow connection (type `slackwebhook`) that failure, retry and deadline alerts are posted to; empty: no webhook alerts (docs/operate.md)",
    ),
    "SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN": (
        "",
        "SNS topic ARN that alerts are published to, through `SPOTIFY_ETL_AWS_CONN_ID`; empty: no SNS alerts",
    ),
    "SPOTIFY_ETL_DEADLINE_HOURS": (
        "6",
        "a run not finished this many hours (decimals allowed) after its data interval ends fires an alert; 0: no deadline. Only with an alert set",
    ),
}


class SettingsError(PipelineError, ValueError, retryable=False):
    """A setting is missing or invalid; the message names it."""


def _read(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings' values from ``env``, each missing one from its :data:`SETTINGS_DOC` default."""

    def get(name: str) -> str:
        return env.get(name, SETTINGS_DOC[name][0])

    def derived(name: str, **placeholders: str) -> str:
        # Set and non-empty, or the documented default with its <placeholders> filled in;
        # a default whose placeholder is empty (no bucket, no Athena output) is empty.
        if env.get(name):
            return env[name]
        if not all(placeholders.values()):
            return ""
        value = SETTINGS_DOC[name][0]
        for key, filled in placeholders.items():
            value = value.replace(f"<{key}>", filled)
        return value

    target = get("SPOTIFY_ETL_TARGET").strip().lower()
    if target not in TARGETS:
        raise SettingsError(f"SPOTIFY_ETL_TARGET must be one of {TARGETS}, got {target!r}")
    lake_dir = Path(derived("SPOTIFY_ETL_LAKE_DIR", project=str(PROJECT_DIR))).resolve()
    bucket = get("SPOTIFY_ETL_S3_BUCKET").strip()
    try:
        numbers = {
            "max_retry_after": float(get("SPOTIFY_ETL_MAX_RETRY_AFTER")),
            "live_grace_days": int(get("SPOTIFY_ETL_LIVE_GRACE_DAYS")),
            "task_retries": int(get("SPOTIFY_ETL_TASK_RETRIES")),
            "extract_chunk_size": int(get("SPOTIFY_ETL_EXTRACT_CHUNK_SIZE")),
            "spotify_pool_slots": int(get("SPOTIFY_ETL_SPOTIFY_POOL_SLOTS")),
        }
    except ValueError as exc:
        raise SettingsError(f"numeric setting is not a number: {exc}") from exc
    for key, name in (("extract_chunk_size", "EXTRACT_CHUNK_SIZE"), ("spotify_pool_slots", "SPOTIFY_POOL_SLOTS")):
        if numbers[key] < 1:
            raise SettingsError(f"SPOTIFY_ETL_{name} must be at least 1, got {numbers[key]}")
    return {
        "target": target,
        "lake_dir": lake_dir,
        "duckdb_path": Path(derived("SPOTIFY_ETL_DUCKDB_PATH", lake=str(lake_dir))).resolve(),
        "s3_bucket": bucket,
        "s3_prefix": get("SPOTIFY_ETL_S3_PREFIX").strip("/"),
        "aws_conn_id": get("SPOTIFY_ETL_AWS_CONN_ID"),
        "spotify_conn_id": get("SPOTIFY_ETL_SPOTIFY_CONN_ID"),
        "database": get("SPOTIFY_ETL_DATABASE"),
        "table_prefix": get("SPOTIFY_ETL_TABLE_PREFIX"),
        "crawler_name": get("SPOTIFY_ETL_CRAWLER_NAME"),
        "crawler_role": get("SPOTIFY_ETL_CRAWLER_ROLE"),
        "athena_workgroup": get("SPOTIFY_ETL_ATHENA_WORKGROUP"),
        "athena_output": derived("SPOTIFY_ETL_ATHENA_OUTPUT", bucket=bucket),
        **numbers,
        **_s3_encryption(get),
        "duckdb_memory_limit": _duckdb_memory_limit(get),
        "duckdb_threads": _duckdb_threads(get),
        "deadline_hours": _deadline_hours(get),
        "alert_slack_conn_id": get("SPOTIFY_ETL_ALERT_SLACK_CONN_ID").strip(),
        "alert_sns_topic_arn": get("SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN").strip(),
    }


def _s3_encryption(get: Callable[[str], str]) -> dict[str, str]:
    sse = get("SPOTIFY_ETL_S3_SSE").strip()
    by_name = {a.lower(): a for a in S3_SSE_ALGORITHMS}
    if sse and sse.lower() not in by_name:
        raise SettingsError(
            f"SPOTIFY_ETL_S3_SSE must be empty (the bucket's default encryption) or one of {S3_SSE_ALGORITHMS}, got {sse!r}"
        )
    sse = by_name.get(sse.lower(), "")
    key_id = get("SPOTIFY_ETL_S3_SSE_KMS_KEY_ID").strip()
    if key_id and sse != "aws:kms":
        raise SettingsError(
            "SPOTIFY_ETL_S3_SSE_KMS_KEY_ID is set but SPOTIFY_ETL_S3_SSE is not aws:kms; set both or neither"
        )
    return {"s3_sse": sse, "s3_sse_kms_key_id": key_id}


def _duckdb_memory_limit(get: Callable[[str], str]) -> str:
    value = get("SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT").strip() or DUCKDB_MEMORY_LIMIT
    if not _DUCKDB_MEMORY.fullmatch(value):
        raise SettingsError(
            f"SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT must be a size like 512MB, 2GB or 1GiB, or a share like 50%, got {value!r}"
        )
    return value


def _deadline_hours(get: Callable[[str], str]) -> float:
    value = get("SPOTIFY_ETL_DEADLINE_HOURS").strip()
    try:
        hours = float(value)
    except ValueError:
        hours = -1.0
    if not 0 <= hours < float("inf"):  # also refuses nan
        raise SettingsError(
            f"SPOTIFY_ETL_DEADLINE_HOURS must be a number of hours like 6 or 0.5 (0: no deadline), got {value!r}"
        )
    return hours


def _duckdb_threads(get: Callable[[str], str]) -> int | None:
    value = get("SPOTIFY_ETL_DUCKDB_THREADS").strip()
    if not value:
        return None  # DuckDB's default: one thread per CPU it sees
    if not value.isdigit() or int(value) < 1:
        raise SettingsError(
            f"SPOTIFY_ETL_DUCKDB_THREADS must be a whole number of at least 1 (or empty), got {value!r}"
        )
    return int(value)


# Each field's default is SETTINGS_DOC's, read like an environment that sets nothing.
_DEFAULTS = _read({})


@dataclass(frozen=True)
class Settings:
    target: str = _DEFAULTS["target"]
    lake_dir: Path = _DEFAULTS["lake_dir"]
    duckdb_path: Path = _DEFAULTS["duckdb_path"]
    s3_bucket: str = _DEFAULTS["s3_bucket"]
    s3_prefix: str = _DEFAULTS["s3_prefix"]
    aws_conn_id: str = _DEFAULTS["aws_conn_id"]
    spotify_conn_id: str = _DEFAULTS["spotify_conn_id"]
    database: str = _DEFAULTS["database"]
    table_prefix: str = _DEFAULTS["table_prefix"]
    crawler_name: str = _DEFAULTS["crawler_name"]
    crawler_role: str = _DEFAULTS["crawler_role"]
    athena_workgroup: str = _DEFAULTS["athena_workgroup"]
    athena_output: str = _DEFAULTS["athena_output"]
    max_retry_after: float = _DEFAULTS["max_retry_after"]
    live_grace_days: int = _DEFAULTS["live_grace_days"]
    task_retries: int = _DEFAULTS["task_retries"]
    extract_chunk_size: int = _DEFAULTS["extract_chunk_size"]
    spotify_pool_slots: int = _DEFAULTS["spotify_pool_slots"]
    s3_sse: str = _DEFAULTS["s3_sse"]
    s3_sse_kms_key_id: str = _DEFAULTS["s3_sse_kms_key_id"]
    duckdb_memory_limit: str = _DEFAULTS["duckdb_memory_limit"]
    duckdb_threads: int | None = _DEFAULTS["duckdb_threads"]
    alert_slack_conn_id: str = _DEFAULTS["alert_slack_conn_id"]
    alert_sns_topic_arn: str = _DEFAULTS["alert_sns_topic_arn"]
    deadline_hours: float = _DEFAULTS["deadline_hours"]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``env`` (default: the process environment)."""
        return cls(**_read(os.environ if env is None else env))

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
