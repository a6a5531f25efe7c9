"""What the DAG's task bodies do, without Airflow running (spotify_etl.airflow.tasks): the run's
scope, the requested playlists, the plan task and a failed plan. A chunk of extracts: test_chunks.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from spotify_etl.airflow import tasks
from spotify_etl.extract import SampleSource, extract_playlist
from spotify_etl.lake import Lake
from spotify_etl.plan import EXTRACT, REPROCESS, RunPlan
from spotify_etl.settings import Settings

from tests.support.lazy_xcom import CountingLazySequence

DAY = "2026-11-25"
START = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)  # the run's logical date
LSD, RAP_RU, EPISODES = "4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms", "23Ay9WfURne0LvtlCvYTkj"


def test_run_scope_is_what_this_run_extracted_or_the_plan_of_a_reprocess() -> None:
    run_playlists = [LSD, RAP_RU, EPISODES]
    live, reprocess = RunPlan(DAY, EXTRACT, run_playlists, ""), RunPlan(DAY, REPROCESS, run_playlists, "")
    # The transform's argument: the mapped extract's chunk outcomes (a chunk that reported nothing is None).
    chunks = [
        {"landed": [{"playlist_id": EPISODES}], "failed": [{"playlist_id": RAP_RU, "error": "x", "retryable": False}]},
        None,
        {"landed": [{"playlist_id": LSD}], "failed": []},
    ]
    extracted = tasks.extract_results(chunks)
    assert tasks.run_scope(live, extracted) == [LSD, EPISODES]  # RAP_RU's extract failed: absent
    assert tasks.run_scope(reprocess, extracted) == [LSD, RAP_RU, EPISODES]
    assert tasks.run_scope(RunPlan(DAY, EXTRACT, [LSD], ""), tasks.extract_results([chunks[2]])) == [LSD]
    no_chunk = tasks.extract_results(tasks.chunk_outcomes(None))  # no chunk reported
    assert tasks.run_scope(RunPlan(DAY, EXTRACT, [LSD], ""), no_chunk) == []


def test_check_extracts_reads_the_chunk_outcomes_in_one_request() -> None:
    landed = {"landed": [{"playlist_id": LSD, "api_calls": 1}], "failed": []}
    failed = {"landed": [], "failed": [{"playlist_id": RAP_RU, "error": "playlist x: 404", "retryable": False}]}
    plan = RunPlan(DAY, EXTRACT, [LSD, RAP_RU, EPISODES], "").as_dict()
    outcomes = CountingLazySequence([landed, failed, None])
    with pytest.raises(AirflowFailException, match=r"2 of 3 playlists failed.*404.*its extract task reported nothing"):
        tasks.check_extracts(plan, outcomes)
    assert outcomes.requests == ["slice"]  # not an item each per pass (3 chunks: 4 requests, twice)


def test_requested_playlists_only_when_the_run_was_given_them() -> None:
    class Run:
        def __init__(self, conf: dict[str, Any] | None) -> None:
            self.conf = conf

    params = {"playlists": [LSD]}  # the param always holds a value: the config file's list by default
    assert tasks.requested_playlists(params, Run({"playlists": [LSD]})) == [LSD]
    assert tasks.requested_playlists(params, Run({})) is None
    assert tasks.requested_playlists(params, Run(None)) is None


class FakeTI:
    """What the plan task body uses of the task instance: when it started."""

    start_date = None


class FakeRun:
    def __init__(self, conf: dict[str, Any], run_type: str) -> None:
        self.conf, self.run_type = conf, run_type


def test_the_plan_is_one_value_the_later_tasks_take(lake: Lake, lake_dir: Path) -> None:
    settings = Settings(lake_dir=lake_dir, extract_chunk_size=2)
    extract_playlist(SampleSource(), lake, LSD, DAY, "t")
    backfill = FakeRun({"playlists": [LSD]}, "backfill")  # the run_type Airflow gives a backfill
    planned = tasks.run_plan(settings, {"playlists": [LSD]}, START, backfill, FakeTI())  # type: ignore[arg-type]
    assert set(planned) == {"dt", "mode", "playlists", "message"} and RunPlan.from_dict(planned).as_dict() == planned
    assert (planned["dt"], planned["mode"], planned["playlists"]) == (DAY, REPROCESS, [LSD])
    assert "backfill run" in planned["message"]
    assert tasks.plan_chunks(settings, planned) == []  # a backfill never calls Spotify: it re-processes what landed
    assert tasks.check_extracts(planned, []) == {"mode": REPROCESS, "playlists": 0, "api_calls": 0}

    live = tasks.run_plan(
        settings,
        {"playlists": [LSD, RAP_RU, EPISODES]},
        START,
        FakeRun({"playlists": [LSD, RAP_RU, EPISODES]}, "manual"),
        FakeTI(),
    )  # type: ignore[arg-type]
    assert live["mode"] == EXTRACT and live["playlists"] == [LSD, RAP_RU, EPISODES]
    assert tasks.plan_chunks(settings, live) == [[LSD, RAP_RU], [EPISODES]]  # what extract_playlist maps over


def test_a_failed_plan_fails_the_later_tasks_at_once_naming_it(lake_dir: Path) -> None:
    settings = Settings(lake_dir=lake_dir)
    run = FakeRun({"playlists": ["not a playlist"]}, "manual")
    with pytest.raises(AirflowFailException, match="InvalidPlaylistId: DAG param 'playlists'"):
        tasks.run_plan(settings, {"playlists": ["not a playlist"]}, START, run, FakeTI())  # type: ignore[arg-type]
    # The failed plan task returned nothing: Airflow gives the tasks that run anyway (trigger rule
    # all_done) None for it, and they fail without retries (AirflowFailException), naming the plan.
    no_plan = "the plan task did not succeed, so this run has no plan"
    with pytest.raises(AirflowFailException, match=no_plan):
        tasks.run_transform(settings, DAY, None, None, run)  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException, match=no_plan):
        tasks.check_extracts(None, None)
    with pytest.raises(AirflowFailException, match=no_plan):
        tasks.plan_chunks(settings, None)
