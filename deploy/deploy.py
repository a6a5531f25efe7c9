"""Deploy spotify_playlist_etl to Amazon MWAA (``make deploy``; needs AWS credentials).

1. On the first deploy the stack is created without the MWAA environment
   (``CreateEnvironment=false``): MWAA will not start until its source bucket holds the
   DAGs, requirements.txt and startup.sh, and that bucket is part of the stack.
2. The bundle of ``make mwaa-bundle`` is uploaded to the source bucket: ``dags/`` is synced
   (files gone from the bundle are deleted), the other files are put and their S3 version
   ids noted.
3. The stack is deployed with the environment, pinned to those version ids, so a changed
   requirements.txt or startup.sh makes MWAA update the environment.
4. The Airflow pool ``spotify_api`` is created through MWAA's REST API endpoint if missing.

Each deploy's change set has a new name; a failed one is deleted. A stack that no change set
can update (a failed first create, ROLLBACK_COMPLETE) stops the deploy with what to do.
``--role-arn`` names CloudFormation's service role (least privilege, docs/deploy-mwaa.md).

Credentials and region come from the usual AWS sources (AWS_PROFILE, AWS_REGION, ...).
Stack parameters are given as ``--parameter Key=Value`` (SubnetIds and SecurityGroupIds are
required, comma-separated); on later deploys parameters not given keep their previous value.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.mwaa_bundle import PROJECT, Bundle

TEMPLATE = PROJECT / "deploy" / "cloudformation.yaml"
DEFAULT_STACK = "spotify-etl"
DAGS_PREFIX = "dags/"
# MWAA environments take 20-40 minutes to create or update.
STACK_WAIT = {"Delay": 30, "MaxAttempts": 180}
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


def parse_parameters(pairs: Iterable[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--parameter must be Key=Value, got {pair!r}")
        params[key.strip()] = value.strip()
    return params


def stack_parameters(
    template_params: Iterable[str], given: Mapping[str, str], existing: Iterable[str]
) -> list[dict[str, Any]]:
    """CloudFormation Parameters: what was given, else the stack's previous value, else the template default."""
    known = set(template_params)
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"the template has no parameter(s) {unknown}; it has {sorted(known)}")
    previous = set(existing)
    result: list[dict[str, Any]] = []
    for name in sorted(known):
        if name in given:
            result.append({"ParameterKey": name, "ParameterValue": given[name]})
        elif name in previous:
            result.append({"ParameterKey": name, "UsePreviousValue": True})
    return result


def upload_bundle(s3: Any, bucket: str, bundle: Bundle) -> dict[str, str]:
    """Sync ``dags/`` and put the top-level files; return {key: S3 version id} of the top-level files."""
    wanted = {}
    for path in sorted(bundle.dags.rglob("*")):
        if path.is_file():
            wanted[DAGS_PREFIX + path.relative_to(bundle.dags).as_posix()] = path
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=DAGS_PREFIX):
        stale += [obj["Key"] for obj in page.get("Contents", []) if obj["Key"] not in wanted]
    for key, path in wanted.items():
        s3.upload_file(str(path), bucket, key)
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]]})

    versions = {}
    top_level = [bundle.requirements, bundle.startup_script] + ([bundle.plugins_zip] if bundle.plugins_zip else [])
    for path in top_level:
        content = path.read_bytes()
        # A new version id makes MWAA update the whole environment (20+ minutes): keep the
        # current one when the file did not change. Compared by content: with SSE-KMS the
        # ETag is no MD5.
        version = _unchanged_version(s3, bucket, path.name, content)
        if version is None:
            version = s3.put_object(Bucket=bucket, Key=path.name, Body=content).get("VersionId")
        if not version or version == "null":
            raise DeployError(f"s3://{bucket} is not versioned; MWAA needs object versions")
        versions[path.name] = version
    return versions


def _unchanged_version(s3: Any, bucket: str, key: str, content: bytes) -> str | None:
    try:
        current = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None
    version = current.get("VersionId")
    return version if current["Body"].read() == content else None


