"""The run log (spotify_etl.runlog): its row from plain values, its file per run in the lake, its
view in the local catalog, and the DAG's transform task body writing it (spotify_etl.airflow.tasks)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from spotify_etl import chunks, runlog, tables
from spotify_etl.airflow import tasks
from spotify_etl.extract import SampleSource, extract_playlist
from spotify_etl.lake import LocalLake
from spotify_etl.plan import EXTRACT, REPROCESS, RunPlan
from spotify_etl.settings import Settings
from spotify_etl.transform import REASONS
from spotify_etl.warehouse import local

from tests.support.lazy_xcom import CountingLazySequence
from tests.support.trino import athena_sql_problems

DAY = "2026-11-25"
LSD, RAP_RU, EPISODES = "4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms", "23Ay9WfURne0LvtlCvYTkj"
STARTED = dt.datetime(2026, 11, 25, 6, 0, tzinfo=dt.UTC)
RUN = "scheduled__2026-11-25T00:00:00+00:00"


def transformed(publish_id: str = "20261125T060102000000Z-aaaaaaaa", **rows: int) -> dict[str, Any]:
    """A TransformResult.as_dict() as the transform returns it: every table's rows, the reasons it saw."""
    return {
        "dt": DAY, "documents": 2, "entries": 10, "publish_id": publish_id,
        "published_at": "2026-11-25T06:01:02.500000+00:00",
        "rows": {t: rows.get(t, i + 1) for i, t in enumerate(tables.TABLE_NAMES)},
        "rejected": {"null_entry": 2, "local_file": 1}, "bytes_written": {}, "seconds": 1.25, "step_seconds": {},
    }  # fmt: skip


def landed(playlist_id: str, items: int, api_calls: int, unchanged: bool = False) -> dict[str, Any]:
    return {"playlist_id": playlist_id, "items": items, "api_calls": api_calls, "unchanged": unchanged}


def row(run_id: str = RUN, mode: str = EXTRACT, **changes: Any) -> runlog.RunRow:
    values: dict[str, Any] = {
        "run_id": run_id, "run_type": "scheduled", "started_at": STARTED, "mode": mode,
        "planned": [LSD, RAP_RU, EPISODES],
        "extracted": [landed(LSD, 100, 3), landed(EPISODES, 4, 1, unchanged=True)] if mode == EXTRACT else [],
        "transformed": transformed(),
    }  # fmt: skip
    return runlog.build_row(**(values | changes))


def read_view(lake: LocalLake, db: Path, sql: str) -> list[tuple[Any, ...]]:
    local.register_run_log(lake, db, "spotify_etl", "p_")
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


# ---- the row --------------------------------------------------------------------------------------
def test_an_extract_runs_row_counts_its_playlists_requests_and_items() -> None:
    record = row().record()
    assert record == {
        "run_id": RUN, "run_type": "scheduled", "mode": "extract", "publish_id": "20261125T060102000000Z-aaaaaaaa",
        "started_at": STARTED, "published_at": dt.datetime(2026, 11, 25, 6, 1, 2, 500000, tzinfo=dt.UTC),
        "playlists_planned": 3, "playlists_landed": 2, "playlists_unchanged": 1, "playlists_failed": 1,
        "spotify_requests": 4, "items_read": 100,  # the unchanged playlist's 4 items were reused, not read
        "transform_seconds": 1.25,
        **{f"rows_{t}": i + 1 for i, t in enumerate(tables.TABLE_NAMES)},
        **{f"rejected_{r}": {"null_entry": 2, "local_file": 1}.get(r, 0) for r in REASONS},
    }  # fmt: skip
    assert list(record) == runlog.schema().names  # in the schema's order


def test_a_reprocess_lands_nothing_and_fails_nothing() -> None:
    record = row(mode=REPROCESS).record()
    assert (record["playlists_planned"], record["playlists_landed"], record["playlists_failed"]) == (3, 0, 0)
    assert (record["spotify_requests"], record["items_read"], record["mode"]) == (0, 0, "reprocess")


def test_times_are_utc_and_a_time_without_zone_is_refused() -> None:
    eastern = dt.timezone(dt.timedelta(hours=-5))
    assert row(started_at=dt.datetime(2026, 11, 25, 1, 0, tzinfo=eastern)).started_at == STARTED
    with pytest.raises(ValueError, match="a run log time needs a time zone, got 2026-11-25T06:00:00"):
        row(started_at=dt.datetime(2026, 11, 25, 6, 0))


