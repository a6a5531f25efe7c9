"""Generate N playlist items as raw documents, shaped like real Spotify Web API responses.

The documents are what the extract lands (``spotify_etl.extract``): metadata plus every
page of entries, written through :class:`Lake` into
``raw/playlists/dt=<day>/playlist_id=<id>.json``. Entry bodies are built whole, as in the
recorded responses in ``tests/fixtures/spotify_api`` (images, hrefs, uris, external ids),
then cut by the extract's own ``fields`` filter (:func:`spotify_etl.raw_format.items_fields`),
so the benchmark parses the bytes Spotify sends the extract:

* ``track`` key: the /tracks endpoint as recorded in 2024 (``available_markets`` empty
  because a market is sent, ``popularity`` and ``preview_url`` present);
* ``item`` key: the 2026 /items endpoint (no ``popularity``, ``available_markets`` or
  ``preview_url``).

Each playlist comes from one endpoint, half of them each. Playlist sizes are log-uniform
between ``min_size`` and ``max_size``, in pages of 50 entries. About 60% of track entries
add a track not seen before; the rest repeat an earlier one, popular tracks more often.
The catalogue has one album per ~12 distinct tracks and one artist per ~20, so 1M items
give ~50,000 albums and ~30,000 artists. 1-3 artists per track (album artist first),
release dates of day/year/month precision, and small shares of null tracks, local files,
podcast episodes and unavailable "ghost" tracks. The same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spotify_etl.extract import PAGE_LIMIT, RAW_FORMAT
from spotify_etl.lake import LocalLake
from spotify_etl.raw_format import items_fields

# bench/ is a folder of scripts: the project root makes the tests' emulation of Spotify's
# `fields` filter importable when they run outside pytest.
if (_PROJECT := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.append(_PROJECT)
from tests.support.fields import apply_fields, parse_fields

API = "https://api.spotify.com/v1"
OPEN = "https://open.spotify.com"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SPACE = 62**22
# value -> value * multiplier + offset is a bijection mod 62**22 (the multiplier is coprime to 62) that
# spreads consecutive numbers over all 22 digits, so ids look random yet never collide.
_ID_MULTIPLIER = 1_673_514_689_202_993_931_592_439_337_416_514_338_817
_ID_OFFSET = 1_121_608_995_154_820_777_272_608_957_348_590_911_488

# Shares of entries that are not tracks, and of tracks that are unavailable.
NULL_SHARE = 0.003
LOCAL_SHARE = 0.005
EPISODE_SHARE = 0.004
GHOST_SHARE = 0.002
NEW_TRACK_SHARE = 0.6
TRACKS_PER_ALBUM = 12
TRACKS_PER_ARTIST = 20
PRECISIONS = (("day", 0.85), ("year", 0.12), ("month", 0.03))
ARTIST_COUNTS = ((1, 0.70), (2, 0.22), (3, 0.08))

_WORDS = (
    "night drive blue summer echo river gold neon paper heart city rain fire slow wild light dream "
    "ghost ocean velvet glass silver young empty broken lost home road star moon dust electric "
    "sweet cold honey tiger shadow stone sugar wave"
).split()
_NON_ASCII = ("Сердце", "Ночь", "夜明け", "東京", "Café", "Mañana", "Straße", "Kärlek", "Ünlü", "Ångström")


def spotify_id(kind: int, number: int) -> str:
    """The 22-character base62 id of entity ``number`` of ``kind``: distinct per (kind, number)."""
    value = ((kind << 40 | number) * _ID_MULTIPLIER + _ID_OFFSET) % _ID_SPACE
    chars = []
    for _ in range(22):
        value, digit = divmod(value, 62)
        chars.append(_BASE62[digit])
    return "".join(chars)


PLAYLIST, ARTIST, ALBUM, TRACK, EPISODE, SHOW, USER, IMAGE = range(8)


def _title(rng: random.Random, words: int) -> str:
    parts = [rng.choice(_NON_ASCII) if rng.random() < 0.05 else rng.choice(_WORDS) for _ in range(words)]
    return " ".join(parts).title()


def _weighted(rng: random.Random, choices: tuple[tuple[Any, float], ...]) -> Any:
    roll = rng.random()
    for value, share in choices:
        roll -= share
        if roll < 0:
            return value
    return choices[-1][0]


def _images(rng: random.Random) -> list[dict[str, Any]]:
    image = spotify_id(IMAGE, rng.getrandbits(32)).lower()
    return [
        {"height": size, "url": f"https://i.scdn.co/image/ab67616d0000{code}{image}", "width": size}
        for size, code in ((640, "b273"), (300, "1e02"), (64, "4851"))
    ]


def _artist(artist_id: str, name: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"{OPEN}/artist/{artist_id}"},
        "href": f"{API}/artists/{artist_id}",
        "id": artist_id,
        "name": name,
        "type": "artist",
        "uri": f"spotify:artist:{artist_id}",
    }


def _user(user_id: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"{OPEN}/user/{user_id}"},
        "href": f"{API}/users/{user_id}",
        "id": user_id,
        "type": "user",
        "uri": f"spotify:user:{user_id}",
    }


@dataclass(frozen=True)
class Album:
    id: str
    name: str
    artist: int
    album_type: str
    release_date: str
    precision: str
    total_tracks: int
    images: list[dict[str, Any]]


@dataclass(frozen=True)
class Track:
    id: str
    name: str
    album: int
    artists: tuple[int, ...]
    duration_ms: int
    popularity: int
    explicit: bool
    track_number: int
    isrc: str


class Catalog:
    """Artists, albums and tracks, created on first use and kept as compact records."""

    def __init__(self, rng: random.Random, expected_tracks: int) -> None:
        self.rng = rng
        artists = max(50, expected_tracks // TRACKS_PER_ARTIST)
        self.artist_ids = [spotify_id(ARTIST, n) for n in range(artists)]
        self.artist_names = [_title(rng, rng.randint(1, 3)) for _ in range(artists)]
        self.albums = [self._album(n) for n in range(max(20, expected_tracks // TRACKS_PER_ALBUM))]
        self.tracks: list[Track] = []

    def _album(self, number: int) -> Album:
        rng = self.rng
        precision = _weighted(rng, PRECISIONS)
        year = rng.randint(1960, 2026)
        release_date = {
            "day": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "month": f"{year}-{rng.randint(1, 12):02d}",
            "year": str(year),
        }[precision]
        album_type = _weighted(rng, (("album", 0.6), ("single", 0.3), ("compilation", 0.1)))
        return Album(
            id=spotify_id(ALBUM, number),
            name=_title(rng, rng.randint(1, 4)),
            artist=self._popular(len(self.artist_names)),
            album_type=album_type,
            release_date=release_date,
            precision=precision,
            total_tracks=rng.randint(1, 3) if album_type == "single" else rng.randint(6, 24),
            images=_images(rng),
        )

    def _popular(self, size: int) -> int:
        """An index in ``range(size)``, low indexes far more often (a few entities are very popular)."""
        return int(size * self.rng.random() ** 2)

    def new_track(self) -> Track:
        rng = self.rng
        number = len(self.tracks)
        track_id = spotify_id(TRACK, number)
        album_no = self._popular(len(self.albums))
        album = self.albums[album_no]
        featured = [self._popular(len(self.artist_names)) for _ in range(_weighted(rng, ARTIST_COUNTS) - 1)]
        ghost = rng.random() < GHOST_SHARE
        track = Track(
            id=track_id,
            name="" if ghost else _title(rng, rng.randint(1, 5)),
            album=album_no,
            artists=tuple(dict.fromkeys([album.artist, *featured])),
            duration_ms=0 if ghost else rng.randint(60_000, 480_000),
            popularity=0 if ghost else rng.randint(0, 100),
            explicit=rng.random() < 0.15,
            track_number=rng.randint(1, album.total_tracks),
            isrc=f"US{track_id[:3].upper()}{rng.randint(10, 99)}{rng.randint(0, 99999):05d}",
        )
        self.tracks.append(track)
        return track

    def repeat_track(self) -> Track:
        return self.tracks[self._popular(len(self.tracks))]

    def album_body(self, album: Album, *, shape: str) -> dict[str, Any]:
        artists = [_artist(self.artist_ids[album.artist], self.artist_names[album.artist])]
        core = {
            "type": "album",
            "album_type": album.album_type,
            "href": f"{API}/albums/{album.id}",
            "id": album.id,
            "images": album.images,
            "name": album.name,
            "release_date": album.release_date,
            "release_date_precision": album.precision,
            "uri": f"spotify:album:{album.id}",
            "artists": artists,
            "external_urls": {"spotify": f"{OPEN}/album/{album.id}"},
            "total_tracks": album.total_tracks,
        }
        if shape == "track":
            return {"available_markets": [], **core}
        return {"is_playable": True, **core}

    def track_body(self, track: Track, *, shape: str) -> dict[str, Any]:
        artists = [_artist(self.artist_ids[a], self.artist_names[a] if track.name else "") for a in track.artists]
        body: dict[str, Any] = {
            "explicit": track.explicit,
            "type": "track",
            "episode": False,
            "track": True,
            "album": self.album_body(self.albums[track.album], shape=shape),
            "artists": artists,
            "disc_number": 1,
            "track_number": track.track_number,
            "duration_ms": track.duration_ms,
            "external_ids": {"isrc": track.isrc} if track.name else {},
            "external_urls": {"spotify": f"{OPEN}/track/{track.id}"},
            "href": f"{API}/tracks/{track.id}",
            "id": track.id,
            "name": track.name,
        }
        if shape == "track":
            return {
                "preview_url": None,
                "available_markets": [],
                **body,
                "popularity": track.popularity,
                "uri": f"spotify:track:{track.id}",
                "is_local": False,
            }
        return {"is_playable": True, **body, "uri": f"spotify:track:{track.id}", "is_local": False}


def _local_file(rng: random.Random, shape: str) -> dict[str, Any]:
    """A file from the owner's device, as the API returns it: no ids, empty album."""
    artist, title, seconds = _title(rng, 1), _title(rng, 2), rng.randint(90, 420)
    body: dict[str, Any] = {
        "album": {
            "album_type": None,
            "artists": [],
            "available_markets": [],
            "external_urls": {},
            "href": None,
            "id": None,
            "images": [],
            "name": "",
            "release_date": None,
            "release_date_precision": None,
            "type": "album",
            "uri": None,
        },
        "artists": [{"external_urls": {}, "href": None, "id": None, "name": artist, "type": "artist", "uri": None}],
        "available_markets": [],
        "disc_number": 0,
        "duration_ms": seconds * 1000,
        "explicit": False,
        "external_ids": {},
        "external_urls": {},
        "href": None,
        "id": None,
        "is_local": True,
        "name": title,
        "popularity": 0,
        "preview_url": None,
        "track_number": 0,
        "type": "track",
        "uri": f"spotify:local:{artist.replace(' ', '+')}::{title.replace(' ', '+')}:{seconds}",
    }
    if shape == "item":  # the 2026 shape dropped these from every track object
        for key in ("available_markets", "popularity", "preview_url"):
            del body[key]
        del body["album"]["available_markets"]
    return body


