"""Secrets of the Spotify connection never shown: not in exception texts, not in log records.

Our exceptions are built by us (``from None``) with :func:`redact`; the loggers spotipy,
urllib3 and requests write to get a filter that redacts their records (spotipy debug-logs
request headers and token request bodies verbatim). A runner may also hand each secret to
a masker of its own (:func:`also_mask_with`): the Airflow layer registers Airflow's secret
masker, which covers what reaches the task log through other paths. The core itself never
imports Airflow.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

_SECRETS: set[str] = set()
_MASKERS: list[Callable[[str], object]] = []
_MIN_LENGTH = 8  # shorter values would redact innocent text
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")
_WATCHED_LOGGERS = ("spotipy", "spotipy.client", "spotipy.oauth2", "spotipy.util", "urllib3.connectionpool", "requests")


def remember_secret(*values: str | None) -> None:
    """Register values that must never be shown, here and with every registered masker."""
    new = {v for v in values if v and len(v) >= _MIN_LENGTH} - _SECRETS
    _SECRETS.update(new)
    for value in new:
        for mask in _MASKERS:
            mask(value)


def also_mask_with(mask: Callable[[str], object]) -> None:
    """Hand every secret, known already or remembered later, to ``mask`` too (once per masker)."""
    if mask not in _MASKERS:
        _MASKERS.append(mask)
        for value in _SECRETS:
            mask(value)


def redact(text: str) -> str:
    for value in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(value, "***")
    return _AUTH_HEADER.sub(r"\1 ***", text)


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


def redacting_logger(name: str) -> logging.Logger:
    """The stdlib logger ``name``, its records redacted (idempotent): for a library that logs
    what it was given (the Slack SDK logs its webhook URL) when it takes a logger of ours."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def install_log_filter() -> None:
    """Redact the records of the loggers spotipy, urllib3 and requests write to (idempotent)."""
    for name in _WATCHED_LOGGERS:
        redacting_logger(name)
