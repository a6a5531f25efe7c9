"""Bad input, table-driven: one fixture folder per case in ``tests/fixtures/bad_input``.

Every case runs through the real code of a day's run on the local target: the extract
through spotipy against the local Spotify server (which serves the case's files as the
API's answers, byte for byte), the transform, the DuckDB catalog and the validation SQL.
Each case first lands a good run of the same date, then attacks it, then checks:

* the documented outcome: rows rejected with their reasons (``transform.REASONS``), or a
  failure whose message names the playlist and the page offset;
* the lake: a failing case leaves every byte as the good run left it (the transform that
  the DAG runs anyway rebuilds identical partitions); a loading case replaces the
  playlist's raw document and every partition with whole, readable files, and no
  leftover of an interrupted write.

Hostile playlist identifiers (``params_*`` cases: the DAG's ``playlists`` param) never
reach a request, a path or an S3 key.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from spotify_etl import pipeline, quality
from spotify_etl.extract import PayloadError, extract_playlist
from spotify_etl.ids import InvalidPlaylistId
from spotify_etl.lake import Lake, LocalLake
from spotify_etl.settings import Settings
from spotify_etl.targets import LocalTarget
from spotify_etl.transform import REASONS, TransformResult, transform_day
from spotify_etl.warehouse import local

from tests.reliability.lakestate import hidden_files, partition_rows, snapshot
from tests.support.spotify_server import ITEMS_2026, RAP_RU, Playlist, SpotifyServer

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "bad_input"
BAD = "0BadInputPlaylist00001"  # the playlist every API case is served as
DAY = "2026-11-25"


@dataclass(frozen=True)
class Loads:
    """The case lands and transforms: ``items`` entries, ``rejected`` counts, ``check`` on the tables."""

    items: int
    rejected: dict[str, int]
    check: Callable[[dict[str, list[dict[str, Any]]]], None] = lambda rows: None


@dataclass(frozen=True)
class Fails:
    """The extract fails: ``error`` with ``message`` in its text; nothing of the playlist is landed."""

    error: type[Exception]
    message: str


def song(rows: dict[str, list[dict[str, Any]]], song_id: str) -> dict[str, Any]:
    return next(s for s in rows["songs"] if s["song_id"] == song_id)


def bad_items(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for r in rows["playlist_items"] if r["playlist_id"] == BAD]


def check_wrong_types(rows: dict[str, list[dict[str, Any]]]) -> None:
    # JSON leaves are read as text, so the string "215000" and the number 215000 are one value.
    assert song(rows, "79cdJz5daPAnEUa2QhdfMH")["duration_ms"] == 215000
    assert [r["song_id"] is not None for r in bad_items(rows)] == [True, False, False, False, False, False, False]


def check_missing_track(rows: dict[str, list[dict[str, Any]]]) -> None:
    assert [r["song_id"] for r in bad_items(rows)] == [None, None, "69UZlEcfPW9JIKaua3DRgc", None]


def check_nulls(rows: dict[str, list[dict[str, Any]]]) -> None:
    loaded = song(rows, "79cdJz5daPAnEUa2QhdfMH")
    assert (loaded["name"], loaded["url"], loaded["popularity"], loaded["explicit"]) == (None, None, None, None)
    album = next(a for a in rows["albums"] if a["album_id"] == loaded["album_id"])
    assert (album["name"], album["release_date"], album["total_tracks"]) == (None, None, None)
    first = bad_items(rows)[0]
    assert (first["added_at"], first["added_by"], first["is_local"]) == (None, None, False)
    assert [r["position"] for r in bad_items(rows)] == [0, 1, 2, 3, 4, 5]


def check_names(rows: dict[str, list[dict[str, Any]]]) -> None:
    names = {s["song_id"]: s["name"] for s in rows["songs"]}
    assert names["79cdJz5daPAnEUa2QhdfMH"] == "L" * 70_000
    assert names["4Z9Yokp1zpmlJhjrjzQpSz"] == "".join(chr(c) for c in range(0x20)) + "\x7f\u202e\u2028\u200b"
    assert names["69UZlEcfPW9JIKaua3DRgc"] == "'; DROP TABLE songs; -- {{ dt }} ../../etc/passwd \\ % _ *"
    assert names["2aqwekFSQtLGsld42hhWPy"] == "unpaired \ufffd surrogate"  # UTF-8 cannot hold it; U+FFFD stands in
    assert "🎵 Е́ zalgo z̷̢̛a̶l̸g̵o̴ \U0010ffff" in {a["name"] for a in rows["artists"]}


def check_duplicates(rows: dict[str, list[dict[str, Any]]]) -> None:
    assert [r["song_id"] for r in bad_items(rows)] == [
        "79cdJz5daPAnEUa2QhdfMH",
        "79cdJz5daPAnEUa2QhdfMH",
        "4Z9Yokp1zpmlJhjrjzQpSz",
        "79cdJz5daPAnEUa2QhdfMH",
        "69UZlEcfPW9JIKaua3DRgc",
        "69UZlEcfPW9JIKaua3DRgc",
    ]
    listed_twice = [r for r in rows["song_artists"] if r["song_id"] == "4Z9Yokp1zpmlJhjrjzQpSz"]
    assert [(r["artist_id"], r["position"]) for r in listed_twice] == [("7bn3ebQ2jo0AOGDcuGCeKH", 0)]


def check_invalid_ids(rows: dict[str, list[dict[str, Any]]]) -> None:
    assert [r["song_id"] for r in bad_items(rows)] == [None] * 8
    assert not any("/" in s["song_id"] or ":" in s["song_id"] for s in rows["songs"])


OFFSET_2 = f"playlist {BAD} page at offset 2"
EXPECTED: dict[str, Loads | Fails] = {
    "empty_playlist": Loads(0, {}),
    "page_not_json": Fails(PayloadError, f"{OFFSET_2}: response body is not JSON"),
    "truncated_json": Fails(PayloadError, f"{OFFSET_2}: response body is not JSON"),
    "wrong_types": Loads(
        7,
        {
            "invalid_duration_ms": 2,
            "invalid_track_id": 1,
            "invalid_album_id": 1,
            "invalid_artist_id": 1,
            "invalid_popularity": 1,
        },
        check_wrong_types,
    ),
    "wrong_structure": Fails(PayloadError, f"{OFFSET_2}: entry.track is a str, not an object (position 3)"),
    "missing_track": Loads(4, {"null_entry": 3}, check_missing_track),
    "nulls_everywhere": Loads(
        6, {"null_entry": 2, "invalid_track_id": 1, "invalid_album_id": 1, "invalid_artist_id": 1}, check_nulls
    ),
    "long_and_control_names": Loads(4, {}, check_names),
    "duplicate_entries": Loads(6, {}, check_duplicates),
    "repeated_page": Fails(PayloadError, f"{OFFSET_2}: response says offset 0"),
    "invalid_ids": Loads(8, {"invalid_track_id": 7, "invalid_album_id": 1}, check_invalid_ids),
}
API_CASES = sorted(p.name for p in CASES.iterdir() if (p / "playlist.json").is_file())
PARAM_CASES = sorted(p.name for p in CASES.iterdir() if (p / "params.json").is_file())


def test_every_fixture_has_an_expected_outcome() -> None:
    assert sorted(EXPECTED) == API_CASES
    assert len(PARAM_CASES) == 5 and all(
        set(e.rejected) <= set(REASONS) for e in EXPECTED.values() if isinstance(e, Loads)
    )


# ---- running a day ------------------------------------------------------------------
@pytest.fixture
def server() -> Iterator[SpotifyServer]:
    with SpotifyServer() as srv:
        # The good version of the attacked playlist: Rap RU's recorded entries under BAD's id.
        rap = srv.playlists[RAP_RU]
        srv.playlists[BAD] = Playlist(
            {**rap.meta, "id": BAD, "snapshot_id": "GOOD-SNAPSHOT"}, rap.entries, collaborators=set(rap.collaborators)
        )
        yield srv


def serve_case(server: SpotifyServer, case: str) -> None:
    """Answer BAD's metadata and items pages with the case's files, exactly as stored."""
    folder = CASES / case
    server.fail(rf"^/v1/playlists/{BAD}\?", 200, (folder / "playlist.json").read_bytes(), times=100)
    for page in folder.glob("items_offset_*.json"):
        offset = page.stem.rsplit("_", 1)[1]
        server.fail(rf"^/v1/playlists/{BAD}/items\?(.*&)?offset={offset}(&|$)", 200, page.read_bytes(), times=100)


def serve_entries(server: SpotifyServer, entries: list[Any]) -> None:
    """Answer BAD with one page holding ``entries`` as they are (the server's own paging needs objects)."""
    server._faults.clear()
    server.fail(rf"^/v1/playlists/{BAD}\?", 200, {"id": BAD, "name": "x", "snapshot_id": None}, times=1)
    page = {"items": entries, "offset": 0, "limit": 50, "next": None, "total": len(entries)}
    server.fail(rf"^/v1/playlists/{BAD}/items\?", 200, page, times=1)


def transform_and_validate(lake: Lake, catalog: Path) -> tuple[TransformResult, list[quality.CheckResult]]:
    result = transform_day(lake, DAY)
    local.register_tables(lake, catalog, "spotify_etl")
    return result, local.run_validation(catalog, DAY, "spotify_etl")


@pytest.fixture
def good_day(server: SpotifyServer, tmp_path: Path) -> tuple[Lake, Path]:
    """The date as a good run left it: BAD (4 entries) and the 2026-shape playlist (5), validated."""
    lake_dir = tmp_path / "lake"
    lake = LocalLake(lake_dir)
    for pid in (BAD, ITEMS_2026):
        extract_playlist(server.source(), lake, pid, DAY, "2026-11-25T06:00:00+00:00")
    result, checks = transform_and_validate(lake, tmp_path / "catalog.duckdb")
    quality.judge(checks, DAY)
    assert result.entries == 9 and result.rejected == {}
    server.requests.clear()
    return lake, lake_dir


# ---- API answers ---------------------------------------------------------------------
@pytest.mark.parametrize("case", API_CASES)
def test_bad_api_answer(case: str, server: SpotifyServer, good_day: tuple[Lake, Path], tmp_path: Path) -> None:
    lake, lake_dir = good_day
    before = snapshot(lake_dir)
    good_rows = partition_rows(lake_dir, DAY)
    expected = EXPECTED[case]
    serve_case(server, case)

    if isinstance(expected, Fails):
        with pytest.raises(expected.error) as err:
            extract_playlist(server.source(), lake, BAD, DAY, "2026-11-25T07:00:00+00:00")
        assert expected.message in str(err.value) and "nothing landed for this playlist" in str(err.value)
        assert snapshot(lake_dir) == before  # the good raw document of this date is untouched
        # The DAG transforms what landed even when an extract failed: the same rows, from a new publish.
        result, checks = transform_and_validate(lake, tmp_path / "catalog.duckdb")
        quality.judge(checks, DAY)
        after = snapshot(lake_dir)
        assert after.keys() == before.keys() and partition_rows(lake_dir, DAY) == good_rows and result.rejected == {}
        assert {k: v for k, v in after.items() if k.startswith("raw/")} == {
            k: v for k, v in before.items() if k.startswith("raw/")
        }
        return

    landed = extract_playlist(server.source(), lake, BAD, DAY, "2026-11-25T07:00:00+00:00")
    assert landed.items == expected.items
    raw = json.loads((lake_dir / f"raw/playlists/dt={DAY}/playlist_id={BAD}.json").read_text(encoding="utf-8"))
    served = [
        json.loads(p.read_text(encoding="utf-8").replace("\\ud800", "\\ufffd"))
        for p in sorted((CASES / case).glob("items_offset_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    ]
    assert raw["pages"] == served  # the pages exactly as received (bar what UTF-8 cannot hold)

    result, checks = transform_and_validate(lake, tmp_path / "catalog.duckdb")
    assert result.rejected == expected.rejected
    quality.judge(checks, DAY)  # the other playlist still makes a valid day
    rows = partition_rows(lake_dir, DAY)
    assert len(bad_items(rows)) == expected.items
    assert sum(r["song_id"] is None for r in bad_items(rows)) == sum(expected.rejected.values())
    others = [r for r in rows["playlist_items"] if r["playlist_id"] != BAD]
    assert others == [r for r in good_rows["playlist_items"] if r["playlist_id"] != BAD]
    assert hidden_files(lake_dir) == []
    expected.check(rows)


def test_a_date_holding_only_an_empty_playlist_fails_validation_naming_the_checks(
    server: SpotifyServer, tmp_path: Path
) -> None:
    lake_dir = tmp_path / "lake"
    lake = LocalLake(lake_dir)
    serve_case(server, "empty_playlist")
    assert extract_playlist(server.source(), lake, BAD, DAY, "t").items == 0
    result, checks = transform_and_validate(lake, tmp_path / "catalog.duckdb")

    assert result.entries == 0 and result.rows == {**dict.fromkeys(result.rows, 0), "playlists": 1}  # its row
    with pytest.raises(quality.ValidationFailed) as err:
        quality.judge(checks, DAY)
    assert f"dt={DAY}: 5 of " in str(err.value)
    for table in ("albums", "artists", "songs", "song_artists", "playlist_items"):
        assert f"FAIL {table}_not_empty: 1 violations in 0 rows" in str(err.value)
    landed = partition_rows(lake_dir, DAY)
    assert [r["playlist_id"] for r in landed.pop("playlists")] == [BAD]  # the empty playlist's own row
    assert all(rows == [] for rows in landed.values())  # empty, yet whole files


def test_every_struct_value_of_another_type_fails_the_extract_not_the_transform(
    server: SpotifyServer, tmp_path: Path
) -> None:
    """Where the transform needs an object or a list, anything else is refused when extracting.

    Landed, such a document would make DuckDB refuse the whole date (every playlist of it).
    """
    lake_dir = tmp_path / "lake"
    lake = LocalLake(lake_dir)
    entry = server.playlists[RAP_RU].entries[0]
    breaks = {
        "entry": lambda e: "just a string",
        "entry.added_by": lambda e: {**e, "added_by": "someone"},
        "entry.track": lambda e: {**e, "track": ["a", "list"]},
        "entry.item": lambda e: {"added_at": e["added_at"], "item": 42},
        "entry.track.external_urls": lambda e: {**e, "track": {**e["track"], "external_urls": "x"}},
        "entry.track.album": lambda e: {**e, "track": {**e["track"], "album": "x"}},
        "entry.track.album.external_urls": lambda e: {
            **e,
            "track": {**e["track"], "album": {**e["track"]["album"], "external_urls": 1}},
        },
        "entry.track.artists": lambda e: {**e, "track": {**e["track"], "artists": {"id": "x"}}},
        "entry.track.artists[0]": lambda e: {**e, "track": {**e["track"], "artists": ["x"]}},
        "entry.track.artists[0].external_urls": lambda e: {
            **e,
            "track": {**e["track"], "artists": [{**e["track"]["artists"][0], "external_urls": []}]},
        },
    }
    for where, breaking in breaks.items():
        serve_entries(server, [entry, breaking(entry)])
        with pytest.raises(
            PayloadError,
            match=rf"playlist {BAD} page at offset 0: {re.escape(where)} is a \w+, not an? (object|list) \(position 1\)",
        ):
            extract_playlist(server.source(), lake, BAD, DAY, "t")
    assert not lake_dir.exists()

    # and a landed document whose leaves hold every JSON type still transforms, row by row
    odd = {
        "added_at": [1],
        "added_by": {"id": {"x": 1}},
        "is_local": {"a": None},
        "track": {k: {"nested": [1, 2]} for k in ("id", "name", "type", "is_local", "duration_ms", "popularity")},
    }
    serve_entries(server, [entry, odd])
    extract_playlist(server.source(), lake, BAD, DAY, "t")
    assert transform_day(lake, DAY).rejected == {"not_a_track": 1}


# ---- hostile playlist identifiers ------------------------------------------------------
@pytest.mark.parametrize("case", PARAM_CASES)
def test_hostile_playlist_identifiers_reach_no_request_path_or_key(
    case: str, server: SpotifyServer, good_day: tuple[Lake, Path], tmp_path: Path
) -> None:
    lake, lake_dir = good_day
    requested = json.loads((CASES / case / "params.json").read_text(encoding="utf-8"))["playlists"]
    hostile = [v for v in requested if v not in (BAD, RAP_RU, "4dn0iEoAxn69ea0Tyov8V5")]
    everything_before = snapshot(tmp_path)
    day = dt.date.fromisoformat(DAY)

    # What the plan task does with the DAG's `playlists` param: refuse the run, naming every bad value.
    with pytest.raises(InvalidPlaylistId) as err:
        pipeline.plan(lake, Settings(lake_dir=lake_dir), day, day, False, requested)
    for value in hostile:
        assert repr(value.strip()) in str(err.value)
    assert str(err.value).count("not a Spotify playlist id") == len(hostile)

    # Defence in depth: each later stage refuses the value on its own.
    for value in hostile:
        with pytest.raises(ValueError, match="invalid playlist id"):
            extract_playlist(server.source(), lake, value, DAY, "t")
        with pytest.raises(ValueError, match="refusing to build a path"):
            lake.raw_path(DAY, value)
        with pytest.raises(ValueError, match="invalid playlist id"):
            server.source().items_page(value, 0, 50)

    assert server.requests == []
    assert snapshot(tmp_path) == everything_before  # nothing written anywhere, in the lake or beside it


# ---- a lake path that is not plain ---------------------------------------------------------
def test_a_lake_path_with_an_apostrophe_and_glob_characters_is_catalogued_and_validated(tmp_path: Path) -> None:
    """The path goes into the views' SQL quoted and glob-escaped, never pasted: catalog and
    validate run for real over a folder named like SQL and a glob."""
    from spotify_etl.extract import SampleSource

    lake_dir = tmp_path / "it's [a] lake*"
    lake = LocalLake(lake_dir)
    source = SampleSource()
    for pid in source.available()[:2]:
        extract_playlist(source, lake, pid, DAY, "2026-11-25T06:00:00+00:00")
    result = transform_day(lake, DAY)
    catalog = tmp_path / "it's" / "catalog.duckdb"
    target = LocalTarget(Settings(lake_dir=lake_dir, duckdb_path=catalog, database="spotify_etl", table_prefix="p_"))
    views = target.catalog(lake)
    assert views["spotify_etl.p_songs"] == f"{tmp_path}/it's [a] lake*/processed/songs/dt=*/*.parquet"
    checks = quality.report_and_judge(target.check_results(DAY), DAY, report=print)
    assert checks and all(c.status != "FAIL" for c in checks)
    assert local.row_counts(catalog, DAY, "spotify_etl", "p_")["songs"] == result.rows["songs"] > 0
