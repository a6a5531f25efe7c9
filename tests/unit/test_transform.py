"""Transform on the real recorded payloads: concrete rows, counts and reject reasons."""

from __future__ import annotations

import copy
import datetime as dt
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest
from spotify_etl import tables, transform
from spotify_etl.extract import SampleSource, extract_playlist
from spotify_etl.lake import Lake, LocalLake
from spotify_etl.plan import REPROCESS, RunPlan
from spotify_etl.settings import Settings, SettingsError
from spotify_etl.transform import REASONS, TransformError, TransformOutOfMemory, transform_day

from tests.conftest import load_fixture
from tests.support.raw import land

DAY = "2026-11-25"
LSD = "4dn0iEoAxn69ea0Tyov8V5"
RAP = "1h9q8vXXDl2vHOmwdsuXms"
EPI = "23Ay9WfURne0LvtlCvYTkj"
GHOST = "5LkNhFidYyyjRWwnkcMbQs"
NEW = "5RDmNvuz0prl7bLqtZNkDe"
NULL = "4XOGDpHMrVoH33uJEwHWU5"
# What the transform task reads of its DAG run (the run log's row: tests/unit/test_runlog.py).
DAG_RUN = SimpleNamespace(run_id="manual__2026-11-25T06:00:00+00:00", run_type="manual",
                          start_date=dt.datetime(2026, 11, 25, 6, tzinfo=dt.UTC), run_after=None)  # fmt: skip


def read(lake_dir: Path, table: str, day: str = DAY) -> list[dict]:
    """The partition's rows without their publish id (each transform's own: see the publish tests)."""
    rows = pq.read_table(lake_dir / "processed" / table / f"dt={day}" / "part-00000.parquet").to_pylist()
    return [{k: v for k, v in row.items() if k != tables.PUBLISH_ID} for row in rows]


def publish_ids(lake_dir: Path, day: str = DAY) -> dict[str, set[str]]:
    files = {t: lake_dir / "processed" / t / f"dt={day}" / "part-00000.parquet" for t in tables.TABLE_NAMES}
    return {t: set(pq.read_table(f, columns=[tables.PUBLISH_ID])[0].to_pylist()) for t, f in files.items()}


def page(name: str, **changes: object) -> dict:
    data = load_fixture(name)
    data.update(changes)
    return data


def test_lsdream_two_pages_local_files_and_year_precision(lake: Lake, lake_dir: Path) -> None:
    land(
        lake,
        DAY,
        LSD,
        [
            page("playlist_LSDreamTheatre_tracks_page1_offset0.json"),
            page("playlist_LSDreamTheatre_tracks_page2_offset100.json"),
        ],
    )
    result = transform_day(lake, DAY)

    assert result.documents == 1 and result.entries == 200
    assert result.rejected == {"local_file": 8}
    items = read(lake_dir, "playlist_items")
    assert [i["position"] for i in items] == list(range(200))  # page 2 continues at 100
    local = [i for i in items if i["is_local"]]
    assert len(local) == 8 and all(i["song_id"] is None for i in local)
    first_added = load_fixture("playlist_LSDreamTheatre_tracks_page1_offset0.json")["items"][0]["added_at"]
    assert items[0]["added_at"] == dt.datetime.fromisoformat(first_added.replace("Z", "+00:00"))
    songs = read(lake_dir, "songs")
    assert len(songs) == result.rows["songs"] == len({i["song_id"] for i in items if i["song_id"]})
    albums = {a["album_id"]: a for a in read(lake_dir, "albums")}
    year = [a for a in albums.values() if a["release_date_precision"] == "year"]
    assert year and all(a["release_date"].month == 1 and a["release_date"].day == 1 for a in year)
    assert {a["release_date"].year for a in year} >= {2004, 2006}


