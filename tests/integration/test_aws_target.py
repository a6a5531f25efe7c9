"""The ``aws`` target end to end: the real DAG under ``airflow dags test`` against a moto server.

moto stands in for S3, Glue and Athena through the Airflow connection's ``endpoint_url``.
What moto does not do is seeded through moto's own API, in this file only:

* it does not crawl: its crawler creates no tables and reports the last crawl as
  ``COMPLETED`` where AWS says ``SUCCEEDED``. The provider's deferrable wait
  (``crawler_ready`` waiter) only needs ``State == READY`` and never calls
  ``get_crawler_metrics`` (unimplemented in moto), so nothing is adapted for it; the crawl
  is only held in ``RUNNING`` for a few seconds (moto's state manager) so the test can see
  the triggerer wait.
* it does not run SQL: ``GetQueryResults`` returns what was queued at
  ``/moto-api/static/athena/query-results``. The passing result queued here is what
  ``validate.sql`` returns on this very data, computed by DuckDB over the same raw
  documents (the meaning of the SQL is covered by ``tests/unit/test_validation_sql.py``);
  likewise each trends report query's rows (``tests/unit/test_report.py`` covers their meaning).

Sample data is never used on ``aws``. Most runs here re-process: the raw documents are
landed in the bucket first and the DAG runs for a past date, so the plan re-transforms
the landed raw without calling Spotify (the production path of a backfill or a re-run
after a transform fix). One run extracts live from the local Spotify API server.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_run import DAG_ID, PROJECT, DagRunResult, airflow_env, dags_test
from tests.support.moto_server import ACCOUNT_ID, MotoAws, free_port, moto_server

pytestmark = pytest.mark.e2e

DAY = "2026-01-05"  # in the past: the plan re-processes landed raw
BUCKET = "spotify-lake-test"
PREFIX = "data/spotify"
DATABASE = "spotify_test"
TABLE_PREFIX = "sp_"
CRAWLER = "spotify_test_crawler"
ROLE_NAME = "spotify-etl-crawler"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE_NAME}"
WORKGROUP = "spotify_etl"
OUTPUT = f"s3://{BUCKET}/athena-results/"
COLUMNS = ("check_name", "violations", "checked_rows")


def settings_env(aws: MotoAws) -> dict[str, str]:
    return {
        "SPOTIFY_ETL_TARGET": "aws",
        "SPOTIFY_ETL_S3_BUCKET": BUCKET,
        "SPOTIFY_ETL_S3_PREFIX": PREFIX,
        "SPOTIFY_ETL_DATABASE": DATABASE,
        "SPOTIFY_ETL_TABLE_PREFIX": TABLE_PREFIX,
        "SPOTIFY_ETL_CRAWLER_NAME": CRAWLER,
        "SPOTIFY_ETL_CRAWLER_ROLE": ROLE,
        "SPOTIFY_ETL_ATHENA_WORKGROUP": WORKGROUP,
        "SPOTIFY_ETL_ATHENA_OUTPUT": OUTPUT,
        **aws.airflow_env(),
    }


def keys(aws: MotoAws, prefix: str = PREFIX) -> list[str]:
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def read_parquet(aws: MotoAws, key: str) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def run_log_keys(keys: list[str], prefix: str, day: str) -> list[str]:
    """The run log's objects of ``day`` among ``keys``: one per DAG run (spotify_etl.runlog)."""
    return [k for k in keys if k.startswith(f"{prefix}/processed/pipeline_runs/dt={day}/")]


def report_keys(prefix: str, day: str) -> list[str]:
    return [f"{prefix}/reports/dt={day}/index.html", f"{prefix}/reports/latest/index.html"]


