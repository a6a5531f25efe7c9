"""Secrets of the Spotify connection never shown: not in exception texts, not in log records.

Our exceptions are built by us (``from None``) with :func:`redact`; the loggers spotipy,
urllib3 and requests write to get a filter that redacts their records (spotipy debug-logs
request headers and token request bodies verbatim). Inside an Airflow task each secret is
also given to Airflow's own secret masker, which covers what reaches the task log through
other paths; outside Airflow (the CLI, the core's tests) there is no such masker.
"""

from __future__ import annotations

import logging
import re
import sys

_SECRETS: set[str] = set()
_MIN_LENGTH = 8  # shorter values would redact innocent text
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")
_WATCHED_LOGGERS = ("spotipy", "spotipy.client", "spotipy.oauth2", "spotipy.util", "urllib3.connectionpool", "requests")


def remember_secret(*values: str | None) -> None:
    """Register values that must never be shown, here and with Airflow's masker when in a task."""
    new = {v for v in values if v and len(v) >= _MIN_LENGTH} - _SECRETS
    _SECRETS.update(new)
    for value in new:
        _mask_in_airflow(value)


def redact(text: str) -> str:
    for value in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(value, "***")
    return _AUTH_HEADER.sub(r"\1 ***", text)


def _mask_in_airflow(value: str) -> None:
    # Only where Airflow already runs this code (its SDK is loaded): the core never imports
    # Airflow itself, so the CLI stays light and works without it installed.
    if "airflow.sdk" not in sys.modules:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # an Airflow without the 3.x SDK's masker
        return
    mask_secret(value)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = _RedactingFilter()


def install_log_filter() -> None:
    """Redact the records of the loggers spotipy, urllib3 and requests write to (idempotent)."""
    for name in _WATCHED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
