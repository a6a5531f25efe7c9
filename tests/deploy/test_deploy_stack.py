"""deploy/deploy.py's CloudFormation and MWAA calls against fakes that answer as the services do.

moto emulates neither MWAA nor CloudFormation's change-set rules closely enough, so the fakes
hold what the CloudFormation API reference documents: a change-set name is unique within its
stack (AlreadyExistsException); a failed change set stays until deleted; a stack whose first
creation failed rolls back to ROLLBACK_COMPLETE and can then only be deleted (a change set on it
fails with ValidationError). MWAA's InvokeRestApi answers an Airflow 4xx as RestApiClientException
carrying Airflow's status code (botocore's model of the API, used here through its Stubber).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, WaiterError
from botocore.stub import Stubber

from deploy import deploy, mwaa_bundle

STACK = "spotify-etl"
PARAMS = ["SubnetIds", "SecurityGroupIds", "CreateEnvironment", "RequirementsS3ObjectVersion",
          "StartupScriptS3ObjectVersion", "PluginsS3ObjectVersion"]  # fmt: skip
ROLE = "arn:aws:iam::123456789012:role/spotify-etl-cloudformation"


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class Waiter:
    def __init__(self, check: Any) -> None:
        self.check = check

    def wait(self, **kwargs: Any) -> None:
        if not self.check(**kwargs):
            raise WaiterError("waiter", "Waiter encountered a terminal failure state", {})


class FakeCloudFormation:
    """Stacks and change sets with CloudFormation's documented rules (see the module's docstring)."""

    exceptions = SimpleNamespace(ClientError=ClientError)

    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, Any]] = {}
        self.change_sets: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1)
        self.fail_change_set = ""  # the next change set fails with this reason
        self.create_result = "CREATE_COMPLETE"  # what executing a CREATE change set ends in
        self.roles: list[str | None] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName not in self.stacks:
            raise client_error("ValidationError", f"Stack with id {StackName} does not exist", "DescribeStacks")
        return {"Stacks": [self.stacks[StackName]]}

    def validate_template(self, TemplateBody: str) -> dict[str, Any]:
        return {"Parameters": [{"ParameterKey": p} for p in PARAMS]}

    def create_change_set(self, **kw: Any) -> dict[str, str]:
        name, stack = kw["ChangeSetName"], self.stacks.get(kw["StackName"])
        if any(c["StackName"] == kw["StackName"] and c["ChangeSetName"] == name for c in self.change_sets.values()):
            raise client_error("AlreadyExistsException", f"ChangeSet [{name}] already exists", "CreateChangeSet")
        if stack and stack["StackStatus"] == "ROLLBACK_COMPLETE":
            raise client_error(
                "ValidationError", f"Stack:{kw['StackName']} is in ROLLBACK_COMPLETE state and can not be updated.",
                "CreateChangeSet",
            )  # fmt: skip
        if kw["ChangeSetType"] == "CREATE":
            if stack and stack["StackStatus"] != "REVIEW_IN_PROGRESS":
                raise client_error("ValidationError", f"Stack [{kw['StackName']}] already exists", "CreateChangeSet")
            self.stacks[kw["StackName"]] = {"StackName": kw["StackName"], "StackStatus": "REVIEW_IN_PROGRESS"}
        change_set_id = f"arn:aws:cloudformation:us-east-1:123456789012:changeSet/{name}/{next(self.ids)}"
        failed, self.fail_change_set = self.fail_change_set, ""
        self.change_sets[change_set_id] = {
            **kw, "ChangeSetId": change_set_id, "Status": "FAILED" if failed else "CREATE_COMPLETE",
            "StatusReason": failed,
        }  # fmt: skip
        self.roles.append(kw.get("RoleARN"))
        return {"Id": change_set_id}

    def describe_change_set(self, ChangeSetName: str) -> dict[str, Any]:
        return self.change_sets[ChangeSetName]

    def delete_change_set(self, ChangeSetName: str) -> None:
        del self.change_sets[ChangeSetName]

    def execute_change_set(self, ChangeSetName: str) -> None:
        change_set = self.change_sets.pop(ChangeSetName)  # an executed change set is gone
        stack = self.stacks[change_set["StackName"]]
        stack["StackStatus"] = self.create_result if change_set["ChangeSetType"] == "CREATE" else "UPDATE_COMPLETE"
        stack["Parameters"] = change_set["Parameters"]
        stack["Outputs"] = [{"OutputKey": "SourceBucketName", "OutputValue": "source-bucket"}]
        if {"ParameterKey": "CreateEnvironment", "ParameterValue": "true"} in change_set["Parameters"]:
            stack["Outputs"].append({"OutputKey": "EnvironmentName", "OutputValue": "spotify-etl"})

    def get_paginator(self, name: str) -> Any:
        assert name == "list_change_sets"

        def paginate(StackName: str) -> list[dict[str, Any]]:
            self.describe_stacks(StackName)
            sets = [c for c in self.change_sets.values() if c["StackName"] == StackName]
            return [{"Summaries": [{"ChangeSetId": c["ChangeSetId"], "Status": c["Status"]} for c in sets]}]

        return SimpleNamespace(paginate=paginate)

    def get_waiter(self, name: str) -> Waiter:
        if name == "change_set_create_complete":
            return Waiter(lambda ChangeSetName, **_: self.change_sets[ChangeSetName]["Status"] == "CREATE_COMPLETE")
        ok = {"stack_create_complete": "CREATE_COMPLETE", "stack_update_complete": "UPDATE_COMPLETE"}[name]
        return Waiter(lambda StackName, **_: self.stacks[StackName]["StackStatus"] == ok)


GIVEN = {"SubnetIds": "subnet-a,subnet-b", "SecurityGroupIds": "sg-c", "CreateEnvironment": "false"}


def test_a_failed_change_set_is_deleted_and_every_deploy_names_a_new_one() -> None:
    cfn = FakeCloudFormation()
    cfn.fail_change_set = (
        "Parameter validation failed: parameter value sg-x for parameter name SecurityGroupIds does not exist"
    )
    with pytest.raises(RuntimeError, match="change set failed: Parameter validation failed"):
        deploy.deploy_stack(cfn, STACK, "{}", GIVEN)
    assert cfn.change_sets == {}  # the failed change set did not stay behind

    assert deploy.deploy_stack(cfn, STACK, "{}", GIVEN) == {"SourceBucketName": "source-bucket"}
    assert cfn.stacks[STACK]["StackStatus"] == "CREATE_COMPLETE"
    deploy.deploy_stack(cfn, STACK, "{}", {**GIVEN, "CreateEnvironment": "true"})
    assert cfn.stacks[STACK]["StackStatus"] == "UPDATE_COMPLETE"
    assert deploy.change_set_name() != deploy.change_set_name()


def test_failed_change_sets_left_by_an_earlier_deploy_are_deleted_first() -> None:
    cfn = FakeCloudFormation()
    deploy.deploy_stack(cfn, STACK, "{}", GIVEN)
    cfn.fail_change_set = "an earlier failure"
    cfn.create_change_set(StackName=STACK, ChangeSetName="deploy-by-hand", ChangeSetType="UPDATE", Parameters=[])
    deploy.deploy_stack(cfn, STACK, "{}", GIVEN)
    assert cfn.change_sets == {}


def test_a_failed_first_create_stops_with_what_to_do_now_and_on_the_next_deploy() -> None:
    cfn = FakeCloudFormation()
    cfn.create_result = "ROLLBACK_COMPLETE"  # e.g. a bucket name already taken
    with pytest.raises(deploy.StackNeedsAttention, match=r"ROLLBACK_COMPLETE.*delete-stack --stack-name spotify-etl"):
        deploy.deploy_stack(cfn, STACK, "{}", GIVEN)
    with pytest.raises(deploy.StackNeedsAttention, match=r"can only delete it.*describe-stack-events"):
        deploy.deploy_stack(cfn, STACK, "{}", GIVEN)
    assert cfn.change_sets == {}  # the second deploy refused before creating a change set


@pytest.mark.parametrize(
    ("status", "says"),
    [("UPDATE_ROLLBACK_FAILED", "continue-update-rollback"), ("UPDATE_IN_PROGRESS", "another operation")],
)
def test_a_stack_no_change_set_can_update_is_refused_with_what_to_do(status: str, says: str) -> None:
    cfn = FakeCloudFormation()
    cfn.stacks[STACK] = {"StackName": STACK, "StackStatus": status}
    with pytest.raises(deploy.StackNeedsAttention, match=says):
        deploy.deploy_stack(cfn, STACK, "{}", GIVEN)


def test_the_change_sets_run_with_cloudformations_service_role() -> None:
    cfn = FakeCloudFormation()
    deploy.deploy_stack(cfn, STACK, "{}", GIVEN, role_arn=ROLE)
    deploy.deploy_stack(cfn, STACK, "{}", GIVEN)
    assert cfn.roles == [ROLE, None]  # without one, CloudFormation keeps the stack's role


def mwaa_stub() -> tuple[Any, Stubber]:
    client = boto3.client("mwaa", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def stub_missing_pool_then_create(stub: Stubber) -> None:
    stub.add_client_error(
        "invoke_rest_api", service_error_code="RestApiClientException", http_status_code=400,
        modeled_fields={"RestApiStatusCode": 404, "RestApiResponse": {"detail": "The Pool with name: `spotify_api` was not found"}},
        expected_params={"Name": "spotify-etl", "Method": "GET", "Path": "/pools/spotify_api"},
    )  # fmt: skip
    body = {"name": "spotify_api", "slots": 4, "description": deploy_description(), "include_deferred": False}
    stub.add_response(
        "invoke_rest_api", {"RestApiStatusCode": 201, "RestApiResponse": body},
        expected_params={"Name": "spotify-etl", "Method": "POST", "Path": "/pools", "Body": body},
    )  # fmt: skip


def test_the_pool_is_created_when_mwaa_has_none() -> None:
    mwaa, stub = mwaa_stub()
    stub_missing_pool_then_create(stub)
    with stub:
        deploy.ensure_pool(mwaa, "spotify-etl", 4)
    stub.assert_no_pending_responses()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "SPOTIFY_ETL_SPOTIFY_POOL_SLOTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def run_main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cfn: FakeCloudFormation, mwaa: Any) -> int:
    """deploy.main with the role and the two required parameters; S3 is moto's."""
    from moto import mock_aws

    bundle = mwaa_bundle.build(tmp_path / "bundle")
    with mock_aws():
        s3 = boto3.session.Session(region_name="us-east-1").client("s3")  # not the patched boto3.Session
        s3.create_bucket(Bucket="source-bucket")
        s3.put_bucket_versioning(Bucket="source-bucket", VersioningConfiguration={"Status": "Enabled"})
        clients = {"cloudformation": cfn, "s3": s3, "mwaa": mwaa}
        monkeypatch.setattr(boto3, "Session", lambda **_: SimpleNamespace(client=clients.__getitem__))
        args = ["--bundle", str(bundle.root), "--role-arn", ROLE, "--parameter", "SubnetIds=subnet-a,subnet-b",
                "--parameter", "SecurityGroupIds=sg-c"]  # fmt: skip
        return deploy.main(args)


