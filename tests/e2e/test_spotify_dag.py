"""The real DAG (``airflow dags test``) extracting through spotipy from the local Spotify server.

The connection comes from ``AIRFLOW_CONN_SPOTIFY_DEFAULT`` exactly as a user would set it,
pointed at the server by its ``api_base_url``/``token_url`` extras; the playlists come from
the DAG's ``playlists`` param (``dags test --conf``). The server applies Spotify's 2026
development-mode rules. Runs allow one Airflow retry, so a failure that must not be retried
shows a single try. The last test covers the same fail-fast rule for the embedded sample data.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.airflow_run import dags_test
from tests.support.spotify_server import ITEMS_2026, LSD, RAP_RU, Playlist, SpotifyServer

pytestmark = pytest.mark.e2e
TOP_50_GLOBAL = "37i9dQZEVXbMDoHDwVN2tF"


# Recognisable fake credentials: the run must not write them anywhere (issue 8, "Secrets").
CLIENT_SECRET = "client-secret-CANARY-7c1e9a52d4f0"  # pragma: allowlist secret
REFRESH_TOKEN = "refresh-token-CANARY-5b8f03e6a1c2"  # pragma: allowlist secret


@pytest.fixture
def server() -> Iterator[SpotifyServer]:
    with SpotifyServer(client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN) as srv:
        yield srv


def leaks(secrets: list[str], home: Path, lake_dir: Path, output: str) -> list[str]:
    """Where any of ``secrets`` appears: command output (``dags test`` prints the task logs there),
    XComs, and every file of the run's AIRFLOW_HOME (logs, metadata DB) and of the lake."""
    found = [
        "output: airflow MaskSecret" if "msg=MaskSecret(value=" in line else f"output: {line[:300]}"
        for line in output.splitlines()
        if any(s in line for s in secrets)
    ]
    with sqlite3.connect(home / "airflow.db") as db:
        xcoms = db.execute("SELECT key, task_id, value FROM xcom").fetchall()
    assert len(xcoms) >= 5, xcoms  # the plan's, the extracts' and the transform's were read
    for key, task, value in xcoms:
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        found += [f"xcom {task}.{key}" for s in secrets if s in text]
    for path in [p for p in (*home.rglob("*"), *lake_dir.rglob("*")) if p.is_file()]:
        data = path.read_bytes()
        found += [f"{path}: {s[:12]}..." for s in secrets if s.encode() in data]
    return found


def task_states(home: Path) -> dict[tuple[str, int], str]:
    return {key: state for key, (state, _) in task_tries(home).items()}


def task_tries(home: Path) -> dict[tuple[str, int], tuple[str, int]]:
    """(task id, map index) -> (state, try number) from the run's metadata database."""
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT task_id, map_index, state, try_number FROM task_instance").fetchall()
    return {(task, index): (state, tries) for task, index, state, tries in rows}


def run_dag(airflow_template_db: Path, tmp_path: Path, playlists: list[str], **env: str) -> tuple[str, str]:
    """One live run for today with one Airflow retry allowed, a second after the failed try (the
    default 30 s would only be waited out); returns (day, output)."""
    day = dt.datetime.now(dt.UTC).date().isoformat()  # a live run: the plan extracts only near its own date
    result = dags_test(
        airflow_template_db,
        tmp_path / "home",
        day,
        conf={"playlists": playlists},
        SPOTIFY_ETL_TASK_RETRIES="1",
        SPOTIFY_ETL_RETRY_DELAY="1",
        SPOTIFY_ETL_LAKE_DIR=str(tmp_path / "lake"),
        SPOTIFY_ETL_DUCKDB_PATH=str(tmp_path / "catalog.duckdb"),
        **env,
    )
    return day, result.output


