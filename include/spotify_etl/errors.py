"""The one base class of the pipeline's errors.

``retryable`` says whether a later try of the same task can succeed (a rate limit, a
network error) or not (bad input, refused credentials, a failed check). The library only
says so; the Airflow layer (:mod:`spotify_etl.airflow`) turns ``retryable=False`` into a
failure without retries, in one place.
"""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """An error of the pipeline; subclasses choose ``retryable`` in their class line:
    ``class BadInput(PipelineError, ValueError, retryable=False)``. An instance may override it."""

    retryable: bool = True
    # The source as a whole cannot go on (refused credentials, a rate limit past the allowed
    # wait, Spotify unavailable): a chunk stops at once instead of failing every playlist in turn.
    stops_chunk: bool = False

    def __init_subclass__(cls, retryable: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if retryable is not None:
            cls.retryable = retryable
