"""spotify_etl.warehouse.aws: the crawler's config and drift, Athena's result rows. The crawler
branch and the Athena verdict (the Airflow layer): test_airflow_aws_target.py."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from spotify_etl import tables
from spotify_etl.settings import SettingsError
from spotify_etl.warehouse import aws

from tests.support.aws_warehouse import HEADER, SETTINGS, crawler_config, row


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