def _stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def outputs(stack: Mapping[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


class DeployError(RuntimeError):
    """A deploy that cannot go on; its text says why and what to do (main prints it, exit 1)."""


class StackNeedsAttention(DeployError):
    """The stack is in a state no change set can leave; a person must look at it first."""


# A failed first create rolls back to ROLLBACK_COMPLETE, and CloudFormation can only delete such
# a stack; the *_FAILED states need the failure fixed (or the stack deleted) by hand.
DELETE_FIRST = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED")
FIX_FIRST = ("UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED", "CREATE_FAILED")


def check_stack_status(name: str, status: str) -> None:
    """Refuse, saying what to do, a stack that cannot be updated (or is busy)."""
    events = f"aws cloudformation describe-stack-events --stack-name {name}"
    if status in DELETE_FIRST:
        raise StackNeedsAttention(
            f"stack {name} is {status}: CloudFormation can only delete it (a first create that rolled "
            f"back, or a failed delete). Find the cause in its events ({events}), then delete it "
            f"(aws cloudformation delete-stack --stack-name {name}) and deploy again."
        )
    if status in FIX_FIRST:
        raise StackNeedsAttention(
            f"stack {name} is {status}: fix the failure its events name ({events}), e.g. with "
            f"aws cloudformation continue-update-rollback --stack-name {name}, then deploy again."
        )
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise StackNeedsAttention(f"stack {name} is {status}: another operation is running; deploy when it ends.")


def change_set_name(now: dt.datetime | None = None) -> str:
    """A new name each deploy: CloudFormation refuses a name the stack already has."""
    return "deploy-" + (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def delete_failed_change_sets(cfn: Any, name: str) -> None:
    """Failed change sets of earlier deploys: they hold their names and clutter the console."""
    try:
        pages = cfn.get_paginator("list_change_sets").paginate(StackName=name)
        summaries = [s for page in pages for s in page.get("Summaries", [])]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return
        raise
    for summary in summaries:
        if summary.get("Status") == "FAILED":
            cfn.delete_change_set(ChangeSetName=summary["ChangeSetId"])


def deploy_stack(
    cfn: Any, name: str, template_body: str, given: Mapping[str, str], role_arn: str | None = None
) -> dict[str, str]:
    """Create or update the stack through a change set; return its outputs.

    ``role_arn`` is CloudFormation's service role: CloudFormation creates the stack's resources
    (IAM roles among them) with it, so the deployer needs only ``iam:PassRole`` on it.
    """
    current = _stack(cfn, name)
    if current:
        check_stack_status(name, current["StackStatus"])
        delete_failed_change_sets(cfn, name)
    if current and current["StackStatus"] == "REVIEW_IN_PROGRESS":
        current = None  # a change set that never ran: the stack is still to be created
    template_params = [p["ParameterKey"] for p in cfn.validate_template(TemplateBody=template_body)["Parameters"]]
    existing = [p["ParameterKey"] for p in current.get("Parameters", [])] if current else []
    change_set = cfn.create_change_set(
        StackName=name,
        ChangeSetName=change_set_name(),
        ChangeSetType="UPDATE" if current else "CREATE",
        TemplateBody=template_body,
        Parameters=stack_parameters(template_params, given, existing),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        **({"RoleARN": role_arn} if role_arn else {}),
    )
    from botocore.exceptions import WaiterError

    try:
        cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=change_set["Id"], WaiterConfig={"Delay": 5})
    except WaiterError:
        described = cfn.describe_change_set(ChangeSetName=change_set["Id"])
        cfn.delete_change_set(ChangeSetName=change_set["Id"])  # failed or empty: nothing to keep
        reason = described.get("StatusReason", "")
        if any(text in reason for text in NO_CHANGES):
            print(f"stack {name}: no changes")
            return outputs(_stack(cfn, name) or {})
        raise DeployError(f"change set failed: {reason}") from None
    cfn.execute_change_set(ChangeSetName=change_set["Id"])
    waiter = "stack_update_complete" if current else "stack_create_complete"
    print(f"stack {name}: {waiter.replace('_', ' ')} (MWAA takes 20-40 minutes)...")
    try:
        cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig=STACK_WAIT)
    except WaiterError:
        status = (_stack(cfn, name) or {}).get("StackStatus", "gone")
        check_stack_status(name, status)
        raise DeployError(f"stack {name} ended {status}, not {waiter.split('_')[1]}d; see its events") from None
    return outputs(_stack(cfn, name) or {})


def ensure_pool(mwaa: Any, environment: str, slots: int) -> None:
    """Create the extract tasks' pool through MWAA's REST API endpoint unless it exists.

    The scheduler never schedules a task whose pool is missing: without this, every extract of
    a fresh environment would wait until the run's deadline. An existing pool is left as it is
    (its slots may have been changed on purpose). Needs ``airflow:InvokeRestApi`` for an Airflow
    role that may create pools (docs/deploy-mwaa.md).
    """
    from spotify_etl.airflow.pool import DESCRIPTION, SPOTIFY_POOL

    try:
        mwaa.invoke_rest_api(Name=environment, Method="GET", Path=f"/pools/{SPOTIFY_POOL}")
        print(f"pool {SPOTIFY_POOL}: present")
        return
    except mwaa.exceptions.AccessDeniedException:
        raise DeployError(
            f"creating the pool {SPOTIFY_POOL} needs airflow:InvokeRestApi on "
            f"arn:aws:airflow:<region>:<account>:role/{environment}/Op (docs/deploy-mwaa.md)"
        ) from None
    except mwaa.exceptions.RestApiClientException as exc:
        if exc.response.get("RestApiStatusCode") != 404:
            raise
    body = {"name": SPOTIFY_POOL, "slots": slots, "description": DESCRIPTION, "include_deferred": False}
    mwaa.invoke_rest_api(Name=environment, Method="POST", Path="/pools", Body=body)
    print(f"pool {SPOTIFY_POOL}: created with {slots} slots")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=PROJECT / "build" / "mwaa", help="output of make mwaa-bundle")
    parser.add_argument("--stack-name", default=DEFAULT_STACK)
    parser.add_argument("--region", default=None, help="AWS region (default: the AWS configuration's)")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", help="stack parameter")
    parser.add_argument(
        "--role-arn",
        default=None,
        help="CloudFormation service role that creates the stack's resources (docs/deploy-mwaa.md, least privilege)",
    )
    args = parser.parse_args(argv)
    bundle = Bundle(args.bundle.resolve())
    if not bundle.requirements.exists():
        parser.error(f"{bundle.root} holds no bundle; run make mwaa-bundle first")
    try:
        deploy(args, bundle)
    except (DeployError, ValueError) as exc:  # ValueError: a --parameter the template does not take
        print(f"deploy failed: {exc}", file=sys.stderr)
        return 1
    return 0


