"""deploy/cloudformation.yaml: cfn-lint, checkov, and what the stack must guarantee.

The linters check CloudFormation in general; the assertions below check this project's
promises: locked-down buckets, an enforced Athena workgroup, an execution role that only
reaches this project's resources, and MWAA settings that match the bundle and the package.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy import mwaa_bundle
from tests.deploy.conftest import PROJECT, TEMPLATE, clean_env, run, tool


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ----------------------------------------------------------------------------- linters
def test_cfn_lint_passes_and_really_lints(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    text = TEMPLATE.read_text(encoding="utf-8")
    broken.write_text(text.replace("WebserverAccessMode: !Ref WebserverAccessMode", "WebServerMode: PUBLIC"))
    proc = run([tool("cfn-lint"), "--format", "parseable", TEMPLATE, broken], env=clean_env())
    findings = [line for line in proc.stdout.splitlines() if line.strip()]
    assert [f for f in findings if f.startswith(str(TEMPLATE))] == []
    assert any("WebServerMode" in f for f in findings if f.startswith(str(broken))), proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    proc = subprocess.run(
        [str(tool("checkov")), "-f", str(TEMPLATE), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=600, env=clean_env(), cwd=PROJECT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    return report["results"]


def test_checkov_finds_nothing_failing(checkov_report: dict[str, Any]) -> None:
    assert checkov_report["failed_checks"] == []
    passed = {(c["check_id"], c["resource"]) for c in checkov_report["passed_checks"]}
    # It did evaluate the resources that matter, not an empty file.
    for bucket in ("LakeBucket", "SourceBucket"):
        for check in ("CKV_AWS_18", "CKV_AWS_19", "CKV_AWS_21", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"):
            assert (check, f"AWS::S3::Bucket.{bucket}") in passed
    assert ("CKV_AWS_82", "AWS::Athena::WorkGroup.AthenaWorkGroup") in passed
    for role in ("ExecutionRole", "CrawlerRole"):
        for check in ("CKV_AWS_107", "CKV_AWS_108", "CKV_AWS_109", "CKV_AWS_110", "CKV_AWS_111"):
            assert (check, f"AWS::IAM::Role.{role}") in passed


def test_every_checkov_skip_is_justified_and_used(template: dict[str, Any], checkov_report: dict[str, Any]) -> None:
    declared = {}
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, f"{name} skips {skip['id']} without a reason"
            declared[(skip["id"], name)] = skip["comment"]
    skipped = {(c["check_id"], c["resource"].split(".", 1)[1]) for c in checkov_report["skipped_checks"]}
    assert skipped == set(declared), "a skip that checkov no longer reports is stale; remove it"


# ------------------------------------------------------------------------------ buckets
def test_buckets_are_encrypted_versioned_private_and_tls_only(template: dict[str, Any]) -> None:
    buckets = resources(template, "AWS::S3::Bucket")
    assert {"LakeBucket", "SourceBucket", "AccessLogsBucket"} <= set(buckets)
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in resources(template, "AWS::S3::BucketPolicy").values()}
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert props["VersioningConfiguration"]["Status"] == "Enabled", name
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        }, name  # fmt: skip
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        # Deleting the stack must not delete data; a rolled-back first create must not leave
        # empty buckets whose names block the retry.
        assert bucket["DeletionPolicy"] == "RetainExceptOnCreate", name
        assert bucket["UpdateReplacePolicy"] == "Retain", name
        deny_tls = [
            s for s in policies[name]["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]  # fmt: skip
        assert len(deny_tls) == 1, f"{name} has no TLS-only policy"
        assert deny_tls[0]["Action"] == "s3:*" and deny_tls[0]["Principal"] == "*"
        covered = json.dumps(deny_tls[0]["Resource"])
        assert f'"{name}", "Arn"' in covered and "/*" in covered, f"{name}: deny must cover the bucket and its objects"


def test_data_buckets_log_access_and_use_kms(template: dict[str, Any]) -> None:
    for name in ("LakeBucket", "SourceBucket"):
        props = template["Resources"][name]["Properties"]
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert sse["SSEAlgorithm"] == "aws:kms"


def test_mwaa_source_bucket_name_is_one_mwaa_accepts(template: dict[str, Any]) -> None:
    name = template["Resources"]["SourceBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert name.startswith("airflow-")
    # Longest names: a 20-character project, a 12-digit account, the longest region names.
    longest = name.replace("${ProjectName}", "p" * 20).replace("${AWS::AccountId}", "1" * 12)
    assert len(longest.replace("${AWS::Region}", "ap-southeast-4")) <= 63
    assert template["Parameters"]["ProjectName"]["AllowedPattern"] == "^[a-z][a-z0-9-]{1,19}$"


# ---------------------------------------------------------------------- catalog, query
def test_athena_workgroup_enforces_result_location_and_a_scan_cutoff(template: dict[str, Any]) -> None:
    (workgroup,) = resources(template, "AWS::Athena::WorkGroup").values()
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    assert template["Parameters"]["AthenaBytesScannedCutoff"]["MinValue"] >= 10_000_000  # Athena's minimum
    assert config["ResultConfiguration"]["OutputLocation"] == {"Fn::Sub": "s3://${LakeBucket}/athena-results/"}
    assert config["ResultConfiguration"]["EncryptionConfiguration"]


def test_glue_database_and_crawler_role(template: dict[str, Any]) -> None:
    (database,) = resources(template, "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == {"Ref": "GlueDatabaseName"}
    role = template["Resources"]["CrawlerRole"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "glue.amazonaws.com"}
    # Glue's documentation ("Crawler prerequisites", "Create an IAM role for AWS Glue") trusts
    # glue.amazonaws.com with no condition and documents no aws:SourceAccount/SourceArn for Glue:
    # a condition Glue does not meet would fail the first CreateCrawler on AWS only.
    assert "Condition" not in trust
    for statement in statements(role):
        actions = as_list(statement["Action"])
        assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement["Sid"]
        text = json.dumps(statement["Resource"])
        assert "LakeBucket" in text or "GlueDatabaseName" in text or "/aws-glue/crawlers" in text, statement["Sid"]
    writes = [s for s in statements(role) if "s3:PutObject" in as_list(s["Action"])]
    assert writes == [], "the crawler only reads the lake"


def granted(role: dict[str, Any]) -> dict[str, list[Any]]:
    """{action: [resource of each Allow statement granting it]}."""
    found: dict[str, list[Any]] = {}
    for statement in statements(role):
        if statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                found.setdefault(action, []).append(statement.get("Resource"))
    return found


def test_crawler_role_has_what_a_crawl_needs_beyond_reading_and_cataloguing(template: dict[str, Any]) -> None:
    """The role trims AWSGlueServiceRole; what a crawl of this config calls must stay in it."""
    from spotify_etl.warehouse import aws

    role = granted(template["Resources"]["CrawlerRole"])
    lake = {"Fn::GetAtt": ["LakeBucket", "Arn"]}
    assert role["s3:GetBucketLocation"] == [lake]
    assert role["s3:ListBucket"] == [lake] and "s3:GetObject" in role
    # Crawlers create partition indexes unless told not to; this one is told, else it needs the index calls.
    if aws.CRAWLER_CONFIGURATION.get("CreatePartitionIndex", True):
        assert {"glue:CreatePartitionIndex", "glue:GetPartitionIndexes"} <= set(role)
    assert aws.CRAWLER_CONFIGURATION["CreatePartitionIndex"] is False


def test_lake_kms_key_is_optional_and_both_roles_may_use_it_through_s3(template: dict[str, Any]) -> None:
    assert template["Parameters"]["LakeKmsKeyArn"]["Default"] == ""
    assert template["Conditions"]["HasLakeKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "LakeKmsKeyArn"}, ""]}]}
    sse = template["Resources"]["LakeBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse[0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
        "Fn::If": ["HasLakeKmsKey", {"Ref": "LakeKmsKeyArn"}, {"Ref": "AWS::NoValue"}]
    }
    # A policy of its own per role, only with the key: the roles themselves stay unconditional (and checked).
    wanted = {"ExecutionRole": {"kms:GenerateDataKey", "kms:Decrypt"}, "CrawlerRole": {"kms:Decrypt"}}
    policies = {
        p["Properties"]["RoleName"]["Ref"]: p
        for p in resources(template, "AWS::IAM::RolePolicy").values()
        if p["Condition"] == "HasLakeKmsKey"
    }
    assert set(policies) == set(wanted)
    for name, actions in wanted.items():
        assert policies[name]["Condition"] == "HasLakeKmsKey", name
        (statement,) = policies[name]["Properties"]["PolicyDocument"]["Statement"]
        assert set(as_list(statement["Action"])) == actions, name
        assert statement["Resource"] == {"Ref": "LakeKmsKeyArn"}, name
        assert statement["Condition"] == {
            "StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}
        }


# ------------------------------------------------------------------------- MWAA, IAM
# Actions AWS offers no resource-level permission for (MWAA's documented execution policy).
UNSCOPABLE = {"logs:DescribeLogGroups", "s3:GetAccountPublicAccessBlock", "cloudwatch:PutMetricData"}


def test_execution_role_reaches_only_this_projects_resources(template: dict[str, Any]) -> None:
    role = template["Resources"]["ExecutionRole"]
    trusted = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
    assert set(trusted) == {"airflow.amazonaws.com", "airflow-env.amazonaws.com"}
    for statement in statements(role):
        actions = as_list(statement["Action"])
        assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement["Sid"]
        if statement["Effect"] == "Deny":
            continue
        if statement.get("Resource") == "*":
            assert set(actions) <= UNSCOPABLE, statement["Sid"]
            continue
        if "NotResource" in statement:  # Celery's SQS encryption, only through SQS
            assert statement["Condition"]["StringLike"]["kms:ViaService"]
            continue
        text = json.dumps(statement["Resource"])
        own = ("LakeBucket", "SourceBucket", "GlueDatabaseName", "CrawlerName", "CrawlerRole", "AthenaWorkGroup",
               "ConnectionsPrefix", "EnvironmentName", "airflow-celery-",
               # Athena's GetTableMetadata has no narrower resource than the catalog; Athena reads the
               # table from Glue with the caller's rights, and glue:GetTable reaches only the project's database.
               "datacatalog/AwsDataCatalog")  # fmt: skip
        assert any(marker in text for marker in own), f"{statement['Sid']} reaches beyond the project: {text}"


def test_execution_role_covers_what_the_dag_calls(template: dict[str, Any]) -> None:
    granted: dict[str, str] = {}
    for statement in statements(template["Resources"]["ExecutionRole"]):
        if statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                granted[action] = json.dumps(statement.get("Resource"))
    needed = {
        # lake reads and writes (s3fs), Athena results
        "s3:GetObject": "LakeBucket", "s3:PutObject": "LakeBucket", "s3:DeleteObject": "LakeBucket",
        "s3:ListBucket": "LakeBucket",
        # catalog task group: database, crawler create/recreate/run, PassRole of the crawler's role
        "glue:CreateDatabase": "GlueDatabaseName", "glue:GetCrawler": "CrawlerName",
        "glue:CreateCrawler": "CrawlerName", "glue:DeleteCrawler": "CrawlerName", "glue:StartCrawler": "CrawlerName",
        "iam:PassRole": "CrawlerRole",
        # validate: Athena in the project's workgroup over the project's tables
        "athena:StartQueryExecution": "AthenaWorkGroup", "athena:GetQueryExecution": "AthenaWorkGroup",
        "athena:GetQueryResults": "AthenaWorkGroup", "glue:GetTable": "GlueDatabaseName",
        # OpenLineage's AthenaOperator lineage: the metadata of the tables the query reads
        "athena:GetTableMetadata": "datacatalog/AwsDataCatalog",
        # spotify_default from Secrets Manager
        # pragma: allowlist nextline secret (not a secret: a fixed local-development value or a name)
        "secretsmanager:GetSecretValue": "ConnectionsPrefix",
    }  # fmt: skip
    for action, resource in needed.items():
        assert action in granted, action
        assert resource in granted[action], (action, granted[action])
    assert "glue:UpdateCrawler" not in granted  # the DAG never updates the crawler


def mwaa(template: dict[str, Any]) -> dict[str, Any]:
    (environment,) = resources(template, "AWS::MWAA::Environment").values()
    return environment


def test_mwaa_environment_reads_the_bundle_layout(template: dict[str, Any], tmp_path: Path) -> None:
    props = mwaa(template)["Properties"]
    bundle = mwaa_bundle.build(tmp_path / "bundle")
    assert props["SourceBucketArn"] == {"Fn::GetAtt": ["SourceBucket", "Arn"]}
    assert (bundle.root / props["DagS3Path"]).is_dir()
    assert (bundle.root / props["RequirementsS3Path"]).is_file()
    assert (bundle.root / props["StartupScriptS3Path"]).is_file()
    assert props["PluginsS3Path"] == {"Fn::If": ["HasPlugins", "plugins.zip", {"Ref": "AWS::NoValue"}]}
    assert template["Parameters"]["AirflowVersion"]["Default"] == mwaa_bundle.MWAA_AIRFLOW_VERSION
    assert props["AirflowVersion"] == {"Ref": "AirflowVersion"}


def test_mwaa_environment_is_private_logged_and_in_the_given_network(template: dict[str, Any]) -> None:
    environment = mwaa(template)
    props = environment["Properties"]
    assert template["Parameters"]["WebserverAccessMode"]["Default"] == "PRIVATE_ONLY"
    assert props["NetworkConfiguration"] == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }
    assert template["Parameters"]["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    for log in ("DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs"):
        assert props["LoggingConfiguration"][log]["Enabled"] is True
    assert props["ExecutionRoleArn"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
    assert environment["Condition"] == "CreateEnvironment"


def test_connections_come_from_secrets_manager(template: dict[str, Any]) -> None:
    options = mwaa(template)["Properties"]["AirflowConfigurationOptions"]
    assert options["secrets.backend"] == "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    kwargs = options["secrets.backend_kwargs"]["Fn::Sub"]
    rendered = kwargs.replace("${ConnectionsPrefix}", "airflow/connections").replace(
        "${VariablesPrefix}", "airflow/variables"
    )
    assert json.loads(rendered) == {
        "connections_prefix": "airflow/connections",
        "variables_prefix": "airflow/variables",
        # MWAA's own default (aws/amazon-mwaa-docker-images), which these kwargs would otherwise drop.
        "connections_lookup_pattern": "^(?!aws_default$).*$",
    }
    # The backend class exists in the installed Amazon provider.
    module, _, cls = options["secrets.backend"].rpartition(".")
    assert hasattr(__import__(module, fromlist=[cls]), cls)
    output = template["Outputs"]["SpotifyConnectionSecretName"]["Value"]["Fn::Sub"]
    assert output == "${ConnectionsPrefix}/spotify_default"


def test_secrets_backend_never_looks_up_aws_default(template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's kwargs in the provider's backend against moto: spotify_default is read, aws_default is not."""
    from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend
    from moto import mock_aws

    options = mwaa(template)["Properties"]["AirflowConfigurationOptions"]
    kwargs = json.loads(options["secrets.backend_kwargs"]["Fn::Sub"].replace("${ConnectionsPrefix}", "airflow/connections")
                        .replace("${VariablesPrefix}", "airflow/variables"))  # fmt: skip
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        for conn_id in ("spotify_default", "aws_default"):
            secrets.create_secret(
                Name=f"airflow/connections/{conn_id}", SecretString=json.dumps({"conn_type": conn_id})
            )
        backend = SecretsManagerBackend(**kwargs)
        assert json.loads(backend.get_conn_value("spotify_default") or "{}")["conn_type"] == "spotify_default"
        assert backend.get_conn_value("aws_default") is None  # not asked for, though the secret exists


