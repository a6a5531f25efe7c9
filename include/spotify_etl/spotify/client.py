"""The Spotify Web API as a :class:`~spotify_etl.extract.PlaylistSource`, through spotipy.

Credentials come from an Airflow connection: login = client id, password = client secret,
extras ``refresh_token`` (a user's, from ``spotify-etl auth``: required by default, since
Spotify serves a development-mode app the items only of playlists that user owns or
collaborates on), ``auth_mode`` (``client_credentials`` opts out of the refresh token, for
apps in extended quota mode only), ``api_base_url`` / ``token_url`` (any Spotify-compatible
server) and ``items_endpoint`` (``items``, the 2026 API and the default, or ``tracks``,
which Spotify closed to development-mode apps in 2026).

Failure policy, per request: 429 waits ``Retry-After`` only while it is at most
``max_retry_after`` seconds, otherwise the try fails at once so Airflow's retry schedule
takes over; the wait holds every request of the source (a chunk's playlists share it, see
:class:`RateLimitPause`); 5xx, connection errors and timeouts get ``retries`` transport retries with
exponential backoff, then fail; 401 refreshes the token once; 404/403 fail naming the
playlist and the 2024/2026 access rule that usually causes them. A connection that cannot
work (no refresh token, no secret...) is refused before any request. Secrets never reach an
exception text (ours are built here, ``from None``, with :func:`redaction.redact`) nor a log
record (:mod:`spotify_etl.spotify.redaction`).
"""

from __future__ import annotations

import base64
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOAuth
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from spotify_etl.errors import PipelineError
from spotify_etl.extract import CallCounter, PayloadError
from spotify_etl.ids import is_spotify_id
from spotify_etl.raw_format import TRACK_KEYS, items_fields, playlist_fields
from spotify_etl.settings import MAX_EXTRACT_IN_FLIGHT
from spotify_etl.spotify.redaction import install_log_filter, redact, remember_secret

log = logging.getLogger(__name__)

API_BASE_URL = "https://api.spotify.com/v1/"
TOKEN_URL = "https://accounts.spotify.com/api/token"  # noqa: S105 - a public endpoint, not a password
SCOPES = "playlist-read-private playlist-read-collaborative"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"  # Spotify refuses "localhost" redirect URIs since 2025
ITEMS_ENDPOINTS = tuple(TRACK_KEYS)  # ("items", "tracks")
AUTH_MODES = ("refresh_token", "client_credentials")
KNOWN_EXTRAS = {"refresh_token", "auth_mode", "api_base_url", "token_url", "items_endpoint"}
HTTP_RETRIES = 3  # transport retries of 5xx / connection errors / timeouts; then Airflow retries the task
BACKOFF_FACTOR = 1.0  # urllib3 waits 0, 2, 4 s between those retries
TIMEOUT = (5.0, 30.0)  # connect, read (s)
MAX_RATE_LIMIT_WAITS = 5  # 429 answers honoured per request before the try fails

META_FIELDS = playlist_fields()  # the metadata and the first page of entries, in one request


class TokenCache(MemoryCacheHandler):
    """Keeps tokens in memory only and registers each one as a secret when it arrives."""

    def save_token_to_cache(self, token_info: dict[str, Any]) -> None:
        remember_secret(token_info.get("access_token"), token_info.get("refresh_token"))
        old = (self.token_info or {}).get("refresh_token")
        if old and token_info.get("refresh_token") not in (None, old):
            log.warning(
                "Spotify issued a new refresh token; this run uses it but the connection keeps the old one. If "
                "later runs fail with invalid_grant, run `spotify-etl auth` again and update the connection."
            )
        super().save_token_to_cache(token_info)


# ---- errors -------------------------------------------------------------------------
class SpotifyError(PipelineError, RuntimeError):
    """A Spotify request failed; ``retryable`` says whether a later try can succeed."""


class SpotifyAuthError(SpotifyError, retryable=False, stops_chunk=True):
    """The connection's credentials cannot work, or Spotify refused them."""


class SpotifyTokenUnavailable(SpotifyAuthError, retryable=True):
    """The token endpoint failed for another reason than refused credentials: a later try may get a token."""


