"""A chunk's playlists in flight at once against the local Spotify server (issue 21, point 2):
the ceiling on concurrent requests, one token per chunk, outcomes per playlist in chunk order,
and a 429 that pauses the whole chunk."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from spotify_etl import chunks
from spotify_etl.lake import Lake, LocalLake

from tests.support.spotify_server import LSD, Playlist, SpotifyServer, fixture

DAY = "2026-11-25"


def copies(server: SpotifyServer, count: int, prefix: str = "c") -> list[str]:
    """``count`` copies of LSDream Theatre (200 entries: 3 requests each) under new ids."""
    lsd = server.playlists[LSD]
    ids = [f"{prefix}{i:03d}".ljust(22, "x") for i in range(count)]
    for pid in ids:
        server.playlists[pid] = Playlist({**lsd.meta, "id": pid}, lsd.entries, collaborators={server.user_id})
    return ids


def test_in_flight_playlists_bound_the_concurrent_requests_with_one_token(lake: Lake) -> None:
    with SpotifyServer(latency=0.05) as server:
        ids = copies(server, 8)
        server.playlists[ids[2]].collaborators.clear()  # another user's: refused, the others land
        outcome = chunks.extract_chunk(lambda: server.source(), lake, ids, DAY, "t", run="r", in_flight=3)

    assert [r["playlist_id"] for r in outcome.landed] == ids[:2] + ids[3:]  # chunk order
    assert [r["api_calls"] for r in outcome.landed] == [3] * 7  # each playlist counts its own requests
    (failed,) = outcome.failed
    assert failed["playlist_id"] == ids[2] and failed["error"].startswith(f"playlist {ids[2]} items page at offset 0")
    assert len(server.api_requests()) == 7 * 3 + 2 and len(server.token_requests()) == 1
    assert server.max_in_flight == 3  # reached, never passed


def test_pool_slots_times_in_flight_is_the_ceiling(tmp_path: Path) -> None:
    """Two chunk tasks at once (a pool of 2 slots), 3 playlists in flight each: at most 6 requests."""
    with SpotifyServer(latency=0.05) as server:
        chunk_ids = [copies(server, 6, prefix) for prefix in ("a", "b")]
        outcomes: list[chunks.ChunkOutcome] = []

        def slot(ids: list[str]) -> None:
            lake = LocalLake(tmp_path / "lake")
            outcomes.append(chunks.extract_chunk(lambda: server.source(), lake, ids, DAY, "t", run="r", in_flight=3))

        threads = [threading.Thread(target=slot, args=(ids,)) for ids in chunk_ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert sorted(len(o.landed) for o in outcomes) == [6, 6] and len(server.token_requests()) == 2
    assert 3 < server.max_in_flight <= 2 * 3


def test_a_retry_after_seen_by_one_playlist_pauses_the_chunks_other_requests(lake: Lake) -> None:
    with SpotifyServer(latency=0.06) as server:
        ids = copies(server, 15)
        limited = ids[1]
        server.fail(
            rf"/playlists/{limited}/items\?", 429, fixture("error_429_api_rate_limit_exceeded.json"),
            headers={"Retry-After": "1"},
        )  # fmt: skip
        started = time.monotonic()
        outcome = chunks.extract_chunk(
            lambda: server.source(max_retry_after=5), lake, ids, DAY, "t", run="r", in_flight=3
        )
        elapsed = time.monotonic() - started
        limited_at = next(r.at for r in server.api_requests(f"/playlists/{limited}/items"))  # the one answered 429

    assert not outcome.failed and [r["playlist_id"] for r in outcome.landed] == ids  # the day completes
    # Once the requests in flight when the 429 came back were answered, no request of the chunk
    # arrived until Retry-After had passed.
    during = [r.path for r in server.api_requests() if limited_at + 0.3 < r.at < limited_at + 0.95]
    assert during == [] and elapsed >= 1.0
    assert len(server.api_requests()) == 15 * 3 + 1 and len(server.token_requests()) == 1
