"""What the aws tests share: a crawler's settings and Athena's result rows as GetQueryResults gives them."""

from __future__ import annotations

from typing import Any

from spotify_etl.settings import Settings
from spotify_etl.targets import AwsTarget
from spotify_etl.warehouse import aws

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
