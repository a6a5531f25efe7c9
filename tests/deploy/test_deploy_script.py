"""deploy/deploy.py without AWS: the upload to the source bucket (moto) and the stack parameters.

The CloudFormation and MWAA calls run against fakes that keep the services' documented rules
in tests/deploy/test_deploy_stack.py; a real stack needs a real account (``make deploy``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy import deploy, mwaa_bundle

BUCKET = "airflow-spotify-etl-source-123456789012-us-east-1"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


@pytest.fixture
def bundle(tmp_path: Path) -> mwaa_bundle.Bundle:
    return mwaa_bundle.build(tmp_path / "bundle")


def keys(s3: Any, prefix: str = "") -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def test_upload_syncs_dags_and_returns_the_versions_mwaa_pins(s3: Any, bundle: mwaa_bundle.Bundle) -> None:
    s3.put_object(Bucket=BUCKET, Key="dags/removed_dag.py", Body=b"old")
    versions = deploy.upload_bundle(s3, BUCKET, bundle)

    local = {"dags/" + p.relative_to(bundle.dags).as_posix() for p in bundle.dags.rglob("*") if p.is_file()}
    assert keys(s3, "dags/") == local
    assert "dags/spotify_etl/settings.py" in local and "dags/.airflowignore" in local
    assert set(versions) == {"requirements.txt", "startup.sh", "plugins.zip"}  # plugins/: the Trends view
    for key, version in versions.items():
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["VersionId"] == version
        body = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read()
        assert body == (bundle.root / key).read_bytes()


def test_unchanged_files_keep_their_version_so_mwaa_does_not_update(s3: Any, bundle: mwaa_bundle.Bundle) -> None:
    first = deploy.upload_bundle(s3, BUCKET, bundle)
    assert deploy.upload_bundle(s3, BUCKET, bundle) == first
    bundle.requirements.write_text(bundle.requirements.read_text() + "extra-package==1.0\n")
    second = deploy.upload_bundle(s3, BUCKET, bundle)
    assert second["requirements.txt"] != first["requirements.txt"]
    assert second["startup.sh"] == first["startup.sh"]


def test_unversioned_bucket_is_refused(s3: Any, bundle: mwaa_bundle.Bundle) -> None:
    s3.create_bucket(Bucket="plain-bucket")
    with pytest.raises(RuntimeError, match="not versioned"):
        deploy.upload_bundle(s3, "plain-bucket", bundle)


def test_stack_parameters_prefer_given_then_previous_values() -> None:
    params = deploy.stack_parameters(
        ["SubnetIds", "SecurityGroupIds", "CreateEnvironment", "MaxWorkers"],
        {"CreateEnvironment": "true", "SubnetIds": "subnet-a,subnet-b"},
        existing=["SubnetIds", "SecurityGroupIds", "CreateEnvironment"],
    )
    assert params == [
        {"ParameterKey": "CreateEnvironment", "ParameterValue": "true"},
        # MaxWorkers: not given, not in the stack yet -> the template default (absent here).
        {"ParameterKey": "SecurityGroupIds", "UsePreviousValue": True},
        {"ParameterKey": "SubnetIds", "ParameterValue": "subnet-a,subnet-b"},
    ]
    with pytest.raises(ValueError, match="no parameter"):
        deploy.stack_parameters(["SubnetIds"], {"Subnets": "x"}, [])


def test_parameters_are_key_value_pairs() -> None:
    assert deploy.parse_parameters(["SubnetIds=subnet-a,subnet-b", "MaxWorkers = 4"]) == {
        "SubnetIds": "subnet-a,subnet-b",
        "MaxWorkers": "4",
    }
    with pytest.raises(ValueError, match="Key=Value"):
        deploy.parse_parameters(["SubnetIds"])


def test_template_parameters_the_script_sets_exist(template: dict[str, Any]) -> None:
    set_by_script = {
        "CreateEnvironment",
        "RequirementsS3ObjectVersion",
        "StartupScriptS3ObjectVersion",
        "PluginsS3ObjectVersion",
    }
    assert set_by_script <= set(template["Parameters"])
    assert {"SourceBucketName", "SpotifyConnectionSecretName", "EnvironmentName"} <= set(template["Outputs"])
    # The pool goes into the environment the final deploy creates: its name is an output then.
    assert template["Outputs"]["EnvironmentName"]["Condition"] == "CreateEnvironment"


def test_deploy_refuses_to_run_without_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        deploy.main(["--bundle", str(tmp_path / "nothing")])
    assert "make mwaa-bundle" in capsys.readouterr().err
