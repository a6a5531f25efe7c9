"""History through the real DAG: three dates from the local Spotify server, which changes the
playlists between them, then the middle date reprocessed as a backfill does; the views answer
exactly the changes made, before and after.

Each date is one ``airflow dags test`` run with its own metadata DB, on one lake and DuckDB
catalog. The dates are today and the two days before, run live (``SPOTIFY_ETL_LIVE_GRACE_DAYS=2``:
Spotify serves only the current state, so the server is changed between the runs, as the
playlists' owner would edit them). Rap RU is not planned on the middle date. The fourth run
reprocesses the middle date from its landed raw documents without calling Spotify, as a backfill
does (``SPOTIFY_ETL_LIVE_GRACE_DAYS=0`` makes the plan take that path under ``dags test``; the
backfill run type itself, through the scheduler, is tests/e2e/test_backfill.py's).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.support.airflow_run import dags_test
from tests.support.spotify_server import HISTORY, HISTORY_DAYS, RAP_RU, SpotifyServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

TODAY = dt.datetime.now(dt.UTC).date()
D0, D1, D2 = [(TODAY - dt.timedelta(days=n)).isoformat() for n in (2, 1, 0)]
PLANNED = {D0: [HISTORY, RAP_RU], D1: [HISTORY], D2: [HISTORY, RAP_RU]}


def song_id(entry: dict[str, Any]) -> str:
    return str((entry.get("track") or entry.get("item"))["id"])


@pytest.fixture(scope="module")
def history(airflow_template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The three dates run live, then the middle one reprocessed; the views after each stage."""
    from spotify_etl.warehouse import local

    root = tmp_path_factory.mktemp("history")
    env = {
        "SPOTIFY_ETL_LAKE_DIR": str(root / "lake"),
        "SPOTIFY_ETL_DUCKDB_PATH": str(root / "catalog.duckdb"),
        "SPOTIFY_ETL_LIVE_GRACE_DAYS": "2",
    }
    with SpotifyServer() as server:
        env["AIRFLOW_CONN_SPOTIFY_DEFAULT"] = json.dumps(server.connection(user=True))
        rap = [song_id(e) for e in server.playlists[RAP_RU].entries]
        songs = [song_id(e) for e in server.history_songs()]
        outputs = {}
        for n, day in enumerate((D0, D1, D2)):
            server.serve_history_day(n)
            run = dags_test(airflow_template_db, root / f"home-{day}", day, conf={"playlists": PLANNED[day]}, **env)
            assert run.succeeded, run.output[-6000:]
            outputs[day] = run.output
        live = views(root / "catalog.duckdb")
        report_live = local.report_data(root / "catalog.duckdb", D2, "spotify_etl")  # before the backfill adds a run
        published = publish_ids(root / "lake", D1)
        calls = len(server.requests)
        backfill = dags_test(
            airflow_template_db, root / "home-backfill", D1, **{**env, "SPOTIFY_ETL_LIVE_GRACE_DAYS": "0"}
        )
        assert backfill.succeeded, backfill.output[-6000:]
        assert len(server.requests) == calls  # reprocessed from the landed raw documents
    yield {
        "songs": songs,
        "rap": rap,
        "live": live,
        "after_backfill": views(root / "catalog.duckdb"),
        "outputs": outputs,
        "backfill": backfill.output,
        "published": (published, publish_ids(root / "lake", D1)),
        "lake": root / "lake",
        "catalog": root / "catalog.duckdb",
        "report_live": report_live,
    }


def views(catalog: Path) -> dict[str, set[tuple[Any, ...]]]:
    import duckdb

    with duckdb.connect(str(catalog), read_only=True) as con:
        return {
            "changes": set(
                con.execute(
                    "SELECT dt, playlist_id, song_id, change, previous_dt FROM spotify_etl.playlist_changes"
                ).fetchall()
            ),
            "spans": set(
                con.execute(
                    "SELECT playlist_id, song_id, valid_from, valid_to, dates_present FROM spotify_etl.playlist_song_spans"
                ).fetchall()
            ),
        }


def publish_ids(lake: Path, day: str) -> set[str]:
    return set(
        pq.read_table(lake / f"processed/playlists/dt={day}/part-00000.parquet").column("publish_id").to_pylist()
    )


