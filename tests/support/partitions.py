"""Reading a date's published tables the way tests compare them."""

from __future__ import annotations

from typing import Any

from spotify_etl.lake import PART_FILE, Lake
from spotify_etl.tables import PUBLISH_ID


def partition_data(lake: Lake, table: str, day: str) -> Any:
    """``table``'s partition for ``day`` as an Arrow table without the publish id, which differs
    between two publishes of the same rows."""
    import pyarrow.parquet as pq

    return pq.read_table(f"{lake.partition_dir(table, day)}/{PART_FILE}", filesystem=lake.fs).drop_columns([PUBLISH_ID])