class PlaylistNotAccessible(SpotifyError, retryable=False):
    """404 or 403 on a playlist: Spotify does not serve it to this app or user."""


class SpotifyRequestError(SpotifyError, retryable=False):
    """Another 4xx answer: the request itself is wrong, so a retry gets the same answer."""


class RateLimited(SpotifyError, stops_chunk=True):
    """429 with a wait longer than allowed in-task: fail this try, let Airflow retry later."""


class SpotifyUnavailable(SpotifyError, stops_chunk=True):
    """5xx, connection errors or timeouts outlasted the transport retries."""


_NEEDS_USER_HELP = (
    "the Spotify connection has no extra 'refresh_token'. Spotify serves a development-mode app the items "
    "only of playlists that the authorising user owns or collaborates on (since Feb/Mar 2026); an app-only "
    "client-credentials token has no user and gets 403 on every playlist. What to do: run `spotify-etl auth` "
    "signed in as the user who owns or collaborates on the playlists and put the printed token in the "
    "connection's extra 'refresh_token'. Only an app in extended quota mode may instead set the extra "
    "'auth_mode' to 'client_credentials'"
)
_NOT_FOUND_HELP = (
    "Likely cause: Spotify serves no Spotify-owned editorial or algorithmic playlist (Top 50, Today's Top "
    "Hits, Discover Weekly...) to new or development-mode apps since 27 Nov 2024; otherwise the id is wrong "
    "or the playlist was deleted or is private to another user. What to do: check the id, or extract a "
    "playlist that the user behind the refresh token owns or collaborates on (copy the tracks into one)."
)
_FORBIDDEN_HELP = {
    "user": (
        "Since Feb/Mar 2026 Spotify serves a development-mode app the items only of playlists that the user "
        "behind the connection's refresh token owns or collaborates on, and this playlist is {owner}. What to "
        "do: extract a playlist that user owns (copy the tracks into one), have the owner add that user as a "
        "collaborator, or put the owner's refresh token in the connection's extra 'refresh_token' (run "
        "`spotify-etl auth` signed in as the owner)."
    ),
    "app": (
        "The connection uses client credentials (extra 'auth_mode': 'client_credentials'): that token has no "
        "user, and since Feb/Mar 2026 Spotify serves playlist items to it only for apps in extended quota mode. "
        "What to do: run `spotify-etl auth`, put the printed token in the connection's extra 'refresh_token' "
        "and remove 'auth_mode'."
    ),
    "tracks": (
        "Spotify closed GET /playlists/{id}/tracks to development-mode apps in Feb/Mar 2026. What to do: "
        "remove the connection's extra 'items_endpoint' so the extract uses /items (the default); only apps "
        "in extended quota mode can keep 'tracks'."
    ),
    "metadata": (
        "Likely cause: in development mode the user behind the token must be listed under User Management in "
        "the app's dashboard and the app owner needs Spotify Premium; otherwise the playlist is private to "
        "another user."
    ),
}
_INVALID_GRANTS = {"invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type"}


def _server_message(exc: SpotifyException) -> str:
    # spotipy's msg is "<url>:\n <server message>"
    return redact(str(exc.msg).split(":\n", 1)[-1].strip()) or "no message"


# Parses Retry-After as urllib3 does for its own retries (seconds or an HTTP date), without
# urllib3's cap: a wait beyond max_retry_after fails the try anyway, naming the real wait.
_RETRY_AFTER = Retry(total=0)
_RETRY_AFTER.retry_after_max = sys.maxsize


def retry_after_seconds(headers: Any) -> float | None:
    """The wait a 429's ``Retry-After`` asks for; None if it is unreadable."""
    value = (headers or {}).get("Retry-After")
    if value is None:
        return 1.0  # Spotify always sends it; without it, wait briefly rather than hammer
    try:
        return float(_RETRY_AFTER.parse_retry_after(str(value)))
    except InvalidHeader:
        return None


def _base_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpotifyAuthError(f"Spotify connection extra {name!r} must be an http(s) URL, got {redact(value)!r}")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "Spotify connection extra %s uses plain http on %s: tokens travel unencrypted", name, parts.hostname
        )
    return value


