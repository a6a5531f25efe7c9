"""include/sql/validate.sql: valid Athena (Trino) SQL, and the right verdicts when DuckDB runs it.

Athena cannot run offline, so its half is a syntax check with sqlglot's Trino dialect. That
parser accepts a superset of Trino (DuckDB's ``::`` casts, unknown function names...), so
the check also allows only functions known to exist in Trino and rejects DuckDB-only
syntax; a test proves the check rejects such SQL. The meaning of the checks is tested by
executing the same SQL in DuckDB over small hand-built Parquet tables, through the local
catalog the ``local`` target uses, and judging the rows with :func:`quality.judge`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spotify_etl import quality, tables
from spotify_etl.lake import LocalLake
from spotify_etl.warehouse import local

from tests.support.partitions import write_partition
from tests.support.trino import athena_sql_problems

DAY = "2026-03-01"
DATABASE, PREFIX = "spotify_etl", "t_"
CHECKS = 17


def test_validate_sql_is_valid_athena_sql() -> None:
    assert athena_sql_problems(quality.render_validation_sql(DAY, DATABASE, PREFIX)) == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM t WHERE",  # syntax error
        "SELECT a FROM t QUALIFY row_number() OVER (ORDER BY a) = 1",
        "SELECT a::INTEGER FROM t",
        "SELECT regexp_full_match(a, 'x') FROM t",
        "SELECT list_value(1, 2)",
        "SELECT * EXCLUDE (a) FROM t",
        "SELECT `a` FROM t",
        "SELECT 1; SELECT 2",
    ],
)
def test_the_athena_check_rejects_duckdb_only_sql(sql: str) -> None:
    assert athena_sql_problems(sql) != []


# ---- executed in DuckDB ---------------------------------------------------------------------------
def good_rows() -> dict[str, list[dict[str, Any]]]:
    return {
        "albums": [
            {"album_id": "A1", "name": "One", "total_tracks": 10},
            {"album_id": "A2", "name": "Two", "total_tracks": 1},
        ],
        "artists": [{"artist_id": "R1", "name": "Ra"}, {"artist_id": "R2", "name": "Rb"}],
        "songs": [
            {"song_id": "S1", "name": "s1", "duration_ms": 1000, "popularity": 50, "album_id": "A1", "artist_id": "R1"},
            {
                "song_id": "S2",
                "name": "s2",
                "duration_ms": 2000,
                "popularity": None,
                "album_id": "A2",
                "artist_id": "R2",
            },
            {
                "song_id": "S3",
                "name": "s3",
                "duration_ms": 3000,
                "popularity": 100,
                "album_id": "A1",
                "artist_id": "R2",
            },
        ],
        "song_artists": [
            {"song_id": "S1", "artist_id": "R1", "position": 0},
            {"song_id": "S2", "artist_id": "R2", "position": 0},
            {"song_id": "S2", "artist_id": "R1", "position": 1},
            {"song_id": "S3", "artist_id": "R2", "position": 0},
        ],
        "playlist_items": [
            {"playlist_id": "P1", "position": 0, "song_id": "S1"},
            {"playlist_id": "P1", "position": 1, "song_id": "S2"},
            {"playlist_id": "P1", "position": 2, "song_id": None},  # a removed track keeps its slot
            {"playlist_id": "P2", "position": 0, "song_id": "S3"},
        ],
        "playlists": [{"playlist_id": "P1", "name": "one"}, {"playlist_id": "P2", "name": "two"}],
    }


def published(data: dict[str, list[dict[str, Any]]], ids: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """``data`` with each table's rows carrying its publish id from ``ids`` (all tables: ``{"*": id}``)."""
    return {t: [dict(r, publish_id=ids.get(t, ids.get("*"))) for r in rows] for t, rows in data.items()}


def run_checks(
    tmp_path: Path,
    partitions: dict[str, dict[str, list[dict[str, Any]]]],
    old: frozenset[tuple[str, str]] = frozenset(),
) -> list[quality.CheckResult]:
    """Write ``{day: {table: rows}}`` as Parquet, catalog it like the local target, run validate.sql for DAY.

    ``old``: (day, table) partitions written before the publish_id column existed."""
    lake = LocalLake(tmp_path / "lake")
    for day, data in partitions.items():
        for table, rows in data.items():
            write_partition(lake, table, day, rows, old=(day, table) in old)
    db = tmp_path / "catalog.duckdb"
    local.register_tables(lake, db, DATABASE, PREFIX)
    return local.run_validation(db, DAY, DATABASE, PREFIX)


