"""The baseline applies the transform's rules: on values of every JSON type, both write the same rows.

``bench/run_bench.py`` checks the same on the generated day; this puts the values the
generator never writes into the leaves the rules read (numbers as strings, floats, flags
as text, ids of the wrong type or characters, dates without precision).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from spotify_etl import tables
from spotify_etl.lake import Lake, LocalLake
from spotify_etl.transform import transform_day

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import baseline  # noqa: E402 - bench/ is a folder of scripts, not a package
import generate  # noqa: E402
import run_bench  # noqa: E402

DAY = run_bench.DAY

# (leaf, value) pairs put into one generated track each, covering every rule of the transform.
EDGE_VALUES: list[tuple[tuple[str, ...], Any]] = [
    (("duration_ms",), "215000"),
    (("duration_ms",), 215000.0),
    (("duration_ms",), "1e3"),
    (("duration_ms",), "0x10"),
    (("duration_ms",), -5),
    (("duration_ms",), 10**19),
    (("duration_ms",), " 215000"),
    (("popularity",), "50"),
    (("popularity",), 50.0),
    (("popularity",), 101),
    (("popularity",), -1),
    (("popularity",), True),
    (("explicit",), "1"),
    (("explicit",), "Yes"),
    (("explicit",), "n"),
    (("explicit",), 0),
    (("explicit",), "maybe"),
    (("is_local",), "TRUE"),
    (("is_local",), 1),
    (("type",), "episode"),
    (("type",), None),
    (("id",), 1234567890123456789012),
    (("id",), "é" * 22),
    (("id",), "short"),
    (("name",), 42),
    (("name",), True),
    (("album", "id"), None),
    (("album", "release_date_precision"), None),
    (("album", "release_date_precision"), ""),
    (("album", "release_date"), "2020-13-01"),
    (("album", "total_tracks"), "12"),
    (("album", "total_tracks"), 12.5),
    (("album", "name"), 3.25),
    (("artists",), []),
]


def _entries(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for page in document["pages"] for e in page["items"] if e and (e.get("item") or e.get("track"))]


def _set(track: dict[str, Any], leaf: tuple[str, ...], value: Any) -> None:
    *path, key = leaf
    for step in path:
        track = track[step]
    track[key] = value


@pytest.fixture
def edge_day(tmp_path: Path) -> Lake:
    """A generated day whose first tracks each carry one of ``EDGE_VALUES``; album and
    artist changes land on the album's or artist's first occurrence, so they count."""
    generate.generate(tmp_path / "lake", DAY, 3_000, seed=13, min_size=100, max_size=600)
    lake = LocalLake(tmp_path / "lake")
    path = Path(lake.raw_files(DAY)[0])
    document = json.loads(path.read_text(encoding="utf-8"))
    entries = _entries(document)
    for number, (entry, (leaf, value)) in enumerate(zip(entries, EDGE_VALUES, strict=False)):
        track = entry.get("item") or entry["track"]
        if leaf[0] == "album":  # an album of its own, so this entry is its first
            track["album"] = {**track["album"], "id": generate.spotify_id(99, number)}
        _set(track, leaf, value)
    entries[len(EDGE_VALUES)]["is_local"] = "no"  # the entry's flag wins over the track's
    entries[len(EDGE_VALUES) + 1]["added_at"] = "not a time"
    entries[len(EDGE_VALUES) + 2]["added_by"] = {"id": ""}
    first = entries[len(EDGE_VALUES) + 3].get("item") or entries[len(EDGE_VALUES) + 3]["track"]
    first["artists"] = [None, *first["artists"], first["artists"][0]]  # a null and a repeated artist
    path.write_text(json.dumps(document), encoding="utf-8")
    return lake


def test_baseline_and_transform_agree_on_values_of_every_type(edge_day: Lake, tmp_path: Path) -> None:
    result = transform_day(edge_day, DAY)
    rows = baseline.transform(edge_day.raw_files(DAY), tmp_path / "baseline")

    assert rows == result.rows
    assert run_bench.same_rows(tmp_path / "baseline", Path(edge_day.root)) == dict.fromkeys(tables.TABLE_NAMES, "same")
    # The edge values took effect: rejects of several reasons, and a text flag read as DuckDB reads it.
    assert {"invalid_duration_ms", "invalid_popularity", "invalid_track_id", "not_a_track"} <= set(result.rejected)
    songs = pq.read_table(tmp_path / "baseline" / "songs.parquet").to_pylist()
    assert {song["explicit"] for song in songs} >= {True, False, None}
    # total_tracks: integers only, as duration_ms and popularity (DuckDB's cast alone would round 12.5 to 13)
    albums = {a["album_id"]: a for a in pq.read_table(tmp_path / "baseline" / "albums.parquet").to_pylist()}
    total_tracks = {
        v: albums[generate.spotify_id(99, n)]["total_tracks"]
        for n, (leaf, v) in enumerate(EDGE_VALUES)
        if leaf == ("album", "total_tracks")
    }
    assert total_tracks == {"12": 12, 12.5: None}
