"""What the DAG's task bodies do, without Airflow running (spotify_etl.airflow.tasks): the run's
scope, the requested playlists, the plan task and a failed plan. A chunk of extracts: test_chunks.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spotify_etl.airflow import tasks
from spotify_etl.extract import SampleSource, extract_playlist
from spotify_etl.lake import Lake
from spotify_etl.plan import EXTRACT, REPROCESS

DAY = "2026-11-25"
LSD, RAP_RU, EPISODES = "4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms", "23Ay9WfURne0LvtlCvYTkj"


def test_run_scope_is_what_this_run_extracted_or_the_plan_of_a_reprocess() -> None:
    planned = [LSD, RAP_RU, EPISODES]
    # The transform's argument: the mapped extract's chunk outcomes (a chunk that reported nothing is None).
    chunks = [
        {"landed": [{"playlist_id": EPISODES}], "failed": [{"playlist_id": RAP_RU, "error": "x", "retryable": False}]},
        None,
        {"landed": [{"playlist_id": LSD}], "failed": []},
    ]
    extracted = tasks.extract_results(chunks)
    assert tasks.run_scope(EXTRACT, planned, extracted) == [LSD, EPISODES]  # RAP_RU's extract failed: absent
    assert tasks.run_scope(REPROCESS, planned, extracted) == [LSD, RAP_RU, EPISODES]
    assert tasks.run_scope(EXTRACT, [LSD], tasks.extract_results([chunks[2]])) == [LSD]
    assert tasks.run_scope(EXTRACT, [LSD], tasks.extract_results(None)) == []  # no chunk reported


def test_requested_playlists_only_when_the_run_was_given_them() -> None:
    class Run:
        def __init__(self, conf: dict[str, Any] | None) -> None:
            self.conf = conf

    params = {"playlists": [LSD]}  # the param always holds a value: the config file's list by default
    assert tasks.requested_playlists(params, Run({"playlists": [LSD]})) == [LSD]
    assert tasks.requested_playlists(params, Run({})) is None
    assert tasks.requested_playlists(params, Run(None)) is None


class FakeTI:
    """What the plan task body uses of the task instance: its start and the XComs it pushes."""

    def __init__(self) -> None:
        self.start_date = None
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class FakeRun:
    def __init__(self, conf: dict[str, Any], run_type: str) -> None:
        self.conf, self.run_type = conf, run_type


def test_plan_pushes_what_the_later_tasks_take_and_returns_what_to_extract(lake: Lake, lake_dir: Path) -> None:
    import datetime as dt

    from spotify_etl.settings import Settings

    extract_playlist(SampleSource(), lake, LSD, DAY, "t")
    ti, day = FakeTI(), dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    backfill = FakeRun({"playlists": [LSD]}, "backfill")  # the run_type Airflow gives a backfill
    to_extract = tasks.run_plan(Settings(lake_dir=lake_dir), {"playlists": [LSD]}, day, backfill, ti)  # type: ignore[arg-type]
    assert to_extract == []  # a backfill never calls Spotify: it re-processes what landed
    assert ti.pushed["mode"] == REPROCESS and ti.pushed["playlists"] == [LSD]
    assert "backfill run" in ti.pushed["message"]


def test_a_failed_plan_fails_the_later_tasks_at_once_naming_it(lake_dir: Path) -> None:
    import datetime as dt

    from airflow.sdk.exceptions import AirflowFailException
    from spotify_etl.settings import Settings

    ti, day = FakeTI(), dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    run = FakeRun({"playlists": ["not a playlist"]}, "manual")
    with pytest.raises(AirflowFailException, match="InvalidPlaylistId: DAG param 'playlists'"):
        tasks.run_plan(Settings(lake_dir=lake_dir), {"playlists": ["not a playlist"]}, day, run, ti)  # type: ignore[arg-type]
    assert ti.pushed == {
        "mode": tasks.PLAN_FAILED,
        "message": "the plan task did not succeed (see its log)",
        "playlists": [],
    }
    with pytest.raises(AirflowFailException, match="the plan task did not succeed; nothing to transform"):
        tasks.run_transform(Settings(lake_dir=lake_dir), DAY, tasks.PLAN_FAILED, "", [], [], run)  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException, match="the plan task did not succeed"):
        tasks.check_extracts(tasks.PLAN_FAILED, [], [])
