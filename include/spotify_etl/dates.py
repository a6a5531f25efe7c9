"""The one check that a run's date is a date: every ``dt=`` folder and SQL date goes through it."""

from __future__ import annotations

import datetime as dt


def check_date(value: str) -> str:
    """Return ``value`` if it is an ISO date (YYYY-MM-DD), else raise ValueError."""
    try:
        return dt.date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from None
