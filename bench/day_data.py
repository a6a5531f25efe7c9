"""The whole-day benchmark's data: generated playlists for the local Spotify server, and
landed days for the backfill.

**Playlists.** :func:`generated_playlists` builds playlists of ``entries`` tracks each for
:class:`tests.support.spotify_server.SpotifyServer`, which then serves them like the recorded
ones: metadata, ``/items`` pages of at most 50 with Spotify's ``fields`` filter, and the
development-mode rules (a user token, and the user owns the playlist or collaborates on it;
half of the playlists are the user's own, half another user's with the user as collaborator).
Track bodies are whole 2026 ``/items`` bodies from the transform benchmark's generator
(``bench/generate.py``): a shared pool of tracks (about 60% distinct, popular ones repeating),
so a thousand playlists cost a few MB in the server, not a copy per entry. No unavailable
"ghost" tracks: validation would rightly fail on their zero durations. The same arguments give
the same playlists; ``first`` numbers them, so each size of a run gets playlists of its own
(a playlist's first run never finds an earlier document of it to reuse).

**Landed days.** :func:`land_days` copies the raw documents a real run landed for one date to
other dates, with each document's ``dt`` rewritten: the lake's raw format exactly as the extract
writes it, for a backfill to reprocess, at the cost of a file copy.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from spotify_etl.lake import Lake
from spotify_etl.raw_format import RAW_FORMAT

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
import generate  # noqa: E402 - bench/ is a folder of scripts; it also makes tests.support importable

from tests.support.spotify_server import Playlist  # noqa: E402

BENCH_PLAYLIST = 9  # generate.spotify_id's kind for these playlists: ids apart from the generator's own
OTHER_USER = "bench-other-owner"
CURATOR = "bench-curator"  # who added the entries


def track_pool(size: int, seed: int = 7) -> list[dict[str, Any]]:
    """``size`` playlist entries of available tracks, 2026 ``/items`` shape (``item`` key)."""
    rng = random.Random(seed)
    catalog = generate.Catalog(rng, int(size * generate.NEW_TRACK_SHARE))
    entries: list[dict[str, Any]] = []
    for _ in range(10 * size):  # bounded: ghost tracks are skipped, about 0.2% of them
        if len(entries) == size:
            break
        new = rng.random() < generate.NEW_TRACK_SHARE or not catalog.tracks
        track = catalog.new_track() if new else catalog.repeat_track()
        if not track.duration_ms:
            continue
        entries.append(
            {
                "added_at": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z",
                "added_by": {"id": CURATOR, "type": "user"},
                "is_local": False,
                "primary_color": None,
                "item": catalog.track_body(track, shape="item"),
                "video_thumbnail": {"url": None},
            }
        )
    return entries


def playlist_id(number: int) -> str:
    return generate.spotify_id(BENCH_PLAYLIST, number)


def generated_playlists(
    first: int, count: int, user: str, pool: list[dict[str, Any]], entries: int = 100, seed: int = 7
) -> dict[str, Playlist]:
    """Playlists number ``first`` .. ``first + count - 1`` of ``entries`` distinct pool entries
    each; even numbers owned by ``user``, odd ones by another user with ``user`` collaborating."""
    if entries > len(pool):
        raise ValueError(f"{entries} entries per playlist need a pool of at least that many, got {len(pool)}")
    served: dict[str, Playlist] = {}
    for number in range(first, first + count):
        rng = random.Random(f"{seed}/{number}")
        pid = playlist_id(number)
        owner = user if number % 2 == 0 else OTHER_USER
        meta = {
            "id": pid,
            "name": f"bench playlist {number}",
            "owner": {"id": owner, "display_name": owner},
            "snapshot_id": f"bench-snapshot-{seed}-{number}",  # never changes: a second run finds it unchanged
            "collaborative": owner != user,
            "public": False,
            "type": "playlist",
        }
        chosen = [pool[i] for i in rng.sample(range(len(pool)), entries)]
        served[pid] = Playlist(meta, chosen, collaborators=set() if owner == user else {user})
    return served


def land_days(lake: Lake, source_day: str, playlists: list[str], days: list[str]) -> int:
    """Copy each playlist's raw document of ``source_day`` to every one of ``days`` with its ``dt``
    rewritten; return the bytes written. Fails if a document is missing or not the extract's format."""
    written = 0
    old = f'"dt":"{source_day}"'.encode()
    for pid in playlists:
        data = lake.fs.cat_file(lake.raw_path(source_day, pid))
        # The extract writes compact JSON, format and playlist_id first: dt is the third key.
        at = data.find(old)
        if not data.startswith(f'{{"format":"{RAW_FORMAT}"'.encode()) or not 0 < at < 200:
            raise ValueError(f"{lake.raw_path(source_day, pid)} is not a raw document as the extract writes it")
        for day in days:
            copy = data[:at] + f'"dt":"{day}"'.encode() + data[at + len(old) :]
            lake.write_bytes(lake.raw_path(day, pid), copy)
            written += len(copy)
    return written