def test_pipeline_settings_reach_the_package_through_startup_sh(template: dict[str, Any], tmp_path: Path) -> None:
    """MWAA hands `spotify_etl.<name>` options to startup.sh as AIRFLOW__SPOTIFY_ETL__<NAME>."""
    from spotify_etl.settings import SETTINGS_DOC

    options = mwaa(template)["Properties"]["AirflowConfigurationOptions"]
    ours = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith("spotify_etl.")}
    names = {f"SPOTIFY_ETL_{k.upper()}" for k in ours}
    assert names <= set(SETTINGS_DOC), names - set(SETTINGS_DOC)
    assert {"SPOTIFY_ETL_TARGET", "SPOTIFY_ETL_S3_BUCKET", "SPOTIFY_ETL_CRAWLER_ROLE", "SPOTIFY_ETL_ATHENA_WORKGROUP",
            "SPOTIFY_ETL_DATABASE", "SPOTIFY_ETL_CRAWLER_NAME"} <= names  # fmt: skip
    assert ours["target"] == "aws"

    # Values as the stack would resolve them, then the real script and the real Settings.
    resolved = {
        "target": "aws", "s3_bucket": "spotify-etl-lake-123456789012-eu-west-1", "s3_prefix": "spotify-etl",
        "database": "spotify_etl", "crawler_name": "spotify_etl_processed",
        "crawler_role": "arn:aws:iam::123456789012:role/spotify-etl-glue-crawler", "athena_workgroup": "spotify-etl",
        "athena_output": "s3://spotify-etl-lake-123456789012-eu-west-1/athena-results/",
        "duckdb_memory_limit": template["Parameters"]["DuckDbMemoryLimit"]["Default"],
        "alert_sns_topic_arn": "arn:aws:sns:eu-west-1:123456789012:spotify-etl-alerts",
        "deadline_hours": template["Parameters"]["DeadlineHours"]["Default"],
    }  # fmt: skip
    assert set(resolved) == set(ours)
    assert ours["duckdb_memory_limit"] == {"Ref": "DuckDbMemoryLimit"}
    assert ours["alert_sns_topic_arn"] == {
        "Fn::If": ["CreateAlertTopic", {"Ref": "AlertTopic"}, {"Ref": "AWS::NoValue"}]
    }
    assert ours["deadline_hours"] == {"Ref": "DeadlineHours"}
    env = clean_env(PYTHONPATH=str(PROJECT / "include"))
    env.update({f"AIRFLOW__SPOTIFY_ETL__{k.upper()}": v for k, v in resolved.items()})
    script = PROJECT / "deploy" / "mwaa" / "startup.sh"
    probe = (
        "import json; from spotify_etl.settings import Settings; from spotify_etl.targets import target; "
        "s = Settings.from_env(); "
        "print(json.dumps({'target': s.target, 'lake': target(s).lake_url, 'role': s.crawler_role, "
        "'workgroup': s.athena_workgroup, 'output': s.athena_output, 'database': s.database, "
        "'memory': s.duckdb_memory_limit, 'alerts': s.alert_sns_topic_arn, 'deadline': s.deadline_hours}))"
    )
    import sys

    proc = run(["bash", "-c", f'source "{script}" && exec "{sys.executable}" -c "{probe}"'], env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "target": "aws", "lake": "s3://spotify-etl-lake-123456789012-eu-west-1/spotify-etl",
        "role": resolved["crawler_role"], "workgroup": "spotify-etl", "output": resolved["athena_output"],
        "database": "spotify_etl", "memory": "256MB", "alerts": resolved["alert_sns_topic_arn"], "deadline": 6.0,
    }  # fmt: skip


