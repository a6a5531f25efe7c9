"""AWS warehouse: the Glue crawler's configuration and reading Athena's validation result.

Plain functions over dicts, so they are tested without AWS; :mod:`spotify_etl.airflow.aws_target`
wires them into the DAG with the Amazon provider's operators.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from spotify_etl import quality, runlog, tables
from spotify_etl.lake import TABLES_DIR
from spotify_etl.settings import refused

if TYPE_CHECKING:
    from spotify_etl.report import Query, Rows
    from spotify_etl.settings import Settings
    from spotify_etl.targets import AwsTarget

RESULT_COLUMNS = ("check_name", "violations", "checked_rows")

# Daily runs only add dt= folders and the Parquet schemas are fixed in code (tables.py), so
# each crawl reads just the new folders. AWS requires LOG/LOG with CRAWL_NEW_FOLDERS_ONLY:
# a schema change is a code change and needs a deliberate full recrawl (docs/run-on-aws.md).
# Such a crawler adds no table after its first (full) crawl and refuses new S3 targets, so a
# changed config is applied by recreating the crawler (airflow/aws_target.py), never by UpdateCrawler.
SCHEMA_CHANGE_POLICY = {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
RECRAWL_POLICY = {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
CRAWLER_CONFIGURATION = {
    "Version": 1.0,
    # Partitions take the table's schema, so one odd file cannot give a day its own column types.
    "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
    # Glue's default is true, which needs glue:CreatePartitionIndex; Athena ignores the index
    # unless partition_filtering.enabled is set, and one dt= partition a day never needs it.
    "CreatePartitionIndex": False,
}
_ROLE_ARN = re.compile(r"arn:[^:]+:iam::\d*:role/(?P<name>.+)")
# Hidden and underscore files are never data (Spark/Hive markers, interrupted uploads).
EXCLUSIONS = ["**/.*", "**/_*"]
# Every folder the crawler makes a table of: the tables and the run log (spotify_etl.runlog).
_CRAWLED = (*tables.TABLE_NAMES, runlog.TABLE)


def crawler_config(target: AwsTarget) -> dict[str, Any]:
    """CreateCrawler/UpdateCrawler arguments: one S3 target per table folder and one for the run log,
    so each becomes a Glue table partitioned by dt."""
    settings = target.settings
    if not settings.crawler_role:
        raise refused(
            "SPOTIFY_ETL_CRAWLER_ROLE",
            "",
            "required when SPOTIFY_ETL_TARGET=aws (the IAM role the Glue crawler assumes)",
        )
    quality.check_names(settings.database, settings.table_prefix)
    config: dict[str, Any] = {
        "Name": settings.crawler_name,
        "Role": settings.crawler_role,
        "DatabaseName": settings.database,
        "Description": f"spotify_playlist_etl: Parquet tables under {target.lake_url}/{TABLES_DIR}/",
        "Targets": {"S3Targets": [{"Path": target.table_url(t) + "/", "Exclusions": EXCLUSIONS} for t in _CRAWLED]},
        "SchemaChangePolicy": SCHEMA_CHANGE_POLICY,
        "RecrawlPolicy": RECRAWL_POLICY,
        "Configuration": json.dumps(CRAWLER_CONFIGURATION, sort_keys=True),
    }
    if settings.table_prefix:  # GetCrawler omits an empty prefix; sending "" would look like a change
        config["TablePrefix"] = settings.table_prefix
    return config


def role_name(role: Any) -> Any:
    """The role as GetCrawler reports it: ``path/name`` without the ARN's prefix (a name stays a name)."""
    match = _ROLE_ARN.fullmatch(role) if isinstance(role, str) else None
    return match.group("name") if match else role


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)  # AWS may re-serialise the JSON
        except ValueError:
            return value
    return value