def test_columns_are_plain_one_per_table_and_reason_and_follow_a_new_table(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [name for name, _, _ in runlog.columns()]
    assert [n for n in names if n.startswith("rows_")] == [f"rows_{t}" for t in tables.TABLE_NAMES]
    assert [n for n in names if n.startswith("rejected_")] == [f"rejected_{r}" for r in REASONS]
    assert "dt" not in names and runlog.TABLE not in tables.TABLE_NAMES  # dt is the partition folder
    schema = runlog.schema()
    assert not any(str(field.type).startswith(("map", "struct", "list")) for field in schema)
    assert str(schema.field("started_at").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("transform_seconds").type) == "double"

    monkeypatch.setattr(tables, "TABLE_NAMES", (*tables.TABLE_NAMES, "playlists"))  # a sixth table, as declared
    assert ("rows_playlists", "int64", False) in runlog.columns()
    assert row(transformed=transformed(playlists=7)).record()["rows_playlists"] == 7
    with pytest.raises(KeyError, match="playlists"):  # a table the transform did not count is no zero
        row(transformed={**transformed(), "rows": {t: 1 for t in tables.TABLE_NAMES if t != "playlists"}})


def test_file_names_are_safe_distinct_and_never_hidden() -> None:
    name = runlog.file_name("manual__2026-12-07T03:15:00.123456+00:00")
    assert name.startswith("run-manual__2026-12-07T03_15_00.123456_00_00-") and name.endswith(".parquet")
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert runlog.file_name("a:b") != runlog.file_name("a+b")  # read alike, different digests
    assert runlog.file_name(".x").startswith("run-") and runlog.file_name("_x").startswith("run-")
    assert len(runlog.file_name("x" * 250)) < 140
    assert runlog.file_name(RUN) == runlog.file_name(RUN)


# ---- in the lake and the catalog ------------------------------------------------------------------
def test_a_rerun_replaces_its_own_row_another_run_adds_its_own(tmp_path: Path) -> None:
    lake, db = LocalLake(tmp_path / "lake"), tmp_path / "catalog.duckdb"
    first = runlog.write_row(lake, row())
    assert first == f"{tmp_path}/lake/processed/pipeline_runs/dt={DAY}/{runlog.file_name(RUN)}"
    written = pq.read_table(first)
    assert written.schema == runlog.schema() and written.to_pylist() == [row().record()]

    cleared = row(transformed=transformed("20261125T090000000000Z-bbbbbbbb", songs=99))  # the same run, cleared
    assert runlog.write_row(lake, cleared) == first
    backfill = row("backfill__2026-11-25T00:00:00+00:00", REPROCESS, run_type="backfill")
    runlog.write_row(lake, backfill)
    assert sorted(p.name for p in Path(first).parent.iterdir()) == sorted(
        runlog.file_name(r) for r in (RUN, "backfill__2026-11-25T00:00:00+00:00")
    )  # no temporary file left
    got = read_view(lake, db, "SELECT dt, run_id, run_type, mode, publish_id, rows_songs FROM spotify_etl.p_pipeline_runs "
                    "ORDER BY run_id")  # fmt: skip
    assert got == [
        (DAY, "backfill__2026-11-25T00:00:00+00:00", "backfill", "reprocess", "20261125T060102000000Z-aaaaaaaa", 3),
        (DAY, RUN, "scheduled", "extract", "20261125T090000000000Z-bbbbbbbb", 99),
    ]


def test_the_view_is_empty_before_any_run_with_the_columns_and_types_of_a_written_row(tmp_path: Path) -> None:
    lake, db = LocalLake(tmp_path / "lake"), tmp_path / "catalog.duckdb"
    describe = "SELECT column_name, column_type FROM (DESCRIBE spotify_etl.p_pipeline_runs)"
    empty = read_view(lake, db, describe)
    assert read_view(lake, db, "SELECT count(*) FROM spotify_etl.p_pipeline_runs") == [(0,)]
    runlog.write_row(lake, row())
    assert read_view(lake, db, describe) == empty
    assert [name for name, _ in empty] == [*(name for name, _, _ in runlog.columns()), "dt"]


def test_the_view_reads_an_older_row_without_a_new_column_as_null(tmp_path: Path) -> None:
    lake, db = LocalLake(tmp_path / "lake"), tmp_path / "catalog.duckdb"
    old = pq.read_table(runlog.write_row(lake, row()))  # as written before the table songs existed
    pq.write_table(old.drop_columns(["rows_songs"]), runlog.row_path(lake, DAY, RUN))
    runlog.write_row(lake, row("manual__2026-11-25T08:00:00+00:00"))
    got = read_view(
        lake, db, "SELECT run_id, rows_songs, typeof(rows_songs) FROM spotify_etl.p_pipeline_runs ORDER BY 1"
    )
    assert got == [("manual__2026-11-25T08:00:00+00:00", 3, "BIGINT"), (RUN, None, "BIGINT")]


def test_the_local_targets_catalog_registers_the_run_log(tmp_path: Path) -> None:
    from spotify_etl.targets import LocalTarget

    lake_dir = tmp_path / "lake"
    lake = LocalLake(lake_dir)
    extract_playlist(SampleSource(), lake, LSD, DAY, f"{DAY}T06:00:00+00:00")
    settings = Settings(lake_dir=lake_dir, duckdb_path=tmp_path / "catalog.duckdb", table_prefix="p_")
    tasks.run_transform(settings, DAY, RunPlan(DAY, REPROCESS, [LSD], "").as_dict(), [], FakeRun(RUN))
    views = LocalTarget(settings).catalog(lake)
    assert views["spotify_etl.p_pipeline_runs"] == f"{lake_dir}/processed/pipeline_runs/dt=*/*.parquet"
    with duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True) as con:
        joined = con.execute(
            "SELECT r.run_id, count(*) = r.rows_songs FROM spotify_etl.p_pipeline_runs r JOIN spotify_etl.p_songs s "
            "ON s.dt = r.dt AND s.publish_id = r.publish_id GROUP BY r.run_id, r.rows_songs"
        ).fetchall()
    assert joined == [(RUN, True)]  # the run's row joins to every song it published

    # docs/tables.md's example: Athena's dialect, and run by DuckDB on this catalog (one text, as validate.sql).
    docs = (Path(__file__).parents[2] / "docs" / "tables.md").read_text(encoding="utf-8")
    example = docs.split("## The run log", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    assert athena_sql_problems(example) == []
    with duckdb.connect(str(tmp_path / "catalog.duckdb"), read_only=True) as con:
        answer = con.execute(example.replace("spotify_etl.", "spotify_etl.p_")).fetchall()
    assert answer == [(DAY, "scheduled", "reprocess", 0, 0, 200, True)]


# ---- the DAG's transform task body -----------------------------------------------------------------
class FakeRun:
    """What the transform task reads of the DAG run (the task SDK's run_type is a str enum)."""

    def __init__(self, run_id: str, run_type: str = "scheduled", start_date: dt.datetime | None = STARTED) -> None:
        self.run_id, self.run_type, self.start_date = run_id, run_type, start_date
        self.run_after = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def test_the_transform_task_records_an_extract_run_from_its_chunks_and_the_dag_run(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    lake = LocalLake(lake_dir)
    outcome = chunks.extract_chunk(SampleSource, lake, [LSD, EPISODES], DAY, f"{DAY}T06:00:00+00:00", run="r")
    failed = {"landed": [], "failed": [{"playlist_id": RAP_RU, "error": "playlist x: 404", "retryable": False}]}
    plan = RunPlan(DAY, EXTRACT, [LSD, RAP_RU, EPISODES], "").as_dict()
    extracted = CountingLazySequence([outcome.as_dict(), failed, None])
    result = tasks.run_transform(Settings(lake_dir=lake_dir), DAY, plan, extracted, FakeRun(RUN))
    assert extracted.requests == ["slice"]  # read once for the scope and the run log
    (written,) = pq.read_table(runlog.row_path(lake, DAY, RUN)).to_pylist()
    results = outcome.landed
    assert written["run_id"] == RUN and written["run_type"] == "scheduled" and written["started_at"] == STARTED
    assert (written["mode"], written["publish_id"]) == ("extract", result["publish_id"])
    assert written["published_at"] == dt.datetime.fromisoformat(result["published_at"])
    assert (written["playlists_planned"], written["playlists_landed"], written["playlists_failed"]) == (3, 2, 1)
    assert written["playlists_unchanged"] == 0 and written["spotify_requests"] == sum(r["api_calls"] for r in results)
    assert written["items_read"] == sum(r["items"] for r in results) > 0
    assert {t: written[f"rows_{t}"] for t in tables.TABLE_NAMES} == result["rows"]
    assert {r: written[f"rejected_{r}"] for r in REASONS} == {r: result["rejected"].get(r, 0) for r in REASONS}
    assert written["transform_seconds"] == result["seconds"]
    songs = pq.read_table(f"{lake.partition_dir('songs', DAY)}/part-00000.parquet")
    assert set(songs[tables.PUBLISH_ID].to_pylist()) == {written["publish_id"]}


def test_a_run_not_started_yet_in_airflows_record_takes_its_run_after(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    extract_playlist(SampleSource(), LocalLake(lake_dir), LSD, DAY, f"{DAY}T06:00:00+00:00")
    run = FakeRun("backfill__x", "backfill", start_date=None)
    tasks.run_transform(Settings(lake_dir=lake_dir), DAY, RunPlan(DAY, REPROCESS, [LSD], "").as_dict(), None, run)
    (written,) = pq.read_table(runlog.row_path(LocalLake(lake_dir), DAY, "backfill__x")).to_pylist()
    assert (written["started_at"], written["run_type"]) == (run.run_after, "backfill")