def test_the_alert_topic_is_optional_encrypted_and_only_publishable_by_the_execution_role(
    template: dict[str, Any],
) -> None:
    from spotify_etl.settings import SETTINGS_DOC

    params, conditions = template["Parameters"], template["Conditions"]
    assert params["CreateAlertTopic"]["Default"] == "true"
    assert conditions["CreateAlertTopic"] == {"Fn::Equals": [{"Ref": "CreateAlertTopic"}, "true"]}
    topic = template["Resources"]["AlertTopic"]
    assert topic["Type"] == "AWS::SNS::Topic" and topic["Condition"] == "CreateAlertTopic"
    # The topic's own key (CloudWatch alarms cannot publish with aws/sns; see the alarm's test).
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "AlertKey"}
    assert template["Resources"]["AlertKey"]["Condition"] == "CreateAlertTopic"
    assert template["Resources"]["AlertKey"]["Properties"]["EnableKeyRotation"] is True
    # An email subscription only when an address is given (and the topic exists).
    assert topic["Properties"]["Subscription"]["Fn::If"][0] == "HasAlertEmail"
    assert {"Fn::Condition": "CreateAlertTopic"} in conditions["HasAlertEmail"]["Fn::And"]  # !Condition, as loaded here
    email = params["AlertEmail"]["AllowedPattern"]
    assert re.fullmatch(email, "") and re.fullmatch(email, "data-oncall@example.com")
    assert not re.fullmatch(email, "not an address")

    (grant,) = [p for p in resources(template, "AWS::IAM::RolePolicy").values() if p["Condition"] == "CreateAlertTopic"]
    assert grant["Properties"]["RoleName"] == {"Ref": "ExecutionRole"}
    assert grant["Properties"]["PolicyDocument"]["Statement"] == [
        {"Sid": "PublishAlerts", "Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": "AlertTopic"}},
        # SNS: a publisher to an encrypted topic needs these on the topic's key.
        {"Sid": "EncryptAlerts", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
         "Resource": {"Fn::GetAtt": ["AlertKey", "Arn"]}},
    ]  # fmt: skip
    # The execution role itself grants no SNS action: publishing exists only with the topic.
    assert not [s for s in statements(template["Resources"]["ExecutionRole"]) if "sns:" in json.dumps(s["Action"])]
    assert template["Outputs"]["AlertTopicArn"]["Condition"] == "CreateAlertTopic"

    hours = params["DeadlineHours"]
    assert hours["Default"] == SETTINGS_DOC["SPOTIFY_ETL_DEADLINE_HOURS"][0]