def test_good_data_passes_every_check(tmp_path: Path) -> None:
    results = run_checks(tmp_path, {DAY: published(good_rows(), {"*": "p1"})})
    assert len(results) == CHECKS and [r.name for r in results] == sorted(r.name for r in results)
    assert quality.judge(results, DAY) == results
    assert {r.name: r.checked_rows for r in results}["songs_duration_positive"] == 3
    assert {r.name: r.checked_rows for r in results}["songs_popularity_in_range"] == 2  # only songs with one
    assert {r.status for r in results} == {"PASS"}
    assert {r.name: r.checked_rows for r in results}["tables_one_publish"] == 17  # every row of the six tables


def test_tables_written_before_the_publish_id_column_pass_as_one_version(tmp_path: Path) -> None:
    results = run_checks(
        tmp_path, {DAY: good_rows(), "2026-03-02": good_rows()}, old=frozenset((DAY, t) for t in tables.TABLE_NAMES)
    )
    assert quality.judge(results, DAY) == results


@pytest.mark.parametrize(
    ("ids", "violations"),
    [
        ({"*": "p2", "albums": "p1", "artists": "p1"}, 1),  # two publishes' files, as issue 22 saw
        ({"*": "p1", "songs": "p2", "playlist_items": "p3"}, 2),
    ],
)
def test_a_date_mixing_publishes_fails_tables_one_publish(tmp_path: Path, ids: dict[str, str], violations: int) -> None:
    results = run_checks(tmp_path, {DAY: published(good_rows(), ids)})
    with pytest.raises(quality.ValidationFailed) as failed:
        quality.judge(results, DAY)
    assert (
        str(failed.value)
        == f"dt={DAY}: 1 of {CHECKS} checks failed: FAIL tables_one_publish: {violations} violations in 17 rows"
    )


def test_a_date_mixing_old_and_new_files_fails_tables_one_publish(tmp_path: Path) -> None:
    old = frozenset((DAY, t) for t in tables.TABLE_NAMES if t not in ("songs", "song_artists"))  # two swapped
    results = run_checks(tmp_path, {DAY: good_rows()}, old=old)
    assert {r.name: r.describe() for r in results}[
        "tables_one_publish"
    ] == "FAIL tables_one_publish: 1 violations in 17 rows"


def test_a_check_with_nothing_to_check_says_so_without_failing_the_run(tmp_path: Path) -> None:
    # Development-mode apps get no popularity since 2026: the range check then judges no row.
    data = _with("songs", lambda r: [dict(s, popularity=None) for s in r])
    results = run_checks(tmp_path, {DAY: data})
    described = {r.name: r.describe() for r in results}

    assert quality.judge(results, DAY) == results
    assert described["songs_popularity_in_range"] == "SKIP songs_popularity_in_range: nothing to check (0 rows checked)"
    assert described["songs_not_empty"] == "PASS songs_not_empty: 0 violations in 3 rows"
    assert [r.name for r in results if r.status == "SKIP"] == ["songs_popularity_in_range"]


def test_an_empty_table_still_fails_its_not_empty_check(tmp_path: Path) -> None:
    results = run_checks(tmp_path, {DAY: _with("songs", lambda r: [])})
    described = {r.name: r.describe() for r in results}
    assert described["songs_not_empty"] == "FAIL songs_not_empty: 1 violations in 0 rows"
    assert described["songs_pk_unique_not_null"] == "SKIP songs_pk_unique_not_null: nothing to check (0 rows checked)"
    with pytest.raises(quality.ValidationFailed, match="1 of 17 checks failed: FAIL songs_not_empty"):
        quality.judge(results, DAY)


def test_other_days_do_not_count(tmp_path: Path) -> None:
    broken = good_rows()
    broken["songs"] = broken["songs"] * 2  # duplicates, but on another day
    broken["artists"] = []
    results = run_checks(tmp_path, {DAY: good_rows(), "2026-02-28": broken})
    assert quality.judge(results, DAY) == results


