"""spotipy for real against a local server that speaks the Spotify Web API.

The source is always built from an Airflow connection in the ``AIRFLOW_CONN_*`` JSON form,
pointed at the server through its ``api_base_url``/``token_url`` extras. The server applies
Spotify's 2026 development-mode rules unless a test says otherwise. Each test asserts the
requests the server saw and what landed in the lake.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection
from spotify_etl import raw_format
from spotify_etl.extract import PayloadError, SampleSource, extract_playlist
from spotify_etl.lake import Lake, LocalLake
from spotify_etl.raw_format import items_fields
from spotify_etl.spotify.auth_command import add_auth_command
from spotify_etl.spotify.client import (
    META_FIELDS,
    PlaylistNotAccessible,
    RateLimited,
    SpotifyAuthError,
    SpotifyRequestError,
    SpotifySource,
    SpotifyTokenUnavailable,
    SpotifyUnavailable,
)
from spotify_etl.transform import transform_day

from tests.support.spotify_server import ITEMS_2026, LSD, RAP_RU, Playlist, SpotifyServer, error_body, fixture

DAY, NEXT_DAY = "2026-11-25", "2026-11-26"
TOP_50_GLOBAL = "37i9dQZEVXbMDoHDwVN2tF"  # Spotify-owned: 404 for new/dev-mode apps since Nov 2024
ENTRY_KEYS = set(raw_format.ENTRY.keys) - {"track"}  # /items sends the entry under `item` only
TRACK_KEYS = set(raw_format.TRACK.keys)  # what the fields filter asks for


@pytest.fixture
def server() -> Iterator[SpotifyServer]:
    with SpotifyServer() as srv:
        yield srv


def source(
    server: SpotifyServer,
    *,
    user: bool = True,
    max_retry_after: float = 120.0,
    extra: dict[str, Any] | None = None,
    **options: Any,
) -> SpotifySource:
    conn = Connection.from_json(json.dumps(server.connection(user=user, **(extra or {}))), conn_id="spotify_default")
    return SpotifySource.from_connection(conn, max_retry_after=max_retry_after, **options)


APP_ONLY = {"auth_mode": "client_credentials"}  # the extended-quota opt-in: no user, no refresh token


def raw(lake_dir: Path, playlist_id: str, day: str = DAY) -> dict[str, Any]:
    return json.loads((lake_dir / f"raw/playlists/dt={day}/playlist_id={playlist_id}.json").read_text())


def offsets(server: SpotifyServer, suffix: str = "/items") -> list[int]:
    return [int(r.query["offset"]) for r in server.api_requests(suffix)]


def test_first_page_rides_on_the_metadata_then_items_pages_follow_next_with_field_filters(
    server: SpotifyServer, lake: Lake, lake_dir: Path
) -> None:
    result = extract_playlist(source(server), lake, LSD, DAY, "t")

    assert (result.items, result.pages, result.api_calls, result.source) == (200, 3, 3, "spotify_api")
    meta_requests = server.api_requests(f"/playlists/{LSD}")
    assert len(meta_requests) == 1 and meta_requests[0].query["fields"] == META_FIELDS
    assert offsets(server) == [100, 150]  # the first 100 came with the metadata
    assert {r.query["limit"] for r in server.api_requests("/items")} == {"50"}
    assert {r.query["fields"] for r in server.api_requests("/items")} == {items_fields("items")}
    assert [r.form["grant_type"] for r in server.token_requests()] == ["refresh_token"]
    doc = raw(lake_dir, LSD)
    assert doc["source"] == "spotify_api" and doc["name"] == "LSDream Theatre" and doc["owner_id"] == "marcel#spotify"
    assert doc["snapshot_id"].startswith("MzkxLGQ4") and doc["total"] == 200 and doc["api_calls"] == 3
    assert [(p["offset"], p["limit"]) for p in doc["pages"]] == [(0, 100), (100, 50), (150, 50)]
    assert doc["pages"][-1]["next"] is None
    entries = [e for p in doc["pages"] for e in p["items"]]
    assert all(set(e) <= ENTRY_KEYS and "item" in e for e in entries)
    assert all(set(e["item"]) <= TRACK_KEYS for e in entries if e["item"])  # no images, markets, preview_url...
    assert not any("popularity" in e["item"] for e in entries if e["item"])  # never sent to development-mode apps
    assert sum(e["item"]["id"] is None for e in entries) == 8  # the recorded local files


LARGE = "230entriesPlaylistXyz0"  # 230 entries: the recorded LSDream Theatre entries, repeated


def requests_seen(server: SpotifyServer) -> list[str]:
    """``metadata`` or ``items@<offset>`` per API request, in order."""
    return [f"items@{r.query['offset']}" if r.path.endswith("/items") else "metadata" for r in server.api_requests()]


def test_requests_per_playlist_shape(server: SpotifyServer, lake: Lake) -> None:
    lsd = server.playlists[LSD]
    server.playlists[LARGE] = Playlist(
        {**lsd.meta, "id": LARGE, "snapshot_id": "large-1"}, (lsd.entries * 2)[:230], collaborators={server.user_id}
    )
    server.playlists[ITEMS_2026].collaborators.clear()  # another user's playlist: metadata only
    src = source(server)

    def extract(playlist_id: str, day: str = DAY) -> list[str]:
        server.requests.clear()
        extract_playlist(src, lake, playlist_id, day, "t")
        return requests_seen(server)

    assert extract(RAP_RU) == ["metadata"]  # owned, 4 entries: all of them came with the metadata
    assert extract(LSD) == ["metadata", "items@100", "items@150"]  # owned, 200
    assert extract(LARGE) == ["metadata", "items@100", "items@150", "items@200"]  # owned, 230: 1 + 3 pages of 50
    assert [extract(p, NEXT_DAY) for p in (RAP_RU, LSD, LARGE)] == [["metadata"]] * 3  # unchanged snapshots
    server.requests.clear()
    assert set(src.playlist(ITEMS_2026)) == {"id", "name", "snapshot_id", "owner"}  # no `items` object at all
    server.requests.clear()
    with pytest.raises(PlaylistNotAccessible, match="Spotify answered 403"):
        extract_playlist(src, lake, ITEMS_2026, DAY, "t")
    assert requests_seen(server) == ["metadata", "items@0"]  # not owned: the items endpoint refuses it


def test_field_filter_keeps_everything_the_transform_reads(server: SpotifyServer, tmp_path: Path) -> None:
    live, sample = LocalLake(tmp_path / "live"), LocalLake(tmp_path / "sample")
    extract_playlist(source(server), live, LSD, DAY, "t")
    extract_playlist(SampleSource(), sample, LSD, DAY, "t")  # the same 200 recorded entries, unfiltered

    from_api, from_sample = transform_day(live, DAY), transform_day(sample, DAY)

    assert from_api.rows == from_sample.rows and from_api.rejected == from_sample.rejected
    assert from_api.rows["playlist_items"] == 200 and from_api.rows["songs"] > 150


def test_2026_items_shape_lands_item_entries_without_popularity(
    server: SpotifyServer, lake: Lake, lake_dir: Path
) -> None:
    result = extract_playlist(source(server), lake, ITEMS_2026, DAY, "t")

    assert (result.items, result.pages, result.api_calls) == (5, 1, 1)
    entries = raw(lake_dir, ITEMS_2026)["pages"][0]["items"]
    assert all("item" in e and "track" not in e and "popularity" not in e["item"] for e in entries)
    assert transform_day(lake, DAY).rows["songs"] == 5


def test_items_asks_only_for_item_so_the_deprecated_track_copy_is_not_landed(lake: Lake, lake_dir: Path) -> None:
    with SpotifyServer(items_key="both") as srv:  # Spotify's deprecation window: `item` and its copy `track`
        result = extract_playlist(source(srv), lake, LSD, DAY, "t")
        requests = srv.api_requests("/items")
    assert all("item(" in r.query["fields"] and "track(" not in r.query["fields"] for r in requests)
    assert "items(offset,limit,next,total,items(added_at,added_by.id,is_local,item(" in META_FIELDS
    entries = [e for p in raw(lake_dir, LSD)["pages"] for e in p["items"]]  # embedded page and /items pages
    assert result.items == 200 and all("item" in e and "track" not in e for e in entries)
    assert transform_day(lake, DAY).rows["playlist_items"] == 200


def test_extended_quota_app_with_client_credentials_reads_the_old_tracks_endpoint(lake: Lake, lake_dir: Path) -> None:
    with SpotifyServer(extended_quota=True) as srv:
        result = extract_playlist(
            source(srv, user=False, extra={**APP_ONLY, "items_endpoint": "tracks"}), lake, LSD, DAY, "t"
        )
        assert offsets(srv, "/tracks") == [100, 150] and not srv.api_requests("/items")  # 100 came embedded
        assert {r.query["fields"] for r in srv.api_requests("/tracks")} == {items_fields("tracks")}
        assert [r.form["grant_type"] for r in srv.token_requests()] == ["client_credentials"]
    entries = [e for p in raw(lake_dir, LSD)["pages"] for e in p["items"]]
    assert result.items == 200 and all("track" in e and "item" not in e for e in entries)
    assert all("popularity" in e["track"] for e in entries if e["track"]["id"])  # extended quota keeps it
    assert raw(lake_dir, LSD)["total"] == 200


def test_429_waits_retry_after_then_succeeds(server: SpotifyServer, lake: Lake, lake_dir: Path) -> None:
    server.fail(
        r"/items\?.*offset=150", 429, fixture("error_429_api_rate_limit_exceeded.json"), headers={"Retry-After": "1"}
    )
    started = time.monotonic()
    result = extract_playlist(source(server, max_retry_after=5), lake, LSD, DAY, "t")

    assert time.monotonic() - started >= 1.0
    assert offsets(server) == [100, 150, 150] and result.api_calls == 4
    assert raw(lake_dir, LSD)["total"] == 200


def test_429_beyond_the_maximum_wait_fails_the_try_fast(server: SpotifyServer, lake: Lake, lake_dir: Path) -> None:
    server.fail(r"/items", 429, fixture("error_429_api_rate_limit_exceeded.json"), headers={"Retry-After": "3600"})
    started = time.monotonic()
    with pytest.raises(RateLimited) as err:
        extract_playlist(source(server, max_retry_after=120), lake, LSD, DAY, "t")

    assert time.monotonic() - started < 5
    assert LSD in str(err.value) and "Retry-After 3600 s exceeds SPOTIFY_ETL_MAX_RETRY_AFTER=120 s" in str(err.value)
    assert err.value.retryable and offsets(server) == [100]  # urllib3 did not retry the 429 on its own
    assert not (lake_dir / "raw").exists()


def test_503_with_a_long_retry_after_is_retried_with_backoff_not_slept_on(server: SpotifyServer, lake: Lake) -> None:
    server.fail(r"/items", 503, error_body(503, "Service unavailable"), headers={"Retry-After": "3600"})
    started = time.monotonic()
    result = extract_playlist(source(server), lake, LSD, DAY, "t")

    assert time.monotonic() - started < 5 and result.items == 200 and offsets(server) == [100, 100, 150]


def test_500_then_success(server: SpotifyServer, lake: Lake, lake_dir: Path) -> None:
    server.fail(r"/items\?.*offset=100", 500, error_body(500, "Server error"))
    result = extract_playlist(source(server), lake, LSD, DAY, "t")

    assert offsets(server) == [100, 100, 150] and result.items == 200
    assert raw(lake_dir, LSD)["total"] == 200


def test_5xx_that_outlasts_the_retries_fails_naming_the_status(
    server: SpotifyServer, lake: Lake, lake_dir: Path
) -> None:
    server.fail(r"/items", 502, b"<html>Bad gateway</html>", times=10)
    with pytest.raises(SpotifyUnavailable) as err:
        extract_playlist(source(server, retries=2, backoff_factor=0.01), lake, LSD, DAY, "t")

    assert f"playlist {LSD} items page at offset 100: Spotify answered 502" in str(err.value)
    assert "after 2 retries" in str(err.value) and err.value.retryable
    assert offsets(server) == [100, 100, 100] and not (lake_dir / "raw").exists()


def test_timeouts_are_retried_then_fail(server: SpotifyServer, lake: Lake) -> None:
    server.fail(rf"/playlists/{LSD}\?", 200, {}, delay=1.5, times=1)
    result = extract_playlist(source(server, timeout=0.5), lake, LSD, DAY, "t")
    assert result.items == 200 and len(server.api_requests(f"/playlists/{LSD}")) == 2

    server.fail(rf"/playlists/{RAP_RU}\?", 200, {}, delay=1.5, times=5)
    with pytest.raises(SpotifyUnavailable, match=f"playlist {RAP_RU} metadata: .*after 1 retries.*Timeout"):
        extract_playlist(source(server, timeout=0.5, retries=1), lake, RAP_RU, DAY, "t")
    assert len(server.api_requests(f"/playlists/{RAP_RU}")) == 2


def test_connection_refused_fails_after_retries(lake: Lake) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = Connection(
        conn_id="spotify_default",
        conn_type="generic",
        login="id",
        password="secret-value-123",  # pragma: allowlist secret
        extra=json.dumps(
            {
                "api_base_url": f"http://127.0.0.1:{port}/v1/",
                "token_url": f"http://127.0.0.1:{port}/api/token",
                "refresh_token": "refresh-value-123",  # pragma: allowlist secret
            }
        ),
    )
    with pytest.raises(
        SpotifyUnavailable, match=f"playlist {LSD} metadata: request to Spotify failed after 1 retries.*ConnectionError"
    ):
        extract_playlist(SpotifySource.from_connection(conn, retries=1, backoff_factor=0.01), lake, LSD, DAY, "t")


@pytest.mark.parametrize("grant", ["client_credentials", "refresh_token"])
def test_expired_token_is_refreshed_once_and_the_extract_continues(
    server: SpotifyServer, lake: Lake, lake_dir: Path, grant: str
) -> None:
    if grant == "client_credentials":  # only an extended-quota app reads items with an app-only token
        server.extended_quota = True
    src = source(server, user=grant == "refresh_token", extra=APP_ONLY if grant == "client_credentials" else {})
    src.playlist(RAP_RU)  # gets a token
    server.expire_tokens()
    result = extract_playlist(src, lake, LSD, DAY, "t")

    statuses = [r.authorization for r in server.api_requests(f"/playlists/{LSD}")]
    assert len(statuses) == 2 and statuses[0] != statuses[1]  # retried with the new token
    assert [r.form["grant_type"] for r in server.token_requests()] == [grant, grant]
    assert result.items == 200 and raw(lake_dir, LSD)["total"] == 200


def test_a_401_after_refreshing_fails_with_a_credentials_message(server: SpotifyServer, lake: Lake) -> None:
    server.fail(rf"/playlists/{LSD}\?", 401, fixture("error_401_invalid_access_token.json"), times=2)
    with pytest.raises(SpotifyAuthError, match=r"answered 401 \(Invalid access token\) again after refreshing"):
        extract_playlist(source(server), lake, LSD, DAY, "t")
    assert len(server.token_requests()) == 2


def test_wrong_client_secret_fails_without_retrying_and_without_the_secret(lake: Lake) -> None:
    with SpotifyServer() as srv:
        conn = srv.connection()
        conn["password"] = "wrong-secret-aaaa1111"
        src = SpotifySource.from_connection(Connection.from_json(json.dumps(conn), conn_id="spotify_default"))
        with pytest.raises(SpotifyAuthError, match="invalid_client") as err:
            extract_playlist(src, lake, LSD, DAY, "t")
        assert not err.value.retryable and "wrong-secret-aaaa1111" not in str(err.value)
        assert not srv.api_requests()


def test_a_token_endpoint_that_stays_unavailable_fails_the_try_for_a_retry(server: SpotifyServer, lake: Lake) -> None:
    server.fail(r"/api/token", 503, b"<html>Service Unavailable</html>", times=10)
    with pytest.raises(SpotifyTokenUnavailable) as err:
        extract_playlist(source(server, retries=2, backoff_factor=0.01), lake, LSD, DAY, "t")

    # Not refused credentials: Airflow retries the task, and the chunk stops (no token, no playlist can land).
    assert isinstance(err.value, SpotifyAuthError) and err.value.retryable and err.value.stops_chunk
    assert "token endpoint" in str(err.value) and len(server.token_requests()) == 3 and not server.api_requests()


def test_404_names_the_playlist_the_likely_cause_and_the_remedy(
    server: SpotifyServer, lake: Lake, lake_dir: Path
) -> None:
    with pytest.raises(PlaylistNotAccessible) as err:
        extract_playlist(source(server), lake, TOP_50_GLOBAL, DAY, "t")

    text = str(err.value)
    assert f"playlist {TOP_50_GLOBAL} metadata: Spotify answered 404 (non existing id)" in text
    assert "27 Nov 2024" in text and "Spotify-owned editorial" in text and "check the id" in text
    assert "owns or collaborates on" in text
    assert not err.value.retryable and len(server.api_requests()) == 1 and not (lake_dir / "raw").exists()


def test_another_users_playlist_fails_naming_it_its_owner_and_the_2026_rule(
    server: SpotifyServer, lake: Lake, lake_dir: Path
) -> None:
    server.playlists[LSD].collaborators.clear()  # public, but the token's user neither owns nor collaborates on it
    with pytest.raises(PlaylistNotAccessible) as err:
        extract_playlist(source(server), lake, LSD, DAY, "t")

    text = str(err.value)
    assert f"playlist {LSD} items page at offset 0: Spotify answered 403 (Forbidden)" in text
    assert "user behind the connection's refresh token owns or collaborates on" in text
    assert "owned by 'marcel#spotify'" in text and "spotify-etl auth" in text and "Feb/Mar 2026" in text
    assert not err.value.retryable and offsets(server) == [0] and not (lake_dir / "raw").exists()
    extract_playlist(source(server), lake, RAP_RU, DAY, "t")  # the same token still reads that user's playlists


def test_a_connection_without_refresh_token_is_refused_before_any_request(server: SpotifyServer) -> None:
    with pytest.raises(SpotifyAuthError) as err:
        source(server, user=False)

    text = str(err.value)
    assert text.startswith("no request made; Airflow connection 'spotify_default': ")
    assert "no extra 'refresh_token'" in text and "run `spotify-etl auth`" in text and "'auth_mode'" in text
    assert not err.value.retryable and server.requests == []  # not even a token request
    with pytest.raises(SpotifyAuthError, match="no extra 'refresh_token'"):  # built directly: refused at once
        SpotifySource(server.client_id, server.client_secret, api_base_url=server.api_base_url)
    with pytest.raises(SpotifyAuthError, match="sets both the extra 'refresh_token' and 'auth_mode'"):
        source(server, extra=APP_ONLY)
    assert server.requests == []


def test_client_credentials_of_a_development_mode_app_get_403_naming_the_remedy(
    server: SpotifyServer, lake: Lake
) -> None:
    src = source(server, user=False, extra=APP_ONLY)  # opted in, but the app is not in extended quota mode
    with pytest.raises(PlaylistNotAccessible) as err:
        extract_playlist(src, lake, RAP_RU, DAY, "t")

    text = str(err.value)
    assert f"playlist {RAP_RU} items page at offset 0: Spotify answered 403 (Forbidden)" in text
    assert "client credentials" in text and "extended quota mode" in text and "spotify-etl auth" in text
    assert [r.form["grant_type"] for r in server.token_requests()] == ["client_credentials"]


def test_development_mode_app_gets_403_on_the_old_tracks_endpoint(server: SpotifyServer, lake: Lake) -> None:
    with pytest.raises(PlaylistNotAccessible) as err:
        extract_playlist(source(server, extra={"items_endpoint": "tracks"}), lake, LSD, DAY, "t")
    text = str(err.value)
    assert f"playlist {LSD} items page at offset 100: Spotify answered 403 (Forbidden)" in text
    assert "closed GET /playlists/{id}/tracks" in text and "remove the connection's extra 'items_endpoint'" in text
    assert offsets(server, "/tracks") == [100]  # the first 100 came with the metadata


def test_the_server_rejects_pages_larger_than_50_as_spotify_does(server: SpotifyServer) -> None:
    src = source(server)
    assert len(src.items_page(LSD, 0, 50)["items"]) == 50
    with pytest.raises(
        SpotifyRequestError, match=rf"playlist {LSD} items page at offset 0: Spotify answered 400 \(Invalid limit\)"
    ):
        src.items_page(LSD, 0, 51)
    assert [r.query["limit"] for r in server.api_requests("/items")] == ["50", "51"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda s: s.fail(r"/items\?.*offset=150", 200, b"<html>maintenance</html>"),
            f"playlist {LSD} page at offset 150: response body is not JSON",
        ),
        (
            lambda s: s.fail(r"/items\?.*offset=100", 200, {"offset": 100, "limit": 50, "next": None, "total": 200}),
            f"playlist {LSD} page at offset 100: response has no 'items' list",
        ),
        (
            lambda s: setattr(s.playlists[LSD], "total", 244),
            f"playlist {LSD}: pages hold 200 items but the API reported total 244",
        ),
        (
            lambda s: s.fail(rf"/playlists/{LSD}\?", 200, b"not json"),
            f"playlist {LSD}: metadata response is not a JSON object",
        ),
    ],
    ids=["non-json-page", "missing-items", "wrong-total", "non-json-metadata"],
)
def test_malformed_payload_fails_naming_playlist_and_offset_and_lands_nothing(
    server: SpotifyServer, lake: Lake, lake_dir: Path, setup: Any, message: str
) -> None:
    extract_playlist(source(server), lake, LSD, "2026-11-24", "t")  # an earlier day's document stays as it was
    before = raw(lake_dir, LSD, "2026-11-24")
    server.playlists[LSD].meta["snapshot_id"] = "changed-snapshot"
    setup(server)
    with pytest.raises(PayloadError) as err:
        extract_playlist(source(server), lake, LSD, DAY, "t")

    assert message in str(err.value) and "nothing landed" in str(err.value)
    assert not (lake_dir / f"raw/playlists/dt={DAY}").exists() and raw(lake_dir, LSD, "2026-11-24") == before


def test_unchanged_snapshot_makes_exactly_one_request_and_lands_previous_items(
    server: SpotifyServer, lake: Lake, lake_dir: Path
) -> None:
    extract_playlist(source(server), lake, LSD, DAY, "t")
    server.requests.clear()
    result = extract_playlist(source(server), lake, LSD, NEXT_DAY, "t2")

    assert len(server.api_requests()) == 1 and server.api_requests()[0].path == f"/v1/playlists/{LSD}"
    assert result.unchanged and result.api_calls == 1 and result.items == 200
    old, new = raw(lake_dir, LSD), raw(lake_dir, LSD, NEXT_DAY)
    assert (
        new["pages"] == old["pages"]
        and new["unchanged_since"] == DAY
        and new["dt"] == NEXT_DAY
        and new["api_calls"] == 1
    )

    server.playlists[LSD].meta["snapshot_id"] = "a-new-snapshot"  # changed: everything is downloaded again
    assert not extract_playlist(source(server), lake, LSD, NEXT_DAY, "t3").unchanged
    assert offsets(server) == [100, 150]


def test_invalid_ids_are_rejected_before_any_request(server: SpotifyServer) -> None:
    src = source(server)
    for bad in ("../../etc/passwd", f"{LSD}/../x", f"spotify:playlist:{LSD}", LSD[:21]):
        with pytest.raises(ValueError, match="invalid playlist id"):
            src.playlist(bad)
        with pytest.raises(ValueError, match="invalid playlist id"):
            src.items_page(bad, 0, 50)
    assert server.requests == []


def test_secrets_never_reach_logs_exceptions_or_raw_documents(
    server: SpotifyServer,
    lake: Lake,
    lake_dir: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # spotipy logs request headers and token bodies at DEBUG
    src = source(server, user=True)
    extract_playlist(src, lake, LSD, DAY, "t")
    server.expire_tokens()
    server.fail(r"/items", 500, error_body(500, "oops"))
    extract_playlist(src, lake, RAP_RU, DAY, "t")
    with pytest.raises(PlaylistNotAccessible) as err:
        extract_playlist(src, lake, TOP_50_GLOBAL, DAY, "t")
    out = capsys.readouterr()

    texts = [caplog.text, out.out, out.err, repr(src), f"{err.value!s} {err.value!r}"]
    texts += [p.read_text() for p in (lake_dir / "raw").rglob("*.json")]
    assert len(server.issued_tokens) == 2 and len(texts) == 7
    for secret in server.secrets():
        assert all(secret not in text for text in texts), "a secret leaked"
    assert "Sending POST request" in caplog.text and "Bearer ***" in caplog.text  # the guard did work on real records


def test_auth_command_prints_the_authorise_url_and_exchanges_the_redirect_url(
    server: SpotifyServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="spotify-etl")
    add_auth_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "auth",
            "--client-id",
            server.client_id,
            "--token-url",
            server.token_url,
            "--authorize-url",
            f"{server.base}/authorize",
        ]
    )
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", server.client_secret)
    shown: dict[str, str] = {}

    def paste(prompt: str) -> str:  # the user opens the printed URL, then pastes where the browser landed
        shown["out"] = capsys.readouterr().out
        url = next(line.strip() for line in shown["out"].splitlines() if "/authorize?" in line)
        state = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["state"]
        return f"http://127.0.0.1:8888/callback?code={server.auth_code}&state={state}"

    monkeypatch.setattr("builtins.input", paste)
    assert args.func(args) == 0

    assert (
        f"client_id={server.client_id}" in shown["out"]
        and "scope=playlist-read-private+playlist-read-collaborative" in shown["out"]
    )
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A8888%2Fcallback" in shown["out"]
    assert server.client_secret not in shown["out"]
    assert capsys.readouterr().out.strip().splitlines()[-1] == server.refresh_token
    (req,) = server.token_requests()
    assert req.form["grant_type"] == "authorization_code" and req.form["code"] == server.auth_code

    monkeypatch.setattr(
        "builtins.input", lambda prompt: f"http://127.0.0.1:8888/callback?code={server.auth_code}&state=forged"
    )
    assert args.func(args) == 1 and "state does not match" in capsys.readouterr().out
    assert len(server.token_requests()) == 1

    args.code = server.auth_code  # non-interactive: --code with the bare code
    assert args.func(args) == 0 and capsys.readouterr().out.strip().splitlines()[-1] == server.refresh_token
    args.code = "a-wrong-code-123"
    assert args.func(args) == 1 and "refused the authorisation code: error: invalid_grant" in capsys.readouterr().out
    assert [r.form["code"] for r in server.token_requests()] == [server.auth_code, server.auth_code, "a-wrong-code-123"]
