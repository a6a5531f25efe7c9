"""The trends report (spotify_etl.report, include/sql/report/) on hand-made partitions: each query's
exact rows in DuckDB, the same text valid for Athena, the page's numbers equal to the queries',
a first date's page, where the pages land, and a failure that names the report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from spotify_etl import report, runlog, tables
from spotify_etl.lake import LocalLake
from spotify_etl.settings import Settings
from spotify_etl.targets import LocalTarget
from spotify_etl.transform import REASONS

from tests.support.partitions import write_partition
from tests.support.trino import athena_sql_problems

DATABASE, PREFIX = "spotify_etl", "r_"
D1, D2, D3 = "2026-03-01", "2026-03-02", "2026-03-03"
# playlist -> (name, date -> its songs); P2 is not landed on D2.
PLAYLISTS = {
    "P1": ("Mix", {D1: ["A", "B"], D2: ["A", "B", "C"], D3: ["B", "C", "D"]}),
    "P2": ("Chill", {D1: ["X"], D3: ["X", "Y", "Y"]}),  # Y twice: one song
}
CREDITS = {"A": ["R1"], "B": ["R1", "R2"], "C": ["R2"], "D": ["R3"], "X": ["R2"], "Y": ["R1"]}
ARTISTS = {"R1": "Ada", "R2": "Bo", "R3": "Cy"}


def run_row(day: str, run_id: str, published: str, requests: int) -> runlog.RunRow:
    started = dt.datetime.fromisoformat(f"{day}T03:00:00+00:00")
    return runlog.RunRow(
        dt=day, run_id=run_id, run_type="scheduled", mode="extract", publish_id="p1", started_at=started,
        published_at=dt.datetime.fromisoformat(published), playlists_planned=2, playlists_landed=2,
        playlists_unchanged=1, playlists_failed=0, spotify_requests=requests, items_read=5, transform_seconds=1.5,
        rows={t: n for n, t in enumerate(tables.TABLE_NAMES)}, rejected={REASONS[0]: 1},
    )  # fmt: skip


def make_catalog(
    tmp_path: Path, days: tuple[str, ...] = (D1, D2, D3), playlists: dict[str, Any] = PLAYLISTS
) -> LocalTarget:
    lake = LocalLake(tmp_path / "lake")
    for day in days:
        landed = {p: (name, dates[day]) for p, (name, dates) in playlists.items() if day in dates}
        songs = sorted({s for _, items in landed.values() for s in items})
        write_partition(lake, "playlists", day, [{"playlist_id": p, "name": name} for p, (name, _) in landed.items()])
        items = [
            {"playlist_id": p, "position": n, "song_id": s} for p, (_, ss) in landed.items() for n, s in enumerate(ss)
        ]
        write_partition(lake, "playlist_items", day, items)
        write_partition(lake, "songs", day, [
            {"song_id": s, "duration_ms": 1, "album_id": "AL", "artist_id": CREDITS[s][0]} for s in songs
        ])  # fmt: skip
        credits = [{"song_id": s, "artist_id": a, "position": n} for s in songs for n, a in enumerate(CREDITS[s])]
        write_partition(lake, "song_artists", day, credits)
        artists = sorted({a for c in credits for a in [c["artist_id"]]})
        write_partition(lake, "artists", day, [{"artist_id": a, "name": ARTISTS[a]} for a in artists])
        write_partition(lake, "albums", day, [{"album_id": "AL"}])
    runs = [run_row(D1, "r1", f"{D1}T03:00:10+00:00", 4), run_row(D3, "r3a", f"{D3}T03:00:05+00:00", 9)]
    runs.append(run_row(D3, "r3b", f"{D3}T03:01:40+00:00", 7))  # the date's newest run: the one shown
    for row in runs:
        if row.dt in days:
            runlog.write_row(lake, row)
    settings = Settings(target="local", lake_dir=lake.root, duckdb_path=tmp_path / "catalog.duckdb",
                        database=DATABASE, table_prefix=PREFIX)  # fmt: skip
    target = LocalTarget(settings)
    target.catalog(lake)
    return target


def rows(data: dict[str, report.Rows], query: str, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in data[query]]


def test_each_query_answers_exactly_over_the_views_and_the_run_log(tmp_path: Path) -> None:
    data = make_catalog(tmp_path).report_data(D3)
    assert rows(data, "changes", "dt", "playlist", "added", "removed") == [
        (D1, "Mix", 0, 0), (D1, "Chill", 0, 0),  # first landed dates: nothing to compare with
        (D2, "Mix", 1, 0),  # C added
        (D3, "Mix", 1, 1), (D3, "Chill", 1, 0),  # D added, A removed; Y added since D1 (D2 not landed)
    ]  # fmt: skip
    assert rows(data, "sizes", "dt", "playlist_id", "songs") == [
        (D1, "P1", 2), (D1, "P2", 1), (D2, "P1", 3), (D3, "P1", 3), (D3, "P2", 2)
    ]  # fmt: skip
    # D3's songs B C D X Y: Bo is credited on B C X, Ada on B Y, Cy on D
    assert rows(data, "top_artists", "artist", "songs") == [("Bo", 3), ("Ada", 2), ("Cy", 1)]
    assert rows(data, "artist_trend", "dt", "artist_id", "songs") == [
        (D1, "R1", 2), (D1, "R2", 2), (D2, "R1", 2), (D2, "R2", 2), (D3, "R1", 2), (D3, "R2", 3), (D3, "R3", 1)
    ]  # fmt: skip
    # stays: A D1-D2 (left), B 3 dates, C and X 2, D and Y 1 (still there)
    assert rows(data, "song_stays", "dates_present", "status", "stays") == [
        (1, "still there", 2), (2, "left", 1), (2, "still there", 2), (3, "still there", 1)
    ]  # fmt: skip
    assert rows(data, "runs", "dt", "run_id", "run_seconds", "spotify_requests", "transform_seconds") == [
        (D1, "r1", 10, 4, 1.5), (D3, "r3b", 100, 7, 1.5)
    ]  # fmt: skip
    assert data["runs"][0][f"rejected_{REASONS[0]}"] == 1 and data["runs"][0]["rows_songs"] == 2


def test_the_playlist_panels_show_the_ten_playlists_with_the_most_changes(tmp_path: Path) -> None:
    # Q00..Q11 hold A on D1. On D2 Q05 swaps A for B (2 changes), Q07 stays, the rest add B (1 change):
    # Q05, then nine of the ten with one change by id (Q11 left out), not the unchanged Q07.
    ids = [f"Q{i:02}" for i in range(12)]
    on_d2 = {q: ["B"] if q == "Q05" else ["A"] if q == "Q07" else ["A", "B"] for q in ids}
    playlists = {q: (f"list {q}", {D1: ["A"], D2: on_d2[q]}) for q in ids}
    data = make_catalog(tmp_path, days=(D1, D2), playlists=playlists).report_data(D2)
    charted = set(ids) - {"Q07", "Q11"}
    for query in ("changes", "sizes"):
        assert {r["playlist_id"] for r in data[query]} == charted, query
    assert [r[1:] for r in rows(data, "changes", "dt", "playlist_id", "added", "removed") if r[0] == D2][5:7] == [
        ("Q05", 1, 1),
        ("Q06", 1, 0),
    ]
    assert "10 playlists with the most songs added and removed" in report.render(D2, data, DATABASE)


def test_a_past_dates_report_reads_nothing_after_it(tmp_path: Path) -> None:
    data = make_catalog(tmp_path).report_data(D2)
    assert {r["dt"] for q in ("changes", "sizes", "artist_trend", "runs") for r in data[q]} == {D1, D2}
    assert rows(data, "top_artists", "artist", "songs") == [("Ada", 2), ("Bo", 2)]  # A B C on D2


@pytest.mark.parametrize("query", report.QUERIES, ids=lambda q: q.name)
def test_each_query_is_valid_athena_sql(query: report.Query) -> None:
    assert athena_sql_problems(query.sql(D3, DATABASE, PREFIX)) == []


def test_the_page_shows_the_queries_rows_as_charts_tables_and_embedded_data(tmp_path: Path) -> None:
    data = make_catalog(tmp_path).report_data(D3)
    page = report.render(D3, data, DATABASE)
    assert report.page_data(page) == json.loads(json.dumps(data))
    for query in report.QUERIES:  # each panel: its chart (inline SVG) and its table
        section = page.split(f'<section id="{query.name}">')[1].split("</section>")[0]
        assert "<svg" in section and f"<td>{data[query.name][0][query.columns[-1][0]]}</td>" in section
    assert "Bo" in page.split('<section id="top_artists">')[1].split("</svg>")[0]  # drawn, not only tabled
    assert 'id="first-date"' not in page
    assert "<script src" not in page and "http://" not in page.replace("http://www.w3.org/", "")  # no network


def test_a_first_date_still_renders_and_says_what_comes_after_the_second(tmp_path: Path) -> None:
    data = make_catalog(tmp_path, days=(D1,)).report_data(D1)
    assert data["top_artists"] and data["sizes"] and data["runs"]
    page = report.render(D1, data, DATABASE)
    assert 'id="first-date"' in page and "From the second landed date on" in page
    assert report.page_data(page) == json.loads(json.dumps(data))
    assert "<svg" in page.split('<section id="sizes">')[1]


def test_names_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    data = {q.name: [] for q in report.QUERIES}
    data["top_artists"] = [{"artist_id": "R1", "artist": "</script><script>alert(1)</script>", "songs": 1}]
    page = report.render(D1, data, DATABASE)
    assert "<script>alert(1)" not in page and report.page_data(page) == data


def test_reports_land_per_date_and_the_latest_follows_the_newest_date(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    url = report.publish(lake, D2, "two")
    assert url == f"file://{tmp_path}/lake/reports/dt={D2}/index.html"
    report.publish(lake, D3, "three")
    report.publish(lake, D1, "one")  # a backfill: its own page, not the latest
    assert lake.report_dates() == [D1, D2, D3]
    assert Path(lake.report_path(None)).read_text() == "three" and Path(lake.report_path(D1)).read_text() == "one"
    assert not list((tmp_path / "lake" / "reports").rglob(".*"))  # no temporary file left


def test_a_failure_names_the_report_and_leaves_the_tables(tmp_path: Path) -> None:
    target = make_catalog(tmp_path)
    lake = LocalLake(tmp_path / "lake")
    before = sorted(p.relative_to(lake.root) for p in Path(lake.root, "processed").rglob("*"))

    def broken() -> dict[str, report.Rows]:
        raise RuntimeError("Catalog Error: Table with name r_playlist_changes does not exist!")

    with pytest.raises(report.ReportError, match=rf"the trends report for dt={D3} failed: RuntimeError: Catalog"):
        report.make_report(lake, D3, broken, DATABASE)
    assert report.ReportError.retryable  # Airflow retries it, then the run fails at the report task
    assert lake.report_dates() == []
    assert sorted(p.relative_to(lake.root) for p in Path(lake.root, "processed").rglob("*")) == before
    assert target.check_results(D3)  # the catalog still answers
    url = report.make_report(lake, D3, lambda: target.report_data(D3), DATABASE)  # the retry
    assert url == lake.url(lake.report_path(D3)) and Path(lake.report_path(None)).exists()


def test_a_query_answering_other_columns_is_refused() -> None:
    query = report.QUERIES[0]
    with pytest.raises(report.ReportError, match=r"query report/changes.sql returned columns \['dt'\]"):
        query.rows(["dt"], [])
    assert query.rows([c for c, _ in query.columns], [("d", "P", "n", "2", None)]) == [
        {"dt": "d", "playlist_id": "P", "playlist": "n", "added": 2, "removed": None}
    ]  # Athena's strings typed, a NULL kept


def athena_page(names: list[str], rows: list[list[str | None]], header: bool) -> dict[str, Any]:
    """A GetQueryResults page as Athena sends one: every value a string, a NULL a cell without
    VarCharValue, the column names as the first row of the first page only."""
    info = [{"CatalogName": "hive", "Name": n, "Label": n, "Type": "varchar", "Nullable": "UNKNOWN"} for n in names]
    data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
    if header:
        data.insert(0, {"Data": [{"VarCharValue": n} for n in names]})
    return {"ResultSet": {"Rows": data, "ResultSetMetadata": {"ColumnInfo": info}}, "UpdateCount": 0}


def test_athenas_answer_pages_become_the_queries_typed_rows() -> None:
    from spotify_etl.warehouse import aws

    runs = next(q for q in report.QUERIES if q.name == "runs")
    names = [c for c, _ in runs.columns]
    first = ["2026-03-01", "r1", "10", "1.5", *["3"] * (len(names) - 4)]
    second = ["2026-03-02", "r2", None, "0.25", *["0"] * (len(names) - 4)]
    pages = [athena_page(names, [first], header=True), athena_page(names, [second], header=False)]
    got = aws.report_rows(runs, pages)
    assert [(r["dt"], r["run_seconds"], r["transform_seconds"], r["spotify_requests"]) for r in got] == [
        ("2026-03-01", 10, 1.5, 3), ("2026-03-02", None, 0.25, 0)
    ]  # fmt: skip
    stays = next(q for q in report.QUERIES if q.name == "song_stays")
    with pytest.raises(report.ReportError, match=r"report/song_stays.sql returned columns \['dt'"):
        aws.report_rows(stays, pages)  # another query's answer
    assert aws.report_rows(stays, [athena_page(["dates_present", "status", "stays"], [], header=True)]) == []
