"""``spotify-etl auth``: get a user's refresh token once, by the Authorization Code flow.

It prints Spotify's authorise URL, the user signs in and allows access, and the code (or
the whole redirect URL) pasted back is exchanged for a refresh token, printed for the
Spotify connection's extra ``refresh_token``. The client secret is read from
``SPOTIFY_CLIENT_SECRET`` or prompted for, never taken as an argument.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import warnings
from typing import Any

import requests
from spotipy.exceptions import SpotifyOauthError
from spotipy.oauth2 import SpotifyOAuth

from spotify_etl.spotify.client import (
    BACKOFF_FACTOR,
    DEFAULT_REDIRECT_URI,
    HTTP_RETRIES,
    SCOPES,
    TIMEOUT,
    TOKEN_URL,
    SpotifyAuthError,
    TokenCache,
    http_session,
)
from spotify_etl.spotify.redaction import install_log_filter, redact, remember_secret

AUTHORIZE_URL = "https://accounts.spotify.com/authorize"


def _oauth(
    client_id: str, client_secret: str, redirect_uri: str, token_url: str, authorize_url: str, state: str
) -> SpotifyOAuth:
    oauth = SpotifyOAuth(
        client_id,
        client_secret,
        redirect_uri=redirect_uri,
        scope=SCOPES,
        state=state,
        open_browser=False,
        cache_handler=TokenCache(),
        requests_timeout=TIMEOUT,
        requests_session=http_session(HTTP_RETRIES, BACKOFF_FACTOR),
    )
    oauth.OAUTH_TOKEN_URL = token_url
    oauth.OAUTH_AUTHORIZE_URL = authorize_url
    return oauth


def exchange_code(oauth: SpotifyOAuth, answer: str, check_state: bool = True) -> str:
    """Exchange the pasted code or redirect URL for a refresh token."""
    answer = answer.strip()
    code = answer
    if "://" in answer:
        state, code = SpotifyOAuth.parse_auth_response_url(answer)
        # A URL given with --code comes from an earlier run, whose random state we cannot know.
        if check_state and state != oauth.state:
            raise SpotifyAuthError("the redirect URL's state does not match this authorisation; start again")
        if not code:
            raise SpotifyAuthError("the redirect URL has no 'code' parameter")
    remember_secret(code)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # as_dict=True is the way to get the refresh token
            token_info = oauth.get_access_token(code, as_dict=True, check_cache=False)
    except SpotifyOauthError as exc:
        raise SpotifyAuthError(f"Spotify refused the authorisation code: {redact(str(exc))}") from None
    except requests.RequestException as exc:
        raise SpotifyAuthError(
            f"could not reach the token endpoint: {type(exc).__name__}: {redact(str(exc))}"
        ) from None
    refresh = (token_info or {}).get("refresh_token")
    if not refresh:
        raise SpotifyAuthError("the token endpoint answered without a refresh token")
    return str(refresh)


def run_auth(args: argparse.Namespace) -> int:
    install_log_filter()
    client_id = args.client_id or os.environ.get("SPOTIFY_CLIENT_ID", "")
    client_secret = os.environ.get("SPOTIFY_CLIENT_SECRET") or getpass.getpass("Client secret (not echoed): ")
    if not client_id or not client_secret:
        print("error: give --client-id (or SPOTIFY_CLIENT_ID) and the client secret (SPOTIFY_CLIENT_SECRET or prompt)")
        return 2
    remember_secret(client_secret)
    oauth = _oauth(
        client_id, client_secret, args.redirect_uri, args.token_url, args.authorize_url, state=secrets.token_urlsafe(16)
    )
    answer = args.code
    if not answer:
        print(f"1. Add this redirect URI to your app in the Spotify developer dashboard: {args.redirect_uri}")
        print("2. Open this URL as the user whose playlists the pipeline reads, and allow access:")
        print(f"   {oauth.get_authorize_url()}")
        try:
            answer = input("3. Paste the URL your browser was redirected to (or just its code): ")
        except EOFError:
            print("\nerror: no redirect URL or code was given")
            return 1
    try:
        refresh_token = exchange_code(oauth, answer, check_state=not args.code)
    except SpotifyAuthError as exc:
        print(f"error: {exc}")
        return 1
    print('Refresh token (store it in the Spotify connection\'s extra as "refresh_token"; treat it like a password):')
    print(refresh_token)
    return 0


def add_auth_command(subparsers: Any) -> None:
    """Register ``auth`` on an argparse subparsers object; dispatch with ``args.func(args)``."""
    parser = subparsers.add_parser(
        "auth",
        help="get a Spotify refresh token once (Authorization Code flow)",
        description="Prints the Spotify authorise URL, then exchanges the code for a refresh token. The client "
        "secret is read from SPOTIFY_CLIENT_SECRET or prompted for, never taken as an argument.",
    )
    parser.add_argument("--client-id", default="", help="the app's client id (default: $SPOTIFY_CLIENT_ID)")
    parser.add_argument("--redirect-uri", default=DEFAULT_REDIRECT_URI, help="a redirect URI registered for the app")
    parser.add_argument("--code", default="", help="the redirect URL or code (default: asked for interactively)")
    parser.add_argument("--authorize-url", default=AUTHORIZE_URL, help=argparse.SUPPRESS)
    parser.add_argument("--token-url", default=TOKEN_URL, help="token endpoint of a Spotify-compatible server")
    parser.set_defaults(func=run_auth)
