"""Deploy spotify_playlist_etl to Amazon MWAA (``make deploy``; needs AWS credentials).

1. On the first deploy the stack is created without the MWAA environment
   (``CreateEnvironment=false``): MWAA will not start until its source bucket holds the
   DAGs, requirements.txt and startup.sh, and that bucket is part of the stack.
2. The bundle of ``make mwaa-bundle`` is uploaded to the source bucket: ``dags/`` is synced
   (files gone from the bundle are deleted), the other files are put and their S3 version
   ids noted.
3. The stack is deployed with the environment, pinned to those version ids, so a changed
   requirements.txt or startup.sh makes MWAA update the environment.

Credentials and region come from the usual AWS sources (AWS_PROFILE, AWS_REGION, ...).
Stack parameters are given as ``--parameter Key=Value`` (SubnetIds and SecurityGroupIds are
required, comma-separated); on later deploys parameters not given keep their previous value.
"""

from __future__ import annotations

import argparse
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
            raise RuntimeError(f"s3://{bucket} is not versioned; MWAA needs object versions")
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


def deploy_stack(cfn: Any, name: str, template_body: str, given: Mapping[str, str]) -> dict[str, str]:
    """Create or update the stack through a change set; return its outputs."""
    current = _stack(cfn, name)
    if current and current["StackStatus"] == "REVIEW_IN_PROGRESS":
        current = None  # a change set that never ran: the stack is still to be created
    template_params = [p["ParameterKey"] for p in cfn.validate_template(TemplateBody=template_body)["Parameters"]]
    existing = [p["ParameterKey"] for p in current.get("Parameters", [])] if current else []
    change_set = cfn.create_change_set(
        StackName=name,
        ChangeSetName=f"{name}-deploy",
        ChangeSetType="UPDATE" if current else "CREATE",
        TemplateBody=template_body,
        Parameters=stack_parameters(template_params, given, existing),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    from botocore.exceptions import WaiterError

    try:
        cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=change_set["Id"], WaiterConfig={"Delay": 5})
    except WaiterError:
        described = cfn.describe_change_set(ChangeSetName=change_set["Id"])
        if any(text in described.get("StatusReason", "") for text in NO_CHANGES):
            cfn.delete_change_set(ChangeSetName=change_set["Id"])
            print(f"stack {name}: no changes")
            return outputs(_stack(cfn, name) or {})
        raise RuntimeError(f"change set failed: {described.get('StatusReason')}") from None
    cfn.execute_change_set(ChangeSetName=change_set["Id"])
    waiter = "stack_update_complete" if current else "stack_create_complete"
    print(f"stack {name}: {waiter.replace('_', ' ')} (MWAA takes 20-40 minutes)...")
    cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig=STACK_WAIT)
    return outputs(_stack(cfn, name) or {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=PROJECT / "build" / "mwaa", help="output of make mwaa-bundle")
    parser.add_argument("--stack-name", default=DEFAULT_STACK)
    parser.add_argument("--region", default=None, help="AWS region (default: the AWS configuration's)")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", help="stack parameter")
    args = parser.parse_args(argv)

    import boto3  # only here: building and testing the bundle never needs AWS

    bundle = Bundle(args.bundle.resolve())
    if not bundle.requirements.exists():
        parser.error(f"{bundle.root} holds no bundle; run make mwaa-bundle first")
    given = parse_parameters(args.parameter)
    session = boto3.Session(region_name=args.region)
    cfn, s3 = session.client("cloudformation"), session.client("s3")
    template = TEMPLATE.read_text(encoding="utf-8")

    found = _stack(cfn, args.stack_name)
    if not found or "SourceBucketName" not in outputs(found):
        print(f"stack {args.stack_name}: first deploy, creating buckets and roles before the environment")
        deploy_stack(cfn, args.stack_name, template, {**given, "CreateEnvironment": "false"})

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
    result = deploy_stack(cfn, args.stack_name, template, final)
    for key, value in sorted(result.items()):
        print(f"  {key}: {value}")
    print(
        f"Next: put the Spotify connection in Secrets Manager as {result.get('SpotifyConnectionSecretName')} (docs/deploy-mwaa.md)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