def report_queries(queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The QueryExecutions of the trends report's queries (their text starts with the SQL file's comment)."""
    from spotify_etl import report

    heads = tuple(q.sql(DAY, DATABASE, TABLE_PREFIX).split("\n", 1)[0] for q in report.QUERIES)
    return [q for q in queries if q["Query"].startswith(heads)]


def same_rows(got: Any, want: Any) -> bool:
    """The same rows, each table from its own publish (the publish id differs)."""
    from spotify_etl.tables import PUBLISH_ID

    return bool(got.drop_columns([PUBLISH_ID]).equals(want.drop_columns([PUBLISH_ID])))


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoAws]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    with moto_server() as server:
        yield server


def kms_bucket(aws: MotoAws, bucket: str) -> str:
    """A bucket whose default encryption is SSE-KMS with a customer key (as the stack's lake bucket); the key's ARN."""
    key = aws.client("kms").create_key(Description=f"default key of {bucket}")["KeyMetadata"]["Arn"]
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True,
    }]})  # fmt: skip
    return str(key)


def encryption(aws: MotoAws, bucket: str, key: str) -> tuple[str | None, str | None]:
    head = aws.client("s3").head_object(Bucket=bucket, Key=key)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")


@pytest.fixture(scope="module")
def lake_key(aws: MotoAws) -> str:
    aws.reset()
    return kms_bucket(aws, BUCKET)


@pytest.fixture(scope="module")
def landed(aws: MotoAws, lake_key: str) -> dict[str, str]:
    """The account's resources and the raw documents of DAY, landed as an earlier extract left them."""
    from spotify_etl.extract import SampleSource, extract_playlist
    from spotify_etl.lake import S3Lake

    aws.client("athena").create_work_group(Name=WORKGROUP, Configuration={})
    lake = S3Lake(aws.s3fs(), BUCKET, PREFIX)
    source = SampleSource()
    for playlist_id in source.available():  # the sample playlists
        extract_playlist(source, lake, playlist_id, DAY, f"{DAY}T06:00:00+00:00")
    s3 = aws.client("s3")
    return {k: s3.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys(aws, f"{PREFIX}/raw")}


@pytest.fixture(scope="module")
def expected(aws: MotoAws, landed: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same raw bytes through the local target: the tables and the check rows AWS would produce."""
    from spotify_etl import tables
    from spotify_etl.lake import LocalLake
    from spotify_etl.transform import transform_day
    from spotify_etl.warehouse import local

    root = tmp_path_factory.mktemp("expected")
    lake = LocalLake(root / "lake")
    s3 = aws.client("s3")
    for key in landed:
        lake.write_bytes(
            f"{lake.root}/{key.removeprefix(PREFIX + '/')}", s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        )
    transform_day(lake, DAY)
    catalog = root / "catalog.duckdb"
    local.register_catalog(lake, catalog, DATABASE, TABLE_PREFIX)  # its run log empty: no DAG run here
    checks = local.run_validation(catalog, DAY, DATABASE, TABLE_PREFIX)
    import pyarrow.parquet as pq

    return {
        "tables": {t: pq.read_table(f"{lake.partition_dir(t, DAY)}/part-00000.parquet") for t in tables.TABLE_NAMES},
        "checks": [(c.name, c.violations, c.checked_rows) for c in checks],
        "report": local.report_data(catalog, DAY, DATABASE, TABLE_PREFIX),
    }


def snapshot(aws: MotoAws) -> dict[str, Any]:
    glue, athena = aws.client("glue"), aws.client("athena")
    return {
        "keys": keys(aws),
        "crawler": glue.get_crawler(Name=CRAWLER)["Crawler"],
        "crawls": glue.list_crawls(CrawlerName=CRAWLER)["Crawls"],
        "queries": [
            athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]
            for q in athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
        ],
    }


@pytest.fixture(scope="module")
def runs(
    aws: MotoAws,
    landed: dict[str, str],
    expected: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    airflow_template_db: Path,
) -> dict[str, Any]:
    """Run 1: DAY, Athena answers with the true check rows, OpenLineage events go to a file. Run 2: DAY
    again, Athena reports a failed check."""
    aws.set_transition("glue::crawl", {"progression": "time", "seconds": 2})
    env = settings_env(aws)
    home = tmp_path_factory.mktemp("aws-runs")
    aws.seed_athena_run(expected["checks"], COLUMNS, expected["report"])
    lineage = home / "openlineage.jsonl"
    transport = json.dumps({"type": "file", "log_file_path": str(lineage), "append": True})
    first = dags_test(airflow_template_db, home / "first", DAY, AIRFLOW__OPENLINEAGE__TRANSPORT=transport, **env)
    after_first = snapshot(aws)
    failing = [(n, 2 if n == "songs_popularity_in_range" else v, c) for n, v, c in expected["checks"]]
    aws.seed_athena_run(failing, COLUMNS)  # validation fails: no report
    second = dags_test(airflow_template_db, home / "second", DAY, **env)
    return {
        "first": first, "after_first": after_first, "second": second, "after_second": snapshot(aws), "lineage": lineage,
    }  # fmt: skip


def task_log_position(run: DagRunResult, text: str) -> int:
    position = run.output.find(text)
    assert position >= 0, f"{text!r} not in the run's output:\n{run.output[-4000:]}"
    return position


def test_first_run_succeeds_and_validates_in_athena(runs: dict[str, Any]) -> None:
    first: DagRunResult = runs["first"]
    assert first.succeeded, first.output[-6000:]
    assert "re-processing the 6 raw documents landed for that date without calling Spotify" in first.output
    assert "PASS songs_popularity_in_range: 0 violations" in first.output


def test_raw_and_parquet_objects_take_the_buckets_kms_encryption_and_are_readable(
    aws: MotoAws, runs: dict[str, Any], landed: dict[str, str], expected: dict[str, Any], lake_key: str
) -> None:
    from spotify_etl import tables

    parquet = [f"{PREFIX}/processed/{t}/dt={DAY}/part-00000.parquet" for t in tables.TABLE_NAMES]
    (run_log,) = run_log_keys(runs["after_first"]["keys"], PREFIX, DAY)  # the run's row: tests/unit/test_runlog.py
    assert runs["after_first"]["keys"] == sorted([*landed, *parquet, run_log, *report_keys(PREFIX, DAY)])
    s3 = aws.client("s3")
    for key in runs["after_first"]["keys"]:  # no header sent: the bucket's SSE-KMS default applies
        assert encryption(aws, BUCKET, key) == ("aws:kms", lake_key), key
    for key, etag in landed.items():  # re-processing reads raw, never rewrites it
        assert s3.head_object(Bucket=BUCKET, Key=key)["ETag"] == etag
    publishes = set()
    for table, key in zip(tables.TABLE_NAMES, parquet, strict=True):
        got = read_parquet(aws, key)
        assert got.num_rows > 0 and got.num_rows == expected["tables"][table].num_rows, table
        assert got.schema == tables.schema(table) and same_rows(got, expected["tables"][table]), table
        publishes |= set(got[tables.PUBLISH_ID].to_pylist())
    assert len(publishes) == 1  # the six tables of one publish
    (row,) = read_parquet(aws, run_log).to_pylist()  # the first run's; the tables now hold the second run's publish
    assert row["run_type"] == "manual" and row["mode"] == "reprocess" and row["playlists_planned"] == len(landed)
    assert row["rows_songs"] == expected["tables"]["songs"].num_rows and row["publish_id"] not in publishes
    rows = [read_parquet(aws, key).to_pylist()[0] for key in run_log_keys(keys(aws), PREFIX, DAY)]
    assert [r["publish_id"] for r in rows if r["publish_id"] in publishes] == [max(r["publish_id"] for r in rows)]


def test_glue_database_and_crawler(aws: MotoAws, runs: dict[str, Any]) -> None:
    from spotify_etl import tables

    glue = aws.client("glue")
    assert glue.get_database(Name=DATABASE)["Database"]["Name"] == DATABASE
    crawler = runs["after_first"]["crawler"]
    # Created with the ARN; GetCrawler answers the role's name, as AWS does (moto_server.glue_like_aws).
    assert (
        crawler["Role"] == ROLE_NAME and crawler["DatabaseName"] == DATABASE and crawler["TablePrefix"] == TABLE_PREFIX
    )
    assert [t["Path"] for t in crawler["Targets"]["S3Targets"]] == [
        f"s3://{BUCKET}/{PREFIX}/processed/{t}/" for t in (*tables.TABLE_NAMES, "pipeline_runs")
    ]
    assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    configuration = json.loads(crawler["Configuration"])
    assert configuration["CrawlerOutput"]["Partitions"] == {"AddOrUpdateBehavior": "InheritFromTable"}
    assert configuration["CreatePartitionIndex"] is False


def test_crawler_started_and_waited_for_in_the_triggerer(runs: dict[str, Any]) -> None:
    first: DagRunResult = runs["first"]
    assert len(runs["after_first"]["crawls"]) == 1
    crawler = runs["after_first"]["crawler"]
    assert crawler["State"] == "READY" and crawler["LastCrawl"]["Status"] == "COMPLETED"  # AWS: SUCCEEDED
    created = task_log_position(first, "Creating crawler: " + CRAWLER)
    deferred = task_log_position(first, "[DAG TEST] running trigger in line")
    still_running = task_log_position(first, "Status of glue crawl is: RUNNING")
    next_task = task_log_position(first, "[DAG TEST] starting task_id=athena_validation")
    assert created < deferred < still_running < next_task


def test_lineage_names_the_s3_objects_and_the_athena_query(runs: dict[str, Any], landed: dict[str, str]) -> None:
    """The transform's datasets in OpenLineage's S3 naming (namespace s3://<bucket>, name the key);
    the Athena step as the Amazon provider reports it: its SQL and its output location."""
    from spotify_etl import tables

    assert runs["first"].succeeded, runs["first"].output[-6000:]
    events = [json.loads(line) for line in runs["lineage"].read_text(encoding="utf-8").splitlines()]
    complete = {e["job"]["name"].removeprefix(f"{DAG_ID}."): e for e in events if e["eventType"] == "COMPLETE"}
    assert {"plan", "transform", "catalog.run_crawler", "athena_validation", "validate"} <= complete.keys()

    def datasets(task: str, key: str) -> set[tuple[str, str]]:
        return {(d["namespace"], d["name"]) for d in complete[task][key]}

    assert datasets("transform", "inputs") == {(f"s3://{BUCKET}", key) for key in landed}  # reprocess: the landed raw
    assert datasets("transform", "outputs") == {
        (f"s3://{BUCKET}", f"{PREFIX}/processed/{t}/dt={DAY}") for t in tables.TABLE_NAMES
    }
    # moto's crawler creates no tables, so Athena's GetTableMetadata finds none of those the query
    # reads (on AWS: the crawled tables, in awsathena://athena.<region>.amazonaws.com)
    athena = complete["athena_validation"]
    assert f'"{DATABASE}"."{TABLE_PREFIX}songs"' in athena["job"]["facets"]["sql"]["query"]
    assert datasets("athena_validation", "inputs") == set()
    assert datasets("athena_validation", "outputs") >= {(f"s3://{BUCKET}", "/athena-results/")}


def test_athena_query_submitted_with_settings(runs: dict[str, Any]) -> None:
    from spotify_etl.quality import render_validation_sql

    queries = runs["after_first"]["queries"]
    (query,) = [q for q in queries if "CREATE OR REPLACE VIEW" not in q["Query"] and q not in report_queries(queries)]
    assert query["Query"] == render_validation_sql(DAY, DATABASE, TABLE_PREFIX)
    assert query["QueryExecutionContext"]["Database"] == DATABASE
    assert query["WorkGroup"] == WORKGROUP
    assert query["ResultConfiguration"]["OutputLocation"].startswith(OUTPUT)
    assert f'"{DATABASE}"."{TABLE_PREFIX}songs"' in query["Query"] and f"dt = '{DAY}'" in query["Query"]


def test_the_trends_report_lands_under_the_lake_prefix_with_the_buckets_encryption_from_athenas_answers(
    aws: MotoAws, runs: dict[str, Any], expected: dict[str, Any], lake_key: str
) -> None:
    """The report task sends each include/sql/report query to Athena as DuckDB runs it, in the
    run's workgroup and output location, reads GetQueryResults (moto answers with what DuckDB
    answers on the same data, as strings with a header row, as Athena does) and writes the page
    and the latest copy to S3 under the lake prefix, taking the bucket's SSE-KMS default."""
    from spotify_etl import report

    first: DagRunResult = runs["first"]
    sent = report_queries(runs["after_first"]["queries"])
    assert sorted(q["Query"] for q in sent) == sorted(q.sql(DAY, DATABASE, TABLE_PREFIX) for q in report.QUERIES)
    assert {(q["QueryExecutionContext"]["Database"], q["WorkGroup"], q["Status"]["State"]) for q in sent} == {
        (DATABASE, WORKGROUP, "SUCCEEDED")
    }
    assert all(q["ResultConfiguration"]["OutputLocation"].startswith(OUTPUT) for q in sent)
    page_key, latest_key = report_keys(PREFIX, DAY)
    assert f"dt={DAY}: trends report written: s3://{BUCKET}/{page_key}" in first.output
    s3 = aws.client("s3")
    for key in (page_key, latest_key):
        assert encryption(aws, BUCKET, key) == ("aws:kms", lake_key), key
    head = s3.head_object(Bucket=BUCKET, Key=page_key)
    page = s3.get_object(Bucket=BUCKET, Key=page_key)["Body"].read().decode()
    assert head["ContentLength"] == len(page.encode()) and "<svg" in page
    # Athena's strings typed back: the page's numbers are DuckDB's answers on the same data.
    assert report.page_data(page) == json.loads(json.dumps(expected["report"]))
    assert expected["report"]["sizes"] and expected["report"]["top_artists"]


def test_the_catalog_step_creates_the_history_views_in_athena_with_the_text_duckdb_runs(runs: dict[str, Any]) -> None:
    from spotify_etl import history

    views = [q for q in runs["after_first"]["queries"] if "CREATE OR REPLACE VIEW" in q["Query"]]
    assert sorted(q["Query"] for q in views) == sorted(
        history.view_sql(v, DATABASE, TABLE_PREFIX) for v in history.VIEWS
    )
    assert {(q["QueryExecutionContext"]["Database"], q["WorkGroup"], q["Status"]["State"]) for q in views} == {
        (DATABASE, WORKGROUP, "SUCCEEDED")
    }
    first = runs["first"]
    crawled = task_log_position(first, "[DAG TEST] starting task_id=catalog.run_crawler")
    for view in history.VIEWS:
        assert crawled < task_log_position(first, f"[DAG TEST] starting task_id=catalog.view_{view}")


def test_failed_check_in_athena_result_fails_the_run_naming_it(runs: dict[str, Any], expected: dict[str, Any]) -> None:
    from spotify_etl import history, report

    second: DagRunResult = runs["second"]
    assert second.returncode != 0 and not second.succeeded
    songs = dict((n, c) for n, _, c in expected["checks"])["songs_popularity_in_range"]
    assert (
        f"1 of {len(expected['checks'])} checks failed: FAIL songs_popularity_in_range: 2 violations in {songs} rows"
        in second.output
    )
    # per run: the views, the checks; the first run's report queries too (the second stops at validate)
    assert len(runs["after_second"]["queries"]) == 2 * (1 + len(history.VIEWS)) + len(report.QUERIES)


def test_second_run_of_the_same_date_is_idempotent(runs: dict[str, Any]) -> None:
    first, second = runs["after_first"], runs["after_second"]
    # One copy of every object, no leftovers; the second run adds its own row to the run log.
    (added,) = sorted(set(second["keys"]) - set(first["keys"]))
    assert second["keys"] == sorted([*first["keys"], added]) and run_log_keys([added], PREFIX, DAY) == [added]
    # GetCrawler answers the role's name where the config holds its ARN: still up to date.
    assert f"crawler {CRAWLER} is up to date" in runs["second"].output
    assert "Creating crawler" not in runs["second"].output and "recreating it" not in runs["second"].output
    for key in (
        "Name",
        "Role",
        "DatabaseName",
        "Targets",
        "TablePrefix",
        "SchemaChangePolicy",
        "RecrawlPolicy",
        "Configuration",
        "Version",
        "LastUpdated",
    ):
        assert second["crawler"][key] == first["crawler"][key], key
    assert len(second["crawls"]) == 2  # each run crawls once


def test_a_changed_crawler_config_recreates_the_crawler_instead_of_updating_it(
    aws: MotoAws, runs: dict[str, Any], expected: dict[str, Any], airflow_template_db: Path, tmp_path: Path
) -> None:
    """Another table prefix: the run deletes and creates the crawler (moto, like AWS for these
    targets, takes no UpdateCrawler), and the new crawler's one crawl is its first, a full one."""
    glue = aws.client("glue")
    before = glue.get_crawler(Name=CRAWLER)["Crawler"]
    aws.seed_athena_run(expected["checks"], COLUMNS, expected["report"])
    run = dags_test(
        airflow_template_db, tmp_path / "home", DAY, **{**settings_env(aws), "SPOTIFY_ETL_TABLE_PREFIX": "v2_"}
    )
    assert run.succeeded, run.output[-6000:]
    assert f"crawler {CRAWLER} differs in TablePrefix: recreating it" in run.output
    assert task_log_position(run, f"deleted crawler {CRAWLER}") < task_log_position(run, f"Creating crawler: {CRAWLER}")
    after = glue.get_crawler(Name=CRAWLER)["Crawler"]
    assert after["TablePrefix"] == "v2_" and after["CreationTime"] > before["CreationTime"]
    assert after["Targets"]["S3Targets"] == before["Targets"]["S3Targets"]
    assert len(glue.list_crawls(CrawlerName=CRAWLER)["Crawls"]) == 1


# ---- parsing on the aws target ---------------------------------------------------------------
PARSE = textwrap.dedent("""
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    from spotify_etl.airflow import DAG_ID
    bag = DagBag(dag_folder=sys.argv[1])
    dag = bag.dags.get(DAG_ID)
    tasks = {} if dag is None else {
        t.task_id: {"type": type(t).__name__, "upstream": sorted(t.upstream_task_ids),
                    "deferrable": getattr(t, "deferrable", None), "trigger_rule": getattr(t.trigger_rule, "value", t.trigger_rule),
                    "outlets": [getattr(o, "uri", None) for o in t.outlets]}
        for t in dag.tasks}
    print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "tasks": tasks}))
""")


def parse_dag(home: Path, **env: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", PARSE, str(PROJECT / "dags")],
        env=airflow_env(home, **env),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=PROJECT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_dag_on_aws_target_parses_offline_with_table_assets(tmp_path: Path) -> None:
    from spotify_etl import tables

    # Nothing listens on this endpoint: parsing must not need AWS.
    offline = MotoAws(f"http://127.0.0.1:{free_port()}")
    parsed = parse_dag(tmp_path, **settings_env(offline))
    assert parsed["errors"] == {}
    tasks = parsed["tasks"]
    # The assets' identity does not follow the settings (tests/e2e/test_asset_switch.py).
    assert tasks["transform"]["outlets"] == [f"x-spotify-etl://tables/{t}" for t in tables.TABLE_NAMES]
    assert (
        tasks["catalog.run_crawler"]["type"] == "GlueCrawlerRunOperator" and tasks["catalog.run_crawler"]["deferrable"]
    )
    assert tasks["catalog.run_crawler"]["trigger_rule"] == "none_failed_min_one_success"
    assert tasks["catalog.run_crawler"]["upstream"] == [
        "catalog.crawler_action",
        "catalog.create_crawler",
        "catalog.recreate_crawler",
    ]
    assert tasks["catalog.create_crawler"]["type"] == "GlueCrawlerCreateOperator"
    assert tasks["catalog.recreate_crawler"]["upstream"] == ["catalog.crawler_action"]
    # UpdateCrawler cannot change an incremental crawler's S3 targets; the DAG never calls it.
    assert not any(t["type"] == "GlueCrawlerUpdateOperator" for t in tasks.values())
    assert tasks["catalog.database"]["upstream"] == ["transform"]
    assert tasks["athena_validation"]["type"] == "AthenaOperator" and tasks["athena_validation"]["deferrable"]
    for view in ("catalog.view_playlist_changes", "catalog.view_playlist_song_spans"):  # the history views' DDL
        assert tasks[view]["type"] == "AthenaOperator" and tasks[view]["upstream"] == ["catalog.run_crawler"]
    # after the views; Airflow renders validate.sql, no task of its own
    assert tasks["athena_validation"]["upstream"] == [
        "catalog.view_playlist_changes",
        "catalog.view_playlist_song_spans",
    ]
    assert tasks["validate"]["upstream"] == ["athena_validation"]
    assert not any(t["type"] == "GlueCrawlerOperator" for t in tasks.values())


def test_dag_on_aws_target_without_crawler_role_names_the_setting(tmp_path: Path) -> None:
    env = settings_env(MotoAws(f"http://127.0.0.1:{free_port()}"))
    env["SPOTIFY_ETL_CRAWLER_ROLE"] = ""
    parsed = parse_dag(tmp_path, **env)
    assert parsed["tasks"] == {}
    assert "SPOTIFY_ETL_CRAWLER_ROLE" in " ".join(parsed["errors"].values())


# ---- S3 through Airflow's filesystem (airflow.tasks.open_lake -> AwsTarget.open_lake -> get_fs) -----
WRITE = textwrap.dedent("""
    import json, sys
    from spotify_etl.airflow.tasks import open_lake
    from spotify_etl.lake import LakeError
    from spotify_etl.publish import publish_date
    from spotify_etl.settings import Settings
    from spotify_etl.tables import TABLE_NAMES
    outcomes = {}
    for name, conn_id, bucket, sse, key_id in json.loads(sys.argv[1]):
        try:
            lake = open_lake(Settings(target="aws", s3_bucket=bucket, s3_prefix="p", aws_conn_id=conn_id,
                                      s3_sse=sse, s3_sse_kms_key_id=key_id))
            lake.write_json(lake.raw_path("2026-01-05", "4dn0iEoAxn69ea0Tyov8V5"), {"pages": []})
            publish_date(lake, "2026-01-05", dict.fromkeys(TABLE_NAMES, sys.argv[2]), "test-publish")
            outcomes[name] = "written"
        except LakeError as exc:
            outcomes[name] = str(exc)
    print(json.dumps(outcomes))
""")
RAW_KEY = "p/raw/playlists/dt=2026-01-05/playlist_id=4dn0iEoAxn69ea0Tyov8V5.json"
PART_KEY = "p/processed/songs/dt=2026-01-05/part-00000.parquet"


def write_through_airflow(home: Path, cases: list[tuple[str, str, str, str, str]], **env: str) -> dict[str, str]:
    part = home / "part.parquet"
    part.write_bytes(b"PAR1 not really parquet; the lake copies bytes")
    proc = subprocess.run(
        [sys.executable, "-c", WRITE, json.dumps(cases), str(part)],
        env=airflow_env(home, **env),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_s3_writes_follow_the_encryption_setting_and_errors_name_bucket_and_key(aws: MotoAws, tmp_path: Path) -> None:
    """Buckets whose default is SSE-KMS; SPOTIFY_ETL_S3_SSE empty (the default), AES256, or aws:kms with a key."""
    default, sse_s3, own_key = "spotify-sse-default", "spotify-sse-s3", "spotify-sse-own-key"
    bucket_keys = {bucket: kms_bucket(aws, bucket) for bucket in (default, sse_s3, own_key)}
    other_key = aws.client("kms").create_key(Description="named by the setting")["KeyMetadata"]["Arn"]
    down = MotoAws(f"http://127.0.0.1:{free_port()}")
    env = {
        **aws.airflow_env(),
        **{k: v for k, v in down.airflow_env("aws_down").items() if k.startswith("AIRFLOW_CONN")},
    }
    outcomes = write_through_airflow(
        tmp_path,
        [("default", "aws_default", default, "", ""), ("sse_s3", "aws_default", sse_s3, "AES256", ""),
         ("own_key", "aws_default", own_key, "aws:kms", other_key),
         ("missing", "aws_default", "no-such-bucket", "", ""), ("down", "aws_down", default, "", "")],
        **env,
    )  # fmt: skip
    assert (outcomes["default"], outcomes["sse_s3"], outcomes["own_key"]) == ("written",) * 3, outcomes
    for key in (RAW_KEY, PART_KEY):  # pipe_file (JSON) and the Parquet file (staged, then copied into place) alike
        assert encryption(aws, default, key) == ("aws:kms", bucket_keys[default]), key
        assert encryption(aws, sse_s3, key) == ("AES256", None), key
        assert encryption(aws, own_key, key) == ("aws:kms", other_key), key
    s3 = aws.client("s3")
    assert json.loads(s3.get_object(Bucket=default, Key=RAW_KEY)["Body"].read()) == {"pages": []}
    assert f"could not write bucket 'no-such-bucket', key '{RAW_KEY}'" in outcomes["missing"]
    assert f"could not write bucket '{default}', key '{RAW_KEY}'" in outcomes["down"]
    for message in (outcomes["missing"], outcomes["down"]):
        assert "check the bucket exists, the AWS connection's credentials/endpoint_url" in message


def test_s3_access_denied_names_bucket_and_key(aws: MotoAws, tmp_path: Path) -> None:
    """A role that may read but not write: moto enforces IAM once its auth is switched on."""
    import requests

    bucket = "spotify-denied-test"
    aws.client("s3").create_bucket(Bucket=bucket)
    iam = aws.client("iam")
    iam.create_user(UserName="reader")
    iam.put_user_policy(
        UserName="reader",
        PolicyName="read-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
            }
        ),
    )
    access = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = aws.connection()
    reader.update(login=access["AccessKeyId"], password=access["SecretAccessKey"])
    env = {**aws.airflow_env(), "AIRFLOW_CONN_AWS_READER": json.dumps(reader)}
    assert requests.post(f"{aws.endpoint}/moto-api/reset-auth", data=b"0", timeout=10).status_code == 200
    try:
        outcomes = write_through_airflow(tmp_path, [("denied", "aws_reader", bucket, "", "")], **env)
    finally:
        requests.post(f"{aws.endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
    assert f"could not write bucket '{bucket}', key '{RAW_KEY}': PermissionError" in outcomes["denied"]
    assert "Access Denied" in outcomes["denied"]


# ---- a live run: Spotify (local API server) -> S3 -> Glue -> Athena ------------------------------
def test_live_run_extracts_from_spotify_into_s3(
    aws: MotoAws, landed: dict[str, str], airflow_template_db: Path, tmp_path: Path, lake_key: str
) -> None:
    """Today's run calls the Spotify API; sample data is never used on aws."""
    import datetime as dt

    import pyarrow.parquet as pq
    from spotify_etl import tables
    from spotify_etl.extract import extract_playlist
    from spotify_etl.lake import LocalLake
    from spotify_etl.spotify.client import SpotifySource
    from spotify_etl.transform import transform_day
    from spotify_etl.warehouse import local

    from tests.support.spotify_server import LSD, RAP_RU, SpotifyServer

    day = dt.datetime.now(dt.UTC).date().isoformat()
    prefix, database, crawler = "live/spotify", "spotify_live", "spotify_live_crawler"
    with SpotifyServer() as server:
        # What Athena would answer: the same API answers through the local target and DuckDB.
        source = SpotifySource(
            server.client_id,
            server.client_secret,
            refresh_token=server.refresh_token,
            api_base_url=server.api_base_url,
            token_url=server.token_url,
        )
        reference = LocalLake(tmp_path / "reference")
        for playlist_id in (LSD, RAP_RU):
            extract_playlist(source, reference, playlist_id, day, f"{day}T06:00:00+00:00")
        transform_day(reference, day)
        local.register_catalog(reference, tmp_path / "ref.duckdb", database)
        checks = local.run_validation(tmp_path / "ref.duckdb", day, database)
        answers = local.report_data(tmp_path / "ref.duckdb", day, database)
        aws.seed_athena_run([(c.name, c.violations, c.checked_rows) for c in checks], COLUMNS, answers)
        requests_before, all_before = len(server.api_requests("/items")), len(server.api_requests())

        env = {
            **settings_env(aws),
            "SPOTIFY_ETL_S3_PREFIX": prefix,
            "SPOTIFY_ETL_DATABASE": database,
            "SPOTIFY_ETL_TABLE_PREFIX": "",
            "SPOTIFY_ETL_CRAWLER_NAME": crawler,
            "AIRFLOW_CONN_SPOTIFY_DEFAULT": json.dumps(server.connection(user=True)),
        }
        run = dags_test(airflow_template_db, tmp_path / "home", day, conf={"playlists": [LSD, RAP_RU]}, **env)
        assert run.succeeded, run.output[-6000:]
        assert len(server.api_requests("/items")) > requests_before  # the DAG called the API itself
        requests_made = len(server.api_requests()) - all_before

    s3 = aws.client("s3")
    raw = [f"{prefix}/raw/playlists/dt={day}/playlist_id={p}.json" for p in sorted((LSD, RAP_RU))]
    parquet = [f"{prefix}/processed/{t}/dt={day}/part-00000.parquet" for t in tables.TABLE_NAMES]
    (run_log,) = run_log_keys(keys(aws, prefix), prefix, day)
    assert keys(aws, prefix) == sorted([*raw, *parquet, run_log, *report_keys(prefix, day)])
    for key in [*raw, *parquet, run_log, *report_keys(prefix, day)]:
        assert encryption(aws, BUCKET, key) == ("aws:kms", lake_key), key
    for key in raw:
        document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        assert document["source"] == "spotify_api" and document["dt"] == day
    for table, key in zip(tables.TABLE_NAMES, parquet, strict=True):
        want, got = pq.read_table(f"{reference.partition_dir(table, day)}/part-00000.parquet"), read_parquet(aws, key)
        if table == "playlists":  # when each extract ran (the reference's was given above): today, both
            assert {t.date().isoformat() for t in got.column("extracted_at").to_pylist()} == {day}
            want, got = want.drop_columns(["extracted_at"]), got.drop_columns(["extracted_at"])
        assert want.num_rows > 0 and same_rows(got, want), table
    assert "PASS songs_pk_unique_not_null" in run.output
    (row,) = read_parquet(aws, run_log).to_pylist()
    assert (row["mode"], row["playlists_planned"], row["playlists_landed"], row["playlists_failed"]) == (
        "extract",
        2,
        2,
        0,
    )
    assert row["spotify_requests"] == requests_made and row["items_read"] == row["rows_playlist_items"] > 0
    crawler_paths = [t["Path"] for t in aws.client("glue").get_crawler(Name=crawler)["Crawler"]["Targets"]["S3Targets"]]
    assert crawler_paths == [f"s3://{BUCKET}/{prefix}/processed/{t}/" for t in (*tables.TABLE_NAMES, "pipeline_runs")]