def test_first_artist_of_track_and_every_artist_kept(lake: Lake, lake_dir: Path) -> None:
    land(lake, DAY, RAP, [load_fixture("playlist_RapRU_get_playlist.json")["tracks"]])
    transform_day(lake, DAY)
    raw = load_fixture("playlist_RapRU_get_playlist.json")["tracks"]["items"]
    songs = {s["song_id"]: s for s in read(lake_dir, "songs")}
    pairs = {(r["song_id"], r["artist_id"]): r["position"] for r in read(lake_dir, "song_artists")}
    for entry in raw:
        track = entry["track"]
        assert songs[track["id"]]["artist_id"] == track["artists"][0]["id"]  # the track's, not the album's
        assert songs[track["id"]]["name"] == track["name"]  # Cyrillic survives
        for pos, artist in enumerate(track["artists"]):
            assert pairs[(track["id"], artist["id"])] == pos
    assert sum(1 for s in songs.values() if s["explicit"]) == 3
    artists = {a["artist_id"]: a for a in read(lake_dir, "artists")}
    first = raw[0]["track"]["artists"][0]
    assert artists[first["id"]]["external_url"] == first["external_urls"]["spotify"]


def test_episodes_null_tracks_ghosts_and_2026_shape(lake: Lake, lake_dir: Path) -> None:
    land(lake, DAY, EPI, [load_fixture("playlist_items_episodes_and_tracks.json")])
    land(lake, DAY, GHOST, [load_fixture("playlist_tracks_unavailable_track_release_0000.json")])
    new = page("playlist_items_new_items_endpoint_2026.json", offset=0)
    land(lake, DAY, NEW, [new])
    land(lake, DAY, NULL, [load_fixture("playlist_tracks_null_track_trimmed.json")])
    result = transform_day(lake, DAY)

    assert result.entries == 4 + 10 + 5 + 1
    assert result.rejected == {"not_a_track": 2, "invalid_duration_ms": 1, "null_entry": 1}
    songs = {s["song_id"]: s for s in read(lake_dir, "songs")}
    assert "4YhITuwINLCfXYB2WCXbCZ" not in songs  # the unavailable "ghost" track: duration 0
    for entry in new["items"]:  # 2026 `item` key, no popularity
        assert songs[entry["item"]["id"]]["popularity"] is None
    albums = {a["album_id"]: a for a in read(lake_dir, "albums")}
    assert "0SD7WKX5j92D3g3N4JM8N3" not in albums  # only the ghost track used it
    items = read(lake_dir, "playlist_items")
    null_item = [i for i in items if i["playlist_id"] == NULL]
    assert null_item == [
        {
            "playlist_id": NULL,
            "position": 0,
            "song_id": None,
            "added_at": null_item[0]["added_at"],
            "added_by": None,
            "is_local": False,
        }
    ]


def test_month_precision_release_date(lake: Lake, lake_dir: Path) -> None:
    album = load_fixture("album_month_precision_Mirrored.json")
    track = copy.deepcopy(album["tracks"]["items"][0])
    track["album"] = {
        k: album.get(k)
        for k in ("id", "name", "release_date", "release_date_precision", "total_tracks", "external_urls")
    }
    entry = {"added_at": "2026-01-02T03:04:05Z", "added_by": {"id": "me"}, "is_local": False, "track": track}
    land(lake, DAY, RAP, [{"items": [entry], "offset": 0, "total": 1, "next": None}])
    transform_day(lake, DAY)
    (row,) = read(lake_dir, "albums")
    assert row["release_date"] == dt.date(2007, 3, 1) and row["release_date_precision"] == "month"


def test_duplicates_within_and_across_playlists(lake: Lake, lake_dir: Path) -> None:
    rap = load_fixture("playlist_RapRU_get_playlist.json")["tracks"]
    doubled = {**rap, "items": rap["items"] + rap["items"], "total": 8}
    land(lake, DAY, RAP, [doubled])
    land(lake, DAY, EPI, [rap])
    result = transform_day(lake, DAY)
    assert result.rows["playlist_items"] == 12
    assert result.rows["songs"] == 4
    song_ids = [s["song_id"] for s in read(lake_dir, "songs")]
    assert song_ids == sorted(set(song_ids))


