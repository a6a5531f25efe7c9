"""deploy/cloudformation.yaml's CloudWatch dashboard and its alarm on failed runs.

MWAA publishes Airflow's StatsD metrics to CloudWatch in the ``AmazonMWAA`` namespace, renamed
and given dimensions as AWS's "Apache Airflow environment metrics in CloudWatch" lists them,
every one with an ``Environment`` dimension (the environment's name). ``MWAA_METRICS`` holds the
rows of that table the dashboard uses; the tests render the dashboard's body as CloudFormation
would (``Fn::Sub``), parse it as the JSON CloudWatch requires and check every metric, search
and widget in it. Whether an environment publishes exactly these is checked on paper only (no
MWAA here): docs/observe.md says what.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

# The stack's values as CloudFormation would resolve them (examples, nothing real).
PARAMS = {
    "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
    "ProjectName": "spotify-etl", "EnvironmentName": "spotify-etl-prod", "Dashboard": "spotify-etl-spotify-etl-prod",
}  # fmt: skip

# CloudWatch metric -> (Airflow's StatsD name, its dimensions besides Environment), from AWS's table.
MWAA_METRICS = {
    "DAGDurationSuccess": ("dagrun.duration.success.{dag_id}", {"DAG": "{dag_id}"}),
    "DAGDurationFailed": ("dagrun.duration.failed.{dag_id}", {"DAG": "{dag_id}"}),
    "TaskInstanceDuration": ("dag.{dag_id}.{task_id}.duration", {"DAG": "{dag_id}", "Task": "{task_id}"}),
    "TaskInstanceFailures": ("ti_failures", {"DAG": "All", "Task": "All"}),
    "QueuedTasks": ("executor.queued_tasks", {"Function": "Executor"}),
    "RunningTasks": ("executor.running_tasks", {"Function": "Executor"}),
    "PoolQueuedSlots": ("pool.queued_slots.{pool_name}", {"Pool": "{pool_name}"}),
    "PoolRunningSlots": ("pool.running_slots.{pool_name}", {"Pool": "{pool_name}"}),
    "SchedulerHeartbeat": ("scheduler_heartbeat", {"Function": "Scheduler"}),
}
# What the issue asks the dashboard to show: run duration and outcomes, task failures, queued
# and running tasks, the scheduler's heartbeat.
REQUIRED = {"DAGDurationSuccess", "DAGDurationFailed", "TaskInstanceFailures", "QueuedTasks", "RunningTasks",
            "SchedulerHeartbeat"}  # fmt: skip
SEARCH = re.compile(r"^SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)', '(?P<stat>[A-Za-z0-9.]+)', (?P<period>\d+)\)$")


def render(value: Any, template: dict[str, Any], params: dict[str, str] = PARAMS) -> Any:
    """Resolve Ref, Fn::Sub and Fn::FindInMap as CloudFormation does, for the values the stack uses."""
    if isinstance(value, list):
        return [render(v, template, params) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return params[value["Ref"]]
    if set(value) == {"Fn::FindInMap"}:
        name, top, key = value["Fn::FindInMap"]
        return template["Mappings"][name][top][key]
    if set(value) == {"Fn::Sub"}:
        text, names = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        known = {**params, **{k: render(v, template, params) for k, v in names.items()}}

        def variable(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            assert name in known, f"${{{name}}} is neither a parameter nor a Sub variable"
            return known[name]

        return re.sub(r"\$\{([^}]*)\}", variable, text)
    return {k: render(v, template, params) for k, v in value.items()}


@pytest.fixture(scope="module")
def airflow_names(template: dict[str, Any]) -> dict[str, str]:
    return template["Mappings"]["Airflow"]["Dag"]


@pytest.fixture(scope="module")
def body(template: dict[str, Any]) -> dict[str, Any]:
    dashboard = template["Resources"]["Dashboard"]
    assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
    text = render(dashboard["Properties"]["DashboardBody"], template)
    parsed: dict[str, Any] = json.loads(text)  # DashboardBody must be a JSON string
    return parsed


def expected_dimensions(metric: str, airflow_names: dict[str, str]) -> dict[str, str]:
    _, dimensions = MWAA_METRICS[metric]
    values = {"{dag_id}": airflow_names["Id"], "{pool_name}": airflow_names["Pool"]}
    return {"Environment": PARAMS["EnvironmentName"], **{k: values.get(v, v) for k, v in dimensions.items()}}


def metric_rows(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every metric a widget graphs (not its searches)."""
    rows = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], str):
                fields = [f for f in row if isinstance(f, str)]
                namespace, metric, pairs = fields[0], fields[1], fields[2:]
                assert len(pairs) % 2 == 0, row
                rows.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return rows


