"""The history views (include/sql/history/) on hand-made partitions: exact rows in DuckDB, the
same text valid for Athena (Trino) and the same text as Airflow renders it for Athena."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spotify_etl import history
from spotify_etl.lake import LocalLake
from spotify_etl.paths import SQL_DIR
from spotify_etl.settings import Settings
from spotify_etl.targets import AwsTarget, LocalTarget

from tests.support.partitions import write_partition
from tests.support.trino import TRINO_FUNCTIONS, athena_sql_problems

DATABASE, PREFIX = "spotify_etl", "t_"
D0, D1, D2, D3, D4 = "2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"
ENTITIES = {  # one date of the other tables: the catalog wants every table to have a partition
    "albums": [{"album_id": "AL"}],
    "artists": [{"artist_id": "AR"}],
    "songs": [{"song_id": "A", "duration_ms": 1, "album_id": "AL", "artist_id": "AR"}],
    "song_artists": [{"song_id": "A", "artist_id": "AR", "position": 0}],
}
# playlist -> date -> its songs in position order (None: an entry that is no song). A date the
# playlist is absent from was not in that run's scope; [] is a landed empty playlist.
ITEMS: dict[str, dict[str, list[str | None]]] = {
    "P1": {
        D0: ["A"],  # published before the playlists table existed: playlist_items only
        D1: ["A", "B", "C"],
        D2: ["B", "A", "C", "D", "D"],  # A and B moved, D added twice
        D3: ["B", "D", "E"],  # A and C removed, E added
        D4: ["B", "D", "E", "A", None],  # A is back; a local file is no song
    },
    "P2": {D1: ["X", "Y"], D3: ["Y", "Z"]},  # not planned on D2 (nor D4)
    "P3": {D2: ["Q"], D3: [], D4: ["Q"]},  # emptied on D3, Q back on D4
}
CHANGES = {
    (D1, "P1", "B", "added", D0),
    (D1, "P1", "C", "added", D0),
    (D2, "P1", "D", "added", D1),
    (D3, "P1", "A", "removed", D2),
    (D3, "P1", "C", "removed", D2),
    (D3, "P1", "E", "added", D2),
    (D4, "P1", "A", "added", D3),
    (D3, "P2", "X", "removed", D1),  # D2 skipped, not read as "everything removed"
    (D3, "P2", "Z", "added", D1),
    (D3, "P3", "Q", "removed", D2),
    (D4, "P3", "Q", "added", D3),
}
SPANS = {
    ("P1", "A", D0, D2, 3),
    ("P1", "A", D4, None, 1),  # left and came back: two stays
    ("P1", "B", D1, None, 4),
    ("P1", "C", D1, D2, 2),
    ("P1", "D", D2, None, 3),  # twice on D2, one stay
    ("P1", "E", D3, None, 2),
    ("P2", "X", D1, D1, 1),
    ("P2", "Y", D1, None, 2),  # D2 was not landed: the stay goes on
    ("P2", "Z", D3, None, 1),
    ("P3", "Q", D2, D2, 1),
    ("P3", "Q", D4, None, 1),
}


def catalog(tmp_path: Path, items: dict[str, dict[str, list[str | None]]] = ITEMS) -> LocalTarget:
    """Write ``items`` as playlist_items and playlists partitions (none of playlists on D0), catalog them."""
    lake = LocalLake(tmp_path / "lake")
    for table, rows in ENTITIES.items():
        write_partition(lake, table, D1, rows)
    days = sorted({day for dates in items.values() for day in dates})
    for day in days:
        landed = {p: songs for p, dates in items.items() if (songs := dates.get(day)) is not None}
        rows = [
            {"playlist_id": p, "position": n, "song_id": song}
            for p, songs in landed.items()
            for n, song in enumerate(songs)
        ]
        write_partition(lake, "playlist_items", day, rows)
        if day != D0:
            write_partition(lake, "playlists", day, [{"playlist_id": p, "name": p} for p in landed])
    settings = Settings(target="local", lake_dir=lake.root, duckdb_path=tmp_path / "catalog.duckdb",
                        database=DATABASE, table_prefix=PREFIX)  # fmt: skip
    target = LocalTarget(settings)
    assert set(target.catalog(lake)) >= {f"{DATABASE}.{PREFIX}{view}" for view in history.VIEWS}
    return target


def rows(target: LocalTarget, view: str, columns: str, where: str = "TRUE") -> set[tuple[Any, ...]]:
    """``columns`` of the catalog's history ``view`` where ``where`` holds, as a set."""
    import duckdb

    sql = f"SELECT {columns} FROM {DATABASE}.{PREFIX}{view} WHERE {where}"  # noqa: S608 - the test's own literals
    with duckdb.connect(str(target.settings.duckdb_path), read_only=True) as con:
        return set(con.execute(sql).fetchall())


def test_playlist_changes_are_set_differences_from_the_latest_earlier_landed_date(tmp_path: Path) -> None:
    target = catalog(tmp_path)
    assert rows(target, "playlist_changes", "dt, playlist_id, song_id, change, previous_dt") == CHANGES