def test_wrong_types_are_rejected_per_row(lake: Lake, lake_dir: Path) -> None:
    rap = load_fixture("playlist_RapRU_get_playlist.json")["tracks"]
    items = copy.deepcopy(rap["items"])
    items[0]["track"]["duration_ms"] = "three minutes"
    items[1]["track"]["id"] = 12345
    items[2]["track"]["popularity"] = 101
    items[3]["track"]["album"] = None
    land(lake, DAY, RAP, [{**rap, "items": items}])
    result = transform_day(lake, DAY)
    assert result.rejected == {
        "invalid_duration_ms": 1,
        "invalid_track_id": 1,
        "invalid_popularity": 1,
        "invalid_album_id": 1,
    }
    assert set(result.rejected) <= set(REASONS)
    assert result.rows["songs"] == 0 and result.rows["playlist_items"] == 4


def test_deterministic_and_rerun_replaces_partition(lake: Lake, lake_dir: Path) -> None:
    land(lake, DAY, LSD, [page("playlist_LSDreamTheatre_tracks_page1_offset0.json")])
    land(lake, DAY, RAP, [load_fixture("playlist_RapRU_get_playlist.json")["tracks"]])
    first_result = transform_day(lake, DAY)
    first = {t: read(lake_dir, t) for t in tables.TABLE_NAMES}
    assert publish_ids(lake_dir) == {t: {first_result.publish_id} for t in tables.TABLE_NAMES}
    files = sorted(p.relative_to(lake_dir) for p in (lake_dir / "processed").rglob("*") if p.is_file())
    second_result = transform_day(lake, DAY)
    assert {t: read(lake_dir, t) for t in tables.TABLE_NAMES} == first  # the same rows, from a new publish
    assert publish_ids(lake_dir) == {t: {second_result.publish_id} for t in tables.TABLE_NAMES}
    assert second_result.publish_id > first_result.publish_id  # ids are time-ordered
    assert sorted(p.relative_to(lake_dir) for p in (lake_dir / "processed").rglob("*") if p.is_file()) == files
    assert len(files) == len(tables.TABLE_NAMES)
    for t in tables.TABLE_NAMES:
        assert pq.read_schema(lake_dir / "processed" / t / f"dt={DAY}" / "part-00000.parquet").equals(tables.schema(t))


def test_corrupt_raw_document_fails_naming_file_and_keeps_previous_partition(lake: Lake, lake_dir: Path) -> None:
    land(lake, DAY, RAP, [load_fixture("playlist_RapRU_get_playlist.json")["tracks"]])
    transform_day(lake, DAY)
    before = read(lake_dir, "songs")
    bad = lake_dir / "raw" / "playlists" / f"dt={DAY}" / f"playlist_id={LSD}.json"
    bad.write_text('{"playlist_id": "4dn0iEoAxn69ea0Tyov8V5", "pages": [{"items": [', encoding="utf-8")
    with pytest.raises(TransformError, match=f"playlist_id={LSD}.json"):
        transform_day(lake, DAY)
    assert read(lake_dir, "songs") == before


def test_document_whose_id_does_not_match_its_file_is_refused(lake: Lake, lake_dir: Path) -> None:
    path = land(lake, DAY, RAP, [load_fixture("playlist_RapRU_get_playlist.json")["tracks"]])
    Path(path).rename(Path(path).with_name(f"playlist_id={LSD}.json"))
    with pytest.raises(TransformError, match="does not match the file name"):
        transform_day(lake, DAY)
    assert not (lake_dir / "processed").exists()


def test_no_raw_documents_is_an_error(lake: Lake) -> None:
    with pytest.raises(TransformError, match=f"no raw documents for dt={DAY}"):
        transform_day(lake, DAY)