def searches(body: dict[str, Any]) -> list[re.Match[str]]:
    found = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict) and "expression" in row[0]:
                match = SEARCH.match(row[0]["expression"])
                assert match, f"not a search expression CloudWatch takes: {row[0]['expression']}"
                found.append(match)
    return found


def test_the_stack_names_the_dag_and_pool_of_the_code(airflow_names: dict[str, str]) -> None:
    from spotify_etl.airflow import DAG_ID
    from spotify_etl.airflow.pool import SPOTIFY_POOL

    assert airflow_names == {"Id": DAG_ID, "Pool": SPOTIFY_POOL}


def test_airflow_still_emits_the_statsd_names_mwaa_maps(airflow_names: dict[str, str]) -> None:
    """Airflow 3 renamed metrics to tagged names; MWAA's CloudWatch names come from the legacy ones."""
    from airflow._shared.observability.metrics.metrics_registry import YAML_REGISTRY_PATH, read_metrics_yaml

    # Every metric is sent under its name, and also under its legacy name if it has one (the default).
    registry = read_metrics_yaml(str(YAML_REGISTRY_PATH))
    sent = {m["name"] for m in registry} | {m["legacy_name"] for m in registry if m.get("legacy_name", "-") != "-"}
    for metric, (statsd_name, _) in MWAA_METRICS.items():
        assert statsd_name in sent, f"{metric}: Airflow no longer sends {statsd_name}"


def test_the_dashboard_graphs_mwaa_metrics_by_their_documented_names_and_dimensions(
    body: dict[str, Any], airflow_names: dict[str, str]
) -> None:
    rows = metric_rows(body)
    for namespace, metric, dimensions in rows:
        assert namespace == "AmazonMWAA", metric
        assert metric in MWAA_METRICS, f"{metric} is not one of MWAA's documented metrics"
        assert dimensions == expected_dimensions(metric, airflow_names), metric
    assert {metric for _, metric, _ in rows} >= REQUIRED
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == PARAMS["AWS::Region"]
            assert widget["properties"]["title"]


def test_the_dashboards_searches_stay_in_the_environment(body: dict[str, Any], airflow_names: dict[str, str]) -> None:
    found = {m["terms"]: m for m in searches(body)}
    environment = f'Environment="{PARAMS["EnvironmentName"]}"'
    for terms, match in found.items():
        assert match["schema"].split(",")[0] == "AmazonMWAA", terms
        assert environment in terms, terms
        assert int(match["period"]) >= 60
    # Each task's duration: the documented metric with its documented dimensions, this DAG only.
    (tasks,) = [m for t, m in found.items() if 'MetricName="TaskInstanceDuration"' in t]
    assert set(tasks["schema"].split(",")[1:]) == set(expected_dimensions("TaskInstanceDuration", airflow_names))
    assert f'DAG="{airflow_names["Id"]}"' in tasks["terms"]
    # The pipeline's own metrics, by the prefix every one of them is sent under (metrics.PREFIX).
    from spotify_etl.airflow.metrics import PREFIX

    (ours,) = [m for t, m in found.items() if PREFIX in t.split()]
    assert ours["stat"] == "Sum"  # counters add up over the day; a gauge is sent once per run