def test_a_fresh_deploy_ends_with_the_pool_present(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """From no stack: the stack without the environment, the bundle, the stack with it, then
    the pool; every change set under the service role."""
    cfn, (mwaa, stub) = FakeCloudFormation(), mwaa_stub()
    stub_missing_pool_then_create(stub)
    with stub:
        assert run_main(monkeypatch, tmp_path, cfn, mwaa) == 0
    stub.assert_no_pending_responses()  # the GET found no pool, the POST created it
    assert cfn.roles == [ROLE, ROLE] and cfn.stacks[STACK]["StackStatus"] == "UPDATE_COMPLETE"


def test_a_failed_first_create_ends_the_deploy_with_what_to_do_and_exit_1(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfn, (mwaa, stub) = FakeCloudFormation(), mwaa_stub()
    cfn.create_result = "ROLLBACK_COMPLETE"
    with stub:  # no MWAA call expected: the stub would refuse any
        assert run_main(monkeypatch, tmp_path, cfn, mwaa) == 1
        assert run_main(monkeypatch, tmp_path, cfn, mwaa) == 1  # the next try: refused before any change set
    err = capsys.readouterr().err
    assert err.count("deploy failed: stack spotify-etl is ROLLBACK_COMPLETE") == 2, err
    assert "aws cloudformation delete-stack --stack-name spotify-etl" in err and "Traceback" not in err


def test_a_deployer_without_invoke_rest_api_is_told_which_permission_is_missing() -> None:
    mwaa, stub = mwaa_stub()
    stub.add_client_error("invoke_rest_api", service_error_code="AccessDeniedException", http_status_code=403)
    with stub, pytest.raises(deploy.DeployError, match=r"airflow:InvokeRestApi on .*:role/spotify-etl/Op"):
        deploy.ensure_pool(mwaa, "spotify-etl", 4)


def test_an_existing_pool_is_left_as_it_is_and_other_refusals_stop_the_deploy() -> None:
    mwaa, stub = mwaa_stub()
    stub.add_response("invoke_rest_api", {"RestApiStatusCode": 200, "RestApiResponse": {"name": "spotify_api"}})
    stub.add_client_error(
        "invoke_rest_api", service_error_code="RestApiClientException", http_status_code=400,
        modeled_fields={"RestApiStatusCode": 403, "RestApiResponse": {"detail": "Forbidden"}},
    )  # fmt: skip
    with stub:
        deploy.ensure_pool(mwaa, "spotify-etl", 4)  # no POST: it would have no stubbed answer
        with pytest.raises(mwaa.exceptions.RestApiClientException):
            deploy.ensure_pool(mwaa, "spotify-etl", 4)


def deploy_description() -> str:
    from spotify_etl.airflow.pool import DESCRIPTION

    return DESCRIPTION