def test_dag_extracts_with_a_refresh_token_and_inaccessible_playlists_fail_at_once(
    airflow_template_db: Path, server: SpotifyServer, tmp_path: Path
) -> None:
    server.playlists[ITEMS_2026].collaborators.clear()  # another user's public playlist
    lake_dir = tmp_path / "lake"
    playlists = [LSD, f"https://open.spotify.com/playlist/{RAP_RU}?si=abc", TOP_50_GLOBAL, ITEMS_2026]
    day, output = run_dag(
        airflow_template_db,
        tmp_path,
        playlists,
        AIRFLOW_CONN_SPOTIFY_DEFAULT=json.dumps(server.connection(user=True)),
        AIRFLOW__LOGGING__LOGGING_LEVEL="DEBUG",  # spotipy logs request headers and token bodies at DEBUG
        SPOTIFY_ETL_EXTRACT_CHUNK_SIZE="2",  # [LSD, RAP_RU] and [TOP_50_GLOBAL, ITEMS_2026]
    )

    tries = task_tries(tmp_path / "home")
    assert tries[("extract_playlist", 0)][0] == "success", output[-4000:]
    # Both playlists of the second chunk fail in ways no retry heals: one try, both named.
    assert tries[("extract_playlist", 1)] == ("failed", 1) and ("extract_playlist", 2) not in tries
    assert {tries[(t, -1)][0] for t in ("plan", "transform", "catalog", "validate")} == {"success"}
    assert tries[("check_extracts", -1)][0] == "failed"
    assert (
        f"2 of 4 playlists failed to extract and are missing from this date's tables: {TOP_50_GLOBAL}, {ITEMS_2026}"
        in output
    )
    assert f"playlist {TOP_50_GLOBAL} metadata: Spotify answered 404" in output and "27 Nov 2024" in output
    assert f"playlist {ITEMS_2026} items page at offset 0: Spotify answered 403 (Forbidden)" in output
    owner = server.playlists[ITEMS_2026].owner
    assert f"owns or collaborates on, and this playlist is owned by '{owner}'" in output
    # Development-mode apps get no popularity: the range check says it had nothing to check.
    assert "SKIP songs_popularity_in_range: nothing to check (0 rows checked)" in output

    raw_dir = lake_dir / f"raw/playlists/dt={day}"
    assert sorted(p.name for p in raw_dir.iterdir()) == [f"playlist_id={RAP_RU}.json", f"playlist_id={LSD}.json"]
    docs = {pid: json.loads((raw_dir / f"playlist_id={pid}.json").read_text()) for pid in (LSD, RAP_RU)}
    assert {d["source"] for d in docs.values()} == {"spotify_api"}
    assert (docs[LSD]["total"], len(docs[LSD]["pages"]), docs[RAP_RU]["total"]) == (200, 3, 4)
    for table in ("songs", "albums", "artists", "song_artists", "playlist_items"):
        assert (lake_dir / f"processed/{table}/dt={day}/part-00000.parquet").stat().st_size > 0
    # LSD: its first 100 entries came with the metadata, 2 pages of 50 more; Rap RU's 4 came with the
    # metadata; the refused one; the 404 never got that far.
    assert len(server.api_requests("/items")) == 3
    # One token per chunk: one refresh-token grant for each of the two extract tasks.
    assert [r.form["grant_type"] for r in server.token_requests()] == ["refresh_token"] * 2

    # No credential in any log, XCom, metadata row, raw document, Parquet file or output, though
    # spotipy's DEBUG records of the token requests and API calls were logged (redacted).
    assert "Sending POST request to http://127.0.0.1" in output and "'refresh_token': '***'" in output
    found = leaks([CLIENT_SECRET, REFRESH_TOKEN, *server.secrets()], tmp_path / "home", lake_dir, output)
    # Known Airflow 3.3 behaviour, not ours: at DEBUG the task supervisor logs the very message
    # that registers a connection's secrets for masking ("Sending request ... msg=MaskSecret(value=...").
    # SECURITY.md: never run workers at DEBUG in production. Everything else must be clean.
    assert [f for f in found if f != "output: airflow MaskSecret"] == []


