"""The Spotify client's reading of a 429's Retry-After (urllib3's parser, without its cap);
the client against a Spotify-compatible server is tested in tests/integration/test_spotify_extract.py."""

from __future__ import annotations

import email.utils
import time

import pytest
from spotify_etl.spotify.client import retry_after_seconds


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 0 "}, 0.0),
        ({"Retry-After": "86400"}, 86400.0),  # not capped: the message names the wait Spotify asked for
        ({"Retry-After": "soon"}, None),
        ({}, 1.0),  # Spotify always sends it; without one, a short wait
        (None, 1.0),
    ],
)
def test_retry_after_seconds(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after_seconds({"Retry-After": later}) or 0) <= 31
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert retry_after_seconds({"Retry-After": past}) == 0
