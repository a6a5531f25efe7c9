"""Extract in chunks: one source (one Spotify client, so one token) per chunk of playlists.

A chunk lands up to ``in_flight`` of its playlists at once (threads sharing the one source:
the waiting on Spotify overlaps, the token does not multiply); each raw document is still
replaced atomically on its own (:func:`~spotify_etl.extract.extract_playlist`), and a
playlist that fails is recorded with its error while the others of the chunk go on landing.
With the pool ``spotify_api``, (pool slots) x ``in_flight`` bounds the requests in flight.

**Resuming a chunk.** Every raw document names the run attempt that wrote it (its ``run``
field, see :func:`run_marker`: the DAG run id and how many times that run was cleared).
A later try of the same chunk skips the playlists whose document for the date carries this
marker: they landed in this attempt already. Clearing the DAG run (or the task) bumps
Airflow's clear number, so the marker changes and everything is extracted again; a
document of an earlier run or attempt is never mistaken for this one's.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from spotify_etl.errors import PipelineError, first_few
from spotify_etl.extract import ExtractResult, PlaylistSource, extract_playlist
from spotify_etl.lake import Lake

log = logging.getLogger(__name__)


def chunked(playlists: list[str], size: int) -> list[list[str]]:
    """``playlists`` in order, in chunks of at most ``size``."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [playlists[i : i + size] for i in range(0, len(playlists), size)]


def chunk_size(playlists: int, pool_slots: int, largest: int, configured: int | None = None) -> int:
    """Playlists per chunk for a day of ``playlists``: ``configured`` if set, else enough chunks
    to give each of the pool's ``pool_slots`` one (a small day spreads over them), of at most
    ``largest`` playlists (a large day gets more chunks than slots)."""
    if configured:
        return configured
    return max(1, min(largest, math.ceil(playlists / max(1, pool_slots))))


def plan_chunks(playlists: list[str], pool_slots: int, largest: int, configured: int | None = None) -> list[list[str]]:
    """``playlists`` in chunks of :func:`chunk_size`; the log says the size and why."""
    size = chunk_size(len(playlists), pool_slots, largest, configured)
    planned = chunked(playlists, size)
    why = "SPOTIFY_ETL_EXTRACT_CHUNK_SIZE" if configured else f"derived from their count and {pool_slots} pool slots"
    log.info("extract: %d playlists in %d chunks of at most %d (%s)", len(playlists), len(planned), size, why)
    return planned


def run_marker(run_id: str, clear_number: int | None) -> str:
    """The ``run`` a raw document records: the same across retries of a task, new after a clear."""
    return f"{run_id}#clear-{clear_number or 0}"


def chunk_label(playlists: list[str]) -> str:
    """What the UI shows for a chunk's task: its first playlist and how many it holds."""
    if not playlists:
        return "no playlists"
    return playlists[0] if len(playlists) == 1 else f"{playlists[0]} +{len(playlists) - 1} more"


@dataclass
class ChunkOutcome:
    """Per-playlist outcomes of a chunk: ``landed`` extract results (as dicts) and ``failed``
    entries ``{"playlist_id", "error", "retryable"}``, each in chunk order."""

    landed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe_failures(self) -> str:
        """The first few failures' errors and how many more (a bounded message, whatever the chunk size)."""
        return first_few([f["error"] for f in self.failed], sep="; ")


def _landed_in_this_run(lake: Lake, day: str, playlist_id: str, run: str) -> dict[str, Any] | None:
    """The result of a playlist this run attempt already landed (a previous try), else None."""
    path = lake.raw_path(day, playlist_id)
    if not lake.exists(path):
        return None
    doc = lake.read_json(path)
    if not isinstance(doc, dict) or doc.get("run") != run:
        return None
    earlier = ExtractResult.of_document(doc, lake.url(path), unchanged=doc.get("unchanged_since") is not None)
    return earlier.as_dict() | {"resumed": True}  # this try made no API call and wrote nothing for it


