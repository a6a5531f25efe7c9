"""include/spotify_etl/raw_format.py: the one declaration of the raw entry yields exactly the
filter, shape check and DuckDB types that were written out by hand before it existed."""

from __future__ import annotations

import pytest
from spotify_etl import raw_format
from spotify_etl.raw_format import RAW_COLUMNS, declared, items_fields, playlist_fields, shape_error

from tests.support.fields import parse_fields

# The literals the three modules held before the entry was declared once.
_TRACK_FILTER = (
    "id,name,type,is_local,duration_ms,popularity,explicit,external_urls,"
    "album(id,name,release_date,release_date_precision,total_tracks,external_urls),artists(id,name,external_urls)"
)
_URL = "STRUCT(spotify VARCHAR)"
_ARTIST = f"STRUCT(id VARCHAR, name VARCHAR, external_urls {_URL})"
_ALBUM = (
    "STRUCT(id VARCHAR, name VARCHAR, release_date VARCHAR, release_date_precision VARCHAR, "
    f"total_tracks VARCHAR, external_urls {_URL})"
)
_TRACK = (
    "STRUCT(id VARCHAR, name VARCHAR, type VARCHAR, is_local VARCHAR, duration_ms VARCHAR, "
    f"popularity VARCHAR, explicit VARCHAR, external_urls {_URL}, album {_ALBUM}, artists {_ARTIST}[])"
)
_ENTRY = f"STRUCT(added_at VARCHAR, added_by STRUCT(id VARCHAR), is_local VARCHAR, track {_TRACK}, item {_TRACK})"


@pytest.mark.parametrize("endpoint,key", [("items", "item"), ("tracks", "track")])
def test_fields_filter_is_the_one_spotify_was_always_sent(endpoint: str, key: str) -> None:
    expected = f"offset,limit,next,total,items(added_at,added_by.id,is_local,{key}({_TRACK_FILTER}))"
    assert items_fields(endpoint) == expected


def test_duckdb_read_types_are_the_transforms_struct_types() -> None:
    metadata = (
        "STRUCT(name VARCHAR, description VARCHAR, public VARCHAR, collaborative VARCHAR, "
        "owner STRUCT(id VARCHAR, display_name VARCHAR), followers STRUCT(total VARCHAR))"
    )
    recorded = dict.fromkeys(("name", "owner_id", "snapshot_id", "total", "extracted_at"), "VARCHAR")
    assert RAW_COLUMNS == {
        "playlist_id": "VARCHAR",
        **recorded,
        "metadata": metadata,
        "pages": f"STRUCT(items {_ENTRY}[])[]",
    }


def test_the_metadata_request_asks_for_the_playlists_tables_fields_in_spotifys_grammar() -> None:
    metadata = "id,snapshot_id,name,description,public,collaborative,owner(id,display_name),followers.total"
    # and the first page of entries, each container with its own entry key (issue 21)
    first_page = f"items({items_fields('items')}),tracks({items_fields('tracks')})"
    assert playlist_fields() == f"{metadata},{first_page}"
    assert parse_fields(playlist_fields())  # the test server's parser of Spotify's grammar takes it


def test_declared_keeps_only_the_declared_keys() -> None:
    meta = {"name": "n", "images": [], "owner": {"id": "o", "href": "h"}, "followers": {"href": None, "total": 3}}
    assert declared(meta, raw_format.PLAYLIST) == {
        "name": "n",
        "description": None,
        "public": None,
        "collaborative": None,
        "owner": {"id": "o", "display_name": None},
        "followers": {"total": 3},
    }
    entry = {"added_by": None, "item": {"id": "t", "artists": [{"id": "a", "uri": "u"}], "external_urls": {"x": 1}}}
    kept = declared(entry, raw_format.ENTRY)
    assert kept["item"]["artists"] == [{"id": "a", "name": None, "external_urls": None}]
    assert kept["item"]["external_urls"] == {"x": 1} and kept["added_by"] is None  # asked whole; null stays null


def test_raw_format_version_is_unchanged() -> None:
    assert raw_format.RAW_FORMAT == "spotify-etl/raw-playlist@1"


@pytest.mark.parametrize(
    "entry,problem",
    [
        ({"added_by": "me"}, "entry.added_by is a str, not an object"),
        ({"item": {"album": []}}, "entry.item.album is a list, not an object"),
        ({"track": {"artists": {"id": "x"}}}, "entry.track.artists is a dict, not a list"),
        (
            {"item": {"artists": [{"external_urls": "u"}]}},
            "entry.item.artists[0].external_urls is a str, not an object",
        ),
        ({"item": {"external_urls": 3}}, "entry.item.external_urls is a int, not an object"),
        ([], "entry is a list, not an object"),
    ],
)
def test_shape_check_names_the_value_that_is_not_an_object_or_list(entry: object, problem: str) -> None:
    assert shape_error(entry) == problem


def test_shape_check_lets_leaves_and_nulls_hold_anything() -> None:
    entry = {
        "added_at": 5,
        "added_by": None,
        "is_local": "no",
        "item": {"id": [1], "duration_ms": {"x": 1}, "album": None, "artists": [None, {"name": {}}]},
        "video_thumbnail": {"url": None},  # keys the entry does not declare are not checked
    }
    assert shape_error(entry) is None
    assert shape_error(None) is None
