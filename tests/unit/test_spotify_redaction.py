"""The Spotify connection's secrets: redacted from texts and log records, and given to
Airflow's masker alongside our own redaction (spotify_etl.spotify.redaction)."""

from __future__ import annotations

import logging

from spotify_etl.spotify.redaction import install_log_filter, redact, remember_secret


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
