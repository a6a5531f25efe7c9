"""The chunked extract (issue 14, point 1), without Airflow running: one source per chunk,
per-playlist failures, resuming a retry, and the task's outcome rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from spotify_etl import chunks
from spotify_etl.airflow import tasks
from spotify_etl.errors import PipelineError
from spotify_etl.extract import SampleSource
from spotify_etl.lake import Lake
from spotify_etl.plan import EXTRACT, RunPlan
from spotify_etl.settings import Settings, SettingsError
from spotify_etl.spotify.client import RateLimited, SpotifyAuthError

DAY = "2026-11-25"
LSD, RAP_RU, EPISODES = "4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms", "23Ay9WfURne0LvtlCvYTkj"
UNKNOWN = "0" * 22  # not in the sample data: fails, not retryable
RUN = chunks.run_marker("scheduled__2026-11-25T00:00:00+00:00", 0)


def live_plan(playlists: list[str]) -> RunPlan:
    return RunPlan(DAY, EXTRACT, playlists, f"dt={DAY}: extracting {len(playlists)} playlists live")


class Sources:
    """A source factory that counts how often a chunk built its source (one Spotify token each)."""

    def __init__(self, fail_on: dict[str, Exception] | None = None) -> None:
        self.built: list[SampleSource] = []
        self.fail_on = fail_on or {}

    def __call__(self) -> SampleSource:
        fail_on = self.fail_on

        class Faulty(SampleSource):
            def playlist(self, playlist_id: str) -> dict[str, Any]:
                if playlist_id in fail_on:
                    raise fail_on.pop(playlist_id)  # once: a retry succeeds
                return super().playlist(playlist_id)

        self.built.append(Faulty())
        return self.built[-1]

    @property
    def api_calls(self) -> int:
        return sum(s.api_calls for s in self.built)


def test_chunked_keeps_order_and_size() -> None:
    assert chunks.chunked(list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert chunks.chunked([], 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        chunks.chunked(["a"], 0)
    assert chunks.chunk_label([LSD]) == LSD and chunks.chunk_label([LSD, RAP_RU, EPISODES]) == f"{LSD} +2 more"


def test_a_chunk_builds_one_source_and_a_failed_playlist_does_not_stop_the_others(lake: Lake, lake_dir: Path) -> None:
    sources = Sources()
    outcome = chunks.extract_chunk(sources, lake, [LSD, UNKNOWN, RAP_RU], DAY, "t", RUN)
    assert len(sources.built) == 1
    assert [r["playlist_id"] for r in outcome.landed] == [LSD, RAP_RU]
    assert outcome.failed == [
        {"playlist_id": UNKNOWN, "error": outcome.failed[0]["error"], "retryable": False},
    ]
    assert outcome.failed[0]["error"].startswith(f"playlist {UNKNOWN} is not in the embedded sample data")
    doc = json.loads((lake_dir / f"raw/playlists/dt={DAY}/playlist_id={LSD}.json").read_text())
    assert doc["run"] == RUN  # what a retry of this run recognises


def test_a_retry_extracts_only_what_this_run_did_not_land_and_a_cleared_run_extracts_all(lake: Lake) -> None:
    first = Sources({RAP_RU: RateLimited("playlist 1h9q8vXXDl2vHOmwdsuXms: 429, Retry-After 900 s")})
    outcome = chunks.extract_chunk(first, lake, [LSD, RAP_RU, EPISODES], DAY, "t1", RUN)
    assert [r["playlist_id"] for r in outcome.landed] == [LSD]
    # A rate limit stops the chunk: the rest is not attempted in this try, and all of it is retryable.
    assert [(f["playlist_id"], f["retryable"]) for f in outcome.failed] == [(RAP_RU, True), (EPISODES, True)]
    assert outcome.failed[1]["error"] == f"playlist {EPISODES}: not attempted after {outcome.failed[0]['error']}"

    retry = Sources()
    outcome = chunks.extract_chunk(retry, lake, [LSD, RAP_RU, EPISODES], DAY, "t2", RUN)
    assert [r["playlist_id"] for r in outcome.landed] == [LSD, RAP_RU, EPISODES] and outcome.failed == []
    assert outcome.landed[0]["resumed"] and outcome.landed[0]["items"] == 200
    assert retry.api_calls == 2 + 2  # RAP_RU and EPISODES: metadata and one page each; LSD's 3 calls not again
    assert {r["playlist_id"] for r in outcome.landed if not r.get("resumed")} == {RAP_RU, EPISODES}

    everything = Sources()  # all landed by this run: the source is never built (no token)
    chunks.extract_chunk(everything, lake, [LSD, RAP_RU, EPISODES], DAY, "t3", RUN)
    assert everything.built == []

    cleared = Sources()  # the run was cleared: a new marker, so every playlist is extracted again
    outcome = chunks.extract_chunk(cleared, lake, [LSD, RAP_RU], DAY, "t4", chunks.run_marker(RUN.split("#")[0], 1))
    assert not any(r.get("resumed") for r in outcome.landed) and len(cleared.built) == 1


def test_a_source_that_cannot_be_built_fails_the_whole_chunk_once(lake: Lake) -> None:
    calls: list[int] = []

    def refused() -> SampleSource:
        calls.append(1)
        raise SpotifyAuthError("no request made; the Spotify connection has no extra 'refresh_token'")

    outcome = chunks.extract_chunk(refused, lake, [LSD, RAP_RU], DAY, "t", RUN)
    assert calls == [1] and outcome.landed == []
    assert [(f["playlist_id"], f["retryable"]) for f in outcome.failed] == [(LSD, False), (RAP_RU, False)]
    assert (
        outcome.failed[0]["error"]
        == f"playlist {LSD}: no request made; the Spotify connection has no extra 'refresh_token'"
    )


@pytest.mark.parametrize(
    "error,kind,retryable",
    [
        (SettingsError("SPOTIFY_ETL_SPOTIFY_CONN_ID='': refused"), chunks.SourceRefused, False),
        (PipelineError("the secrets backend did not answer"), chunks.SourceUnusable, True),
    ],
)
def test_a_source_that_fails_to_build_stops_the_chunk_keeping_whether_a_retry_can_heal_it(
    lake: Lake, error: Exception, kind: type, retryable: bool
) -> None:
    def broken() -> SampleSource:
        raise error

    with pytest.raises(kind) as raised:
        chunks._build(broken)
    assert raised.value.retryable is retryable and raised.value.stops_chunk and raised.value.__cause__ is error
    outcome = chunks.extract_chunk(broken, lake, [LSD, RAP_RU], DAY, "t", RUN)
    assert [(f["playlist_id"], f["retryable"]) for f in outcome.failed] == [(LSD, retryable), (RAP_RU, retryable)]
    assert outcome.landed == [] and str(error) in outcome.failed[0]["error"]


def test_in_flight_playlists_meet_a_failed_build_once_and_the_others_are_not_attempted(lake: Lake) -> None:
    calls: list[int] = []

    def broken() -> SampleSource:
        calls.append(1)
        raise SpotifyAuthError("no usable connection")

    outcome = chunks.extract_chunk(broken, lake, [LSD, RAP_RU, EPISODES], DAY, "t", RUN, in_flight=3)
    assert calls == [1] and outcome.landed == []  # built once: the others waited for it
    assert [f["playlist_id"] for f in outcome.failed] == [LSD, RAP_RU, EPISODES]  # chunk order
    own = [f for f in outcome.failed if "not attempted" not in f["error"]]
    assert len(own) == 1 and own[0]["error"] == f"playlist {own[0]['playlist_id']}: no usable connection"
    assert all(
        f["error"] == f"playlist {f['playlist_id']}: not attempted after {own[0]['error']}" and not f["retryable"]
        for f in outcome.failed
        if f is not own[0]
    )


class FakeTI:
    def __init__(self, try_number: int, max_tries: int) -> None:
        self.try_number, self.max_tries = try_number, max_tries
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class FakeRun:
    run_id, clear_number = "manual__2026-11-25", 0


def run_chunk(lake_dir: Path, playlists: list[str], ti: FakeTI) -> dict[str, Any]:
    settings = Settings(lake_dir=lake_dir)
    context: dict[str, Any] = {}
    try:
        return tasks.run_extract_chunk(settings, playlists, DAY, FakeRun(), ti, context)  # type: ignore[arg-type]
    finally:
        assert context["chunk_label"] == chunks.chunk_label(playlists)


def test_the_chunk_task_fails_at_once_with_only_unhealable_failures_and_hands_on_what_landed(lake_dir: Path) -> None:
    ti = FakeTI(try_number=1, max_tries=3)
    with pytest.raises(AirflowFailException, match=f"1 of 2 playlists failed: playlist {UNKNOWN} is not in"):
        run_chunk(lake_dir, [LSD, UNKNOWN], ti)
    outcome = ti.pushed["return_value"]  # the transform and check_extracts read it like a result
    assert [r["playlist_id"] for r in outcome["landed"]] == [LSD]

    # The transform publishes what landed; check_extracts names the failed playlist and its error.
    assert tasks.run_scope(live_plan([LSD, UNKNOWN]), tasks.extract_results([outcome])) == [LSD]
    with pytest.raises(AirflowFailException) as failed:
        tasks.check_extracts(live_plan([LSD, UNKNOWN]).as_dict(), [outcome])
    assert f"1 of 2 playlists failed to extract and are missing from this date's tables: {UNKNOWN}" in str(failed.value)
    assert f"Errors: playlist {UNKNOWN} is not in the embedded sample data" in str(failed.value)
    # A chunk task that reported nothing (killed) is named too.
    with pytest.raises(AirflowFailException, match=f"playlist {RAP_RU}: its extract task reported nothing"):
        tasks.check_extracts(live_plan([LSD, RAP_RU]).as_dict(), [outcome, None])


def test_the_chunk_task_retries_a_retryable_failure_and_fails_on_its_last_try(
    lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = Sources({RAP_RU: RateLimited(f"playlist {RAP_RU}: 429")})
    monkeypatch.setattr(tasks.pipeline, "choose_source", lambda settings, connection: flaky())
    ti = FakeTI(try_number=1, max_tries=1)
    with pytest.raises(tasks.ChunkIncomplete, match="a retry extracts only these"):
        run_chunk(lake_dir, [LSD, RAP_RU], ti)
    assert ti.pushed == {}  # Airflow retries: no result yet

    flaky.fail_on[RAP_RU] = RateLimited(f"playlist {RAP_RU}: 429 again")
    last = FakeTI(try_number=2, max_tries=1)
    with pytest.raises(
        AirflowFailException, match="1 of 2 playlists failed: playlist 1h9q8vXXDl2vHOmwdsuXms: 429 again"
    ):
        run_chunk(lake_dir, [LSD, RAP_RU], last)
    assert [(r["playlist_id"], r.get("resumed")) for r in last.pushed["return_value"]["landed"]] == [(LSD, True)]

    assert run_chunk(lake_dir, [LSD, RAP_RU], FakeTI(try_number=3, max_tries=3))["failed"] == []


def test_chunk_size_and_pool_slots_are_settings_of_at_least_one() -> None:
    settings = Settings.from_env({"SPOTIFY_ETL_EXTRACT_CHUNK_SIZE": "3", "SPOTIFY_ETL_SPOTIFY_POOL_SLOTS": "2"})
    assert (settings.extract_chunk_size, settings.spotify_pool_slots) == (3, 2)
    assert Settings.from_env({}).extract_chunk_size is None  # derived from the day's count
    assert Settings.from_env({"SPOTIFY_ETL_EXTRACT_IN_FLIGHT": "16"}).extract_in_flight == 16
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_EXTRACT_IN_FLIGHT='17': a whole number from 1 to 16"):
        Settings.from_env({"SPOTIFY_ETL_EXTRACT_IN_FLIGHT": "17"})
    with pytest.raises(
        SettingsError, match="SPOTIFY_ETL_EXTRACT_CHUNK_SIZE='0': empty or a whole number from 1 to 500"
    ):
        Settings.from_env({"SPOTIFY_ETL_EXTRACT_CHUNK_SIZE": "0"})
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_SPOTIFY_POOL_SLOTS='many': a whole number from 1 to 32"):
        Settings.from_env({"SPOTIFY_ETL_SPOTIFY_POOL_SLOTS": "many"})


@pytest.mark.parametrize(
    ("playlists", "slots", "configured", "size", "count"),
    [
        (1, 4, None, 1, 1),
        (2, 4, None, 1, 2),  # a small day spreads over the slots
        (10, 4, None, 3, 4),
        (100, 4, None, 25, 4),  # fills the pool exactly
        (101, 4, None, 25, 5),
        (1000, 4, None, 25, 40),  # a large day: at most 25 a chunk
        (1000, 32, None, 25, 40),
        (60, 1, None, 25, 3),
        (10, 4, 7, 7, 2),  # set: as set
        (0, 4, None, 1, 0),
    ],
)
def test_chunk_size_is_derived_from_the_days_count_unless_set(
    playlists: int, slots: int, configured: int | None, size: int, count: int
) -> None:
    assert chunks.chunk_size(playlists, slots, 25, configured) == size
    assert len(chunks.chunked([f"{i:022d}" for i in range(playlists)], size)) == count


def test_the_plan_logs_the_chosen_chunk_size(caplog: pytest.LogCaptureFixture) -> None:
    ids = [f"{i:022d}" for i in range(10)]
    with caplog.at_level("INFO", logger="spotify_etl.chunks"):
        assert [len(c) for c in chunks.plan_chunks(ids, 4, 25)] == [3, 3, 3, 1]
        assert [len(c) for c in chunks.plan_chunks(ids, 4, 25, 5)] == [5, 5]
    assert "extract: 10 playlists in 4 chunks of at most 3 (derived from their count and 4 pool slots)" in caplog.text
    assert "extract: 10 playlists in 2 chunks of at most 5 (SPOTIFY_ETL_EXTRACT_CHUNK_SIZE)" in caplog.text


def test_ten_thousand_failed_playlists_give_bounded_messages_naming_the_first_few_and_the_count() -> None:
    """10,000 failed playlists once gave one 3.7 MB line in check_extracts (and its alert)."""
    planned = [f"{i:022d}" for i in range(10_000)]
    outcome = chunks.ChunkOutcome(
        failed=[{"playlist_id": p, "error": f"playlist {p}: " + "refused " * 50, "retryable": False} for p in planned]
    )
    assert len(outcome.describe_failures()) < 4_000 and outcome.describe_failures().endswith("; and 9,990 more")
    with pytest.raises(AirflowFailException) as failed:
        tasks.check_extracts(live_plan(planned).as_dict(), [outcome.as_dict()])
    message = str(failed.value)
    assert len(message) < 4_000
    assert message.startswith(
        f"10000 of 10000 playlists failed to extract and are missing from this date's tables: {planned[0]}, "
    )
    assert f"{planned[9]}, and 9,990 more (see their" in message and planned[10] not in message
    assert f"Errors: playlist {planned[0]}: refused" in message and message.endswith("; and 9,990 more")
