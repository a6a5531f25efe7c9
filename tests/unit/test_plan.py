"""Deciding what a run does for its date and for which playlists (spotify_etl.plan)."""

from __future__ import annotations

import datetime as dt

import pytest
from spotify_etl.plan import EXTRACT, REPROCESS, SKIP, PlanError, decide, live_playlists

D = dt.date(2026, 11, 20)


def _live() -> list[str]:
    return ["p"]


@pytest.mark.parametrize(
    ("started", "backfill", "landed", "mode"),
    [
        (D, False, [], EXTRACT),
        (D + dt.timedelta(days=1), False, ["x"], EXTRACT),  # within the grace day: still live
        (D + dt.timedelta(days=5), False, ["x"], REPROCESS),
        (D + dt.timedelta(days=5), False, [], SKIP),
        (D, True, ["x"], REPROCESS),  # a backfill never calls Spotify, even for today
        (D, True, [], SKIP),
    ],
)
def test_plan_modes(started: dt.date, backfill: bool, landed: list[str], mode: str) -> None:
    plan = decide(day=D, started=started, is_backfill=backfill, requested=[], live=_live, landed=landed, grace_days=1)
    assert plan.mode == mode
    assert plan.to_extract == (["p"] if mode == EXTRACT else [])
    assert plan.playlists == {EXTRACT: ["p"], REPROCESS: ["x"], SKIP: []}[mode]
    if mode == SKIP:
        assert "no raw data was landed for that date; skipping" in plan.message


@pytest.mark.parametrize("day", [dt.date(9999, 12, 31), dt.date(2030, 1, 1), D + dt.timedelta(days=1)])
@pytest.mark.parametrize("backfill", [False, True])
def test_a_logical_date_after_the_run_started_is_refused_naming_both_dates(day: dt.date, backfill: bool) -> None:
    with pytest.raises(PlanError) as refused:
        decide(day=day, started=D, is_backfill=backfill, requested=[], live=_live, landed=["x"], grace_days=1)
    assert f"logical date {day.isoformat()} is after the day it started ({D.isoformat()})" in str(refused.value)
    assert not refused.value.retryable


def test_live_list_param_then_config_then_sample_only_for_the_embedded_source() -> None:
    assert live_playlists(["a"], ["b"], ["s"], "x") == ["a"]
    assert live_playlists([], ["b"], ["s"], "x") == ["b"]
    assert live_playlists([], [], ["s"], "the embedded sample data") == ["s"]
    with pytest.raises(PlanError) as err:
        live_playlists([], [], None, "the Spotify Web API (aws target)")
    text = str(err.value)
    assert "no playlists to extract from the Spotify Web API (aws target)" in text
    assert "include/config/playlists.toml" in text and "DAG param 'playlists'" in text


def test_reprocess_scope_is_the_given_playlists_landed_else_every_landed_one() -> None:
    later = D + dt.timedelta(days=5)

    def never() -> list[str]:
        raise AssertionError("a reprocess must not ask for the live list (or look up a connection)")

    every = decide(day=D, started=later, is_backfill=False, requested=[], live=never, landed=["b", "a"], grace_days=1)
    assert (every.mode, every.playlists, every.to_extract) == (REPROCESS, ["a", "b"], [])
    given = decide(
        day=D, started=later, is_backfill=True, requested=["b", "c"], live=never, landed=["a", "b"], grace_days=1
    )
    assert (given.mode, given.playlists) == (REPROCESS, ["b"])
    assert "re-processing the 1 of the 2 requested playlists landed" in given.message
    assert "not landed for that date, so absent from its tables: c" in given.message
    none = decide(day=D, started=later, is_backfill=True, requested=["c"], live=never, landed=["a"], grace_days=1)
    assert (none.mode, none.playlists) == (SKIP, [])
    assert "no raw data was landed for that date for the requested playlists; skipping" in none.message


def test_a_reprocess_names_the_first_few_requested_playlists_not_landed_and_the_count() -> None:
    requested = [f"{i:022d}" for i in range(10_000)]
    result = decide(day=D, started=D + dt.timedelta(days=5), is_backfill=False, requested=requested,
                      live=_live, landed=requested[:1], grace_days=1)  # fmt: skip
    assert result.mode == REPROCESS and result.playlists == requested[:1]
    assert len(result.message) < 1_000
    assert result.message.endswith(f"absent from its tables: {', '.join(requested[1:11])}, and 9,989 more")
