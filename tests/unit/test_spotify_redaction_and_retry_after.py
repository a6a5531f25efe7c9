"""The Spotify client's Retry-After reading (urllib3's parser) and its secrets given to
Airflow's masker alongside our own redaction."""

from __future__ import annotations

import email.utils
import logging
import time

import pytest
from spotify_etl.spotify.client import retry_after_seconds
from spotify_etl.spotify.redaction import install_log_filter, redact, remember_secret


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


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_secrets_are_redacted_and_given_to_airflows_masker() -> None:
    from airflow.sdk.log import redact as airflow_redact

    known_before = "b3f0re-" + "y" * 20  # remembered before the Airflow layer was loaded
    remember_secret(known_before)
    import spotify_etl.airflow.tasks  # noqa: F401 - the layer registers Airflow's masker on import

    secret = "s3cr3t-" + "x" * 20  # pragma: allowlist secret
    remember_secret(secret, "short")
    assert redact(f"token {secret} here") == "token *** here"
    assert redact("short stays") == "short stays"  # short values would redact innocent text
    assert secret not in str(airflow_redact(f"token {secret} here"))
    assert known_before not in str(airflow_redact(f"token {known_before} here"))
    install_log_filter()
    logger, keep = logging.getLogger("spotipy.oauth2"), _Keep()
    logger.addHandler(keep)
    level = logger.level
    logger.setLevel(logging.DEBUG)  # not `.level =`: setLevel also clears the logger's isEnabledFor cache
    try:
        logger.debug("headers: Authorization: Bearer abc.def-123 body %s", secret)
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    assert keep.messages == ["headers: Authorization: Bearer *** body ***"]
