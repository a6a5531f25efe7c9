"""Playlist id parsing: what is accepted, and hostile input rejected before any request or path."""

from __future__ import annotations

import pytest
from spotify_etl.ids import InvalidPlaylistId, is_spotify_id, parse_playlist_id, parse_playlist_ids
from spotify_etl.lake import Lake

PID = "4dn0iEoAxn69ea0Tyov8V5"


@pytest.mark.parametrize(
    "value",
    [
        PID,
        f"  {PID}\n",
        f"spotify:playlist:{PID}",
        f"https://open.spotify.com/playlist/{PID}",
        f"https://open.spotify.com/playlist/{PID}/",
        f"https://open.spotify.com/playlist/{PID}?si=a1b2c3d4e5f6&pt=abc",
        f"https://open.spotify.com/playlist/{PID}?si=x#fragment",
        f"http://open.spotify.com/playlist/{PID}",
        f"https://open.spotify.com/intl-de/playlist/{PID}",
        f"https://open.spotify.com/intl-pt-br/playlist/{PID}?si=1",
        f"https://open.spotify.com/embed/playlist/{PID}",
        f"https://play.spotify.com/playlist/{PID}",
    ],
)
def test_ids_uris_and_urls_give_the_bare_id(value: str) -> None:
    assert parse_playlist_id(value) == PID


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        PID[:21],  # 21 characters
        PID + "x",  # 23 characters
        f"{PID[:10]} {PID[11:]}",  # a space inside
        f"../{PID}",
        f"{PID}/../../etc",
        "../../../../etc/passwd",
        "/etc/passwd",
        f"/tmp/{PID}",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        f"https://open.spotify.com/playlist/%2e%2e%2f{PID}",
        f"https://open.spotify.com/playlist/{PID}%2f..%2f",
        f"https://open.spotify.com/playlist/{PID}/../../secret",
        f"https://open.spotify.com/playlist/..%2F{PID[:19]}",
        "４dn0iEoAxn69ea0Tyov8V5",  # fullwidth digit
        "4dn0iEoAxn69ea0Tyov8V５",
        "4dn0iЕoAxn69ea0Tyov8V5",  # Cyrillic Е
        "4dn0iEoAxn69ea0Tyov8V5\u200b",  # zero-width space (not stripped)
        "4dn0iEoAxn69ea0Tyov8V\u00e9",  # é
        "4dn0iEoAxn69ea0Tyov8V*",  # S3 / glob metacharacters
        "4dn0iEoAxn69ea0Tyov8V?",
        "4dn0iEoAxn69ea0Tyo{v8,V5}",
        "4dn0iEoAxn69ea0Tyov8V5;rm -rf /",
        "4dn0iEoAxn69ea0Tyo\nv8V5",
        "4dn0iEoAxn69ea0Tyov8V5\x00",
        f"spotify:playlist:{PID[:21]}",
        f"spotify:track:{PID}",
        f"spotify:user:spotify:playlist:{PID}:extra",
        f"spotify:playlist:{PID}?si=1",
        f"https://evil.example/playlist/{PID}",
        f"https://open.spotify.com.evil.example/playlist/{PID}",
        f"https://open-spotify.com/playlist/{PID}",
        f"ftp://open.spotify.com/playlist/{PID}",
        f"file:///open.spotify.com/playlist/{PID}",
        f"s3://bucket/raw/playlist_id={PID}.json",
        f"https://open.spotify.com/track/{PID}",
        f"https://open.spotify.com/album/{PID}",
        f"https://open.spotify.com/playlist/{PID[:21]}",
        f"https://open.spotify.com/intl-deu/playlist/{PID}",
        f"//open.spotify.com/playlist/{PID}",
        f"open.spotify.com/playlist/{PID}",
    ],
)
def test_anything_else_is_rejected_with_a_message_showing_the_input(value: str) -> None:
    with pytest.raises(InvalidPlaylistId, match="not a Spotify playlist id, URI or URL") as err:
        parse_playlist_id(value)
    assert "22 base62" in str(err.value)
    assert not is_spotify_id(value)


@pytest.mark.parametrize("value", [None, 22, ["x"], {"id": PID}, PID.encode()])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(InvalidPlaylistId, match="must be a string"):
        parse_playlist_id(value)


def test_long_hostile_input_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidPlaylistId) as err:
        parse_playlist_id("../" * 200)
    assert len(str(err.value)) < 300 and "..." in str(err.value)


def test_lists_report_every_bad_entry_at_once_and_drop_duplicates() -> None:
    other = "1h9q8vXXDl2vHOmwdsuXms"
    assert parse_playlist_ids(
        [PID, f"spotify:playlist:{PID}", other, f"https://open.spotify.com/playlist/{other}?si=1"]
    ) == [PID, other]
    with pytest.raises(InvalidPlaylistId) as err:
        parse_playlist_ids([PID, "../x", "spotify:track:abc"])
    assert "'../x'" in str(err.value) and "'spotify:track:abc'" in str(err.value)
    with pytest.raises(InvalidPlaylistId, match="no playlists given"):
        parse_playlist_ids([])


@pytest.mark.parametrize("value", ["../x", f"{PID}/..", "4dn0iEoAxn69ea0Tyov8V*", "4dn0iЕoAxn69ea0Tyov8V5"])
def test_the_lake_refuses_to_build_a_path_from_a_bad_id(lake: Lake, value: str) -> None:
    with pytest.raises(ValueError, match="invalid playlist id"):
        lake.raw_path("2026-11-25", value)


def test_ten_thousand_bad_entries_give_a_bounded_message_naming_the_first_few_and_the_count() -> None:
    """10,000 bad ids once gave one 1.5 MB line (in the task log and every alert)."""
    with pytest.raises(InvalidPlaylistId) as err:
        parse_playlist_ids([f"bad-{i:05}-" + "x" * 150 for i in range(10_000)])
    message = str(err.value)
    assert len(message) < 4_000
    assert "'bad-00000-" in message and "'bad-00009-" in message and "bad-00010-" not in message
    assert message.endswith("; and 9,990 more")