def _failure(playlist_id: str, exc: Exception) -> dict[str, Any]:
    """The failure entry; its error text starts with ``playlist <id>:`` (the pipeline's own
    errors say what to do; others get their type's name)."""
    retryable = not (isinstance(exc, PipelineError) and not exc.retryable)
    text = str(exc) if isinstance(exc, PipelineError) else f"{type(exc).__name__}: {exc}"
    if not text.startswith(f"playlist {playlist_id}"):
        text = f"playlist {playlist_id}: {text}"
    return {"playlist_id": playlist_id, "error": text, "retryable": retryable}


class SourceUnusable(PipelineError, RuntimeError, stops_chunk=True):
    """Building the source failed (no usable connection...): no playlist of the chunk can land."""


class SourceRefused(SourceUnusable, retryable=False):
    """Building the source failed in a way no later try can heal."""


def _build(source: Callable[[], PlaylistSource]) -> PlaylistSource:
    try:
        return source()
    except PipelineError as exc:
        if exc.stops_chunk:
            raise
        raise (SourceUnusable if exc.retryable else SourceRefused)(str(exc)) from exc


class _NotAttempted(Exception):
    """The chunk stopped before this playlist started."""


class _SharedSource:
    """The chunk's one source, built on the first playlist that needs it, and the failure
    that stopped the chunk (a source that cannot go on: every later playlist would meet it)."""

    def __init__(self, factory: Callable[[], PlaylistSource]) -> None:
        self._factory = factory
        self._built: PlaylistSource | None = None
        self._lock = threading.Lock()
        self.stopped_by: dict[str, Any] | None = None

    def get(self, playlist_id: str) -> PlaylistSource:
        with self._lock:  # the playlists waiting here meet the build's failure as "not attempted"
            if self.stopped_by:
                raise _NotAttempted
            if self._built is None:
                try:
                    self._built = _build(self._factory)
                except PipelineError as exc:  # each stops the chunk (see _build)
                    self.stopped_by = _failure(playlist_id, exc)
                    raise
            return self._built

    def stop(self, failure: dict[str, Any]) -> None:
        with self._lock:
            self.stopped_by = self.stopped_by or failure


def extract_chunk(
    source: Callable[[], PlaylistSource],
    lake: Lake,
    playlists: list[str],
    day: str,
    extracted_at: str,
    run: str,
    resume: bool = True,
    in_flight: int = 1,
) -> ChunkOutcome:
    """Land each playlist of the chunk for ``day``, at most ``in_flight`` at once; ``source`` is
    built once, on the first playlist that needs it. ``resume``: skip playlists this ``run``
    landed already. Outcomes are in chunk order, whatever order the playlists finished in."""
    shared = _SharedSource(source)
    not_attempted: set[str] = set()

    def skipped(playlist_id: str) -> tuple[bool, dict[str, Any]]:
        stop = shared.stopped_by or {}
        not_attempted.add(playlist_id)
        error = f"playlist {playlist_id}: not attempted after {stop.get('error')}"
        return False, {**stop, "playlist_id": playlist_id, "error": error}

    def one(playlist_id: str) -> tuple[bool, dict[str, Any]]:
        if shared.stopped_by:
            return skipped(playlist_id)
        if resume and (earlier := _landed_in_this_run(lake, day, playlist_id, run)):
            log.info("playlist %s: landed by an earlier try of this run; not extracted again", playlist_id)
            return True, earlier
        try:
            return True, extract_playlist(shared.get(playlist_id), lake, playlist_id, day, extracted_at, run).as_dict()
        except _NotAttempted:
            return skipped(playlist_id)
        except Exception as exc:  # noqa: BLE001 - recorded per playlist; the caller decides the task's outcome
            failure = _failure(playlist_id, exc)
            log.error("playlist %s failed: %s", playlist_id, failure["error"])
            if isinstance(exc, PipelineError) and exc.stops_chunk:
                shared.stop(failure)
            return False, failure

    workers = max(1, min(in_flight, len(playlists)))
    if workers == 1:
        results = [one(p) for p in playlists]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="extract") as pool:
            results = list(pool.map(one, playlists))
    if not_attempted:
        log.error(
            "the source cannot go on; not attempted in this try: %s",
            first_few([p for p in playlists if p in not_attempted]),
        )
    outcome = ChunkOutcome()
    for landed, entry in results:
        (outcome.landed if landed else outcome.failed).append(entry)
    return outcome