def test_playlist_song_spans_are_stays_over_the_playlists_landed_dates(tmp_path: Path) -> None:
    target = catalog(tmp_path)
    assert rows(target, "playlist_song_spans", "playlist_id, song_id, valid_from, valid_to, dates_present") == SPANS


def test_views_follow_the_partitions_a_rerun_replaces(tmp_path: Path) -> None:
    target = catalog(tmp_path)
    lake = LocalLake(tmp_path / "lake")
    write_partition(lake, "playlist_items", D4, [{"playlist_id": "P1", "position": 0, "song_id": "B"}])
    write_partition(lake, "playlists", D4, [{"playlist_id": "P1"}])  # D4 reprocessed: P3 out of its scope
    changes = rows(target, "playlist_changes", "playlist_id, song_id, change", f"dt = '{D4}'")
    assert changes == {("P1", "D", "removed"), ("P1", "E", "removed")}
    # P3's latest landed date is now D3, without Q: its one stay ended on D2
    assert rows(target, "playlist_song_spans", "song_id, valid_to", "playlist_id = 'P3'") == {("Q", D2)}


def test_a_playlists_first_date_gives_no_changes_and_open_spans(tmp_path: Path) -> None:
    target = catalog(tmp_path, {"P1": {D1: ["A", "A", "B"]}})
    assert rows(target, "playlist_changes", "*") == set()
    spans = rows(target, "playlist_song_spans", "song_id, valid_from, valid_to, dates_present")
    assert spans == {("A", D1, None, 1), ("B", D1, None, 1)}


@pytest.mark.parametrize("view", history.VIEWS)
def test_each_view_is_valid_athena_sql(view: str) -> None:
    assert athena_sql_problems(history.view_sql(view, DATABASE, PREFIX)) == []


@pytest.mark.parametrize("view", history.VIEWS)
def test_airflow_renders_for_athena_the_text_duckdb_runs(view: str) -> None:
    from airflow.sdk import DAG
    from spotify_etl.airflow import aws_target

    # The template environment of a DAG with the project's template_searchpath, as the DAG file sets it.
    env = DAG("history_views", schedule=None, template_searchpath=[str(SQL_DIR)]).get_template_env()
    params = {"database": DATABASE, "table_prefix": PREFIX}
    query = aws_target.athena_query(AwsTarget.history_view_templates()[view])  # the view task's query
    rendered = env.from_string(query).render(params=params)
    assert rendered == history.view_sql(view, DATABASE, PREFIX)
    assert rendered.startswith(f"-- {view}(") and f'CREATE OR REPLACE VIEW "{DATABASE}"."{PREFIX}{view}" AS' in rendered


def test_an_unknown_view_is_refused() -> None:
    with pytest.raises(ValueError, match="no history view 'nope'; the views are playlist_changes, playlist_song_spans"):
        history.template("nope")


def docs_queries() -> list[str]:
    """The SQL blocks of docs/tables.md's "History views" section."""
    section = (SQL_DIR.parents[1] / "docs" / "tables.md").read_text(encoding="utf-8").split("## History views")[1]
    section = section.split("\n## ")[0]
    return [block.split("```")[0] for block in section.split("```sql\n")[1:]]


def test_the_docs_example_queries_answer_over_the_views(tmp_path: Path) -> None:
    import datetime as dt

    import duckdb

    from devtools.make_run import history_query

    today = dt.datetime.now(dt.UTC).date()
    days = [(today - dt.timedelta(days=n)).isoformat() for n in (10, 3, 0)]
    lake = LocalLake(tmp_path / "lake")
    for table in ("albums", "artists", "song_artists"):
        write_partition(lake, table, days[0], ENTITIES[table])
    for n, day in enumerate(days):
        songs = ["A", "B", "C"][: n + 1]
        song_rows = [
            {"song_id": s, "name": f"song {s}", "duration_ms": 1, "album_id": "AL", "artist_id": "AR"} for s in songs
        ]
        write_partition(lake, "songs", day, song_rows)
        write_partition(
            lake,
            "playlist_items",
            day,
            [{"playlist_id": "P1", "position": i, "song_id": s} for i, s in enumerate(songs)],
        )
        write_partition(lake, "playlists", day, [{"playlist_id": "P1", "name": "mine"}])
    target = LocalTarget(Settings(target="local", lake_dir=lake.root, duckdb_path=tmp_path / "c.duckdb"))
    target.catalog(lake)

    this_week, longest = docs_queries()
    with duckdb.connect(str(tmp_path / "c.duckdb"), read_only=True) as con:
        assert con.execute(this_week).fetchall() == [(days[1], "mine", "song B"), (days[2], "mine", "song C")]
        assert con.execute(longest).fetchall() == [
            ("mine", "song A", days[0], None, 3),
            ("mine", "song B", days[1], None, 2),
            ("mine", "song C", days[2], None, 1),
        ]
    # make run prints the second one
    assert " ".join(history_query("spotify_etl", "").split()) == " ".join(longest.split())


def test_the_docs_example_queries_are_valid_athena_sql() -> None:
    for sql in docs_queries():
        assert athena_sql_problems(sql, TRINO_FUNCTIONS | {"CurrentDate"}) == []
