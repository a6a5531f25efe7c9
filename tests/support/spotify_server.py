"""A local HTTP server that speaks the parts of the Spotify Web API the extract uses.

It serves, on 127.0.0.1 and a free port, in a background thread:

* ``POST /api/token``: client-credentials, refresh-token and authorization-code grants,
  checking the HTTP Basic client credentials like Spotify's accounts service;
* ``GET /v1/playlists/{id}``, ``/v1/playlists/{id}/items`` (2026 API) and
  ``/v1/playlists/{id}/tracks`` (the older endpoint), with bearer-token checks, offset/limit
  paging (400 for a limit above 50, as ``/items`` answers) and Spotify's ``fields`` filter
  grammar (``a,b.c,d(e,f(g))``) applied to the answer, so tests see what Spotify would send.
  ``GET /v1/playlists/{id}`` embeds the first page of entries (:data:`EMBEDDED_LIMIT`, as in the
  recorded responses) for a token whose user may read them, and is metadata only for anyone
  else (Spotify's February 2026 changelog: "Will only return an items object for the user's
  playlist, other playlists will only provide metadata").

Access follows the rules Spotify applies to a **development-mode** app since Feb/Mar 2026
(the default; ``extended_quota=True`` serves like an app in extended quota mode, which the
2026 changes do not affect):

* a token knows its user: the refresh-token and authorization-code grants issue tokens of
  :attr:`SpotifyServer.user_id`; client-credentials tokens have no user;
* ``/items`` is served only to a user who owns the playlist (its recorded ``owner.id``) or
  is one of its :attr:`Playlist.collaborators`; anyone else, and every app-only token, gets
  403. By default the server's user collaborates on every recorded playlist (the setup the
  README asks for); a test takes one away with ``server.playlists[pid].collaborators.clear()``;
* ``/tracks`` answers 403, and tracks carry no ``popularity``.

The 403 body is Spotify's generic ``{"error": {"status": 403, "message": "Forbidden"}}``
(as reported for the closed ``/tracks`` endpoint); the exact text Spotify sends for
``/items`` could not be checked offline.

Payloads are the real recorded responses in ``tests/fixtures/spotify_api``; whole
playlists are derived from them in :func:`recorded_playlists` (documented there) instead
of being copied into new files. Faults (429 with ``Retry-After``, 5xx, non-JSON bodies,
slow answers...) are scripted per path with :meth:`SpotifyServer.fail`, and expired tokens
with :meth:`SpotifyServer.expire_tokens`. Every request is recorded for assertions, with the
time it arrived, and :attr:`SpotifyServer.max_in_flight` is the most requests it was ever
answering at once.

Spotify serves only a playlist's current state, so history is made by changing it between two
runs: :meth:`SpotifyServer.edit` replaces a playlist's entries with a new ``snapshot_id``, as a
user's edit does, and :meth:`SpotifyServer.serve_history_day` plays one date of the history
scenario (songs added, removed, moved, a duplicate, a song that leaves and returns).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from spotify_etl.spotify.client import SpotifySource

from tests.support.fields import apply_fields, parse_fields

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "spotify_api"
LSD = "4dn0iEoAxn69ea0Tyov8V5"  # LSDream Theatre: 200 recorded entries (pages 1 and 2)
RAP_RU = "1h9q8vXXDl2vHOmwdsuXms"  # Rap RU: 4 entries, Cyrillic names
ITEMS_2026 = "5RDmNvuz0prl7bLqtZNkDe"  # the 2026 /items shape: `item` key, no popularity
HISTORY = "4Hist0ryP1ay1istChange"  # the playlist the server changes from one date to the next (serve_history_day)
# HISTORY's entries on each date of the history scenario, as indexes into SpotifyServer.history_songs():
# day 1: 0 and 1 swap places, 3 leaves, 4 comes in twice; day 2: 0 leaves, 3 comes back, 5 comes in.
HISTORY_DAYS = ([0, 1, 2, 3], [1, 0, 2, 4, 4], [1, 2, 4, 3, 5])
MAX_LIMIT = 50
EMBEDDED_LIMIT = 100  # entries GET /playlists/{id} embeds: the recorded `tracks` pages hold 100 (limit 100)
RESET = 0  # a Fault "status": close the connection with a TCP reset instead of answering


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "message": message}}


# ---- the served data --------------------------------------------------------------------
@dataclass
class Playlist:
    meta: dict[str, Any]  # the GET /playlists/{id} body without embedded entries
    entries: list[dict[str, Any]]
    total: int | None = None  # what the API claims; None: len(entries)
    collaborators: set[str] = field(default_factory=set)  # user ids besides the owner who may read the items

    @property
    def owner(self) -> str | None:
        owner = self.meta.get("owner")
        return owner.get("id") if isinstance(owner, dict) else None


def _meta(recorded: dict[str, Any]) -> dict[str, Any]:
    meta = copy.deepcopy(recorded)
    meta.pop("tracks", None)
    return meta


def recorded_playlists() -> dict[str, Playlist]:
    """Whole playlists derived from the recordings (item bodies unchanged).

    * LSDream Theatre: metadata from ``playlist_LSDreamTheatre_get_playlist.json``; entries
      are the two recorded consecutive pages (offset 0 and 100). The third page was never
      recorded, so the served total is 200, not the recorded 244.
    * Rap RU: metadata and its 4 entries from ``playlist_RapRU_get_playlist.json``.
    * 2026 shape: the recorded mid-playlist ``/items`` page (5 of 371) served as a whole
      playlist of 5; its metadata is written here (none was recorded).
    """
    lsd_meta = fixture("playlist_LSDreamTheatre_get_playlist.json")
    lsd_entries = lsd_meta["tracks"]["items"] + fixture("playlist_LSDreamTheatre_tracks_page2_offset100.json")["items"]
    rap = fixture("playlist_RapRU_get_playlist.json")
    new = fixture("playlist_items_new_items_endpoint_2026.json")
    owner_2026 = new["items"][0]["added_by"]["id"]
    return {
        LSD: Playlist(_meta(lsd_meta), lsd_entries),
        RAP_RU: Playlist(_meta(rap), rap["tracks"]["items"]),
        ITEMS_2026: Playlist(
            {
                "id": ITEMS_2026,
                "name": "2026 items page",
                "owner": {"id": owner_2026, "display_name": owner_2026},
                "snapshot_id": "AAAAA2026snapshot",
                "type": "playlist",
            },
            new["items"],
        ),
    }


@dataclass
class Fault:
    path: re.Pattern[str]
    status: int
    body: bytes
    headers: dict[str, str]
    times: int
    delay: float


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    authorization: str
    form: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when it arrived


class SpotifyServer:
    """The fake Spotify. ``user_id`` is the user behind ``refresh_token`` and ``auth_code``;
    ``extended_quota`` lifts the development-mode rules (module docstring); ``items_key``
    is the entry key ``/items`` answers with: ``item`` (2026), or ``both`` (``item`` plus
    its deprecated copy ``track``, as Spotify sends during the deprecation window);
    ``latency``: seconds every answer waits first, a network round trip to the real service
    (0: as fast as this machine answers)."""

    def __init__(
        self,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret-9f8e7d6c",  # noqa: S107 - test-only credentials
        refresh_token: str = "test-refresh-token-1a2b3c4d",  # noqa: S107
        *,
        user_id: str = "test-user",
        extended_quota: bool = False,
        items_key: str = "item",
        auth_code: str = "test-auth-code-5e6f7a8b",
        latency: float = 0.0,
    ) -> None:
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.user_id, self.extended_quota = user_id, extended_quota
        self.items_key, self.auth_code, self.latency = items_key, auth_code, latency
        self.playlists = recorded_playlists()
        for playlist in self.playlists.values():
            playlist.collaborators.add(user_id)
        self.requests: list[Request] = []
        self.in_flight = self.max_in_flight = 0  # requests being answered now / at most at once
        self.issued_tokens: list[str] = []
        self._valid: dict[str, str | None] = {}  # access token -> its user (None: client credentials)
        self._expired: set[str] = set()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        # shutdown() waits for serve_forever's next poll: 0.5 s by default, at every server's stop.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    # ---- lifecycle ----------------------------------------------------------------
    def __enter__(self) -> SpotifyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def api_base_url(self) -> str:
        return f"{self.base}/v1/"

    @property
    def token_url(self) -> str:
        return f"{self.base}/api/token"

    def connection(self, *, user: bool = True, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (as in ``AIRFLOW_CONN_SPOTIFY_DEFAULT``) pointing here;
        ``user=False`` leaves out the refresh token."""
        extras = {"api_base_url": self.api_base_url, "token_url": self.token_url, **extra}
        if user:
            extras["refresh_token"] = self.refresh_token
        return {"conn_type": "generic", "login": self.client_id, "password": self.client_secret, "extra": extras}

    def source(self, **options: Any) -> SpotifySource:
        """The extract's Spotify client, with a user token, pointed here (fast backoff for tests)."""
        return SpotifySource(
            self.client_id,
            self.client_secret,
            refresh_token=self.refresh_token,
            api_base_url=self.api_base_url,
            token_url=self.token_url,
            **{"retries": 1, "backoff_factor": 0.01, **options},
        )

    def secrets(self) -> list[str]:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return [self.client_secret, self.refresh_token, basic, *self.issued_tokens]

    # ---- scripting -------------------------------------------------------------------
    def fail(
        self,
        path: str,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests whose path and query (``/v1/...?a=b``) match regex ``path``.

        ``status`` :data:`RESET` answers nothing and resets the connection instead.
        """
        data = (
            body
            if isinstance(body, bytes)
            else json.dumps(body if body is not None else error_body(status, "x")).encode()
        )
        with self._lock:
            self._faults.append(Fault(re.compile(path), status, data, headers or {}, times, delay))

    def expire_tokens(self) -> None:
        """Every access token issued so far now gets 401 "The access token expired"."""
        with self._lock:
            self._expired |= set(self._valid)
            self._valid.clear()

    def api_requests(self, suffix: str = "") -> list[Request]:
        return [r for r in self.requests if r.path.startswith("/v1/") and r.path.endswith(suffix)]

    def token_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/api/token"]

    def edit(self, playlist_id: str, entries: list[dict[str, Any]]) -> None:
        """Replace the playlist's entries as a user's edit does: Spotify gives it a new snapshot_id."""
        playlist = self.playlists[playlist_id]
        playlist.entries = [copy.deepcopy(e) for e in entries]
        playlist.meta["snapshot_id"] = f"{playlist_id}-{secrets.token_hex(8)}"

    def history_songs(self) -> list[dict[str, Any]]:
        """Six entries of LSDream Theatre that each become a different song (the history scenario's)."""
        songs: dict[str, dict[str, Any]] = {}
        for entry in self.playlists[LSD].entries:
            track = entry.get("track") or entry.get("item") or {}
            if not entry.get("is_local") and track.get("id") and track.get("duration_ms"):
                songs.setdefault(track["id"], entry)
        return list(songs.values())[:6]

    def serve_history_day(self, day: int) -> None:
        """The history scenario's ``day`` (0, 1 or 2, one per date a test runs): :data:`HISTORY`
        (created on day 0, owned by the server's user) holds :data:`HISTORY_DAYS`'s entries, and on
        day 2 Rap RU has lost its last entry; each change gets a new snapshot_id."""
        songs = self.history_songs()
        if HISTORY not in self.playlists:
            meta = {
                "id": HISTORY,
                "name": "History in the making",
                "description": "changes every day",
                "public": False,
                "collaborative": True,
                "owner": {"id": self.user_id, "display_name": "Test User"},
                "followers": {"href": None, "total": 3},
                "snapshot_id": "",
                "type": "playlist",
            }
            self.playlists[HISTORY] = Playlist(meta, [])
        self.edit(HISTORY, [songs[i] for i in HISTORY_DAYS[day]])
        if day == 2:
            self.edit(RAP_RU, self.playlists[RAP_RU].entries[:-1])

    # ---- answers ---------------------------------------------------------------------
    def _fault(self, target: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.path.search(target):
                    fault.times -= 1
                    return fault
        return None

    def _issue(self, user: str | None) -> str:
        token = "AT-" + secrets.token_hex(12)
        with self._lock:
            self._valid[token] = user
            self.issued_tokens.append(token)
        return token

    def token(self, req: Request) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if req.authorization != expected:
            return 401, {"error": "invalid_client", "error_description": "Invalid client"}
        grant = req.form.get("grant_type")
        body: dict[str, Any] = {"token_type": "Bearer", "expires_in": 3600}
        if grant == "client_credentials":
            return 200, {**body, "access_token": self._issue(None)}
        if grant == "refresh_token":
            if req.form.get("refresh_token") != self.refresh_token:
                return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
            return 200, {**body, "access_token": self._issue(self.user_id), "scope": req.form.get("scope", "")}
        if grant == "authorization_code":
            if req.form.get("code") != self.auth_code:
                return 400, {"error": "invalid_grant", "error_description": "Invalid authorization code"}
            return 200, {**body, "access_token": self._issue(self.user_id), "refresh_token": self.refresh_token}
        return 400, {"error": "unsupported_grant_type"}

    def api(self, req: Request) -> tuple[int, Any]:
        token = req.authorization.removeprefix("Bearer ")
        if token in self._expired:
            return 401, fixture("error_401_access_token_expired.json")
        if not req.authorization.startswith("Bearer ") or token not in self._valid:
            return 401, fixture("error_401_invalid_access_token.json")
        match = re.fullmatch(r"/v1/playlists/([^/]+)(?:/(items|tracks))?", req.path)
        if not match:
            return 404, error_body(404, "Service not found")
        playlist = self.playlists.get(match.group(1))
        if playlist is None:
            return 404, fixture("error_404_non_existing_id.json")
        fields = parse_fields(req.query["fields"]) if req.query.get("fields") else None
        endpoint = match.group(2)
        if not endpoint:
            body = dict(playlist.meta)
            key = "tracks" if self.extended_quota else "items"  # the 2026 rename applies to development mode
            if self.may_read(self._valid.get(token), playlist, "items"):
                body[key] = self._page(match.group(1), key, playlist, 0, EMBEDDED_LIMIT)
            return 200, apply_fields(fields, body)
        if not self.may_read(self._valid.get(token), playlist, endpoint):
            return 403, error_body(403, "Forbidden")
        try:
            offset, limit = int(req.query.get("offset", 0)), int(req.query.get("limit", 20))
        except ValueError:
            return 400, error_body(400, "Invalid offset or limit")
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return 400, error_body(400, "Invalid limit")
        return 200, apply_fields(fields, self._page(match.group(1), endpoint, playlist, offset, limit))

    def may_read(self, user: str | None, playlist: Playlist, endpoint: str) -> bool:
        """Whether a token of ``user`` (None: client credentials) gets the playlist's entries."""
        if self.extended_quota:
            return True
        return endpoint == "items" and user is not None and (user == playlist.owner or user in playlist.collaborators)

    def _page(self, pid: str, endpoint: str, playlist: Playlist, offset: int, limit: int) -> dict[str, Any]:
        keys = {"item": ("item",), "both": ("item", "track")}[self.items_key] if endpoint == "items" else ("track",)
        entries = []
        for entry in playlist.entries[offset : offset + limit]:
            entry = dict(entry)
            body = entry.pop("item", None) or entry.pop("track", None)
            if isinstance(body, dict) and not self.extended_quota:
                body = {k: v for k, v in body.items() if k != "popularity"}  # not sent to development-mode apps
            entries.append({**entry, **dict.fromkeys(keys, body)})
        total = len(playlist.entries) if playlist.total is None else playlist.total
        link = f"{self.api_base_url}playlists/{pid}/{endpoint}?offset={{}}&limit={limit}"
        return {
            "href": link.format(offset),
            "items": entries,
            "limit": limit,
            "next": link.format(offset + limit) if offset + limit < len(playlist.entries) else None,
            "offset": offset,
            "previous": link.format(max(0, offset - limit)) if offset else None,
            "total": total,
        }


def _handler(server: SpotifyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle the body waits for the ACK of the
        # headers, which the client delays (~40 ms per request on Linux); Spotify answers at once.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _record(self, form: dict[str, str]) -> Request:
            parts = urlsplit(self.path)
            req = Request(
                self.command, parts.path, dict(parse_qsl(parts.query)), self.headers.get("Authorization", ""), form
            )
            with server._lock:
                server.requests.append(req)
            return req

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
            for name, value in all_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _answer(self, req: Request, compute: Any) -> None:
            with server._lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._answer_now(req, compute)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _answer_now(self, req: Request, compute: Any) -> None:
            time.sleep(server.latency)
            fault = server._fault(self.path)
            if fault is not None:
                time.sleep(fault.delay)
                if fault.status == RESET:
                    self._reset()
                    return
                self._send(fault.status, fault.body, fault.headers)
                return
            status, body = compute(req)
            self._send(status, json.dumps(body, ensure_ascii=False).encode())

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout makes close() send RST: the client sees
            # "Connection reset by peer" mid-request, as behind a dropping proxy.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def do_GET(self) -> None:
            self._answer(self._record({}), server.api)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            req = self._record(form)
            if req.path != "/api/token":
                self._send(405, b'{"error":{"status":405,"message":"Method not allowed"}}')
                return
            self._answer(req, server.token)

    return Handler
