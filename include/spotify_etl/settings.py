"""Typed settings, read from ``SPOTIFY_ETL_*`` environment variables.

This module is imported when the DAG file is parsed, so it only reads the environment:
no network, no Airflow Variables, no heavy imports. The settings table in docs/settings.md is
generated from :data:`SETTINGS_DOC` (a test keeps them in step).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from spotify_etl.errors import PipelineError, shorten
from spotify_etl.paths import PLAYLISTS_CONFIG, PROJECT_DIR
from spotify_etl.targets import TARGETS
from spotify_etl.transform import DUCKDB_MEMORY_LIMIT

# What SPOTIFY_ETL_S3_SSE may request; empty sends no header and the bucket's default applies.
S3_SSE_ALGORITHMS = ("AES256", "aws:kms")


class SettingsError(PipelineError, ValueError, retryable=False):
    """A setting is missing or invalid; the message names it, its value and what is allowed."""


def refused(name: str, value: str, allowed: str) -> SettingsError:
    """The one form of a refused setting: ``NAME='value': what is allowed``."""
    return SettingsError(f"{name}={shorten(value, 100)!r}: {allowed}")


# ---- How a setting's text becomes its value: each raises ValueError for text it does not allow.
# Numbers are ASCII digits only: int() and float() also take '٣', '1_000', 'nan' and 'inf'.
_WHOLE = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
# DuckDB's own syntax: a size (512MB, 1.5GB, 1GiB) or a share of the machine's memory (50%).
_DUCKDB_MEMORY = re.compile(r"(?P<amount>[0-9]+(\.[0-9]+)?)\s*(?P<unit>%|[KMGT]i?B|B)", re.IGNORECASE)


def _number(low: float, high: float, decimals: bool = False) -> Callable[[str], Any]:
    """A whole number (or with ``decimals`` a decimal one) from ``low`` to ``high``."""
    pattern, kind = (_DECIMAL, float) if decimals else (_WHOLE, int)

    def parse(text: str) -> Any:
        if not pattern.fullmatch(text) or not low <= kind(text) <= high:
            raise ValueError(text)
        return kind(text)

    return parse


def _matching(pattern: str, optional: bool = False) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def parse(text: str) -> str:
        if not (optional and not text) and not compiled.fullmatch(text):
            raise ValueError(text)
        return text

    return parse


def _choice(*values: str, optional: bool = False) -> Callable[[str], str]:
    by_name = {v.lower(): v for v in values} | ({"": ""} if optional else {})

    def parse(text: str) -> str:
        if text.lower() not in by_name:
            raise ValueError(text)
        return by_name[text.lower()]

    return parse


def _path(text: str) -> str:
    # DuckDB reads the tables through a glob of the lake's folder (warehouse/local.py escapes
    # glob characters); a NUL byte is no path at all.
    if "\x00" in text:
        raise ValueError(text)
    return text


def _memory_limit(text: str) -> str:
    match = _DUCKDB_MEMORY.fullmatch(text)
    if not match or not 0 < float(match["amount"]) <= (100 if match["unit"] == "%" else float("inf")):
        raise ValueError(text)
    return text


MAX_DUCKDB_THREADS = 64
MAX_EXTRACT_IN_FLIGHT = 16  # a chunk's playlists extracted at once (each one request at a time)
# The largest chunk a size derived from the day's count makes (measured: docs/performance.md); larger
# chunks mean fewer task instances, a longer retry unit.
MAX_DERIVED_CHUNK_SIZE = 100


def _threads(text: str) -> int | None:
    return _number(1, MAX_DUCKDB_THREADS)(text) if text else None  # empty: one per CPU DuckDB sees


# Glue/Athena names (docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html):
# 1 to 255 bytes, lower case (Glue lowers upper case, so the DuckDB schema would differ), only
# underscore as special character, and a leading underscore needs backticks in Athena's DDL.
_GLUE_NAME = r"[a-z0-9][a-z0-9_]{0,254}"
TABLE_PREFIX_CHARS = 200  # Glue's 255 less room for the longest table name (song_artists...)
# Airflow's own rule for a connection id (airflow.models.connection.RE_SANITIZE_CONN_ID), in ASCII.
_CONN_ID = r"[A-Za-z0-9_#!()\-.:/\\]{1,250}"
_CONN_ID_ALLOWED = "an Airflow connection id: 1 to 250 letters, digits or `_ # ! ( ) - . : / \\`"


class Setting(NamedTuple):
    """One ``SPOTIFY_ETL_*`` setting: its default text, what it does, what is allowed (in words,
    for the docs table and every refusal) and how its text (stripped) becomes its value."""

    default: str
    description: str
    allowed: str
    parse: Callable[[str], Any]


# The single place a setting is declared; docs/settings.md's table is generated from it.
# fmt: off
SETTINGS_DOC: dict[str, Setting] = {
    "SPOTIFY_ETL_TARGET": Setting(
        "local", "`local` (folder lake + DuckDB) or `aws` (S3 + Glue + Athena)",
        "`local` or `aws`", _choice(*TARGETS),
    ),
    "SPOTIFY_ETL_LAKE_DIR": Setting(
        "<project>/lake", "local target: folder that holds the lake", "a folder path (empty: the default)", _path,
    ),
    "SPOTIFY_ETL_DUCKDB_PATH": Setting(
        "<lake>/catalog.duckdb", "local target: DuckDB catalog file", "a file path (empty: the default)", _path,
    ),
    "SPOTIFY_ETL_S3_BUCKET": Setting(
        "", "aws target: lake bucket (required)",
        "an S3 bucket name: 3 to 63 lower-case letters, digits, `.` or `-`, starting and ending with a letter or digit",
        _matching(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", optional=True),
    ),
    "SPOTIFY_ETL_S3_PREFIX": Setting(
        "spotify-etl", "aws target: key prefix inside the bucket",
        "up to 512 letters, digits or `/ ! - _ . ( )` (S3's safe key characters, less `*` and `'`)",
        _matching(r"[A-Za-z0-9/!_.()-]{0,512}"),
    ),
    "SPOTIFY_ETL_AWS_CONN_ID": Setting(
        "aws_default", "Airflow connection for S3, Glue and Athena", _CONN_ID_ALLOWED, _matching(_CONN_ID),
    ),
    "SPOTIFY_ETL_SPOTIFY_CONN_ID": Setting(
        "spotify_default", "Airflow connection holding Spotify credentials", _CONN_ID_ALLOWED, _matching(_CONN_ID),
    ),
    "SPOTIFY_ETL_DATABASE": Setting(
        "spotify_etl", "Glue database / DuckDB schema of the tables",
        "1 to 255 lower-case letters, digits or `_`, not starting with `_` (a Glue and Athena database name)",
        _matching(_GLUE_NAME),
    ),
    "SPOTIFY_ETL_TABLE_PREFIX": Setting(
        "", "prefix for catalog table names (Glue crawler table prefix)",
        f"up to {TABLE_PREFIX_CHARS} lower-case letters, digits or `_` (Glue and Athena table names)",
        _matching(rf"[a-z0-9_]{{0,{TABLE_PREFIX_CHARS}}}"),
    ),
    "SPOTIFY_ETL_CRAWLER_NAME": Setting(
        "spotify_etl_processed", "aws target: Glue crawler name",
        "1 to 255 characters on one line (a Glue crawler name)", _matching(r"[^\x00-\x1f\x7f]{1,255}"),
    ),
    "SPOTIFY_ETL_CRAWLER_ROLE": Setting(
        "", "aws target: IAM role ARN the crawler assumes (required)",
        "an IAM role ARN (`arn:aws:iam::<account>:role/<name>`) or role name",
        _matching(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}|[A-Za-z0-9+=,.@_-]{1,64}",
                  optional=True),
    ),
    "SPOTIFY_ETL_ATHENA_WORKGROUP": Setting(
        "primary", "aws target: Athena workgroup",
        "1 to 128 letters, digits, `.`, `_` or `-` (an Athena workgroup name)", _matching(r"[A-Za-z0-9._-]{1,128}"),
    ),
    "SPOTIFY_ETL_ATHENA_OUTPUT": Setting(
        "s3://<bucket>/athena-results/", "aws target: Athena result location",
        "an `s3://<bucket>/<prefix>/` URL (empty: the default)",
        _matching(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9/!_.()-]*)?", optional=True),
    ),
    "SPOTIFY_ETL_MAX_RETRY_AFTER": Setting(
        "120", "longest Spotify 429 Retry-After (s) waited in-task; longer fails the try",
        "a number of seconds from 0 to 300 (a longer wait is left to an Airflow retry, which frees the worker)",
        _number(0, 300, decimals=True),
    ),
    "SPOTIFY_ETL_TASK_RETRIES": Setting(
        "3", "Airflow retries per task (exponential backoff from `SPOTIFY_ETL_RETRY_DELAY`)", "a whole number from 0 to 10",
        _number(0, 10),
    ),
    "SPOTIFY_ETL_RETRY_DELAY": Setting(
        "30", "seconds before a task's first retry; later ones wait longer (exponential backoff), at most 15 min",
        "a whole number of seconds from 1 to 900", _number(1, 900),
    ),
    "SPOTIFY_ETL_EXTRACT_CHUNK_SIZE": Setting(
        "",
        "playlists per extract task (one Spotify token each), `SPOTIFY_ETL_EXTRACT_IN_FLIGHT` of them at once; empty: derived from the day's count, enough chunks for every pool slot, "
        f"at most {MAX_DERIVED_CHUNK_SIZE} playlists each (docs/pipeline.md)",
        "empty or a whole number from 1 to 500", lambda text: _number(1, 500)(text) if text else None,
    ),
    "SPOTIFY_ETL_EXTRACT_IN_FLIGHT": Setting(
        "4",
        "playlists of a chunk extracted at once, one request each at a time, one token per chunk; with the pool, (pool slots) x this bounds the requests in flight (docs/pipeline.md)",
        f"a whole number from 1 to {MAX_EXTRACT_IN_FLIGHT}", _number(1, MAX_EXTRACT_IN_FLIGHT),
    ),
    "SPOTIFY_ETL_SPOTIFY_POOL_SLOTS": Setting(
        "4",
        "slots of the Airflow pool every extract task runs in: extract tasks calling Spotify at once, across all runs",
        "a whole number from 1 to 32", _number(1, 32),
    ),
    "SPOTIFY_ETL_LIVE_GRACE_DAYS": Setting(
        "1",
        "a run more than this many days behind its start date reprocesses raw instead of calling Spotify",
        "a whole number of days from 0 to 7", _number(0, 7),
    ),
    "SPOTIFY_ETL_S3_SSE": Setting(
        "",
        "aws target: encryption asked for on each write: empty sends none and the bucket's default encryption applies; `AES256` (SSE-S3) or `aws:kms` (SSE-KMS)",
        "empty, `AES256` or `aws:kms`", _choice(*S3_SSE_ALGORITHMS, optional=True),
    ),
    "SPOTIFY_ETL_S3_SSE_KMS_KEY_ID": Setting(
        "",
        "aws target, with `aws:kms`: KMS key id or ARN; empty = the bucket's default key (or `aws/s3`)",
        "a KMS key id, key ARN, `alias/<name>` or alias ARN; only with `SPOTIFY_ETL_S3_SSE=aws:kms`",
        _matching(r"[A-Za-z0-9:/_+=,.@-]{1,2048}", optional=True),
    ),
    "SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": Setting(
        DUCKDB_MEMORY_LIMIT,
        "transform: DuckDB `memory_limit`, a size (`512MB`, `2GB`) or a share of memory (`50%`); beyond it DuckDB spills to disk (how it was chosen: docs/performance.md)",
        "a size above 0 like `512MB`, `2GB` or `1GiB`, or a share of memory above 0% up to `100%` (empty: the default)",
        lambda text: _memory_limit(text or DUCKDB_MEMORY_LIMIT),
    ),
    "SPOTIFY_ETL_DUCKDB_THREADS": Setting(
        "",
        "transform: DuckDB threads; empty = one per CPU DuckDB sees (when 1 is better: docs/performance.md)",
        f"empty or a whole number from 1 to {MAX_DUCKDB_THREADS}", _threads,
    ),
    "SPOTIFY_ETL_ALERT_SLACK_CONN_ID": Setting(
        "",
        "Airflow connection (type `slackwebhook`) that failure, retry and deadline alerts are posted to; empty: no webhook alerts (docs/operate.md)",
        f"empty or {_CONN_ID_ALLOWED}", _matching(_CONN_ID, optional=True),
    ),
    "SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN": Setting(
        "",
        "SNS topic ARN that alerts are published to, through `SPOTIFY_ETL_AWS_CONN_ID`; empty: no SNS alerts",
        "empty or an SNS topic ARN: `arn:aws:sns:<region>:<account>:<topic>`",
        _matching(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?", optional=True),
    ),
    "SPOTIFY_ETL_DEADLINE_HOURS": Setting(
        "6",
        "a run not finished this many hours (decimals allowed) after its data interval ends fires an alert; 0: no deadline. Only with an alert set",
        "a number of hours from 0 to 168 (a week), like `6` or `0.5`", _number(0, 168, decimals=True),
    ),
}
# fmt: on


def _read(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings' values from ``env`` (a missing one: its default); :class:`SettingsError` for one not allowed."""
    # A default with <placeholders> is empty here and filled in by derived() below.
    texts = {
        name: env.get(name, "" if "<" in spec.default else spec.default).strip() for name, spec in SETTINGS_DOC.items()
    }
    values = {}
    for name, spec in SETTINGS_DOC.items():
        try:
            values[name] = spec.parse(texts[name])
        except ValueError:
            raise refused(name, texts[name], spec.allowed) from None

    def derived(name: str, **placeholders: str) -> str:
        # Set and non-empty, or the documented default with its <placeholders> filled in;
        # a default whose placeholder is empty (no bucket, no Athena output) is empty.
        if values[name]:
            return str(values[name])
        if not all(placeholders.values()):
            return ""
        value = SETTINGS_DOC[name].default
        for key, filled in placeholders.items():
            value = value.replace(f"<{key}>", filled)
        return value

    def value(name: str) -> Any:
        return values[f"SPOTIFY_ETL_{name}"]

    if value("S3_SSE_KMS_KEY_ID") and value("S3_SSE") != "aws:kms":
        raise refused("SPOTIFY_ETL_S3_SSE_KMS_KEY_ID", value("S3_SSE_KMS_KEY_ID"),
                      f"only with SPOTIFY_ETL_S3_SSE=aws:kms (it is {value('S3_SSE')!r}); set both or neither")  # fmt: skip
    lake_dir = Path(derived("SPOTIFY_ETL_LAKE_DIR", project=str(PROJECT_DIR))).resolve()
    # Each setting is the field named after it (SPOTIFY_ETL_TASK_RETRIES: task_retries), as parsed
    # or, for these, derived from it.
    fields = {name.removeprefix("SPOTIFY_ETL_").lower(): parsed for name, parsed in values.items()}
    return fields | {
        "lake_dir": lake_dir,
        "duckdb_path": Path(derived("SPOTIFY_ETL_DUCKDB_PATH", lake=str(lake_dir))).resolve(),
        "s3_prefix": value("S3_PREFIX").strip("/"),
        "athena_output": derived("SPOTIFY_ETL_ATHENA_OUTPUT", bucket=value("S3_BUCKET")),
    }


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
    retry_delay: int = _DEFAULTS["retry_delay"]
    extract_chunk_size: int | None = _DEFAULTS["extract_chunk_size"]
    extract_in_flight: int = _DEFAULTS["extract_in_flight"]
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
