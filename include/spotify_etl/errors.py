"""The one base class of the pipeline's errors.

``retryable`` says whether a later try of the same task can succeed (a rate limit, a
network error) or not (bad input, refused credentials, a failed check). The library only
says so; the Airflow layer (:mod:`spotify_etl.airflow`) turns ``retryable=False`` into a
failure without retries, in one place. Both flags are declared only in a class line, so an
error's type says how it is handled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PipelineError(Exception):
    """An error of the pipeline; subclasses set its flags in their class line:
    ``class BadInput(PipelineError, ValueError, retryable=False)``."""

    retryable: bool = True
    # The source as a whole cannot go on (refused credentials, a rate limit past the allowed
    # wait, Spotify unavailable): a chunk stops at once instead of failing every playlist in turn.
    stops_chunk: bool = False

    def __init_subclass__(cls, retryable: bool | None = None, stops_chunk: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if retryable is not None:
            cls.retryable = retryable
        if stops_chunk is not None:
            cls.stops_chunk = stops_chunk


# How many items of a list an error message or alert names, and how long each may be: a run
# of 10,000 bad ids or failed playlists still gives a message of a few kB, not megabytes.
FEW_ITEMS, ITEM_CHARS = 10, 300


def shorten(text: str, chars: int = ITEM_CHARS) -> str:
    """``text`` cut to ``chars`` characters, an ellipsis marking a cut."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def first_few(items: Sequence[str], sep: str = ", ", few: int = FEW_ITEMS) -> str:
    """The first ``few`` of ``items`` (each shortened) joined by ``sep``, and how many more there are."""
    named = sep.join(shorten(str(item)) for item in items[:few])
    rest = len(items) - few
    return f"{named}{sep}and {rest:,} more" if rest > 0 else named
