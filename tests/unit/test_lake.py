"""The lake's two halves: what each sends, how DuckDB reads it, how each names a failure.

Their writes, publish and faults run for real in tests/reliability/ (a folder and moto's S3);
what S3 does with the encryption headers is tested against moto in tests/integration/test_aws_target.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem
from spotify_etl.lake import LakeError, LocalLake, S3Lake
from spotify_etl.settings import Settings


def s3_lake(env: dict[str, str]) -> S3Lake:
    s = Settings.from_env(env)
    return S3Lake(MemoryFileSystem(), "bucket", "p", s.s3_sse, s.s3_sse_kms_key_id)


def test_by_default_no_encryption_header_is_sent() -> None:
    assert s3_lake({}).write_kwargs == {}


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
def test_the_setting_chooses_the_header(env: dict[str, str], kwargs: dict[str, str]) -> None:
    assert s3_lake(env).write_kwargs == kwargs


def test_each_half_names_its_objects_by_its_own_scheme(tmp_path: Path) -> None:
    local, s3 = LocalLake(tmp_path / "lake"), S3Lake(MemoryFileSystem(), "bkt", "/data/spotify/")
    assert local.table_dir("songs") == f"{tmp_path}/lake/processed/songs"
    assert s3.table_dir("songs") == "bkt/data/spotify/processed/songs"
    assert local.url(local.table_dir("songs")) == f"file://{tmp_path}/lake/processed/songs"
    assert s3.url(s3.table_dir("songs")) == "s3://bkt/data/spotify/processed/songs"
    # DuckDB reads local files by their path, and S3 objects by URL through the registered filesystem.
    assert local.reader_path(f"{local.root}/a.json") == f"{tmp_path}/lake/a.json"
    assert s3.reader_path("bkt/data/spotify/a.json") == "s3://bkt/data/spotify/a.json"


def test_each_half_names_a_failure_in_its_own_terms(tmp_path: Path) -> None:
    blocker = tmp_path / "a file, not a folder"
    blocker.write_text("")
    with pytest.raises(LakeError, match=r"could not write '.*a file, not a folder/x.json': .*SPOTIFY_ETL_LAKE_DIR"):
        LocalLake(blocker).write_json(f"{blocker}/x.json", {})

    class Refusing(MemoryFileSystem):
        def pipe_file(self, path: str, value: bytes, **kwargs: object) -> None:
            raise PermissionError("Access Denied")

    with pytest.raises(LakeError, match=r"could not write bucket 'bkt', key 'p/x.json': PermissionError: Access "
                                        r"Denied \(check the bucket exists, the AWS connection's"):  # fmt: skip
        S3Lake(Refusing(), "bkt", "p").write_json("bkt/p/x.json", {})
