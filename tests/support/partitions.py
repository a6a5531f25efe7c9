"""Reading a date's published tables the way tests compare them, and writing hand-made ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spotify_etl import tables
from spotify_etl.lake import PART_FILE, Lake
from spotify_etl.tables import PUBLISH_ID


def partition_data(lake: Lake, table: str, day: str) -> Any:
    """``table``'s partition for ``day`` as an Arrow table without the publish id, which differs
    between two publishes of the same rows."""
    import pyarrow.parquet as pq

    return pq.read_table(f"{lake.partition_dir(table, day)}/{PART_FILE}", filesystem=lake.fs).drop_columns([PUBLISH_ID])


def write_partition(lake: Lake, table: str, day: str, rows: list[dict[str, Any]], old: bool = False) -> None:
    """Rows without a publish id get "p1"; ``old``: a file written before the column existed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([f.with_nullable(True) for f in tables.schema(table)])  # lets a test write a null key
    if old:
        schema = schema.remove(schema.get_field_index(tables.PUBLISH_ID))
    else:
        rows = [{tables.PUBLISH_ID: "p1", **row} for row in rows]
    path = Path(lake.partition_dir(table, day)) / "part-00000.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
