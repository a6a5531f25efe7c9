"""Settings read from the environment, their ranges, the playlists file and the DAG description
(spotify_etl.settings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from spotify_etl.airflow.description import dag_description
from spotify_etl.errors import shorten
from spotify_etl.paths import PROJECT_DIR
from spotify_etl.settings import SETTINGS_DOC, Settings, SettingsError, configured_playlists
from spotify_etl.targets import target as target_of


def test_configured_playlists_file(tmp_path: Path) -> None:
    assert configured_playlists() == []  # shipped empty: the user's own list, never the sample
    bad = tmp_path / "p.toml"
    bad.write_text('playlists = "x"\n')
    with pytest.raises(SettingsError, match="'playlists' must be a list"):
        configured_playlists(bad)


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in SETTINGS_DOC:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPOTIFY_ETL_LAKE_DIR", str(tmp_path / "l"))
    s = Settings.from_env()
    assert s.target == "local" and target_of(s).lake_url == (tmp_path / "l").as_uri()
    assert s.duckdb_path == tmp_path / "l" / "catalog.duckdb"
    monkeypatch.setenv("SPOTIFY_ETL_TARGET", "aws")
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_S3_BUCKET='': required when SPOTIFY_ETL_TARGET=aws"):
        _ = target_of(Settings.from_env()).lake_url
    monkeypatch.setenv("SPOTIFY_ETL_S3_BUCKET", "bkt")
    s = Settings.from_env()
    assert target_of(s).table_url("songs") == "s3://bkt/spotify-etl/processed/songs"
    assert s.athena_output == "s3://bkt/athena-results/"
    monkeypatch.setenv("SPOTIFY_ETL_TARGET", "gcp")
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_TARGET='gcp': `local` or `aws`"):
        Settings.from_env()


def test_dag_description_names_the_lake_and_changes_with_any_setting(tmp_path: Path) -> None:
    local = Settings(lake_dir=tmp_path / "a")
    assert dag_description(local).startswith(
        f"Daily Spotify playlist ETL: local target, lake {(tmp_path / 'a').as_uri()} "
    )
    assert dag_description(local) == dag_description(Settings(lake_dir=tmp_path / "a"))
    assert dag_description(local) != dag_description(Settings(lake_dir=tmp_path / "b"))
    assert dag_description(local) != dag_description(Settings(lake_dir=tmp_path / "a", task_retries=0))
    assert "aws target, lake s3://b/p " in dag_description(Settings(target="aws", s3_bucket="b", s3_prefix="p"))
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_S3_BUCKET='': required when SPOTIFY_ETL_TARGET=aws"):
        dag_description(Settings(target="aws"))


# ---- Every setting has a type and a range, refused in one message form ---------------------------
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPOTIFY_ETL_MAX_RETRY_AFTER", "nan"),  # slept a 3,600 s Retry-After
        ("SPOTIFY_ETL_MAX_RETRY_AFTER", "inf"),
        ("SPOTIFY_ETL_MAX_RETRY_AFTER", "-1"),
        ("SPOTIFY_ETL_MAX_RETRY_AFTER", "3600"),
        ("SPOTIFY_ETL_LIVE_GRACE_DAYS", "-1"),  # every daily run a silent success doing nothing
        ("SPOTIFY_ETL_LIVE_GRACE_DAYS", "٣"),  # int() reads Arabic-Indic digits
        ("SPOTIFY_ETL_TASK_RETRIES", "1_0"),  # and underscores
        ("SPOTIFY_ETL_TASK_RETRIES", "-1"),
        ("SPOTIFY_ETL_RETRY_DELAY", "0"),  # Airflow would retry at once, in a loop against a rate limit
        ("SPOTIFY_ETL_RETRY_DELAY", "901"),  # past max_retry_delay: it would be cut to 15 min anyway
        ("SPOTIFY_ETL_EXTRACT_CHUNK_SIZE", "100000"),
        ("SPOTIFY_ETL_SPOTIFY_POOL_SLOTS", "0"),
        ("SPOTIFY_ETL_DEADLINE_HOURS", "1e308"),  # was an OverflowError naming no setting
        ("SPOTIFY_ETL_DEADLINE_HOURS", "NaN"),
        ("SPOTIFY_ETL_DATABASE", "spotify; DROP"),  # was refused only at catalog, after the data was written
        ("SPOTIFY_ETL_DATABASE", "Spotify"),  # Glue lower-cases it: the DuckDB schema would differ
        ("SPOTIFY_ETL_DATABASE", "_spotify"),
        ("SPOTIFY_ETL_DATABASE", "x" * 256),
        ("SPOTIFY_ETL_TABLE_PREFIX", "a-b"),
        ("SPOTIFY_ETL_TABLE_PREFIX", "p" * 201),
        ("SPOTIFY_ETL_S3_BUCKET", "My_Bucket"),
        ("SPOTIFY_ETL_S3_PREFIX", "it's"),
        ("SPOTIFY_ETL_AWS_CONN_ID", "aws default"),
        ("SPOTIFY_ETL_SPOTIFY_CONN_ID", ""),
        ("SPOTIFY_ETL_ALERT_SLACK_CONN_ID", "slack<script>"),
        ("SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN", "alerts"),
        ("SPOTIFY_ETL_CRAWLER_NAME", "two\nlines"),
        ("SPOTIFY_ETL_CRAWLER_ROLE", "arn:aws:iam::12:role/x"),
        ("SPOTIFY_ETL_ATHENA_WORKGROUP", "my workgroup"),
        ("SPOTIFY_ETL_ATHENA_OUTPUT", "https://example.com/results/"),
        ("SPOTIFY_ETL_TARGET", "gcp"),
    ],
)
def test_a_setting_out_of_its_range_is_refused_naming_it_its_value_and_what_is_allowed(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value) == f"{name}={shorten(value, 100)!r}: {SETTINGS_DOC[name].allowed}"


@pytest.mark.parametrize("name", list(SETTINGS_DOC))
def test_every_setting_refuses_a_nul_byte_and_accepts_its_default(name: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}="):
        Settings.from_env({name: "x\x00"})
    assert SETTINGS_DOC[name].allowed  # the docs table and the refusal say what is allowed
    Settings.from_env({name: SETTINGS_DOC[name].default if "<" not in SETTINGS_DOC[name].default else ""})


def test_values_in_range_are_read_as_their_type() -> None:
    s = Settings.from_env({"SPOTIFY_ETL_MAX_RETRY_AFTER": " 300 ", "SPOTIFY_ETL_LIVE_GRACE_DAYS": "0",
                           "SPOTIFY_ETL_DEADLINE_HOURS": "0.5", "SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": "100%",
                           "SPOTIFY_ETL_DUCKDB_THREADS": "64", "SPOTIFY_ETL_DATABASE": "2026_spotify",
                           "SPOTIFY_ETL_CRAWLER_ROLE": "arn:aws:iam::123456789012:role/service-role/crawler",
                           "SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:etl-alerts"})  # fmt: skip
    assert (s.max_retry_after, s.live_grace_days, s.deadline_hours) == (300.0, 0, 0.5)
    assert (s.duckdb_memory_limit, s.duckdb_threads, s.database) == ("100%", 64, "2026_spotify")


def test_a_long_bad_value_is_shown_cut() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"SPOTIFY_ETL_DATABASE": "x" * 1_000_000})
    assert len(str(refused.value)) < 400


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
