"""The Spotify Web API: the playlist source (``client``), the one-time ``spotify-etl auth``
command (``auth_command``) and the redaction of the connection's secrets (``redaction``)."""

from spotify_etl.raw_format import items_fields
from spotify_etl.spotify.auth_command import add_auth_command
from spotify_etl.spotify.client import (
    META_FIELDS,
    PlaylistNotAccessible,
    RateLimited,
    SpotifyAuthError,
    SpotifyError,
    SpotifyRequestError,
    SpotifySource,
    SpotifyTokenUnavailable,
    SpotifyUnavailable,
)

__all__ = [
    "META_FIELDS",
    "PlaylistNotAccessible",
    "RateLimited",
    "SpotifyAuthError",
    "SpotifyError",
    "SpotifyRequestError",
    "SpotifySource",
    "SpotifyTokenUnavailable",
    "SpotifyUnavailable",
    "add_auth_command",
    "items_fields",
]