def test_a_zero_byte_raw_document_is_named(lake: Lake, lake_dir: Path) -> None:
    land(lake, DAY, RAP, [load_fixture("playlist_RapRU_get_playlist.json")["tracks"]])
    empty = lake_dir / "raw" / "playlists" / f"dt={DAY}" / f"playlist_id={LSD}.json"
    empty.write_bytes(b"")
    with pytest.raises(TransformError, match=rf"2 files but 1 documents .*; {empty}: empty file \(0 bytes\)") as info:
        transform_day(lake, DAY)
    assert not info.value.retryable
    assert not (lake_dir / "processed").exists()


# DuckDB reads even a small document with a 32 MiB buffer: at 30MB every read runs out of memory.
TINY_LIMIT = "30MB"


def land_four(lake: Lake) -> None:
    """Four documents of ~0.5 MB (the two recorded pages of a playlist)."""
    pages = [load_fixture(f"playlist_LSDreamTheatre_tracks_page{n}.json") for n in ("1_offset0", "2_offset100")]
    for playlist_id in (LSD, RAP, EPI, GHOST):
        land(lake, DAY, playlist_id, pages)


def test_out_of_memory_reads_on_one_thread_then_in_halves_then_alone_with_a_higher_limit(
    lake: Lake, lake_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    land_four(lake)
    expected = transform_day(lake, DAY)
    tables_at_default = {t: read(lake_dir, t) for t in tables.TABLE_NAMES}

    with caplog.at_level(logging.WARNING, logger="spotify_etl.transform"):
        result = transform_day(lake, DAY, memory_limit=TINY_LIMIT, threads=2)

    assert result.rows == expected.rows and result.rejected == expected.rejected and result.documents == 4
    assert {t: read(lake_dir, t) for t in tables.TABLE_NAMES} == tables_at_default
    messages = [r.getMessage() for r in caplog.records]
    assert any("reading 4 document(s)" in m and m.endswith("reading them again on one thread") for m in messages)
    assert any("reading 4 document(s)" in m and m.endswith("reading them in halves") for m in messages)
    raised = [m for m in messages if "reading it with the limit raised to" in m]
    assert len(raised) == 4 and all("does not fit DuckDB's memory limit of 28.6 MiB alone" in m for m in raised)


def test_out_of_memory_that_a_higher_limit_does_not_heal_is_retryable_and_names_the_setting(
    lake: Lake, lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_four(lake)
    monkeypatch.setattr(transform, "ALONE_BYTES", 0)  # the "higher" limit is the limit itself
    monkeypatch.setattr(transform, "ALONE_BYTES_PER_BYTE", 0)
    with pytest.raises(TransformOutOfMemory) as info:
        transform_day(lake, DAY, memory_limit=TINY_LIMIT, threads=2)
    message = str(info.value)
    assert info.value.retryable and isinstance(info.value, TransformError)
    assert message.startswith(f"DuckDB ran out of memory reading {lake.raw_path(DAY, RAP)} (0.5 MiB) alone at 28MiB")
    assert "nothing was written" in message and "This is memory, not bad input" in message
    assert "raise SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT (now 28.6 MiB)" in message
    assert not (lake_dir / "processed").exists()


def test_the_dags_transform_task_leaves_out_of_memory_to_airflows_retries_and_fails_bad_input_at_once(
    lake: Lake, lake_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from spotify_etl.airflow.tasks import run_transform
    from spotify_etl.settings import Settings

    land_four(lake)
    monkeypatch.setattr(transform, "ALONE_BYTES", 0)
    monkeypatch.setattr(transform, "ALONE_BYTES_PER_BYTE", 0)
    tiny = Settings(lake_dir=lake_dir, duckdb_memory_limit=TINY_LIMIT, duckdb_threads=2)
    plan = RunPlan(DAY, REPROCESS, [LSD, RAP, EPI, GHOST], "").as_dict()
    with pytest.raises(TransformOutOfMemory, match="raise SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT"):
        run_transform(tiny, DAY, plan, [], DAG_RUN)  # not AirflowFailException: Airflow retries it

    (lake_dir / "raw" / "playlists" / f"dt={DAY}" / f"playlist_id={LSD}.json").write_bytes(b"")
    with pytest.raises(AirflowFailException, match=rf"playlist_id={LSD}.json: empty file \(0 bytes\)"):
        run_transform(Settings(lake_dir=lake_dir), DAY, plan, [], DAG_RUN)


# ---- DuckDB's memory limit and threads (SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT, _THREADS) ------------
def duckdb_settings(con: Any) -> tuple[str, int]:
    memory, threads = con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
    return str(memory), int(threads)


def test_default_memory_limit_is_256mb_and_threads_are_duckdbs_own() -> None:
    import duckdb

    s = Settings.from_env({})
    with transform.connect(s.duckdb_memory_limit, s.duckdb_threads) as con, duckdb.connect() as plain:
        assert duckdb_settings(con) == ("244.1 MiB", duckdb_settings(plain)[1])  # DuckDB writes 256MB in MiB


def test_memory_and_threads_settings_reach_duckdb() -> None:
    s = Settings.from_env({"SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": "512MB", "SPOTIFY_ETL_DUCKDB_THREADS": "1"})
    assert (s.duckdb_memory_limit, s.duckdb_threads) == ("512MB", 1)
    with transform.connect(s.duckdb_memory_limit, s.duckdb_threads) as con:
        assert duckdb_settings(con) == ("488.2 MiB", 1)


def test_the_dags_transform_step_opens_duckdb_with_the_settings(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:  # fmt: skip
    """The DAG's transform task body hands the settings to DuckDB."""
    from spotify_etl.airflow.tasks import run_transform

    lake = LocalLake(tmp_path / "lake")
    extract_playlist(SampleSource(), lake, LSD, DAY, f"{DAY}T06:00:00+00:00")
    s = Settings(lake_dir=tmp_path / "lake", duckdb_memory_limit="300MB", duckdb_threads=1)
    seen: list[tuple[str, int]] = []
    real_connect = transform.connect

    def spy(*args: Any, **kwargs: Any) -> Any:
        con = real_connect(*args, **kwargs)
        seen.append(duckdb_settings(con))
        return con

    monkeypatch.setattr(transform, "connect", spy)
    result = run_transform(
        s, DAY, RunPlan(DAY, REPROCESS, [LSD], "a reprocess of the one landed playlist").as_dict(), [], DAG_RUN
    )
    assert result["documents"] == 1 and result["rows"]["songs"] > 0
    assert seen == [("286.1 MiB", 1)]


def test_the_cli_transform_uses_the_settings_and_names_a_bad_one(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    from spotify_etl import cli

    lake = LocalLake(tmp_path / "lake")
    extract_playlist(SampleSource(), lake, LSD, DAY, f"{DAY}T06:00:00+00:00")
    argv = ["transform", "--raw", str(tmp_path / "lake"), "--out", str(tmp_path / "lake"), "--date", DAY]
    monkeypatch.delenv("SPOTIFY_ETL_DUCKDB_THREADS", raising=False)
    monkeypatch.setenv("SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT='lots': a size"):  # as any bad setting
        cli.main(argv)
    monkeypatch.setenv("SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT", "300MB")
    seen: list[tuple[str, int]] = []
    real_connect = transform.connect
    monkeypatch.setattr(
        transform, "connect", lambda *a, **k: seen.append(duckdb_settings(c := real_connect(*a, **k))) or c
    )
    assert cli.main(argv) == 0
    assert seen[0][0] == "286.1 MiB"


# ---- A run publishes exactly the playlists it planned (issue 12, point 6) -------------------------
def published(lake_dir: Path) -> set[str]:
    path = lake_dir / "processed" / "playlist_items" / f"dt={DAY}" / "part-00000.parquet"
    return set(pq.read_table(path).column("playlist_id").to_pylist())


@pytest.fixture
def landed(lake: Lake) -> Lake:
    for playlist_id in (LSD, RAP, EPI):
        extract_playlist(SampleSource(), lake, playlist_id, DAY, "t")
    return lake


def test_transform_day_publishes_only_the_given_playlists_and_keeps_the_others_raw(
    landed: Lake, lake_dir: Path
) -> None:
    transform_day(landed, DAY)
    assert published(lake_dir) == {LSD, RAP, EPI}  # no scope: every document landed
    result = transform_day(landed, DAY, playlists=[RAP, EPI])
    assert published(lake_dir) == {RAP, EPI} and result.documents == 2  # the shorter list replaces it
    assert len(landed.raw_files(DAY)) == 3  # landed raw documents are never deleted


def test_transform_day_refuses_a_scope_it_cannot_honour(landed: Lake, lake_dir: Path) -> None:
    transform_day(landed, DAY, playlists=[LSD])
    with pytest.raises(TransformError, match=f"dt={DAY}: no raw document landed for 5LkNhFidYyyjRWwnkcMbQs"):
        transform_day(landed, DAY, playlists=[LSD, "5LkNhFidYyyjRWwnkcMbQs"])
    with pytest.raises(TransformError, match="no playlist of this run was extracted, so nothing was written"):
        transform_day(landed, DAY, playlists=[])
    assert published(lake_dir) == {LSD}  # the date's tables are left as they were


def test_ten_thousand_absent_playlists_give_a_bounded_message(landed: Lake) -> None:
    absent = [f"{n:022d}" for n in range(10_000)]
    with pytest.raises(TransformError) as raised:
        transform_day(landed, DAY, playlists=[LSD, *absent])
    message = str(raised.value)
    assert len(message) < 1_000 and absent[0] in message and "and 9,990 more" in message


def test_playlists_come_from_the_documents_metadata_and_documents_landed_before_it_give_nulls(
    lake: Lake, lake_dir: Path
) -> None:
    extract_playlist(SampleSource(), lake, RAP, DAY, f"{DAY}T06:00:00+00:00")  # metadata kept
    land(lake, DAY, NEW, [load_fixture("playlist_items_new_items_endpoint_2026.json")])  # an older document: none
    result = transform_day(lake, DAY)

    utc = dt.UTC
    assert result.rows["playlists"] == 2
    assert read(lake_dir, "playlists") == [
        {
            "playlist_id": RAP,
            "name": "Rap RU",
            "description": "Bit of a overlap with phonk but whatever",
            "owner_id": "1123408718",
            "owner_name": "Antoine Egea",
            "public": True,
            "collaborative": False,
            "snapshot_id": "OCw3NGQ1M2Y5NjFiNGE5NmJmYjUxNmJlM2QzMzk2ZDNhYWZmY2NlNTJh",
            "items_total": 4,
            "followers": 0,
            "extracted_at": dt.datetime(2026, 11, 25, 6, tzinfo=utc),
        },
        {
            "playlist_id": NEW,
            "name": f"test {NEW}",  # the document's own keys
            "description": None,
            "owner_id": "tester",
            "owner_name": None,
            "public": None,
            "collaborative": None,
            "snapshot_id": f"snap-{NEW}",
            "items_total": 5,
            "followers": None,
            "extracted_at": dt.datetime(2026, 11, 25, tzinfo=utc),
        },
    ]


def test_an_empty_playlist_has_its_playlists_row(lake: Lake, lake_dir: Path) -> None:
    land(lake, DAY, RAP, [load_fixture("playlist_RapRU_get_playlist.json")["tracks"]])
    land(lake, DAY, LSD, [{"items": [], "offset": 0, "next": None, "total": 0}])
    transform_day(lake, DAY)
    assert [(p["playlist_id"], p["items_total"]) for p in read(lake_dir, "playlists")] == [(RAP, 4), (LSD, 0)]
    assert {i["playlist_id"] for i in read(lake_dir, "playlist_items")} == {RAP}
