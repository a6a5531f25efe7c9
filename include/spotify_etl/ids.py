"""Playlist identifier parsing: the only way user input becomes a playlist id.

A playlist id is 22 base62 characters. IDs, ``spotify:playlist:<id>`` URIs and
``https://open.spotify.com/playlist/<id>`` URLs (optionally with ``/intl-xx/`` and a
query string) are accepted; anything else is rejected before any request is made or
any path is built, so nothing user-supplied reaches a file path or an S3 key unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from spotify_etl.errors import PipelineError, first_few

_ID = re.compile(r"[0-9A-Za-z]{22}")
_URI = re.compile(r"spotify:playlist:([0-9A-Za-z]{22})")
_URL_PATH = re.compile(r"/(?:intl-[a-z]{2}(?:-[a-z]{2})?/|embed/)?playlist/([0-9A-Za-z]{22})/?")
_ALLOWED_HOSTS = {"open.spotify.com", "play.spotify.com"}


class InvalidPlaylistId(PipelineError, ValueError, retryable=False):
    """Raised for anything that is not a playlist id, URI or URL."""


def is_spotify_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def parse_playlist_id(value: object) -> str:
    """Return the 22-character playlist id in ``value`` or raise :class:`InvalidPlaylistId`."""
    if not isinstance(value, str):
        raise InvalidPlaylistId(f"playlist must be a string, got {type(value).__name__}")
    text = value.strip()
    if _ID.fullmatch(text):
        return text
    if match := _URI.fullmatch(text):
        return match.group(1)
    if text.startswith(("https://", "http://")):
        parts = urlsplit(text)
        if parts.hostname in _ALLOWED_HOSTS and (match := _URL_PATH.fullmatch(parts.path)):
            return match.group(1)
    shown = text if len(text) <= 80 else text[:77] + "..."
    raise InvalidPlaylistId(
        f"not a Spotify playlist id, URI or URL: {shown!r} (expected 22 base62 characters, "
        "spotify:playlist:<id> or https://open.spotify.com/playlist/<id>)"
    )


def parse_playlist_ids(values: Iterable[object]) -> list[str]:
    """Parse every value, report the bad ones at once (the first few and how many more), and drop
    duplicates keeping order."""
    ids: list[str] = []
    errors: list[str] = []
    for value in values:
        try:
            playlist_id = parse_playlist_id(value)
        except InvalidPlaylistId as exc:
            errors.append(str(exc))
            continue
        if playlist_id not in ids:
            ids.append(playlist_id)
    if errors:
        raise InvalidPlaylistId(first_few(errors, sep="; "))
    if not ids:
        raise InvalidPlaylistId("no playlists given")
    return ids