def test_the_dashboard_layout_fits_the_grid_without_overlaps(
    body: dict[str, Any], airflow_names: dict[str, str]
) -> None:
    cells: dict[tuple[int, int], int] = {}
    for index, widget in enumerate(body["widgets"]):
        assert widget["type"] in {"metric", "text"}
        x, y, width, height = widget["x"], widget["y"], widget["width"], widget["height"]
        assert 0 <= x and x + width <= 24 and width >= 1 and height >= 1, widget  # CloudWatch's 24 columns
        for cell in ((cx, cy) for cx in range(x, x + width) for cy in range(y, y + height)):
            assert cell not in cells, f"widgets {cells.get(cell)} and {index} overlap at {cell}"
            cells[cell] = index
    (text,) = [w for w in body["widgets"] if w["type"] == "text"]
    assert airflow_names["Id"] in text["properties"]["markdown"]
    assert PARAMS["EnvironmentName"] in text["properties"]["markdown"]


def test_the_dashboards_url_is_a_stack_output(template: dict[str, Any]) -> None:
    dashboard = template["Resources"]["Dashboard"]
    output = template["Outputs"]["DashboardUrl"]
    assert dashboard["Condition"] == output["Condition"] == "CreateEnvironment"
    url = render(output["Value"], template)
    assert url == (
        "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards:name=spotify-etl-spotify-etl-prod"
    )
    # The name CloudWatch accepts: up to 255 of A-Z, a-z, 0-9, "-" and "_" (the parameters' patterns allow no other).
    name = render(dashboard["Properties"]["DashboardName"], template)
    assert name == PARAMS["Dashboard"] and re.fullmatch(r"[A-Za-z0-9_-]{1,255}", name)


def test_failed_runs_alarm_notifies_the_alert_topic_only_when_there_is_one(
    template: dict[str, Any], airflow_names: dict[str, str]
) -> None:
    alarm = template["Resources"]["FailedRunsAlarm"]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    # Only with both an environment to watch and a topic to notify.
    assert alarm["Condition"] == "AlarmOnFailedRuns"
    assert template["Conditions"]["AlarmOnFailedRuns"] == {
        "Fn::And": [{"Fn::Condition": "CreateEnvironment"}, {"Fn::Condition": "CreateAlertTopic"}]
    }
    assert template["Outputs"]["FailedRunsAlarmName"]["Condition"] == "AlarmOnFailedRuns"
    props = alarm["Properties"]
    assert props["AlarmActions"] == [{"Ref": "AlertTopic"}]
    # One DAGDurationFailed sample per failed run: a count of at least one in the period alarms.
    assert (props["Namespace"], props["MetricName"]) == ("AmazonMWAA", "DAGDurationFailed")
    dimensions = {d["Name"]: render(d["Value"], template) for d in props["Dimensions"]}
    assert dimensions == expected_dimensions("DAGDurationFailed", airflow_names)
    assert (props["Statistic"], props["ComparisonOperator"], props["Threshold"]) == (
        "SampleCount", "GreaterThanOrEqualToThreshold", 1,
    )  # fmt: skip
    assert props["EvaluationPeriods"] == 1 and props["Period"] >= 60
    assert props["TreatMissingData"] == "notBreaching"  # no failed run sends no sample


def test_cloudwatch_may_use_the_topics_key_for_this_stacks_alarms_only(template: dict[str, Any]) -> None:
    """CloudWatch publishes to an encrypted topic only with the key's leave (SNS's key management page)."""
    key = template["Resources"]["AlertKey"]
    assert template["Resources"]["AlertTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlertKey"}
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    condition = render(cloudwatch["Condition"], template)
    assert condition["StringEquals"] == {"aws:SourceAccount": PARAMS["AWS::AccountId"]}
    pattern = condition["ArnLike"]["aws:SourceArn"]
    alarm_name = render(template["Resources"]["FailedRunsAlarm"]["Properties"]["AlarmName"], template)
    alarm_arn = f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{alarm_name}"
    assert fnmatch.fnmatchcase(alarm_arn, pattern)
    assert not fnmatch.fnmatchcase(alarm_arn.replace(":alarm:spotify-etl-", ":alarm:other-"), pattern)
    # Nothing else gets the key: the account's IAM policies decide (the execution role's publish-alerts).
    others = [s for s in statements if s is not cloudwatch]
    assert [s["Principal"] for s in others] == [
        {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    ]