def test_a_connection_without_refresh_token_fails_every_extract_at_once_without_calling_spotify(
    airflow_template_db: Path, server: SpotifyServer, tmp_path: Path
) -> None:
    _, output = run_dag(
        airflow_template_db,
        tmp_path,
        [LSD, RAP_RU],
        AIRFLOW_CONN_SPOTIFY_DEFAULT=json.dumps(server.connection(user=False)),
        SPOTIFY_ETL_EXTRACT_CHUNK_SIZE="2",  # one chunk of both
    )

    tries = task_tries(tmp_path / "home")
    assert tries[("extract_playlist", 0)] == ("failed", 1), output[-4000:]  # the one chunk, one try
    assert (
        f"playlist {LSD}: no request made; Airflow connection 'spotify_default': the Spotify connection has no extra 'refresh_token'"
        in output
    )
    assert "run `spotify-etl auth`" in output
    assert f"playlist {RAP_RU}: not attempted after playlist {LSD}: no request made" in output
    assert server.requests == []  # refused before any token or API request


def test_a_playlist_missing_from_the_sample_data_fails_its_extract_at_once(
    airflow_template_db: Path, tmp_path: Path
) -> None:
    unknown = "0" * 22
    # No connection: the embedded sample data; one chunk of both.
    _, output = run_dag(airflow_template_db, tmp_path, [LSD, unknown], SPOTIFY_ETL_EXTRACT_CHUNK_SIZE="2")

    tries = task_tries(tmp_path / "home")
    assert tries[("extract_playlist", 0)] == ("failed", 1), output[-4000:]  # one try, although a retry was allowed
    assert tries[("transform", -1)][0] == "success"  # LSD landed in the same chunk and is published
    assert f"playlist {unknown} is not in the embedded sample data" in output and "USING EMBEDDED SAMPLE DATA" in output
    assert f"1 of 2 playlists failed to extract and are missing from this date's tables: {unknown}" in output


def copies_of(server: SpotifyServer, playlist_id: str, count: int) -> list[str]:
    """``count`` more playlists on the server, each a copy of ``playlist_id`` under a new id."""
    ids = [f"{playlist_id[:-2]}{n:02d}" for n in range(count)]
    for new in ids:
        original = server.playlists[playlist_id]
        meta = {**original.meta, "id": new}
        server.playlists[new] = Playlist(meta, original.entries, collaborators=set(original.collaborators))
    return ids


def test_chunks_take_one_token_each_and_a_retry_extracts_only_what_did_not_land(
    airflow_template_db: Path, server: SpotifyServer, tmp_path: Path
) -> None:
    playlists = [LSD, RAP_RU, *copies_of(server, RAP_RU, 4)]  # chunks of 3: [LSD, RAP_RU, c0], [c1, c2, c3]
    limited = playlists[4]
    # The second chunk's middle playlist meets a rate limit longer than the task may wait, once.
    server.fail(f"/v1/playlists/{limited}\\?", 429, headers={"Retry-After": "999"})
    day, output = run_dag(
        airflow_template_db,
        tmp_path,
        playlists,
        AIRFLOW_CONN_SPOTIFY_DEFAULT=json.dumps(server.connection(user=True)),
        SPOTIFY_ETL_EXTRACT_CHUNK_SIZE="3",
        SPOTIFY_ETL_EXTRACT_IN_FLIGHT="1",  # one after another: which playlists the first try reached is known
    )

    tries = task_tries(tmp_path / "home")
    assert tries[("extract_playlist", 0)] == ("success", 1), output[-4000:]
    assert tries[("extract_playlist", 1)] == ("success", 2)  # the rate limit was retried
    assert tries[("check_extracts", -1)][0] == "success"
    # Tokens: one per chunk task try (two chunks, one retry), never one per playlist.
    assert len(server.token_requests()) == 3
    metadata = [r.path.split("?")[0].rsplit("/", 1)[-1] for r in server.api_requests() if "/items" not in r.path]
    # The retry asked only for what had not landed: the limited playlist again and the one after it.
    assert {p: metadata.count(p) for p in playlists} == {**dict.fromkeys(playlists, 1), limited: 2}
    assert f"playlist {playlists[3]}: landed by an earlier try of this run; not extracted again" in output
    rows = pq.read_table(tmp_path / f"lake/processed/playlist_items/dt={day}/part-00000.parquet")
    assert set(rows.column("playlist_id").to_pylist()) == set(playlists)