def _episode(rng: random.Random, number: int) -> dict[str, Any]:
    episode_id, show_id = spotify_id(EPISODE, number), spotify_id(SHOW, number % 97)
    description = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 160)))
    return {
        "audio_preview_url": f"https://p.scdn.co/mp3-preview/{spotify_id(IMAGE, number).lower()}",
        "description": description,
        "duration_ms": rng.randint(600_000, 7_200_000),
        "episode": True,
        "explicit": rng.random() < 0.3,
        "external_urls": {"spotify": f"{OPEN}/episode/{episode_id}"},
        "href": f"{API}/episodes/{episode_id}",
        "html_description": f"<p>{description}</p>",
        "id": episode_id,
        "images": _images(rng),
        "is_externally_hosted": False,
        "is_playable": True,
        "language": "en-US",
        "languages": ["en-US"],
        "name": f"{number % 600}- {_title(rng, 3)}",
        "release_date": f"{rng.randint(2015, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "release_date_precision": "day",
        "resume_point": {"fully_played": False, "resume_position_ms": 0},
        "show": {
            "copyrights": [],
            "description": description[:200],
            "explicit": True,
            "external_urls": {"spotify": f"{OPEN}/show/{show_id}"},
            "href": f"{API}/shows/{show_id}",
            "html_description": f"<p>{description[:200]}</p>",
            "id": show_id,
            "images": _images(rng),
            "is_externally_hosted": False,
            "languages": ["en"],
            "media_type": "audio",
            "name": _title(rng, 2),
            "publisher": _title(rng, 2),
            "total_episodes": rng.randint(10, 900),
            "type": "show",
            "uri": f"spotify:show:{show_id}",
        },
        "track": False,
        "type": "episode",
        "uri": f"spotify:episode:{episode_id}",
    }


