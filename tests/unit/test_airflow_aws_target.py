"""spotify_etl.airflow.aws_target: the crawler branch and the Athena verdict.

They run the provider's real hooks against moto in-process (``mock_aws``); the DAG-level
behaviour is in ``tests/integration/test_aws_target.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from tests.support.aws_warehouse import HEADER, SETTINGS, crawler_config, row
from tests.support.moto_server import glue_like_aws


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