def _with(table: str, change: Any) -> dict[str, list[dict[str, Any]]]:
    data = good_rows()
    data[table] = change(data[table])
    return data


BROKEN = {
    "duplicate_song_pk": (
        _with("songs", lambda r: [*r, dict(r[0], name="again")]),
        ["FAIL songs_pk_unique_not_null: 1 violations in 4 rows"],
    ),
    "null_album_pk": (
        _with("albums", lambda r: [*r, {"album_id": None, "name": "ghost"}]),
        ["FAIL albums_pk_unique_not_null: 1 violations in 3 rows"],
    ),
    "duplicate_playlist_item_pk": (
        _with("playlist_items", lambda r: [*r, dict(r[0])]),
        ["FAIL playlist_items_pk_unique_not_null: 1 violations in 5 rows"],
    ),
    "null_song_artist_pk": (
        _with("song_artists", lambda r: [*r, {"song_id": "S1", "artist_id": None, "position": 1}]),
        ["FAIL song_artists_pk_unique_not_null: 1 violations in 5 rows"],
    ),
    "song_album_missing": (
        _with("songs", lambda r: [*r, dict(r[0], song_id="S4", album_id="A9")]),
        ["FAIL songs_album_present: 1 violations in 4 rows"],
    ),
    "song_artist_missing": (
        _with("songs", lambda r: [*r, dict(r[0], song_id="S4", artist_id="R9")]),
        ["FAIL songs_artist_present: 1 violations in 4 rows"],
    ),
    "popularity_101": (
        _with("songs", lambda r: [dict(r[0], popularity=101), *r[1:]]),
        ["FAIL songs_popularity_in_range: 1 violations in 2 rows"],
    ),  # S2 has none
    "popularity_negative": (
        _with("songs", lambda r: [dict(r[0], popularity=-1), *r[1:]]),
        ["FAIL songs_popularity_in_range: 1 violations in 2 rows"],
    ),
    "duration_0": (
        _with("songs", lambda r: [dict(r[0], duration_ms=0), *r[1:]]),
        ["FAIL songs_duration_positive: 1 violations in 3 rows"],
    ),
    "duration_null": (
        _with("songs", lambda r: [dict(r[0], duration_ms=None), *r[1:]]),
        ["FAIL songs_duration_positive: 1 violations in 3 rows"],
    ),
    "empty_song_artists": (
        _with("song_artists", lambda r: []),
        ["FAIL song_artists_not_empty: 1 violations in 0 rows"],
    ),
    "empty_playlist_items": (
        _with("playlist_items", lambda r: []),
        ["FAIL playlist_items_not_empty: 1 violations in 0 rows"],
    ),
    "empty_albums": (
        _with("albums", lambda r: []),
        ["FAIL albums_not_empty: 1 violations in 0 rows", "FAIL songs_album_present: 3 violations in 3 rows"],
    ),
    "empty_artists": (
        _with("artists", lambda r: []),
        ["FAIL artists_not_empty: 1 violations in 0 rows", "FAIL songs_artist_present: 3 violations in 3 rows"],
    ),
    "empty_songs": (_with("songs", lambda r: []), ["FAIL songs_not_empty: 1 violations in 0 rows"]),
    "duplicate_playlist_pk": (
        _with("playlists", lambda r: [*r, dict(r[0], name="again")]),
        ["FAIL playlists_pk_unique_not_null: 1 violations in 3 rows"],
    ),
    "null_playlist_pk": (
        _with("playlists", lambda r: [*r, {"playlist_id": None, "name": "ghost"}]),
        ["FAIL playlists_pk_unique_not_null: 1 violations in 3 rows"],
    ),
    "item_of_a_missing_playlist": (
        _with("playlists", lambda r: r[:1]),  # P2 has items but no playlists row
        ["FAIL playlist_items_playlist_present: 1 violations in 2 rows"],
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_data_fails_the_named_checks(tmp_path: Path, case: str) -> None:
    data, failures = BROKEN[case]
    results = run_checks(tmp_path, {DAY: data})
    with pytest.raises(quality.ValidationFailed) as failed:
        quality.judge(results, DAY)
    assert str(failed.value) == f"dt={DAY}: {len(failures)} of {CHECKS} checks failed: " + "; ".join(failures)