# Values the stack's parameter patterns are tried with: each the stack accepts, the setting must accept too.
PARAMETER_SAMPLES = {
    ("DeadlineHours", "SPOTIFY_ETL_DEADLINE_HOURS"): (
        ["6", "0", "1.5", "99", "167.9", "168", "168.0"],
        ["-1", "soon", "", "168.5", "169", "1e308", "nan", "inf", "1000"],
    ),
    ("DuckDbMemoryLimit", "SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT"): (
        ["256MB", "1.5GB", "1GiB", "512 MB", "50%", "100%", "2.5%"],
        ["lots", "0MB", "0%", "1000%", "101%", "-1MB", "MB"],
    ),
}


@pytest.mark.parametrize(("parameter", "setting"), list(PARAMETER_SAMPLES))
def test_stack_parameters_accept_only_what_the_setting_accepts(
    template: dict[str, Any], parameter: str, setting: str
) -> None:
    """A value the stack takes must not fail the DAG's parse on MWAA (SettingsError at import)."""
    from spotify_etl.settings import SETTINGS_DOC

    pattern = template["Parameters"][parameter]["AllowedPattern"]
    parse = SETTINGS_DOC[setting].parse
    good, bad = PARAMETER_SAMPLES[(parameter, setting)]
    for value in good:
        assert re.fullmatch(pattern, value), value
        parse(value.strip())  # raises ValueError for a value the setting refuses
    for value in bad:
        assert not re.fullmatch(pattern, value), value
        with pytest.raises(ValueError):
            parse(value.strip())


