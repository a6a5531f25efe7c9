"""Settings read from the environment: defaults from SETTINGS_DOC, a bad value refused naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from spotify_etl.paths import PROJECT_DIR
from spotify_etl.settings import SETTINGS_DOC, Settings, SettingsError


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPOTIFY_ETL_S3_SSE": "SSE-KMS"}, "SPOTIFY_ETL_S3_SSE='SSE-KMS': empty, `AES256` or `aws:kms`"),
        ({"SPOTIFY_ETL_S3_SSE_KMS_KEY_ID": "k"}, "SPOTIFY_ETL_S3_SSE_KMS_KEY_ID='k': only with SPOTIFY_ETL_S3_SSE=aws:kms "
                                                 "(it is ''); set both or neither"),
        ({"SPOTIFY_ETL_S3_SSE": "AES256", "SPOTIFY_ETL_S3_SSE_KMS_KEY_ID": "k"}, "(it is 'AES256')"),
        ({"SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": "lots"}, "SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT='lots': a size above 0 like "
                                                      "`512MB`, `2GB` or `1GiB`, or a share of memory above 0% up to `100%`"),
        ({"SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": "1024"}, "LIMIT='1024': "),  # DuckDB would read bytes, or refuse it
        ({"SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": "0MB"}, "LIMIT='0MB': "),
        ({"SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": "0%"}, "LIMIT='0%': "),
        ({"SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": "1000%"}, "LIMIT='1000%': "),
        ({"SPOTIFY_ETL_DUCKDB_THREADS": "two"}, "SPOTIFY_ETL_DUCKDB_THREADS='two': empty or a whole number from 1 to 64"),
        ({"SPOTIFY_ETL_DUCKDB_THREADS": "0"}, "THREADS='0': "),
        ({"SPOTIFY_ETL_DUCKDB_THREADS": "100000"}, "THREADS='100000': "),
        ({"SPOTIFY_ETL_DUCKDB_THREADS": "²"}, "THREADS='²': "),  # str.isdigit() says yes, int() raises a bare ValueError
    ],
)  # fmt: skip
def test_a_bad_encryption_or_duckdb_setting_is_refused_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert message in str(refused.value)


def test_defaults_are_settings_doc_read_from_an_empty_environment(tmp_path: Path) -> None:
    assert Settings() == Settings.from_env({})
    assert Settings().lake_dir == PROJECT_DIR / "lake"  # "<project>/lake"
    assert Settings().s3_prefix == SETTINGS_DOC["SPOTIFY_ETL_S3_PREFIX"].default
    assert Settings().max_retry_after == float(SETTINGS_DOC["SPOTIFY_ETL_MAX_RETRY_AFTER"].default)
    assert (Settings().s3_sse, Settings().s3_sse_kms_key_id) == ("", "")
    assert (Settings().duckdb_memory_limit, Settings().duckdb_threads) == ("256MB", None)
    assert Settings().athena_output == ""  # "s3://<bucket>/athena-results/" without a bucket
    given = Settings.from_env({"SPOTIFY_ETL_S3_BUCKET": "bkt", "SPOTIFY_ETL_LAKE_DIR": str(tmp_path)})
    assert given.athena_output == "s3://bkt/athena-results/"
    assert given.duckdb_path == tmp_path.resolve() / "catalog.duckdb"  # "<lake>/catalog.duckdb"