def _covers(current: Any, wanted: Any) -> bool:
    """``current`` holds every key of ``wanted`` with the same value, list items alike. Keys only
    ``current`` has are AWS's: every target type (mostly empty), Glue's own configuration defaults."""
    if isinstance(wanted, Mapping):
        return isinstance(current, Mapping) and all(k in current and _covers(current[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(current, list) and len(current) == len(wanted) and all(map(_covers, current, wanted))
    return bool(current == wanted)


def _same(key: str, current: Any, wanted: Any) -> bool:
    if key == "Role":
        return bool(role_name(current) == role_name(wanted))  # config: the ARN; GetCrawler: the name
    if key == "Configuration":
        return _covers(_json(current), _json(wanted))
    return _covers(current, wanted)


def crawler_changes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Keys of ``wanted`` whose value differs from the crawler ``current`` (a GetCrawler ``Crawler``)."""
    return sorted(k for k, v in wanted.items() if not _same(k, current.get(k), v))


def result_rows(
    pages: Iterable[Mapping[str, Any]], header: tuple[str, ...] = RESULT_COLUMNS
) -> list[tuple[str | None, ...]]:
    """The data rows of GetQueryResults pages, without the header row Athena puts first (``header``)."""
    rows = [
        tuple(cell.get("VarCharValue") for cell in row.get("Data", []))
        for page in pages
        for row in page.get("ResultSet", {}).get("Rows", [])
    ]
    if rows and rows[0] == header:
        rows = rows[1:]
    return rows


def check_results(pages: Iterable[Mapping[str, Any]]) -> list[quality.CheckResult]:
    """Athena's answer to validate.sql as check results, for :func:`quality.judge`."""
    rows = result_rows(pages)
    bad = [r for r in rows if len(r) != len(RESULT_COLUMNS) or None in r]
    if bad:
        raise ValueError(f"the validation query returned rows that are not {RESULT_COLUMNS}: {bad[:3]}")
    return quality.parse_rows(rows)


def report_data(
    hook: Any, settings: Settings, day: str, poll_seconds: int = 2, max_polls: int = 900
) -> dict[str, Rows]:
    """The trends report's queries (:data:`spotify_etl.report.QUERIES`) in Athena through an
    ``AthenaHook``, one after the other (each reads the whole history: seconds): query -> rows."""
    from spotify_etl import report

    data = {}
    for query in report.QUERIES:
        sql = query.sql(day, settings.database, settings.table_prefix)
        output = {"OutputLocation": settings.athena_output} if settings.athena_output else {}
        query_id = hook.run_query(sql, {"Database": settings.database}, output, workgroup=settings.athena_workgroup)
        state = hook.poll_query_status(query_id, max_polling_attempts=max_polls, sleep_time=poll_seconds)
        if state != "SUCCEEDED":
            reason = hook.get_state_change_reason(query_id) or "no reason given"
            raise report.ReportError(f"Athena query {query_id} ({query.template}) ended {state}: {reason}")
        data[query.name] = report_rows(query, query_result_pages(hook, query_id))
    return data


def report_rows(query: Query, pages: Sequence[Mapping[str, Any]]) -> Rows:
    """A report query's GetQueryResults pages as its typed rows: the columns as Athena names them
    (the first page's ResultSetMetadata) checked against the query's, the header row dropped."""
    info = pages[0].get("ResultSet", {}).get("ResultSetMetadata", {}).get("ColumnInfo", []) if pages else []
    names = tuple(str(column.get("Name")) for column in info)
    return query.rows(names, result_rows(pages, header=names))


def query_result_pages(hook: Any, query_execution_id: str) -> list[dict[str, Any]]:
    """Every GetQueryResults page of a finished query through an ``AthenaHook``."""
    pages: list[dict[str, Any]] = []
    token = None
    while True:
        page = hook.get_query_results(query_execution_id, next_token_id=token)
        if page is None:  # the hook logged the query's state
            raise RuntimeError(f"Athena query {query_execution_id} has no results (not SUCCEEDED; see the log above)")
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            return pages
