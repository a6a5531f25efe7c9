"""Run planning, the validation judge and settings parsing."""

from __future__ import annotations

import datetime as dt

import pytest
from spotify_etl import quality
from spotify_etl.plan import EXTRACT, REPROCESS, SKIP, plan_run
from spotify_etl.settings import SETTINGS_DOC, Settings, SettingsError

D = dt.date(2026, 11, 20)


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
    plan = plan_run(day=D, started=started, is_backfill=backfill, playlists=["p"], landed=landed, grace_days=1)
    assert plan.mode == mode
    assert plan.playlists == (["p"] if mode == EXTRACT else [])
    if mode == SKIP:
        assert "no raw data was landed for that date; skipping" in plan.message


def test_judge_names_every_failed_check() -> None:
    rows = quality.parse_rows([("songs_not_empty", "0", "5"), ("songs_pk_unique_not_null", 2, 7), ("x_range", 1, 3)])
    with pytest.raises(quality.ValidationFailed) as err:
        quality.judge(rows, "2026-11-20")
    text = str(err.value)
    assert "2 of 3 checks failed" in text
    assert "FAIL songs_pk_unique_not_null: 2 violations in 7 rows" in text and "FAIL x_range: 1 violations" in text
    assert "songs_not_empty" not in text
    assert quality.judge(rows[:1], "2026-11-20") == rows[:1]
    with pytest.raises(quality.ValidationFailed, match="returned no checks"):
        quality.judge([], "2026-11-20")


def test_render_validation_sql_refuses_odd_names() -> None:
    sql = quality.render_validation_sql("2026-11-20", "spotify_etl", "p_")
    assert "\"spotify_etl\".\"p_songs\" WHERE dt = '2026-11-20'" in sql and "{{" not in sql
    with pytest.raises(ValueError, match="database"):
        quality.render_validation_sql("2026-11-20", 'x"; DROP TABLE y; --', "")
    with pytest.raises(ValueError, match="not a date"):
        quality.render_validation_sql("2026-11-20' OR '1'='1", "db", "")


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in SETTINGS_DOC:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPOTIFY_ETL_LAKE_DIR", str(tmp_path / "l"))
    s = Settings.from_env()
    assert s.target == "local" and s.lake_url == (tmp_path / "l").as_uri()
    assert s.duckdb_path == tmp_path / "l" / "catalog.duckdb"
    monkeypatch.setenv("SPOTIFY_ETL_TARGET", "aws")
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_S3_BUCKET is required"):
        _ = Settings.from_env().lake_url
    monkeypatch.setenv("SPOTIFY_ETL_S3_BUCKET", "b")
    s = Settings.from_env()
    assert s.table_url("songs") == "s3://b/spotify-etl/processed/songs"
    assert s.athena_output == "s3://b/athena-results/"
    monkeypatch.setenv("SPOTIFY_ETL_TARGET", "gcp")
    with pytest.raises(SettingsError, match="must be one of"):
        Settings.from_env()