class RateLimitPause:
    """A 429's ``Retry-After`` held for every request of one source: the chunk's playlists in
    flight share the source, and the app's rate limit is theirs together, so none of them asks
    again before the wait one of them was told has passed. Bounded: each hold is at most the
    source's ``max_retry_after`` and each request honours at most MAX_RATE_LIMIT_WAITS holds."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self) -> None:
        # Bounded: each round waits out a hold, and the chunk's requests make at most this many holds at once.
        for _ in range(MAX_EXTRACT_IN_FLIGHT * MAX_RATE_LIMIT_WAITS):
            with self._lock:
                remaining = self._until - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(remaining)


def http_session(retries: int, backoff_factor: float) -> requests.Session:
    # Our own Retry instead of spotipy's built-in one: that one obeys any Retry-After (a 429
    # or 503 can put the task to sleep for an hour, spotipy issue #766) and reports exhausted
    # 5xx retries as a 429. Here 429 is never retried by urllib3 (SpotifySource decides),
    # Retry-After is ignored for 5xx, and the last 5xx response surfaces with its own status.
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff_factor,
        backoff_max=10.0,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "POST"}),
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=MAX_EXTRACT_IN_FLIGHT)  # a connection per request in flight
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _refuse_unusable(
    client_id: str, client_secret: str, refresh_token: str | None, auth_mode: str, items_endpoint: str
) -> None:
    """Raise :class:`SpotifyAuthError` for a connection that cannot work, before any request."""
    if not client_id or not client_secret:
        raise SpotifyAuthError(
            "the Spotify connection needs the app's client id as login and its client secret as password"
        )
    if items_endpoint not in ITEMS_ENDPOINTS:
        raise SpotifyAuthError(f"Spotify connection extra 'items_endpoint' must be one of {ITEMS_ENDPOINTS}")
    if auth_mode not in AUTH_MODES:
        raise SpotifyAuthError(f"Spotify connection extra 'auth_mode' must be one of {AUTH_MODES}")
    if auth_mode == "refresh_token" and not refresh_token:
        raise SpotifyAuthError(_NEEDS_USER_HELP)
    if auth_mode == "client_credentials" and refresh_token:
        raise SpotifyAuthError(
            "the Spotify connection sets both the extra 'refresh_token' and 'auth_mode': 'client_credentials'; "
            "remove 'auth_mode' to read as the token's user (the default)"
        )


def _auth_manager(
    client_id: str,
    client_secret: str,
    refresh_token: str | None,
    cache: TokenCache,
    session: requests.Session,
    timeout: float | tuple[float, float],
) -> SpotifyClientCredentials | SpotifyOAuth:
    """spotipy's token manager: a user's refresh token if there is one, else client credentials."""
    if not refresh_token:
        return SpotifyClientCredentials(
            client_id, client_secret, requests_session=session, requests_timeout=timeout, cache_handler=cache
        )
    auth = SpotifyOAuth(
        client_id,
        client_secret,
        redirect_uri=DEFAULT_REDIRECT_URI,
        scope=SCOPES,
        requests_session=session,
        requests_timeout=timeout,
        open_browser=False,
        cache_handler=cache,
    )
    # An expired cached token makes spotipy use the refresh-token grant, never the interactive flow.
    cache.token_info = {
        "access_token": "",
        "refresh_token": refresh_token,
        "expires_at": 0,
        "scope": auth.scope,
    }  # an empty placeholder, not a password
    return auth


# ---- the source ---------------------------------------------------------------------
class SpotifySource:
    """Playlist metadata and items pages from the Web API; implements ``PlaylistSource``."""

    name = "spotify_api"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        refresh_token: str | None = None,
        auth_mode: str = "refresh_token",
        api_base_url: str = API_BASE_URL,
        token_url: str = TOKEN_URL,
        items_endpoint: str = "items",
        max_retry_after: float = 120.0,
        retries: int = HTTP_RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
        timeout: float | tuple[float, float] = TIMEOUT,
    ) -> None:
        install_log_filter()
        _refuse_unusable(client_id, client_secret, refresh_token, auth_mode, items_endpoint)
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        remember_secret(client_secret, refresh_token, basic)
        self.calls = CallCounter()
        self.auth_mode = auth_mode
        self._pause = RateLimitPause()
        self._token_lock = threading.Lock()  # one token for all the threads that share the source
        self._owners: dict[str, str] = {}  # playlist id -> owner id, from its metadata, for 403 messages
        self.max_retry_after = max_retry_after
        self.items_endpoint = items_endpoint
        self.retries = retries
        self.api_base_url = _base_url(api_base_url.rstrip("/") + "/", "api_base_url")
        session = http_session(retries, backoff_factor)
        self._cache = TokenCache()
        auth = _auth_manager(client_id, client_secret, refresh_token, self._cache, session, timeout)
        auth.OAUTH_TOKEN_URL = _base_url(token_url, "token_url")  # instance attribute over spotipy's class constant
        self._sp = spotipy.Spotify(auth_manager=auth, requests_session=session, requests_timeout=timeout)
        self._sp.prefix = self.api_base_url

    @classmethod
    def from_connection(cls, conn: Any, *, max_retry_after: float = 120.0, **options: Any) -> SpotifySource:
        """Build from an Airflow connection (login, password, ``extra_dejson``).

        A connection that cannot work raises :class:`SpotifyAuthError` (not retryable) naming
        the connection, before any request.
        """
        extra = dict(conn.extra_dejson or {})
        unknown = sorted(set(extra) - KNOWN_EXTRAS)
        if unknown:
            log.warning("Spotify connection: ignoring unknown extras %s (known: %s)", unknown, sorted(KNOWN_EXTRAS))
        try:
            return cls(
                conn.login or "",
                conn.password or "",
                refresh_token=extra.get("refresh_token") or None,
                auth_mode=extra.get("auth_mode") or "refresh_token",
                api_base_url=extra.get("api_base_url") or API_BASE_URL,
                token_url=extra.get("token_url") or TOKEN_URL,
                items_endpoint=extra.get("items_endpoint") or "items",
                max_retry_after=max_retry_after,
                **options,
            )
        except SpotifyAuthError as exc:
            conn_id = getattr(conn, "conn_id", None)
            where = f"Airflow connection {conn_id!r}" if conn_id else "Spotify connection"
            raise SpotifyAuthError(f"no request made; {where}: {exc}") from None

    def __repr__(self) -> str:
        return f"SpotifySource(auth_mode={self.auth_mode!r}, api_base_url={self.api_base_url!r})"

    @property
    def api_calls(self) -> int:
        """API requests made by the calling thread (each playlist of a chunk runs on one thread)."""
        return self.calls.mine

    def playlist(self, playlist_id: str) -> dict[str, Any]:
        pid = self._checked(playlist_id)
        data = self._call(
            pid, "metadata", self._sp.playlist, pid, fields=META_FIELDS, additional_types=("track", "episode")
        )
        if not isinstance(data, dict):
            raise PayloadError(
                f"playlist {pid}: metadata response is not a JSON object; nothing landed for this playlist"
            )
        owner = data.get("owner")
        if isinstance(owner, dict) and owner.get("id"):
            self._owners[pid] = str(owner["id"])
        return data

    def items_page(self, playlist_id: str, offset: int, limit: int) -> Any:
        # Pages are requested by offset, never by following the server's `next` URL, so the
        # bearer token only ever goes to the configured API host.
        pid = self._checked(playlist_id)
        params = {
            "fields": items_fields(self.items_endpoint),
            "limit": limit,
            "offset": offset,
            "additional_types": "track,episode",
        }
        what = f"items page at offset {offset}"
        page = self._call(pid, what, self._sp._get, f"playlists/{pid}/{self.items_endpoint}", **params)
        if page is None:
            raise PayloadError(
                f"playlist {pid} page at offset {offset}: response body is not JSON; nothing landed for this playlist"
            )
        return page

    # ---- helpers ---------------------------------------------------------------
    @staticmethod
    def _checked(playlist_id: str) -> str:
        if not is_spotify_id(playlist_id):
            raise ValueError(f"invalid playlist id {playlist_id!r}")
        return playlist_id

    def _expire_token(self) -> None:
        if isinstance(self._cache.token_info, dict):
            self._cache.token_info["expires_at"] = 0

    def _call(self, pid: str, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        waits, refreshed = 0, False
        while True:
            self._pause.wait()
            self.calls.add()
            try:
                with self._token_lock:  # the first request's thread fetches the token, the others then reuse it
                    self._sp._auth_headers()
                return func(*args, **kwargs)
            except SpotifyException as exc:
                status = exc.http_status
                if status == 429:
                    delay = retry_after_seconds(exc.headers)
                    if delay is None or delay > self.max_retry_after or waits >= MAX_RATE_LIMIT_WAITS:
                        raise self._rate_limited(pid, what, exc, delay, waits) from None
                    waits += 1
                    log.warning(
                        "playlist %s %s: Spotify rate limit (429); waiting %.1f s as Retry-After asks, and so do "
                        "the chunk's other requests",
                        pid,
                        what,
                        delay,
                    )
                    self._pause.hold(delay)
                    continue
                if status == 401 and not refreshed:
                    refreshed = True
                    log.info(
                        "playlist %s %s: access token rejected (401: %s); refreshing it once",
                        pid,
                        what,
                        _server_message(exc),
                    )
                    self._expire_token()
                    continue
                raise self._http_error(pid, what, exc, refreshed) from None
            except SpotifyOauthError as exc:
                refused = redact(str(getattr(exc, "error", "") or "")) in _INVALID_GRANTS
                raise (SpotifyAuthError if refused else SpotifyTokenUnavailable)(
                    f"playlist {pid} {what}: the Spotify token endpoint refused the connection's credentials "
                    f"({self.auth_mode}): {redact(str(exc))}. Check the client id/secret and, for user access, "
                    "that the refresh token is current (renew it with `spotify-etl auth`)"
                ) from None
            except requests.RequestException as exc:
                raise SpotifyUnavailable(
                    f"playlist {pid} {what}: request to Spotify failed after {self.retries} retries with backoff: "
                    f"{type(exc).__name__}: {redact(str(exc))}; Airflow retries the task later"
                ) from None

    def _forbidden_help(self, pid: str, what: str) -> str:
        if what == "metadata":
            return _FORBIDDEN_HELP["metadata"]
        if self.items_endpoint == "tracks":
            return _FORBIDDEN_HELP["tracks"]
        owner = f"owned by {self._owners[pid]!r}" if pid in self._owners else "another user's"
        token = "app" if self.auth_mode == "client_credentials" else "user"
        return _FORBIDDEN_HELP[token].format(owner=owner)

    def _rate_limited(self, pid: str, what: str, exc: SpotifyException, delay: float | None, waits: int) -> RateLimited:
        if delay is not None and delay <= self.max_retry_after:
            why = f"still rate limited after {waits} waits"
        else:
            shown = "an unreadable Retry-After" if delay is None else f"Retry-After {delay:.0f} s"
            why = f"{shown} exceeds SPOTIFY_ETL_MAX_RETRY_AFTER={self.max_retry_after:.0f} s"
        return RateLimited(
            f"playlist {pid} {what}: Spotify rate limit (429): {why}; failing this try so Airflow retries it later"
        )

    def _http_error(self, pid: str, what: str, exc: SpotifyException, refreshed: bool) -> SpotifyError:
        status, message = exc.http_status, _server_message(exc)
        head = f"playlist {pid} {what}: Spotify answered {status} ({message})"
        if status == 404:
            return PlaylistNotAccessible(f"{head}. {_NOT_FOUND_HELP}")
        if status == 403:
            return PlaylistNotAccessible(f"{head}. {self._forbidden_help(pid, what)}")
        if status == 401:
            return SpotifyAuthError(
                f"{head} again after refreshing the access token; check the connection's client id/secret"
                + (" and refresh token" if self.auth_mode == "refresh_token" else "")
            )
        if status >= 500:
            return SpotifyUnavailable(
                f"{head} after {self.retries} retries with backoff; Airflow retries the task later"
            )
        return SpotifyRequestError(head)
