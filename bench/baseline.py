"""The straightforward transform the benchmark compares against: json.load, a Python loop, pandas.

What a competent programmer writes first, with no tricks beyond not doing work twice:

- ``json.load`` of each raw document, in playlist id order (the order of "first");
- one pass over its entries: the rules of :mod:`spotify_etl.transform` (``REASONS``, tested
  in the same order) with plain ``str``/``int`` methods, no regex; a ``playlists`` tuple
  per document, a ``playlist_items`` tuple for every entry; for an accepted entry whose
  song was not seen before, a ``songs`` tuple, and ``albums``/``artists``/``song_artists``
  tuples for what it brings that is new (dicts of the ids seen), so each entity comes from
  its first entry and its fields are converted once;
- pandas DataFrames of those tuples, sorted by primary key, written with the explicit
  schemas of :mod:`spotify_etl.tables` (``to_parquet``).

Values are read as DuckDB reads a JSON value into a VARCHAR (the transform reads leaves so,
see :mod:`spotify_etl.raw_format`): strings as they are, ``true``/``false``, numbers as
written; so an id, a number or a flag of the wrong JSON type is judged as the transform
judges it. The keys come from :mod:`spotify_etl.raw_format`, the columns from
:mod:`spotify_etl.tables`; the benchmark and ``tests/bench`` check that both write the same rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
from spotify_etl import tables
from spotify_etl.lake import LocalLake
from spotify_etl.raw_format import ENTRY, PLAYLIST, TRACK, TRACK_KEYS, Obj

_TRACK_KEYS = tuple(TRACK_KEYS.values())  # the entry's track: `item` (/items), else `track` (/tracks)
_DATE_FORMATS = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d"}
_BOOLEANS = {
    word: flag for flag, words in ((True, "true t yes y 1"), (False, "false f no n 0")) for word in words.split()
}
_ALBUM_PRECISION = {4: "year", 7: "month"}  # a release date without precision: by its length, else a day


def _declared(obj: Obj, *keys: str) -> None:
    """Raise (at import) if one of ``keys`` is not declared in ``obj`` of the raw format."""
    missing = [key for key in keys if key not in obj.keys]
    if missing:
        raise KeyError(f"not in spotify_etl.raw_format: {missing}")


# The keys read, checked against the raw format once instead of per row.
_declared(ENTRY, "added_at", "added_by", "is_local", *_TRACK_KEYS)
_declared(TRACK, "id", "name", "type", "is_local", "duration_ms", "popularity", "explicit", "external_urls")
_declared(TRACK, "album", "artists")
_ALBUM_OBJ = TRACK.keys["album"]
assert isinstance(_ALBUM_OBJ, Obj)
_declared(_ALBUM_OBJ, "id", "name", "release_date", "release_date_precision", "total_tracks", "external_urls")
_declared(PLAYLIST, "name", "description", "public", "collaborative", "owner", "followers")


def _text(value: Any) -> str | None:
    """``value`` as DuckDB reads a JSON value into a VARCHAR."""
    if value is None or type(value) is str:
        return value
    if value is True or value is False:
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))  # numbers as written, objects as JSON text


def _int(value: Any, digits: int = 18) -> int | None:
    """An integer of at most ``digits`` digits, as a number or a string; else None (``1e3``, ``5.0``, ``"0x10"``)."""
    if type(value) is int:
        return value if -(10**digits) < value < 10**digits else None
    text = _text(value)
    if text is None:
        return None
    unsigned = text[1:] if text[:1] == "-" else text
    return int(text) if 0 < len(unsigned) <= digits and unsigned.isascii() and unsigned.isdigit() else None


def _bool(value: Any) -> bool | None:
    """As DuckDB casts text to BOOLEAN: true/false, t/f, yes/no, y/n, 1/0 in any case; else None."""
    if value is True or value is False:
        return value
    text = _text(value)
    return _BOOLEANS.get(text.lower()) if text is not None else None


def _valid_id(value: Any) -> bool:
    """A Spotify id: 22 characters of [0-9A-Za-z]."""
    text = value if type(value) is str else _text(value)
    return text is not None and len(text) == 22 and text.isascii() and text.isalnum()


def _count(value: Any, digits: int) -> int | None:
    """A whole number of at most ``digits`` digits, no sign (playlists.sql's counts); else None."""
    text = _text(value)
    return int(text) if text and len(text) <= digits and text.isascii() and text.isdigit() else None


def _playlist_row(document: dict[str, Any]) -> tuple[Any, ...]:
    """The document's playlists row: its ``metadata`` (null in documents landed before it), else its own keys."""
    metadata = document.get("metadata") or {}
    owner = metadata.get("owner") or {}
    name = metadata.get("name") if metadata.get("name") is not None else document.get("name")
    owner_id = owner.get("id") if owner.get("id") is not None else document.get("owner_id")
    return (
        document["playlist_id"],
        _text(name),
        _text(metadata.get("description")),
        _text(owner_id) or None,
        _text(owner.get("display_name")) or None,
        _bool(metadata.get("public")),
        _bool(metadata.get("collaborative")),
        _text(document.get("snapshot_id")),
        _count(document.get("total"), 9),
        _count((metadata.get("followers") or {}).get("total"), 18),
        _timestamp(document.get("extracted_at")) if document.get("extracted_at") is not None else None,
    )


def _timestamp(value: Any) -> dt.datetime | None:
    try:
        stamp = dt.datetime.fromisoformat(_text(value) or "")
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


_release_dates: dict[tuple[str | None, str | None], dt.date | None] = {}  # a catalogue has few distinct dates


def _release_date(text: str | None, precision: str | None) -> dt.date | None:
    key = (text, precision)
    if key not in _release_dates:  # as the transform: at its precision, or by its length if none
        if precision is None:
            precision = _ALBUM_PRECISION.get(len(text or ""), "day")
        fmt = _DATE_FORMATS.get(precision, "%Y-%m-%d")
        try:
            _release_dates[key] = dt.datetime.strptime(text or "", fmt).date()
        except ValueError:
            _release_dates[key] = None
    return _release_dates[key]


def _url(thing: dict[str, Any]) -> str | None:
    return _text((thing.get("external_urls") or {}).get("spotify"))


def reject_reason(track: dict[str, Any] | None, is_local: bool) -> str | None:
    """Why an entry whose track is ``track`` does not become a song; None if it does."""
    if track is None:
        return "null_entry"
    if is_local:
        return "local_file"
    if (_text(track.get("type")) or "track") != "track":
        return "not_a_track"
    if not _valid_id(track.get("id")):
        return "invalid_track_id"
    if (_int(track.get("duration_ms")) or 0) <= 0:
        return "invalid_duration_ms"
    if track.get("popularity") is not None:
        popularity = _int(track["popularity"])
        if popularity is None or not 0 <= popularity <= 100:
            return "invalid_popularity"
    if not _valid_id((track.get("album") or {}).get("id")):
        return "invalid_album_id"
    artists = track.get("artists") or [None]
    if not _valid_id((artists[0] or {}).get("id")):
        return "invalid_artist_id"
    return None


def _table_rows(files: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The six tables' rows, in the columns of :func:`tables.columns` but the publish id, from one pass over ``files``."""
    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in tables.TABLE_NAMES}
    items, songs, albums, artists, song_artists = (
        rows["playlist_items"],
        rows["songs"],
        rows["albums"],
        rows["artists"],
        rows["song_artists"],
    )
    seen_songs: set[str] = set()
    seen_albums: set[str] = set()
    seen_artists: set[str] = set()
    item_key, track_key = _TRACK_KEYS
    for path in sorted(files, key=lambda f: Path(f).name):
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        playlist_id = document["playlist_id"]
        rows["playlists"].append(_playlist_row(document))
        position = 0
        for page in document["pages"]:
            for entry in (page or {}).get("items") or []:
                entry = entry or {}
                track = entry.get(item_key)
                if track is None:
                    track = entry.get(track_key)
                entry_local = _bool(entry.get("is_local"))
                is_local = entry_local if entry_local is not None else bool(track and _bool(track.get("is_local")))
                reason = reject_reason(track, is_local)
                song_id = _text(track["id"]) if reason is None and track is not None else None
                added_by = _text((entry.get("added_by") or {}).get("id")) or None
                items.append((playlist_id, position, song_id, _timestamp(entry.get("added_at")), added_by, is_local))
                position += 1
                if song_id is None or song_id in seen_songs:
                    continue
                assert track is not None  # accepted, so a track
                seen_songs.add(song_id)
                album, track_artists = track["album"], track["artists"]
                album_id, artist_id = _text(album["id"]), _text(track_artists[0]["id"])
                popularity = _int(track.get("popularity"))
                duration = _int(track.get("duration_ms"))
                explicit = _bool(track.get("explicit"))
                songs.append(
                    (
                        song_id,
                        _text(track.get("name")),
                        duration,
                        popularity,
                        explicit,
                        album_id,
                        artist_id,
                        _url(track),
                    )
                )
                if album_id not in seen_albums:
                    seen_albums.add(album_id)
                    precision = _text(album.get("release_date_precision"))
                    released = _release_date(_text(album.get("release_date")), precision)
                    total = _int(album.get("total_tracks"), digits=9)  # an INTEGER
                    albums.append((album_id, _text(album.get("name")), released, precision, total, _url(album)))
                song_artist_ids: set[str] = set()
                for number, artist in enumerate(track_artists):
                    if artist is None or not _valid_id(artist.get("id")):
                        continue
                    artist_id = _text(artist["id"])
                    if artist_id in song_artist_ids:
                        continue  # listed twice: the first position counts
                    song_artist_ids.add(artist_id)
                    song_artists.append((song_id, artist_id, number))
                    if artist_id not in seen_artists:
                        seen_artists.add(artist_id)
                        artists.append((artist_id, _text(artist.get("name")), _url(artist)))
    return rows


def transform(files: list[str], out_dir: Path) -> dict[str, int]:
    """Write the six tables for the raw documents ``files`` to ``out_dir/<table>.parquet``."""
    rows = _table_rows(files)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for table in tables.TABLE_NAMES:
        # The data columns: the publish id belongs to the pipeline's publish, not to the rows' content.
        schema = tables.schema(table)
        schema = schema.remove(schema.get_field_index(tables.PUBLISH_ID))
        frame = pd.DataFrame(rows.pop(table), columns=schema.names)
        frame = frame.sort_values(list(tables.primary_key(table)), kind="stable")
        frame.to_parquet(out_dir / f"{table}.parquet", schema=schema, index=False, compression="zstd")
        counts[table] = len(frame)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake_root", type=Path)
    parser.add_argument("day")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    print(transform(LocalLake(args.lake_root).raw_files(args.day), args.out_dir))


if __name__ == "__main__":
    main()
