"""SPOTIFY_ETL_S3_SSE(_KMS_KEY_ID) and SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT/_THREADS: parsed, refused
with a message naming the setting, and handed to what uses them (the S3 lake's PUTs, DuckDB).

What S3 does with the headers is tested against moto in tests/integration/test_aws_target.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spotify_etl import transform
from spotify_etl.extract import SampleSource, extract_playlist
from spotify_etl.lake import Lake
from spotify_etl.settings import Settings, SettingsError

DAY = "2026-01-05"
PLAYLIST = "4dn0iEoAxn69ea0Tyov8V5"  # in the embedded sample data


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name in ("SPOTIFY_ETL_S3_SSE", "SPOTIFY_ETL_S3_SSE_KMS_KEY_ID", "SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT",
                 "SPOTIFY_ETL_DUCKDB_THREADS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


# ---- S3 encryption ---------------------------------------------------------------------------
def test_by_default_no_encryption_header_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch)
    assert (s.s3_sse, s.s3_sse_kms_key_id) == ("", "")
    assert Lake.s3(object(), "bucket", "p", s.s3_sse, s.s3_sse_kms_key_id).write_kwargs == {}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "kwargs"),
    [
        ({"SPOTIFY_ETL_S3_SSE": "AES256"}, {"ServerSideEncryption": "AES256"}),
        ({"SPOTIFY_ETL_S3_SSE": "aes256"}, {"ServerSideEncryption": "AES256"}),
        ({"SPOTIFY_ETL_S3_SSE": "aws:kms"}, {"ServerSideEncryption": "aws:kms"}),
        (
            {"SPOTIFY_ETL_S3_SSE": "AWS:KMS", "SPOTIFY_ETL_S3_SSE_KMS_KEY_ID": "arn:aws:kms:eu-west-1:1:key/k"},
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:aws:kms:eu-west-1:1:key/k"},
        ),
    ],
)
def test_the_setting_chooses_the_header(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                        kwargs: dict[str, str]) -> None:  # fmt: skip
    s = settings(monkeypatch, **env)
    assert Lake.s3(object(), "bucket", "p", s.s3_sse, s.s3_sse_kms_key_id).write_kwargs == kwargs  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPOTIFY_ETL_S3_SSE": "SSE-KMS"}, "SPOTIFY_ETL_S3_SSE='SSE-KMS': empty, `AES256` or `aws:kms`"),
        ({"SPOTIFY_ETL_S3_SSE_KMS_KEY_ID": "k"}, "SPOTIFY_ETL_S3_SSE_KMS_KEY_ID='k': only with SPOTIFY_ETL_S3_SSE=aws:kms "
                                                 "(it is ''); set both or neither"),
        ({"SPOTIFY_ETL_S3_SSE": "AES256", "SPOTIFY_ETL_S3_SSE_KMS_KEY_ID": "k"}, "(it is 'AES256')"),
    ],
)  # fmt: skip
def test_a_bad_encryption_setting_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                        message: str) -> None:  # fmt: skip
    with pytest.raises(SettingsError) as refused:
        settings(monkeypatch, **env)
    assert message in str(refused.value)


# ---- DuckDB memory and threads ---------------------------------------------------------------
def duckdb_settings(con: Any) -> tuple[str, int]:
    memory, threads = con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
    return str(memory), int(threads)


def test_default_memory_limit_is_256mb_and_threads_are_duckdbs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    s = settings(monkeypatch)
    assert (s.duckdb_memory_limit, s.duckdb_threads) == ("256MB", None)
    with transform.connect(s.duckdb_memory_limit, s.duckdb_threads) as con, duckdb.connect() as plain:
        assert duckdb_settings(con) == ("244.1 MiB", duckdb_settings(plain)[1])  # DuckDB writes 256MB in MiB


def test_memory_and_threads_settings_reach_duckdb(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT="512MB", SPOTIFY_ETL_DUCKDB_THREADS="1")
    assert (s.duckdb_memory_limit, s.duckdb_threads) == ("512MB", 1)
    with transform.connect(s.duckdb_memory_limit, s.duckdb_threads) as con:
        assert duckdb_settings(con) == ("488.2 MiB", 1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
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
def test_a_bad_duckdb_setting_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                    message: str) -> None:  # fmt: skip
    with pytest.raises(SettingsError) as refused:
        settings(monkeypatch, **env)
    assert message in str(refused.value)


def test_the_dags_transform_step_opens_duckdb_with_the_settings(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:  # fmt: skip
    """The DAG's transform task body hands the settings to DuckDB."""
    from spotify_etl.airflow.tasks import run_transform

    lake = Lake.local(tmp_path / "lake")
    extract_playlist(SampleSource(), lake, PLAYLIST, DAY, f"{DAY}T06:00:00+00:00")
    monkeypatch.setenv("SPOTIFY_ETL_LAKE_DIR", str(tmp_path / "lake"))
    s = settings(monkeypatch, SPOTIFY_ETL_TARGET="local", SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT="300MB",
                 SPOTIFY_ETL_DUCKDB_THREADS="1")  # fmt: skip
    seen: list[tuple[str, int]] = []
    real_connect = transform.connect

    def spy(*args: Any, **kwargs: Any) -> Any:
        con = real_connect(*args, **kwargs)
        seen.append(duckdb_settings(con))
        return con

    monkeypatch.setattr(transform, "connect", spy)
    result = run_transform(s, DAY, "reprocess", "a reprocess plan of the one landed playlist", [PLAYLIST], [])
    assert result["documents"] == 1 and result["rows"]["songs"] > 0
    assert seen == [("286.1 MiB", 1)]


def test_the_cli_transform_uses_the_settings_and_names_a_bad_one(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    from spotify_etl import cli

    lake = Lake.local(tmp_path / "lake")
    extract_playlist(SampleSource(), lake, PLAYLIST, DAY, f"{DAY}T06:00:00+00:00")
    argv = ["transform", "--raw", str(tmp_path / "lake"), "--out", str(tmp_path / "lake"), "--date", DAY]
    settings(monkeypatch)
    monkeypatch.setenv("SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT='lots': a size"):  # as any bad setting
        cli.main(argv)
    monkeypatch.setenv("SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT", "300MB")
    seen: list[tuple[str, int]] = []
    real_connect = transform.connect
    monkeypatch.setattr(
        transform, "connect", lambda *a, **k: seen.append(duckdb_settings(c := real_connect(*a, **k))) or c
    )
    assert cli.main(argv) == 0
    assert seen[0][0] == "286.1 MiB"


def test_defaults_are_settings_doc_read_from_an_empty_environment(tmp_path: Path) -> None:
    from spotify_etl.paths import PROJECT_DIR
    from spotify_etl.settings import SETTINGS_DOC

    assert Settings() == Settings.from_env({})
    assert Settings().lake_dir == PROJECT_DIR / "lake"  # "<project>/lake"
    assert Settings().s3_prefix == SETTINGS_DOC["SPOTIFY_ETL_S3_PREFIX"].default
    assert Settings().max_retry_after == float(SETTINGS_DOC["SPOTIFY_ETL_MAX_RETRY_AFTER"].default)
    assert Settings().athena_output == ""  # "s3://<bucket>/athena-results/" without a bucket
    given = Settings.from_env({"SPOTIFY_ETL_S3_BUCKET": "bkt", "SPOTIFY_ETL_LAKE_DIR": str(tmp_path)})
    assert given.athena_output == "s3://bkt/athena-results/"
    assert given.duckdb_path == tmp_path.resolve() / "catalog.duckdb"  # "<lake>/catalog.duckdb"