@dataclass
class Generated:
    documents: int
    items: int
    bytes: int
    distinct_tracks: int
    albums: int
    artists: int


def generate(
    lake_root: Path, day: str, items: int, *, seed: int = 7, min_size: int = 100, max_size: int = 10_000
) -> Generated:
    """Write ``items`` playlist entries for ``day`` under ``lake_root``; same arguments, same bytes."""
    if items <= 0 or not 0 < min_size <= max_size:
        raise ValueError("items, min_size and max_size must be positive with min_size <= max_size")
    rng = random.Random(seed)
    lake = LocalLake(lake_root)
    catalog = Catalog(rng, int(items * NEW_TRACK_SHARE))
    extracted_at = dt.datetime.fromisoformat(f"{day}T03:00:00+00:00")
    users = [spotify_id(USER, n).lower() for n in range(max(10, items // 2000))]
    episodes = written = playlist_no = 0
    while written < items:
        size = min(items - written, round(math.exp(rng.uniform(math.log(min_size), math.log(max_size)))))
        playlist_id = spotify_id(PLAYLIST, playlist_no)
        shape = "item" if rng.random() < 0.5 else "track"
        owner = rng.choice(users)
        first_added = extracted_at - dt.timedelta(days=rng.randint(30, 3650))
        span = (extracted_at - first_added).total_seconds()
        entries = []
        for position in range(size):
            added_at = first_added + dt.timedelta(seconds=int(span * position / size) + rng.randint(0, 59))
            added_by = owner if rng.random() < 0.9 else rng.choice(users)
            roll = rng.random()
            body: dict[str, Any] | None
            if roll < NULL_SHARE:
                body, added_by = None, ""  # removed tracks come with an empty added_by, as recorded
            elif roll < NULL_SHARE + LOCAL_SHARE:
                body = _local_file(rng, shape)
            elif roll < NULL_SHARE + LOCAL_SHARE + EPISODE_SHARE:
                body = _episode(rng, episodes)
                episodes += 1
            else:
                new = rng.random() < NEW_TRACK_SHARE or not catalog.tracks
                track = catalog.new_track() if new else catalog.repeat_track()
                body = catalog.track_body(track, shape=shape)
            entries.append(
                {
                    "added_at": added_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "added_by": _user(added_by),
                    "is_local": body is not None and body.get("is_local") is True,
                    "primary_color": None,
                    shape: body,
                    "video_thumbnail": {"url": None},
                }
            )
        pages = _pages(playlist_id, entries, shape)
        document = {
            "format": RAW_FORMAT,
            "playlist_id": playlist_id,
            "dt": day,
            "name": _title(rng, rng.randint(1, 4)),
            "owner_id": owner,
            "snapshot_id": spotify_id(PLAYLIST, playlist_no + (1 << 20)) * 2,
            "total": size,
            "extracted_at": extracted_at.isoformat(),
            "source": "bench-generator",
            "unchanged_since": None,
            "api_calls": len(pages) + 1,
            "pages": pages,
        }
        # As the extract keeps it (raw_format.PLAYLIST), from the values above: no draw of the generator.
        document["metadata"] = {
            "name": document["name"],
            "description": "",
            "public": playlist_no % 2 == 0,
            "collaborative": False,
            "owner": {"id": owner, "display_name": owner},
            "followers": {"total": playlist_no},
        }
        lake.write_json(lake.raw_path(day, playlist_id), document)
        written += size
        playlist_no += 1
    size_on_disk = sum(p.stat().st_size for p in Path(lake.raw_dir(day)).iterdir())
    return Generated(
        documents=playlist_no,
        items=written,
        bytes=size_on_disk,
        distinct_tracks=len(catalog.tracks),
        albums=len({t.album for t in catalog.tracks}),
        artists=len({a for t in catalog.tracks for a in t.artists}),
    )


def _pages(playlist_id: str, entries: list[dict[str, Any]], shape: str) -> list[dict[str, Any]]:
    name = "items" if shape == "item" else "tracks"
    endpoint = f"{API}/playlists/{playlist_id}/{name}"
    kept = parse_fields(items_fields(name))
    total = len(entries)
    offsets = range(0, total, PAGE_LIMIT)
    return [
        apply_fields(
            kept,
            {
                "href": f"{endpoint}?offset={offset}&limit={PAGE_LIMIT}",
                "items": entries[offset : offset + PAGE_LIMIT],
                "limit": PAGE_LIMIT,
                "next": f"{endpoint}?offset={offset + PAGE_LIMIT}&limit={PAGE_LIMIT}"
                if offset + PAGE_LIMIT < total
                else None,
                "offset": offset,
                "previous": f"{endpoint}?offset={max(0, offset - PAGE_LIMIT)}&limit={PAGE_LIMIT}" if offset else None,
                "total": total,
            },
        )
        for offset in offsets
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake_root", type=Path)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--day", default="2026-01-15")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-size", type=int, default=100, help="smallest playlist, in entries")
    parser.add_argument("--max-size", type=int, default=10_000, help="largest playlist, in entries")
    args = parser.parse_args(argv)
    print(
        generate(args.lake_root, args.day, args.items, seed=args.seed, min_size=args.min_size, max_size=args.max_size)
    )


if __name__ == "__main__":
    main()
