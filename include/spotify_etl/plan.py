"""Decide what a run does for its date, and for which playlists.

Spotify only serves a playlist's current state, so only a run close to its own date may
call it. A backfill, or any run whose date lies more than ``grace_days`` before the day it
started, never calls Spotify: it re-transforms the raw documents landed for that date, or
skips with a message if there are none, instead of writing today's playlists under a
past date. A run whose date lies after the day it started is refused: it would publish
today's playlists under a date still to come.

A run's tables hold exactly the playlists it planned (``RunPlan.playlists``, the run's playlists): the ones it
extracts, or for a reprocess the ones it was given (those landed for the date) or, without
a list, every one landed for the date. Raw documents of other playlists landed for the same
date stay in the lake but are not published by this run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from spotify_etl.errors import PipelineError, first_few
from spotify_etl.paths import PLAYLISTS_CONFIG, PROJECT_DIR

EXTRACT, REPROCESS, SKIP = "extract", "reprocess", "skip"
PARAM = "playlists"
CONFIG_FILE = PLAYLISTS_CONFIG.relative_to(PROJECT_DIR)


class PlanError(PipelineError, ValueError, retryable=False):
    """The run cannot be planned (no playlist list where one is required, a future logical date);
    the message says what to change."""


@dataclass(frozen=True)
class RunPlan:
    """A run's plan, passed between the DAG's tasks as one value (:meth:`as_dict`, :meth:`from_dict`)."""

    dt: str
    mode: str
    playlists: list[str]  # the run's scope: the only playlists its tables will hold
    message: str

    @property
    def to_extract(self) -> list[str]:
        """The playlists to call Spotify for (the mapped extract tasks); none unless live."""
        return list(self.playlists) if self.mode == EXTRACT else []

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> RunPlan:
        return cls(**value)


def live_playlists(requested: list[str], configured: list[str], sample: list[str] | None, source: str) -> list[str]:
    """What a live run extracts: the param, else the user's config list, else (only when the
    source is the embedded sample data, ``sample`` not None) the sample playlists."""
    chosen = requested or configured or sample or []
    if not chosen:
        raise PlanError(
            f"no playlists to extract from {source}: list the playlists the connection's Spotify user "
            f'owns or collaborates on in {CONFIG_FILE} (playlists = ["<id>", ...]) or pass them in the '
            f'DAG param {PARAM!r} (trigger form, or --conf \'{{"{PARAM}": ["<id>"]}}\'). The sample '
            "playlists are only extracted from the embedded sample data (local target without a Spotify "
            "connection), never from the Spotify Web API."
        )
    return chosen


def decide(
    *,
    day: dt.date,
    started: dt.date,
    is_backfill: bool,
    requested: list[str],
    live: Callable[[], list[str]],
    landed: list[str],
    grace_days: int,
) -> RunPlan:
    """``requested``: the playlists the run was given (empty: none); ``live``: what a live run
    extracts, asked only for a live run (see :func:`live_playlists`); ``landed``: the playlist
    ids with raw documents already in the lake for ``day``."""
    iso = day.isoformat()
    behind = (started - day).days
    if behind < 0:  # Spotify would serve today's playlists, published under a date still to come
        raise PlanError(
            f"dt={iso}: the run's logical date {iso} is after the day it started ({started.isoformat()}); "
            "a run extracts what Spotify serves now, so it may not publish it under a future date. "
            "Trigger it with a logical date of today or earlier."
        )
    if not is_backfill and behind <= grace_days:
        playlists = live()
        return RunPlan(iso, EXTRACT, playlists, f"dt={iso}: extracting {len(playlists)} playlists live")
    why = "backfill run" if is_backfill else f"run date is {behind} days before the run started"
    scope = [p for p in requested if p in landed] if requested else sorted(landed)
    absent = [p for p in requested if p not in landed]
    note = f"; not landed for that date, so absent from its tables: {first_few(absent)}" if absent else ""
    if scope:
        which = (
            f"{len(scope)} of the {len(requested)} requested playlists" if requested else f"{len(scope)} raw documents"
        )
        return RunPlan(
            iso,
            REPROCESS,
            scope,
            f"dt={iso}: {why}; re-processing the {which} landed for that date without calling Spotify{note}",
        )
    return RunPlan(
        iso,
        SKIP,
        [],
        f"dt={iso}: {why} and no raw data was landed for that date{' for the requested playlists' if requested else ''}; "
        "skipping. Spotify serves only the current state of a playlist, so a past date cannot be extracted "
        f"after the fact.{note}",
    )