def expected(songs: list[str], rap: list[str]) -> dict[str, set[tuple[Any, ...]]]:
    """What the scenario (spotify_server.HISTORY_DAYS, Rap RU losing its last entry on D2) changed."""
    s0, s1, s2, s3, s4, s5 = songs
    assert HISTORY_DAYS == ([0, 1, 2, 3], [1, 0, 2, 4, 4], [1, 2, 4, 3, 5])  # the scenario these rows follow
    gone = set(rap) - set(rap[:-1])
    return {
        "changes": {
            (D1, HISTORY, s3, "removed", D0),
            (D1, HISTORY, s4, "added", D0),  # twice on D1, one change; s0 and s1 only moved
            (D2, HISTORY, s0, "removed", D1),
            (D2, HISTORY, s3, "added", D1),  # back
            (D2, HISTORY, s5, "added", D1),
            *((D2, RAP_RU, song, "removed", D0) for song in gone),  # D1: not planned, skipped
        },
        "spans": {
            (HISTORY, s0, D0, D1, 2),
            (HISTORY, s1, D0, None, 3),
            (HISTORY, s2, D0, None, 3),
            (HISTORY, s3, D0, D0, 1),  # left on D1 ...
            (HISTORY, s3, D2, None, 1),  # ... and came back on D2: two stays
            (HISTORY, s4, D1, None, 2),
            (HISTORY, s5, D2, None, 1),
            *((RAP_RU, song, D0, D0, 1) for song in gone),
            *((RAP_RU, song, D0, None, 2) for song in set(rap) - gone),  # two landed dates: D0, D2
        },
    }


def test_three_dates_give_exactly_the_changes_made(history: dict[str, Any]) -> None:
    want = expected(history["songs"], history["rap"])
    assert len(set(history["songs"])) == 6 and len(set(history["rap"]) - set(history["rap"][:-1])) == 1
    assert history["live"]["changes"] == want["changes"]
    assert history["live"]["spans"] == want["spans"]


def test_a_backfill_of_the_middle_date_leaves_history_exactly_as_it_was(history: dict[str, Any]) -> None:
    assert (
        f"dt={D1}: run date is 1 days before the run started; re-processing the 1 raw documents" in history["backfill"]
    )
    before, after = history["published"]
    assert len(before) == len(after) == 1 and before != after  # the date was published anew
    assert history["after_backfill"] == history["live"]


def test_the_playlists_table_holds_each_dates_scope_with_its_metadata(history: dict[str, Any]) -> None:
    lake = history["lake"]
    rows = {
        day: pq.read_table(lake / f"processed/playlists/dt={day}/part-00000.parquet").to_pylist()
        for day in (D0, D1, D2)
    }
    assert {day: sorted(r["playlist_id"] for r in day_rows) for day, day_rows in rows.items()} == {
        day: sorted(planned) for day, planned in PLANNED.items()
    }
    mine = next(r for r in rows[D0] if r["playlist_id"] == HISTORY)
    assert (mine["name"], mine["owner_id"], mine["owner_name"], mine["public"], mine["collaborative"]) == (
        "History in the making",
        "test-user",
        "Test User",
        False,
        True,
    )
    assert (mine["items_total"], mine["followers"]) == (4, 3)
    snapshots = [next(r for r in rows[day] if r["playlist_id"] == HISTORY)["snapshot_id"] for day in (D0, D1, D2)]
    assert len(set(snapshots)) == 3  # every date's edit is a new snapshot, so its items were read again


def test_each_run_writes_its_dates_trends_report_with_the_numbers_of_the_queries(history: dict[str, Any]) -> None:
    """Issue 20: the report task writes reports/dt=<date>/index.html and, for the newest date,
    reports/latest; the page's numbers are the report queries' rows over the catalog."""
    from spotify_etl import report
    from spotify_etl.lake import LocalLake
    from spotify_etl.warehouse import local

    lake = LocalLake(history["lake"])
    assert lake.report_dates() == [D0, D1, D2]
    for day in (D0, D1, D2):
        assert f"dt={day}: trends report written: file://{lake.report_path(day)}" in history["outputs"][day]
    first = Path(lake.report_path(D0)).read_text(encoding="utf-8")
    assert 'id="first-date"' in first and "<svg" in first  # one landed date: said so, and what it has is drawn
    # A report reads nothing after its date, so the first date's page still equals its queries; but
    # the stays: playlist_song_spans counts a stay's dates as known when the report is made.
    now = json.loads(json.dumps(local.report_data(history["catalog"], D0, "spotify_etl")))
    then = report.page_data(first)
    assert then["song_stays"] != now["song_stays"] and {**then, "song_stays": []} == {**now, "song_stays": []}
    newest = Path(lake.report_path(D2)).read_text(encoding="utf-8")
    assert 'id="first-date"' not in newest
    # The backfill of D1 rewrote D1's report, not the latest: that stays the newest date's.
    assert Path(lake.report_path(None)).read_text(encoding="utf-8") == newest
    assert f"dt={D1}: trends report written" in history["backfill"]
    # The newest date's page against the queries over the catalog as its run left it.
    assert report.page_data(newest) == json.loads(json.dumps(history["report_live"]))
    assert [r["dt"] for r in history["report_live"]["runs"]] == [D0, D1, D2]
    # The last run's page (the backfill's) against the queries over the catalog as it left it.
    data = local.report_data(history["catalog"], D1, "spotify_etl")
    assert report.page_data(Path(lake.report_path(D1)).read_text(encoding="utf-8")) == json.loads(json.dumps(data))
    assert {r["dt"] for r in data["changes"]} == {D0, D1} and [r["dt"] for r in data["runs"]] == [D0, D1]
    assert data["top_artists"] and data["song_stays"]
