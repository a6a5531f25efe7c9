"""The pipeline's stages as plain functions: what the Airflow tasks and the ``spotify-etl``
command call (the CLI's ``extract`` and ``validate`` use the same functions as the tasks).

Airflow specifics (connections, context, operators) stay in the Airflow layer
(:mod:`spotify_etl.airflow`); everything here takes plain values so it runs and is tested
without a scheduler.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from spotify_etl import plan as planning
from spotify_etl.extract import PlaylistSource, SampleSource
from spotify_etl.ids import InvalidPlaylistId, parse_playlist_ids
from spotify_etl.lake import Lake
from spotify_etl.paths import PLAYLISTS_CONFIG
from spotify_etl.settings import Settings, SettingsError, configured_playlists
from spotify_etl.targets import target

log = logging.getLogger(__name__)


def uses_sample_data(settings: Settings, connection: Any | None) -> bool:
    """The embedded default: a target that allows it (``local``) with no Spotify connection reads include/sample_data."""
    return connection is None and target(settings).samples_allowed


def plan(
    lake: Lake,
    settings: Settings,
    day: dt.date,
    started: dt.date,
    is_backfill: bool,
    requested: list[Any] | None,
    connection: Callable[[], Any | None] = lambda: None,
) -> planning.RunPlan:
    """Plan the run for ``day``. ``requested``: the playlists the run was explicitly given (the
    DAG param in the run's conf), None otherwise; ``connection`` looks up the Spotify
    connection (default: there is none), asked only for a live run (the sample playlists are
    its default only when there is none on the ``local`` target)."""

    def live() -> list[str]:
        embedded = uses_sample_data(settings, connection())
        source = "the embedded sample data" if embedded else f"the Spotify Web API ({settings.target} target)"
        sample = SampleSource().available() if embedded else None
        return planning.live_playlists(wanted, _parse(configured_playlists(), str(PLAYLISTS_CONFIG)), sample, source)

    wanted = _parse(requested or [], f"DAG param {planning.PARAM!r}")
    landed = list(lake.raw_documents(day.isoformat()))
    result = planning.decide(
        day=day,
        started=started,
        is_backfill=is_backfill,
        requested=wanted,
        live=live,
        landed=landed,
        grace_days=settings.live_grace_days,
    )
    log.info(result.message)
    return result


def _parse(values: list[Any], where: str) -> list[str]:
    try:
        return parse_playlist_ids(values) if values else []
    except InvalidPlaylistId as exc:
        raise InvalidPlaylistId(f"{where}: {exc}") from None


def choose_source(settings: Settings, connection: Any | None) -> PlaylistSource:
    """The live API when a Spotify connection exists; the embedded sample only for ``local``."""
    if uses_sample_data(settings, connection):
        log.warning(
            "USING EMBEDDED SAMPLE DATA: no connection %r is configured, so playlists are read from the "
            "recorded Spotify responses in include/sample_data, not from the Spotify Web API.",
            settings.spotify_conn_id,
        )
        return SampleSource()
    if connection is None:
        raise SettingsError(
            f"no Airflow connection {settings.spotify_conn_id!r} with Spotify credentials; the "
            f"{settings.target!r} target never uses the embedded sample data. Create the connection "
            "(see README, 'Spotify credentials')."
        )
    from spotify_etl.spotify.client import SpotifySource

    return SpotifySource.from_connection(connection, max_retry_after=settings.max_retry_after)


def extracted_playlists(expected: list[str], results: list[dict[str, Any]]) -> list[str]:
    """Playlists of the plan whose extract succeeded (have a result), in plan order."""
    done = {r["playlist_id"] for r in results if r}
    return [p for p in expected if p in done]


def missing_extracts(expected: list[str], results: list[dict[str, Any]]) -> list[str]:
    """Playlists the plan asked for that have no extract result (their task failed)."""
    done = set(extracted_playlists(expected, results))
    return [p for p in expected if p not in done]
