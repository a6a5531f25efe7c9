"""Run planning, the validation judge and settings parsing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from spotify_etl import pipeline, quality
from spotify_etl.airflow.description import dag_description
from spotify_etl.errors import shorten
from spotify_etl.extract import SampleSource, extract_playlist
from spotify_etl.ids import InvalidPlaylistId
from spotify_etl.lake import Lake, LocalLake
from spotify_etl.plan import EXTRACT, REPROCESS, SKIP, PlanError, RunPlan, live_playlists, plan_run
from spotify_etl.settings import SETTINGS_DOC, Settings, SettingsError, configured_playlists
from spotify_etl.targets import target as target_of

D = dt.date(2026, 11, 20)
LSD, RAP_RU = "4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms"


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
    plan = plan_run(day=D, started=started, is_backfill=backfill, requested=[], live=_live, landed=landed, grace_days=1)
    assert plan.mode == mode
    assert plan.to_extract == (["p"] if mode == EXTRACT else [])
    assert plan.playlists == {EXTRACT: ["p"], REPROCESS: ["x"], SKIP: []}[mode]
    if mode == SKIP:
        assert "no raw data was landed for that date; skipping" in plan.message


@pytest.mark.parametrize("day", [dt.date(9999, 12, 31), dt.date(2030, 1, 1), D + dt.timedelta(days=1)])
@pytest.mark.parametrize("backfill", [False, True])
def test_a_logical_date_after_the_run_started_is_refused_naming_both_dates(day: dt.date, backfill: bool) -> None:
    with pytest.raises(PlanError) as refused:
        plan_run(day=day, started=D, is_backfill=backfill, requested=[], live=_live, landed=["x"], grace_days=1)
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

    every = plan_run(day=D, started=later, is_backfill=False, requested=[], live=never, landed=["b", "a"], grace_days=1)
    assert (every.mode, every.playlists, every.to_extract) == (REPROCESS, ["a", "b"], [])
    given = plan_run(
        day=D, started=later, is_backfill=True, requested=["b", "c"], live=never, landed=["a", "b"], grace_days=1
    )
    assert (given.mode, given.playlists) == (REPROCESS, ["b"])
    assert "re-processing the 1 of the 2 requested playlists landed" in given.message
    assert "not landed for that date, so absent from its tables: c" in given.message
    none = plan_run(day=D, started=later, is_backfill=True, requested=["c"], live=never, landed=["a"], grace_days=1)
    assert (none.mode, none.playlists) == (SKIP, [])
    assert "no raw data was landed for that date for the requested playlists; skipping" in none.message


def _plan(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    target: str = "local",
    connection: object = None,
    config: str = "playlists = []\n",
    requested: list[str] | None = None,
    day: dt.date = D,
    lake: Lake | None = None,
    lookups: list[str] | None = None,
) -> RunPlan:
    config_file = tmp_path / "playlists.toml"
    config_file.write_text(config)
    monkeypatch.setattr(pipeline, "PLAYLISTS_CONFIG", config_file)
    monkeypatch.setattr(pipeline, "configured_playlists", lambda: configured_playlists(config_file))
    settings = Settings(target=target, lake_dir=tmp_path / "lake", s3_bucket="b")

    def lookup() -> object:
        (lookups if lookups is not None else []).append("spotify connection")
        return connection

    return pipeline.plan(lake or LocalLake(tmp_path / "lake"), settings, day, D, False, requested, connection=lookup)


def test_pipeline_plan_sample_ids_only_for_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    embedded = _plan(tmp_path, monkeypatch, lookups=lookups)
    assert lookups == ["spotify connection"]  # looked up inside the task, once
    assert embedded.to_extract == SampleSource().available() and len(embedded.to_extract) == 6
    for target, connection in (("aws", None), ("aws", object()), ("local", object())):
        with pytest.raises(PlanError, match=r"include/config/playlists\.toml"):
            _plan(tmp_path, monkeypatch, target=target, connection=connection)
    mine = 'playlists = ["https://open.spotify.com/playlist/1h9q8vXXDl2vHOmwdsuXms"]\n'
    assert _plan(tmp_path, monkeypatch, target="aws", connection=object(), config=mine).to_extract == [RAP_RU]
    assert _plan(tmp_path, monkeypatch, config=mine).to_extract == [RAP_RU]  # the user's list wins over the sample
    assert _plan(tmp_path, monkeypatch, config=mine, requested=[LSD]).to_extract == [LSD]
    with pytest.raises(InvalidPlaylistId, match=r"playlists\.toml: .*not-an-id"):
        _plan(tmp_path, monkeypatch, target="aws", connection=object(), config='playlists = ["not-an-id"]\n')
    with pytest.raises(InvalidPlaylistId, match="DAG param 'playlists': "):
        _plan(tmp_path, monkeypatch, requested=["nope"])


def test_pipeline_plan_reprocess_needs_no_list_and_no_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LocalLake(tmp_path / "lake")
    past = D - dt.timedelta(days=9)
    for playlist_id in (LSD, RAP_RU):
        extract_playlist(SampleSource(), lake, playlist_id, past.isoformat(), "t")
    lookups: list[str] = []
    result = _plan(tmp_path, monkeypatch, target="aws", day=past, lake=lake, lookups=lookups)  # no list needed
    assert lookups == []  # a reprocess never looks the Spotify connection up
    assert (result.mode, result.playlists) == (REPROCESS, sorted([LSD, RAP_RU]))
    assert _plan(tmp_path, monkeypatch, day=past, lake=lake, requested=[RAP_RU]).playlists == [RAP_RU]


def test_configured_playlists_file(tmp_path: Path) -> None:
    assert configured_playlists() == []  # shipped empty: the user's own list, never the sample
    bad = tmp_path / "p.toml"
    bad.write_text('playlists = "x"\n')
    with pytest.raises(SettingsError, match="'playlists' must be a list"):
        configured_playlists(bad)


def test_extracted_and_missing_keep_plan_order() -> None:
    results = [{"playlist_id": "b"}, None, {"playlist_id": "a"}]
    assert pipeline.extracted_playlists(["a", "c", "b"], results) == ["a", "b"]  # type: ignore[list-item]
    assert pipeline.missing_extracts(["a", "c", "b"], results) == ["c"]  # type: ignore[list-item]


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
    assert '"spotify_etl"."p_songs" WHERE dt = \'2026-11-20\'' in sql and "{{" not in sql
    with pytest.raises(ValueError, match="database"):
        quality.render_validation_sql("2026-11-20", 'x"; DROP TABLE y; --', "")
    with pytest.raises(ValueError, match="not a date"):
        quality.render_validation_sql("2026-11-20' OR '1'='1", "db", "")


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in SETTINGS_DOC:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPOTIFY_ETL_LAKE_DIR", str(tmp_path / "l"))
    s = Settings.from_env()
    assert s.target == "local" and target_of(s).lake_url == (tmp_path / "l").as_uri()
    assert s.duckdb_path == tmp_path / "l" / "catalog.duckdb"
    monkeypatch.setenv("SPOTIFY_ETL_TARGET", "aws")
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_S3_BUCKET='': required when SPOTIFY_ETL_TARGET=aws"):
        _ = target_of(Settings.from_env()).lake_url
    monkeypatch.setenv("SPOTIFY_ETL_S3_BUCKET", "bkt")
    s = Settings.from_env()
    assert target_of(s).table_url("songs") == "s3://bkt/spotify-etl/processed/songs"
    assert s.athena_output == "s3://bkt/athena-results/"
    monkeypatch.setenv("SPOTIFY_ETL_TARGET", "gcp")
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_TARGET='gcp': `local` or `aws`"):
        Settings.from_env()


def test_dag_description_names_the_lake_and_changes_with_any_setting(tmp_path: Path) -> None:
    local = Settings(lake_dir=tmp_path / "a")
    assert dag_description(local).startswith(
        f"Daily Spotify playlist ETL: local target, lake {(tmp_path / 'a').as_uri()} "
    )
    assert dag_description(local) == dag_description(Settings(lake_dir=tmp_path / "a"))
    assert dag_description(local) != dag_description(Settings(lake_dir=tmp_path / "b"))
    assert dag_description(local) != dag_description(Settings(lake_dir=tmp_path / "a", task_retries=0))
    assert "aws target, lake s3://b/p " in dag_description(Settings(target="aws", s3_bucket="b", s3_prefix="p"))
    with pytest.raises(SettingsError, match="SPOTIFY_ETL_S3_BUCKET='': required when SPOTIFY_ETL_TARGET=aws"):
        dag_description(Settings(target="aws"))


# ---- Every setting has a type and a range, refused in one message form ---------------------------
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPOTIFY_ETL_MAX_RETRY_AFTER", "nan"),  # slept a 3,600 s Retry-After
        ("SPOTIFY_ETL_MAX_RETRY_AFTER", "inf"),
        ("SPOTIFY_ETL_MAX_RETRY_AFTER", "-1"),
        ("SPOTIFY_ETL_MAX_RETRY_AFTER", "3600"),
        ("SPOTIFY_ETL_LIVE_GRACE_DAYS", "-1"),  # every daily run a silent success doing nothing
        ("SPOTIFY_ETL_LIVE_GRACE_DAYS", "٣"),  # int() reads Arabic-Indic digits
        ("SPOTIFY_ETL_TASK_RETRIES", "1_0"),  # and underscores
        ("SPOTIFY_ETL_TASK_RETRIES", "-1"),
        ("SPOTIFY_ETL_EXTRACT_CHUNK_SIZE", "100000"),
        ("SPOTIFY_ETL_SPOTIFY_POOL_SLOTS", "0"),
        ("SPOTIFY_ETL_DEADLINE_HOURS", "1e308"),  # was an OverflowError naming no setting
        ("SPOTIFY_ETL_DEADLINE_HOURS", "NaN"),
        ("SPOTIFY_ETL_DATABASE", "spotify; DROP"),  # was refused only at catalog, after the data was written
        ("SPOTIFY_ETL_DATABASE", "Spotify"),  # Glue lower-cases it: the DuckDB schema would differ
        ("SPOTIFY_ETL_DATABASE", "_spotify"),
        ("SPOTIFY_ETL_DATABASE", "x" * 256),
        ("SPOTIFY_ETL_TABLE_PREFIX", "a-b"),
        ("SPOTIFY_ETL_TABLE_PREFIX", "p" * 201),
        ("SPOTIFY_ETL_S3_BUCKET", "My_Bucket"),
        ("SPOTIFY_ETL_S3_PREFIX", "it's"),
        ("SPOTIFY_ETL_AWS_CONN_ID", "aws default"),
        ("SPOTIFY_ETL_SPOTIFY_CONN_ID", ""),
        ("SPOTIFY_ETL_ALERT_SLACK_CONN_ID", "slack<script>"),
        ("SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN", "alerts"),
        ("SPOTIFY_ETL_CRAWLER_NAME", "two\nlines"),
        ("SPOTIFY_ETL_CRAWLER_ROLE", "arn:aws:iam::12:role/x"),
        ("SPOTIFY_ETL_ATHENA_WORKGROUP", "my workgroup"),
        ("SPOTIFY_ETL_ATHENA_OUTPUT", "https://example.com/results/"),
        ("SPOTIFY_ETL_TARGET", "gcp"),
    ],
)
def test_a_setting_out_of_its_range_is_refused_naming_it_its_value_and_what_is_allowed(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({name: value})
    assert str(refused.value) == f"{name}={shorten(value, 100)!r}: {SETTINGS_DOC[name].allowed}"


@pytest.mark.parametrize("name", list(SETTINGS_DOC))
def test_every_setting_refuses_a_nul_byte_and_accepts_its_default(name: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}="):
        Settings.from_env({name: "x\x00"})
    assert SETTINGS_DOC[name].allowed  # the docs table and the refusal say what is allowed
    Settings.from_env({name: SETTINGS_DOC[name].default if "<" not in SETTINGS_DOC[name].default else ""})


def test_values_in_range_are_read_as_their_type() -> None:
    s = Settings.from_env({"SPOTIFY_ETL_MAX_RETRY_AFTER": " 300 ", "SPOTIFY_ETL_LIVE_GRACE_DAYS": "0",
                           "SPOTIFY_ETL_DEADLINE_HOURS": "0.5", "SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT": "100%",
                           "SPOTIFY_ETL_DUCKDB_THREADS": "64", "SPOTIFY_ETL_DATABASE": "2026_spotify",
                           "SPOTIFY_ETL_CRAWLER_ROLE": "arn:aws:iam::123456789012:role/service-role/crawler",
                           "SPOTIFY_ETL_ALERT_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:etl-alerts"})  # fmt: skip
    assert (s.max_retry_after, s.live_grace_days, s.deadline_hours) == (300.0, 0, 0.5)
    assert (s.duckdb_memory_limit, s.duckdb_threads, s.database) == ("100%", 64, "2026_spotify")


def test_a_long_bad_value_is_shown_cut() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"SPOTIFY_ETL_DATABASE": "x" * 1_000_000})
    assert len(str(refused.value)) < 400


def test_a_reprocess_names_the_first_few_requested_playlists_not_landed_and_the_count() -> None:
    requested = [f"{i:022d}" for i in range(10_000)]
    result = plan_run(day=D, started=D + dt.timedelta(days=5), is_backfill=False, requested=requested,
                      live=_live, landed=requested[:1], grace_days=1)  # fmt: skip
    assert result.mode == REPROCESS and result.playlists == requested[:1]
    assert len(result.message) < 1_000
    assert result.message.endswith(f"absent from its tables: {', '.join(requested[1:11])}, and 9,989 more")
