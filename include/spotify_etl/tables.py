"""The six output tables: names, primary keys and explicit Arrow schemas in one place.

Kept import-light (pyarrow is imported on first use of :func:`schema`) because the DAG
file reads :data:`TABLE_NAMES` at parse time to declare its Assets.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# table -> (primary key, [(column, arrow type name, nullable)])
_TABLES: dict[str, tuple[tuple[str, ...], list[tuple[str, str, bool]]]] = {
    "albums": (
        ("album_id",),
        [
            ("album_id", "string", False),
            ("name", "string", True),
            ("release_date", "date32", True),
            ("release_date_precision", "string", True),
            ("total_tracks", "int32", True),
            ("url", "string", True),
        ],
    ),
    "artists": (
        ("artist_id",),
        [
            ("artist_id", "string", False),
            ("name", "string", True),
            ("external_url", "string", True),
        ],
    ),
    "songs": (
        ("song_id",),
        [
            ("song_id", "string", False),
            ("name", "string", True),
            ("duration_ms", "int64", False),
            # Null for development-mode apps: Spotify sends them no popularity since Feb/Mar 2026,
            # so validate.sql's songs_popularity_in_range then reports SKIP (nothing to check).
            ("popularity", "int32", True),
            ("explicit", "bool", True),
            ("album_id", "string", False),
            ("artist_id", "string", False),
            ("url", "string", True),
        ],
    ),
    "song_artists": (
        ("song_id", "artist_id"),
        [
            ("song_id", "string", False),
            ("artist_id", "string", False),
            ("position", "int32", False),
        ],
    ),
    "playlist_items": (
        ("playlist_id", "position"),
        [
            ("playlist_id", "string", False),
            ("position", "int32", False),
            ("song_id", "string", True),
            ("added_at", "timestamp_utc", True),
            ("added_by", "string", True),
            ("is_local", "bool", True),
        ],
    ),
    # One row per playlist of the date's scope (an empty playlist too). Documents landed before the
    # extract kept the metadata (raw_format.PLAYLIST) give nulls in its columns.
    "playlists": (
        ("playlist_id",),
        [
            ("playlist_id", "string", False),
            ("name", "string", True),
            ("description", "string", True),
            ("owner_id", "string", True),
            ("owner_name", "string", True),
            ("public", "bool", True),
            ("collaborative", "bool", True),
            ("snapshot_id", "string", True),
            ("items_total", "int32", True),
            ("followers", "int64", True),  # null where Spotify sends none
            ("extracted_at", "timestamp_utc", True),
        ],
    ),
}

TABLE_NAMES: tuple[str, ...] = tuple(_TABLES)

# Every table's last column: the id of the publish that wrote the row (spotify_etl.publish),
# the same in all six tables of a date; validate.sql's tables_one_publish checks it.
PUBLISH_ID = "publish_id"
_PUBLISH_COLUMN = (PUBLISH_ID, "string", False)


def primary_key(table: str) -> tuple[str, ...]:
    return _TABLES[table][0]


def _columns(table: str) -> list[tuple[str, str, bool]]:
    return [*_TABLES[table][1], _PUBLISH_COLUMN]


def columns(table: str) -> list[str]:
    return [name for name, _, _ in _columns(table)]


# Arrow type name -> the DuckDB type that converts to it exactly (the run log's columns use them too).
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "date32": "DATE",
    "timestamp_utc": "TIMESTAMPTZ",
}


def duckdb_type(table: str, column: str) -> str:
    """The DuckDB type of ``table``'s ``column``."""
    return next(DUCKDB_TYPES[kind] for name, kind, _ in _columns(table) if name == column)


def create_table_sql(table: str) -> str:
    """``CREATE OR REPLACE TABLE`` for ``table`` in DuckDB, its columns typed as :func:`schema`'s.

    No NOT NULL: the transform inserts only rows that passed its checks (``transform.REASONS``).
    No :data:`PUBLISH_ID` either: the transform adds it as it writes the tables.
    """
    cols = ", ".join(f"{name} {duckdb_type(table, name)}" for name, _, _ in _TABLES[table][1])
    return f"CREATE OR REPLACE TABLE {table} ({cols});"


@cache
def schema(table: str) -> pa.Schema:
    return arrow_schema(_columns(table))


def arrow_schema(columns: list[tuple[str, str, bool]]) -> pa.Schema:
    """The Arrow schema of ``columns``: (name, Arrow type name of :data:`DUCKDB_TYPES`, nullable)."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date32": pa.date32(),
        "timestamp_utc": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([pa.field(n, types[t], nullable=null) for n, t, null in columns])
