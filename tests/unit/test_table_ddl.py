"""The transform's entity tables are created from tables.py: DuckDB's types turn into exactly
the Arrow types the Parquet files are written with, so no cast changes a value."""

from __future__ import annotations

import duckdb
import pytest
from spotify_etl import tables
from spotify_etl.transform import BATCH_TABLES, ENTITY_TABLES, entity_tables_sql, table_sql


def test_every_table_is_written_either_as_entities_or_batch_by_batch() -> None:
    assert sorted(ENTITY_TABLES + BATCH_TABLES) == sorted(tables.TABLE_NAMES)


@pytest.mark.parametrize("table", tables.TABLE_NAMES)
def test_duckdb_table_has_the_arrow_schemas_columns_and_types(table: str) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(tables.create_table_sql(table))
    arrow = con.table(table).arrow().schema
    expected = tables.schema(table).remove(tables.schema(table).get_field_index(tables.PUBLISH_ID))  # added on writing
    assert tables.columns(table)[-1] == tables.PUBLISH_ID
    assert arrow.names == expected.names
    assert [f.type for f in arrow] == [f.type for f in expected]


def test_entity_tables_sql_creates_each_entity_table_in_key_order() -> None:
    con = duckdb.connect()
    con.execute(entity_tables_sql())
    assert {r[0] for r in con.sql("SHOW TABLES").fetchall()} == set(ENTITY_TABLES)
    con.execute("INSERT INTO song_artists VALUES ('b', 'x', 0), ('a', 'y', 1), ('a', 'x', 0)")
    con.execute("CREATE TABLE publish AS SELECT 'p1' AS publish_id")  # as transform() does
    assert con.sql(table_sql("song_artists")).fetchall() == [
        ("a", "x", 0, "p1"),
        ("a", "y", 1, "p1"),
        ("b", "x", 0, "p1"),
    ]
