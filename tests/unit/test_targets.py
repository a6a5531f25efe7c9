"""The targets: each one object that says where its lake is, opens it and where a table lives."""

from __future__ import annotations

from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem
from spotify_etl.lake import LocalLake, S3Lake
from spotify_etl.settings import Settings, SettingsError
from spotify_etl.targets import TARGETS, AwsTarget, LocalTarget, target


def test_the_local_target_is_a_folder_that_may_use_the_sample_data(tmp_path: Path) -> None:
    local = target(Settings(lake_dir=tmp_path / "lake"))
    assert isinstance(local, LocalTarget) and local.samples_allowed
    assert local.lake_url == (tmp_path / "lake").as_uri()
    assert local.table_url("songs") == f"{(tmp_path / 'lake').as_uri()}/processed/songs"
    lake = local.open_lake()
    assert isinstance(lake, LocalLake) and lake.root == str(tmp_path / "lake")


def test_the_aws_target_is_a_bucket_opened_through_the_given_filesystem() -> None:
    settings = Settings(target="aws", s3_bucket="bkt", s3_prefix="data", aws_conn_id="my_aws", s3_sse="AES256")
    aws = target(settings)
    assert isinstance(aws, AwsTarget) and not aws.samples_allowed
    assert aws.table_url("songs") == "s3://bkt/data/processed/songs"
    asked: list[str] = []
    lake = aws.open_lake(lambda conn_id: asked.append(conn_id) or MemoryFileSystem())
    assert isinstance(lake, S3Lake) and lake.root == "bkt/data" and asked == ["my_aws"]
    assert lake.write_kwargs == {"ServerSideEncryption": "AES256"}
    with pytest.raises(ValueError, match="the 'aws' target's lake needs an S3 filesystem"):
        aws.open_lake()


def test_the_aws_target_without_a_bucket_is_refused_before_anything_opens() -> None:
    aws = target(Settings(target="aws"))
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_S3_BUCKET='': required when SPOTIFY_ETL_TARGET=aws"):
        aws.open_lake(lambda conn_id: pytest.fail("opened S3 without a bucket"))


def test_the_setting_takes_the_maps_names() -> None:
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_TARGET='gcp': `local` or `aws`"):
        Settings.from_env({"SPOTIFY_ETL_TARGET": "gcp"})
    assert [type(target(Settings(target=name))) for name in TARGETS] == [LocalTarget, AwsTarget]