def deploy(args: argparse.Namespace, bundle: Bundle) -> None:
    import boto3  # only here: building and testing the bundle never needs AWS

    given = parse_parameters(args.parameter)
    session = boto3.Session(region_name=args.region)
    cfn, s3, mwaa = session.client("cloudformation"), session.client("s3"), session.client("mwaa")
    template = TEMPLATE.read_text(encoding="utf-8")

    found = _stack(cfn, args.stack_name)
    if not found or "SourceBucketName" not in outputs(found):
        print(f"stack {args.stack_name}: first deploy, creating buckets and roles before the environment")
        deploy_stack(cfn, args.stack_name, template, {**given, "CreateEnvironment": "false"}, args.role_arn)

    source = outputs(_stack(cfn, args.stack_name) or {})["SourceBucketName"]
    versions = upload_bundle(s3, source, bundle)
    print(f"uploaded the bundle to s3://{source}: {versions}")
    final = {
        **given,
        "CreateEnvironment": "true",
        "RequirementsS3ObjectVersion": versions["requirements.txt"],
        "StartupScriptS3ObjectVersion": versions["startup.sh"],
        "PluginsS3ObjectVersion": versions.get("plugins.zip", ""),
    }
    result = deploy_stack(cfn, args.stack_name, template, final, args.role_arn)
    from spotify_etl.settings import Settings

    ensure_pool(mwaa, result["EnvironmentName"], Settings.from_env().spotify_pool_slots)
    for key, value in sorted(result.items()):
        print(f"  {key}: {value}")
    print(
        f"Next: put the Spotify connection in Secrets Manager as {result.get('SpotifyConnectionSecretName')} (docs/deploy-mwaa.md)."
    )


if __name__ == "__main__":
    sys.exit(main())