# MWAA's environment classes (docs.aws.amazon.com/mwaa/latest/userguide/environment-class.html):
# worker vCPUs, worker memory (GB) and task slots per worker by default.
MWAA_WORKERS = {
    "mw1.micro": (1, 3, 3), "mw1.small": (1, 2, 5), "mw1.medium": (2, 4, 10), "mw1.large": (4, 8, 20),
    "mw1.xlarge": (8, 24, 40), "mw1.2xlarge": (16, 48, 80),
}  # fmt: skip
# An Airflow task process (task runner, SDK, imports) on a busy slot; an estimate, checked on paper only.
TASK_PROCESS_GB = 0.25
# The transform's peak RSS at its default memory limit on 1M playlist items, measured (bench/RESULTS.md).
TRANSFORM_PEAK_GB = 0.5


def test_default_environment_class_fits_the_default_transform_memory(template: dict[str, Any]) -> None:
    """The transform (peak RSS at most 512 MiB at its default limit, bench/RESULTS.md) plus every other slot busy."""
    from spotify_etl.settings import SETTINGS_DOC
    from spotify_etl.transform import DUCKDB_MEMORY_LIMIT

    params = template["Parameters"]
    assert set(params["EnvironmentClass"]["AllowedValues"]) == set(MWAA_WORKERS)
    assert (
        params["DuckDbMemoryLimit"]["Default"]
        == DUCKDB_MEMORY_LIMIT
        == SETTINGS_DOC["SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT"][0]
    )
    assert float(DUCKDB_MEMORY_LIMIT.removesuffix("MB")) / 1024 < TRANSFORM_PEAK_GB  # the rest: Python, Arrow

    def fits(environment_class: str) -> bool:
        _, memory_gb, slots = MWAA_WORKERS[environment_class]
        return memory_gb - TRANSFORM_PEAK_GB >= (slots - 1) * TASK_PROCESS_GB

    assert fits(params["EnvironmentClass"]["Default"])
    assert all(fits(environment_class) for environment_class in MWAA_WORKERS)  # mw1.small's 2 GB and 5 slots too
    assert re.fullmatch(params["DuckDbMemoryLimit"]["AllowedPattern"], DUCKDB_MEMORY_LIMIT)
    assert not re.fullmatch(params["DuckDbMemoryLimit"]["AllowedPattern"], "lots")


def test_nothing_account_specific_is_hard_coded() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert not re.search(r"\b\d{12}\b", text), "an account id belongs in a parameter or AWS::AccountId"
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af)-(east|west|north|south|central|northeast|southeast)-\d\b", text)
    assert not re.search(r"\b(subnet|sg|vpc)-[0-9a-f]{6,}\b", text)
