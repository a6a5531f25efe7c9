"""Decide what a run does for its date: extract live, reprocess landed raw, or skip.

Spotify only serves a playlist's current state, so only a run close to its own date may
call it. A backfill, or any run whose date lies more than ``grace_days`` before the day it
started, never calls Spotify: it re-transforms the raw documents landed for that date, or
skips with a message if there are none, instead of writing today's playlists under a
past date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

EXTRACT, REPROCESS, SKIP = "extract", "reprocess", "skip"


@dataclass(frozen=True)
class RunPlan:
    dt: str
    mode: str
    playlists: list[str]
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_run(
    *, day: dt.date, started: dt.date, is_backfill: bool, playlists: list[str], landed: list[str], grace_days: int
) -> RunPlan:
    """``landed`` lists the playlist ids with raw documents already in the lake for ``day``."""
    iso = day.isoformat()
    behind = (started - day).days
    if not is_backfill and behind <= grace_days:
        return RunPlan(iso, EXTRACT, playlists, f"dt={iso}: extracting {len(playlists)} playlists live")
    why = "backfill run" if is_backfill else f"run date is {behind} days before the run started"
    if landed:
        return RunPlan(
            iso, REPROCESS, [],
            f"dt={iso}: {why}; re-processing the {len(landed)} raw documents landed for that date "
            "without calling Spotify",
        )
    return RunPlan(
        iso, SKIP, [],
        f"dt={iso}: {why} and no raw data was landed for that date; skipping. Spotify serves only "
        "the current state of a playlist, so a past date cannot be extracted after the fact.",
    )
