"""The aws warehouse pieces: crawler config and drift, the crawler branch and the Athena verdict.

The branch and the verdict run the provider's real hooks against moto in-process
(``mock_aws``); the DAG-level behaviour is in ``tests/integration/test_aws_target.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from spotify_etl import tables
from spotify_etl.settings import Settings, SettingsError
from spotify_etl.targets import AwsTarget
from spotify_etl.warehouse import aws

from tests.support.moto_server import glue_like_aws

SETTINGS = Settings(
    target="aws",
    s3_bucket="lake",
    s3_prefix="etl",
    database="spotify",
    table_prefix="sp_",
    crawler_name="crawler",
    crawler_role="arn:aws:iam::123456789012:role/crawler",
)
HEADER = {"Data": [{"VarCharValue": c} for c in aws.RESULT_COLUMNS]}


def crawler_config(settings: Settings) -> dict[str, Any]:
    return AwsTarget(settings).crawler_config()


def row(*values: str) -> dict[str, Any]:
    return {"Data": [{"VarCharValue": v} for v in values]}


def test_crawler_config_one_s3_target_per_table_and_the_run_log_with_incremental_policies() -> None:
    config = crawler_config(SETTINGS)
    assert [t["Path"] for t in config["Targets"]["S3Targets"]] == [
        f"s3://lake/etl/processed/{t}/" for t in (*tables.TABLE_NAMES, "pipeline_runs")
    ]
    assert config["Name"] == "crawler" and config["DatabaseName"] == "spotify" and config["TablePrefix"] == "sp_"
    assert config["Role"] == SETTINGS.crawler_role
    assert config["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    # AWS only accepts LOG/LOG together with CRAWL_NEW_FOLDERS_ONLY.
    assert config["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    assert json.loads(config["Configuration"]) == {
        "Version": 1.0,
        "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
        "CreatePartitionIndex": False,  # Glue's default (true) needs permissions Athena would not use
    }


def test_crawler_config_leaves_out_an_empty_table_prefix() -> None:
    assert "TablePrefix" not in crawler_config(replace(SETTINGS, table_prefix=""))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"crawler_role": ""}, "SPOTIFY_ETL_CRAWLER_ROLE"),
        ({"s3_bucket": ""}, "SPOTIFY_ETL_S3_BUCKET"),
        ({"database": "spotify; DROP"}, "database may only hold"),
        ({"table_prefix": "a-b"}, "table_prefix may only hold"),
    ],
)
def test_crawler_config_rejects_missing_or_odd_settings(change: dict[str, str], message: str) -> None:
    with pytest.raises((SettingsError, ValueError), match=message):
        crawler_config(replace(SETTINGS, **change))


def get_crawler_response(config: dict[str, Any], role: str = "crawler") -> dict[str, Any]:
    """A crawler as GetCrawler describes it: the role's name (with its path) where the config
    holds its ARN, every target type listed, the JSON re-serialised with keys Glue adds of its
    own, state added."""
    configuration = json.loads(config["Configuration"])
    configuration["CrawlerOutput"]["Tables"] = {"AddOrUpdateBehavior": "MergeNewColumns"}
    configuration["Grouping"] = {"TableGroupingPolicy": "CombineCompatibleSchemas"}
    return {
        **config,
        "Role": role,
        "Targets": {
            **config["Targets"],
            "JdbcTargets": [],
            "MongoDBTargets": [],
            "DynamoDBTargets": [],
            "CatalogTargets": [],
            "DeltaTargets": [],
        },
        "Configuration": json.dumps(configuration, separators=(",", ":")),
        "State": "READY",
        "Version": 3,
        "LastCrawl": {"Status": "SUCCEEDED"},
    }


def test_crawler_changes_ignores_how_aws_describes_an_unchanged_crawler() -> None:
    config = crawler_config(SETTINGS)
    assert config["Role"] == "arn:aws:iam::123456789012:role/crawler"
    assert aws.crawler_changes(get_crawler_response(config), config) == []


def test_crawler_changes_compares_a_role_with_a_path_by_its_name() -> None:
    config = crawler_config(replace(SETTINGS, crawler_role="arn:aws:iam::123456789012:role/service-role/crawler"))
    assert aws.crawler_changes(get_crawler_response(config, role="service-role/crawler"), config) == []
    assert aws.crawler_changes(get_crawler_response(config, role="crawler"), config) == ["Role"]
    assert aws.role_name("arn:aws-cn:iam::123456789012:role/a/b/c") == "a/b/c"
    assert aws.role_name("plain-name") == "plain-name"


def test_crawler_changes_names_what_differs() -> None:
    current = get_crawler_response(crawler_config(SETTINGS))
    wanted = crawler_config(replace(SETTINGS, s3_prefix="other", crawler_role="arn:aws:iam::1:role/x"))
    assert aws.crawler_changes(current, wanted) == ["Description", "Role", "Targets"]
    assert aws.crawler_changes(
        {**current, "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"}}, crawler_config(SETTINGS)
    ) == ["RecrawlPolicy"]


def test_crawler_changes_sees_a_changed_value_of_a_configuration_key_it_sets() -> None:
    wanted = crawler_config(SETTINGS)
    current = get_crawler_response(wanted)
    configuration = json.loads(current["Configuration"])
    configuration["CreatePartitionIndex"] = True  # a crawler created before the key was set
    assert aws.crawler_changes({**current, "Configuration": json.dumps(configuration)}, wanted) == ["Configuration"]
    del configuration["CreatePartitionIndex"]
    assert aws.crawler_changes({**current, "Configuration": json.dumps(configuration)}, wanted) == ["Configuration"]


def test_result_rows_drop_the_header_and_follow_pages() -> None:
    pages = [
        {"ResultSet": {"Rows": [HEADER, row("a_check", "0", "5")]}, "NextToken": "t"},
        {"ResultSet": {"Rows": [row("b_check", "2", "7")]}},
    ]
    results = aws.check_results(pages)
    assert [(r.name, r.violations, r.checked_rows) for r in results] == [("a_check", 0, 5), ("b_check", 2, 7)]


def test_check_results_refuse_rows_of_another_shape() -> None:
    with pytest.raises(ValueError, match="not \\('check_name', 'violations', 'checked_rows'\\)"):
        aws.check_results(
            [{"ResultSet": {"Rows": [HEADER, {"Data": [{"VarCharValue": "x"}, {}, {"VarCharValue": "1"}]}]}}]
        )


# ---- the real provider hooks against moto in-process ----------------------------------------------
@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from moto import mock_aws

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws(), glue_like_aws():
        yield


IDS = ("catalog.create_crawler", "catalog.recreate_crawler", "catalog.run_crawler")


def test_crawler_branch_creates_then_runs_then_recreates_on_change(moto_aws: None) -> None:
    from airflow.providers.amazon.aws.hooks.glue_crawler import GlueCrawlerHook
    from spotify_etl.airflow.aws_target import choose_crawler_action, recreate_crawler

    hook = GlueCrawlerHook(aws_conn_id=None)
    config = crawler_config(SETTINGS)
    assert choose_crawler_action(hook, config, *IDS) == "catalog.create_crawler"
    hook.create_crawler(**config)
    assert hook.get_crawler("crawler")["Role"] == "crawler"  # as AWS answers: the name, not the ARN
    assert choose_crawler_action(hook, config, *IDS) == "catalog.run_crawler"  # unchanged: never touched
    changed = crawler_config(replace(SETTINGS, table_prefix="v2_"))
    assert choose_crawler_action(hook, changed, *IDS) == "catalog.recreate_crawler"
    with crawls({"progression": "immediate"}):
        hook.start_crawler("crawler")
        assert hook.get_crawler("crawler")["State"] == "READY" and "LastCrawl" in hook.get_crawler("crawler")
    recreate_crawler(hook, changed)
    crawler = hook.get_crawler("crawler")
    assert crawler["TablePrefix"] == "v2_" and "LastCrawl" not in crawler  # a new crawler: its first crawl is full
    assert choose_crawler_action(hook, changed, *IDS) == "catalog.run_crawler"
    created = crawler["CreationTime"]
    recreate_crawler(hook, changed)  # a retry after the create of an earlier try: nothing to do
    assert hook.get_crawler("crawler")["CreationTime"] == created
    hook.glue_client.delete_crawler(Name="crawler")  # a retry after the delete of an earlier try
    recreate_crawler(hook, changed)
    assert hook.get_crawler("crawler")["TablePrefix"] == "v2_"


@contextmanager
def crawls(transition: dict[str, Any]) -> Iterator[None]:
    """How moto moves a crawl from RUNNING to COMPLETED."""
    from moto.moto_api import state_manager

    state_manager.set_transition("glue::crawl", transition)
    try:
        yield
    finally:
        state_manager.unset_transition("glue::crawl")


@pytest.fixture
def crawl_stays_running(moto_aws: None) -> Iterator[None]:
    with crawls({"progression": "manual", "times": 1_000_000}):
        yield


def test_a_running_crawler_that_must_change_is_left_alone_with_a_clear_message(crawl_stays_running: None) -> None:
    from airflow.providers.amazon.aws.hooks.glue_crawler import GlueCrawlerHook
    from spotify_etl.airflow.aws_target import CrawlerBusy, choose_crawler_action, recreate_crawler

    hook = GlueCrawlerHook(aws_conn_id=None)
    config = crawler_config(SETTINGS)
    hook.create_crawler(**config)
    hook.start_crawler("crawler")
    assert hook.get_crawler("crawler")["State"] == "RUNNING"
    assert choose_crawler_action(hook, config, *IDS) == "catalog.run_crawler"  # unchanged: nothing to change
    changed = crawler_config(replace(SETTINGS, table_prefix="v2_"))
    expected = (
        "crawler crawler differs from the settings in TablePrefix but is RUNNING, and AWS changes no running "
        "crawler: this task retries; to go on now, wait for the crawl to end or stop it "
        "(aws glue stop-crawler --name crawler)"
    )
    with pytest.raises(CrawlerBusy) as busy:
        choose_crawler_action(hook, changed, *IDS)
    assert str(busy.value) == expected
    with pytest.raises(CrawlerBusy) as busy:  # the crawl started between the branch and the recreate
        recreate_crawler(hook, changed)
    assert str(busy.value) == expected
    assert hook.get_crawler("crawler")["TablePrefix"] == "sp_"  # untouched


def seed_athena(rows: list[dict[str, Any]]) -> None:
    import requests

    body = {"results": [{"rows": rows, "column_info": []}]}
    response = requests.post("http://motoapi.amazonaws.com/moto-api/static/athena/query-results", json=body, timeout=10)
    assert response.status_code == 201


def athena_query(rows: list[dict[str, Any]]) -> tuple[Any, str]:
    from airflow.providers.amazon.aws.hooks.athena import AthenaHook

    hook = AthenaHook(aws_conn_id=None)
    seed_athena(rows)
    query_id = hook.run_query("SELECT 1", {"Database": "spotify"}, {"OutputLocation": "s3://out/"}, workgroup="primary")
    return hook, query_id


def test_athena_verdict_passes_and_reports_each_check(moto_aws: None) -> None:
    from spotify_etl.airflow.aws_target import judge_athena_result

    hook, query_id = athena_query([HEADER, row("albums_not_empty", "0", "3"), row("songs_duration_positive", "0", "9")])
    assert judge_athena_result(hook, query_id, "2026-01-05") == [
        "PASS albums_not_empty: 0 violations in 3 rows",
        "PASS songs_duration_positive: 0 violations in 9 rows",
    ]


def test_athena_verdict_fails_naming_each_failed_check_without_retry(moto_aws: None) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from spotify_etl.airflow.aws_target import judge_athena_result

    hook, query_id = athena_query(
        [
            HEADER,
            row("albums_not_empty", "0", "3"),
            row("songs_pk_unique_not_null", "2", "9"),
            row("songs_popularity_in_range", "1", "9"),
        ]
    )
    with pytest.raises(AirflowFailException) as failed:
        judge_athena_result(hook, query_id, "2026-01-05")
    assert str(failed.value) == (
        "ValidationFailed: dt=2026-01-05: 2 of 3 checks failed: FAIL songs_pk_unique_not_null: 2 violations in 9 rows; "
        "FAIL songs_popularity_in_range: 1 violations in 9 rows"
    )


def test_athena_verdict_fails_on_an_empty_result(moto_aws: None) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from spotify_etl.airflow.aws_target import judge_athena_result

    hook, query_id = athena_query([HEADER])
    with pytest.raises(AirflowFailException, match="the validation query returned no checks"):
        judge_athena_result(hook, query_id, "2026-01-05")


# ---- edge cases of the comparisons and of Athena's result pages -----------------------------------
def test_a_configuration_that_is_not_json_or_missing_is_a_change() -> None:
    wanted = crawler_config(SETTINGS)
    current = {**get_crawler_response(wanted), "Configuration": "{not json"}
    assert aws.crawler_changes(current, wanted) == ["Configuration"]
    del current["Configuration"]  # a crawler created without one: GetCrawler leaves the key out
    assert aws.crawler_changes(current, wanted) == ["Configuration"]


def test_result_rows_without_a_header_keep_every_row() -> None:
    pages = [{"ResultSet": {"Rows": [row("a_check", "0", "5"), row("b_check", "1", "2")]}}]
    assert aws.result_rows(pages) == [("a_check", "0", "5"), ("b_check", "1", "2")]


class PagedResults:
    """Serves GetQueryResults pages by token as ``AthenaHook.get_query_results`` does (None: not SUCCEEDED)."""

    def __init__(self, pages: dict[str | None, dict[str, Any] | None]) -> None:
        self.pages = pages
        self.asked: list[str | None] = []

    def get_query_results(self, query_execution_id: str, next_token_id: str | None = None) -> dict[str, Any] | None:
        self.asked.append(next_token_id)
        return self.pages[next_token_id]


def test_query_result_pages_follow_next_token_and_refuse_a_query_without_results() -> None:
    first = {"ResultSet": {"Rows": [HEADER]}, "NextToken": "t1"}
    second = {"ResultSet": {"Rows": [row("a_check", "0", "5")]}, "NextToken": "t2"}
    last = {"ResultSet": {"Rows": [row("b_check", "0", "1")]}}
    hook = PagedResults({None: first, "t1": second, "t2": last})
    assert aws.query_result_pages(hook, "q-1") == [first, second, last]
    assert hook.asked == [None, "t1", "t2"]
    with pytest.raises(RuntimeError, match="Athena query q-2 has no results"):
        aws.query_result_pages(PagedResults({None: None}), "q-2")
