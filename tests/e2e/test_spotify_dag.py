"""The real DAG (``airflow dags test``) extracting through spotipy from the local Spotify server.

The connection comes from ``AIRFLOW_CONN_SPOTIFY_DEFAULT`` exactly as a user would set it,
pointed at the server by its ``api_base_url``/``token_url`` extras; the playlists come from
the DAG's ``playlists`` param (``dags test --conf``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.airflow_run import dags_test
from tests.support.spotify_server import LSD, RAP_RU, SpotifyServer

pytestmark = pytest.mark.e2e
TOP_50_GLOBAL = "37i9dQZEVXbMDoHDwVN2tF"


@pytest.fixture
def server() -> Iterator[SpotifyServer]:
    with SpotifyServer() as srv:
        yield srv


def task_states(home: Path) -> dict[tuple[str, int], str]:
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT task_id, map_index, state FROM task_instance").fetchall()
    return {(task, index): state for task, index, state in rows}


def test_dag_extracts_through_spotipy_and_a_404_fails_only_its_task_and_the_run(
    airflow_template_db: Path, server: SpotifyServer, tmp_path: Path
) -> None:
    day = dt.datetime.now(dt.UTC).date().isoformat()  # a live run: the plan extracts only near its own date
    lake_dir = tmp_path / "lake"
    playlists = [LSD, f"https://open.spotify.com/playlist/{RAP_RU}?si=abc", TOP_50_GLOBAL]
    result = dags_test(
        airflow_template_db, tmp_path / "home", day, conf={"playlists": playlists},
        AIRFLOW_CONN_SPOTIFY_DEFAULT=json.dumps(server.connection(user=True)),
        SPOTIFY_ETL_LAKE_DIR=str(lake_dir), SPOTIFY_ETL_DUCKDB_PATH=str(tmp_path / "catalog.duckdb"),
    )
    code, output = result.returncode, result.output

    states = task_states(tmp_path / "home")
    assert states[("extract_playlist", 0)] == "success" and states[("extract_playlist", 1)] == "success", output[-4000:]
    assert states[("extract_playlist", 2)] == "failed"
    assert {states[(t, -1)] for t in ("plan", "transform", "catalog", "validate")} == {"success"}
    assert states[("check_extracts", -1)] == "failed" and (code != 0 or "state=failed" in output)
    assert f"1 of 3 playlists failed to extract and are missing from this date's tables: {TOP_50_GLOBAL}" in output
    assert f"playlist {TOP_50_GLOBAL} metadata: Spotify answered 404" in output and "27 Nov 2024" in output

    raw_dir = lake_dir / f"raw/playlists/dt={day}"
    assert sorted(p.name for p in raw_dir.iterdir()) == [f"playlist_id={RAP_RU}.json", f"playlist_id={LSD}.json"]
    docs = {pid: json.loads((raw_dir / f"playlist_id={pid}.json").read_text()) for pid in (LSD, RAP_RU)}
    assert {d["source"] for d in docs.values()} == {"spotify_api"}
    assert (docs[LSD]["total"], len(docs[LSD]["pages"]), docs[RAP_RU]["total"]) == (200, 4, 4)
    for table in ("songs", "albums", "artists", "song_artists", "playlist_items"):
        assert (lake_dir / f"processed/{table}/dt={day}/part-00000.parquet").stat().st_size > 0
    assert len(server.api_requests("/items")) == 5  # 4 pages + 1 page; the 404 playlist never got that far
    assert {r.form["grant_type"] for r in server.token_requests()} == {"refresh_token"}
    assert all(secret not in output for secret in server.secrets())
