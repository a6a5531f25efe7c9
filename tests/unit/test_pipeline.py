"""The pipeline's plan stage over a lake, settings and a connection lookup, and its extract
bookkeeping (spotify_etl.pipeline)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from spotify_etl import pipeline
from spotify_etl.extract import SampleSource, extract_playlist
from spotify_etl.ids import InvalidPlaylistId
from spotify_etl.lake import Lake, LocalLake
from spotify_etl.plan import REPROCESS, PlanError, RunPlan
from spotify_etl.settings import Settings, configured_playlists

D = dt.date(2026, 11, 20)
LSD, RAP_RU = "4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms"


def _plan(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    target: str = "local",
    connection: object = None,
    config: str = "playlists = []\n",
    requested: list[str] | None = None,
    day: dt.date = D,
    lake: Lake | None = None,
    lookups: list[str] | None = None,
) -> RunPlan:
    config_file = tmp_path / "playlists.toml"
    config_file.write_text(config)
    monkeypatch.setattr(pipeline, "PLAYLISTS_CONFIG", config_file)
    monkeypatch.setattr(pipeline, "configured_playlists", lambda: configured_playlists(config_file))
    settings = Settings(target=target, lake_dir=tmp_path / "lake", s3_bucket="b")

    def lookup() -> object:
        (lookups if lookups is not None else []).append("spotify connection")
        return connection

    return pipeline.plan(lake or LocalLake(tmp_path / "lake"), settings, day, D, False, requested, connection=lookup)


def test_pipeline_plan_sample_ids_only_for_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    embedded = _plan(tmp_path, monkeypatch, lookups=lookups)
    assert lookups == ["spotify connection"]  # looked up inside the task, once
    assert embedded.to_extract == SampleSource().available() and len(embedded.to_extract) == 6
    for target, connection in (("aws", None), ("aws", object()), ("local", object())):
        with pytest.raises(PlanError, match=r"include/config/playlists\.toml"):
            _plan(tmp_path, monkeypatch, target=target, connection=connection)
    mine = 'playlists = ["https://open.spotify.com/playlist/1h9q8vXXDl2vHOmwdsuXms"]\n'
    assert _plan(tmp_path, monkeypatch, target="aws", connection=object(), config=mine).to_extract == [RAP_RU]
    assert _plan(tmp_path, monkeypatch, config=mine).to_extract == [RAP_RU]  # the user's list wins over the sample
    assert _plan(tmp_path, monkeypatch, config=mine, requested=[LSD]).to_extract == [LSD]
    with pytest.raises(InvalidPlaylistId, match=r"playlists\.toml: .*not-an-id"):
        _plan(tmp_path, monkeypatch, target="aws", connection=object(), config='playlists = ["not-an-id"]\n')
    with pytest.raises(InvalidPlaylistId, match="DAG param 'playlists': "):
        _plan(tmp_path, monkeypatch, requested=["nope"])


def test_pipeline_plan_reprocess_needs_no_list_and_no_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LocalLake(tmp_path / "lake")
    past = D - dt.timedelta(days=9)
    for playlist_id in (LSD, RAP_RU):
        extract_playlist(SampleSource(), lake, playlist_id, past.isoformat(), "t")
    lookups: list[str] = []
    result = _plan(tmp_path, monkeypatch, target="aws", day=past, lake=lake, lookups=lookups)  # no list needed
    assert lookups == []  # a reprocess never looks the Spotify connection up
    assert (result.mode, result.playlists) == (REPROCESS, sorted([LSD, RAP_RU]))
    assert _plan(tmp_path, monkeypatch, day=past, lake=lake, requested=[RAP_RU]).playlists == [RAP_RU]


def test_extracted_and_missing_keep_plan_order() -> None:
    results = [{"playlist_id": "b"}, None, {"playlist_id": "a"}]
    assert pipeline.extracted_playlists(["a", "c", "b"], results) == ["a", "b"]  # type: ignore[list-item]
    assert pipeline.missing_extracts(["a", "c", "b"], results) == ["c"]  # type: ignore[list-item]
