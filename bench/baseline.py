"""The straightforward transform the benchmark compares against.

``json.load`` per raw document, a Python loop that builds lists of dicts, pandas
``drop_duplicates`` and ``to_parquet``: the obvious way to write this transform. It
applies the same rules as :mod:`spotify_etl.transform` (the reasons in ``REASONS``, first
occurrence in playlist id and position order, the explicit schemas of
:mod:`spotify_etl.tables`), so both produce the same rows, and the benchmark checks that
they do. Values are read as DuckDB reads a JSON value into a VARCHAR: strings as they are,
``true``/``false``, numbers as written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
from spotify_etl import tables
from spotify_etl.lake import Lake

_ID = re.compile(r"[0-9A-Za-z]{22}")
_INT = re.compile(r"-?[0-9]{1,18}")
_DATE_FORMATS = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d"}
_ALBUM_FIELDS = ("album_name", "release_date", "release_date_precision", "total_tracks", "album_url")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))  # true/false, numbers and objects as JSON text


def _int(value: Any) -> int | None:
    text = _text(value)
    return int(text) if text is not None and _INT.fullmatch(text) else None


def _bool(value: Any) -> bool | None:
    return {"true": True, "false": False}.get(_text(value) or "")


def _valid_id(value: Any) -> bool:
    text = _text(value)
    return text is not None and _ID.fullmatch(text) is not None


def _timestamp(value: Any) -> dt.datetime | None:
    try:
        stamp = dt.datetime.fromisoformat(_text(value) or "")
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _release_date(album: dict[str, Any]) -> dt.date | None:
    text = _text(album.get("release_date"))
    precision = _text(album.get("release_date_precision"))
    if precision is None:
        precision = {4: "year", 7: "month"}.get(len(text or ""), "day")
    try:
        return dt.datetime.strptime(text or "", _DATE_FORMATS.get(precision, "%Y-%m-%d")).date()
    except ValueError:
        return None


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


def transform(files: list[str], out_dir: Path) -> dict[str, int]:
    """Write the five tables for the raw documents ``files`` to ``out_dir/<table>.parquet``."""
    items: list[dict[str, Any]] = []
    songs: list[dict[str, Any]] = []  # one per entry that is a song, with its album and artists
    for path in sorted(files, key=lambda f: Path(f).name):
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        playlist_id = document["playlist_id"]
        position = 0
        for page in document["pages"]:
            for entry in page.get("items") or []:
                entry = entry or {}
                track = entry.get("item") if entry.get("item") is not None else entry.get("track")
                entry_local = _bool(entry.get("is_local"))
                is_local = entry_local if entry_local is not None else bool(track and _bool(track.get("is_local")))
                reason = reject_reason(track, is_local)
                items.append(
                    {
                        "playlist_id": playlist_id,
                        "position": position,
                        "song_id": track["id"] if track is not None and reason is None else None,
                        "added_at": _timestamp(entry.get("added_at")),
                        "added_by": _text((entry.get("added_by") or {}).get("id")) or None,
                        "is_local": is_local,
                    }
                )
                position += 1
                if track is None or reason is not None:
                    continue
                album = track["album"]
                songs.append(
                    {
                        "song_id": track["id"],
                        "name": _text(track.get("name")),
                        "duration_ms": _int(track.get("duration_ms")),
                        "popularity": _int(track.get("popularity")),
                        "explicit": _bool(track.get("explicit")),
                        "album_id": album["id"],
                        "artist_id": track["artists"][0]["id"],
                        "url": _url(track),
                        "album_name": _text(album.get("name")),
                        "release_date": _release_date(album),
                        "release_date_precision": _text(album.get("release_date_precision")),
                        "total_tracks": _int(album.get("total_tracks")),
                        "album_url": _url(album),
                        "artists": [
                            {"artist_id": a["id"], "name": _text(a.get("name")), "external_url": _url(a), "position": n}
                            for n, a in enumerate(track["artists"])
                            if a is not None and _valid_id(a.get("id"))
                        ],
                    }
                )

    # A song, its album and its artists come from the song's first entry.
    first_songs = pd.DataFrame(songs, columns=[*tables.columns("songs"), *_ALBUM_FIELDS, "artists"])
    first_songs = first_songs.drop_duplicates("song_id")
    albums = first_songs.rename(columns={"name": "track_name", "url": "track_url"}).rename(
        columns={"album_name": "name", "album_url": "url"}
    )
    song_artists = first_songs[["song_id", "artists"]].explode("artists").dropna(subset=["artists"])
    song_artists = pd.concat(
        [song_artists[["song_id"]].reset_index(drop=True), pd.DataFrame(song_artists["artists"].tolist())], axis=1
    )
    frames = {
        "songs": first_songs,
        "albums": albums.drop_duplicates("album_id"),
        "artists": song_artists.drop_duplicates("artist_id"),
        "song_artists": song_artists.drop_duplicates(["song_id", "artist_id"]),
        "playlist_items": pd.DataFrame(items),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for table in tables.TABLE_NAMES:
        frame = frames[table].reindex(columns=tables.columns(table))
        frame = frame.sort_values(list(tables.primary_key(table)), kind="stable")
        frame.to_parquet(out_dir / f"{table}.parquet", schema=tables.schema(table), index=False, compression="zstd")
        rows[table] = len(frame)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake_root", type=Path)
    parser.add_argument("day")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    print(transform(Lake.local(args.lake_root).raw_files(args.day), args.out_dir))


if __name__ == "__main__":
    main()
