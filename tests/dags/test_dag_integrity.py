"""DAG integrity: imports, structure, defaults, params, parse cost and no network at parse time."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from airflow.utils.dag_cycle_tester import check_cycle
from spotify_etl.airflow import DAG_ID
from spotify_etl.airflow.pool import SPOTIFY_POOL
from spotify_etl.settings import SETTINGS_DOC

from tests.dags.conftest import DAG_FILE, PARSE_OFFLINE, _dagbag
from tests.support.airflow_run import airflow_env

PROJECT = Path(__file__).resolve().parents[2]


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_list_import_errors_cli_exits_zero(tmp_path: Path, airflow_template_db: Path) -> None:
    shutil.copyfile(airflow_template_db, tmp_path / "airflow.db")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "list-import-errors", "--local"],
        env=airflow_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No data found" in proc.stdout


def _common_structure(dag) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """The stages every target shares; data passes as TaskFlow arguments, so plan feeds the later tasks directly
    (the extract through chunk_playlists: Airflow maps over a whole return value, the plan is one)."""
    upstream = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}
    assert upstream["chunk_playlists"] == {"plan"} and upstream["extract_playlist"] == {"chunk_playlists"}
    assert upstream["transform"] == {"plan", "extract_playlist"}
    assert upstream["check_extracts"] == {"plan", "extract_playlist", "transform"}
    assert dag.task_dict["transform"].trigger_rule == "all_done"
    assert dag.task_dict["check_extracts"].trigger_rule == "all_done"
    assert dag.task_dict["extract_playlist"].is_mapped
    # One Spotify budget (issue 14): every extract task runs in the project's pool, and the UI
    # names each chunk by the label the task sets.
    extract = dag.task_dict["extract_playlist"]
    assert extract.partial_kwargs["pool"] == SPOTIFY_POOL == "spotify_api"
    assert extract.partial_kwargs["map_index_template"] == "{{ chunk_label }}"
    # The trends report after validation (issue 20): a report never holds back or undoes the tables.
    assert upstream["report"] == {"validate"} and not dag.task_dict["report"].downstream_task_ids
    assert [o.name for o in dag.task_dict["report"].outlets] == ["spotify_etl.trends_report"]
    check_cycle(dag)  # raises AirflowDagCycleException on a cycle
    return upstream


def test_structure(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[DAG_ID]
    assert set(dag.task_ids) == {"plan", "chunk_playlists", "extract_playlist", "transform", "catalog", "validate",
                                 "check_extracts", "report"}  # fmt: skip
    upstream = _common_structure(dag)
    assert upstream["catalog"] == {"transform"} and upstream["validate"] == {"catalog"}
    assert "local" in dag.tags


def test_structure_on_the_aws_target(aws_dagbag) -> None:  # type: ignore[no-untyped-def]
    assert aws_dagbag.import_errors == {}
    dag = aws_dagbag.dags[DAG_ID]
    crawl = {"catalog.database", "catalog.crawler_action", "catalog.create_crawler", "catalog.recreate_crawler",
             "catalog.run_crawler"}  # fmt: skip
    views = {"catalog.view_playlist_changes", "catalog.view_playlist_song_spans"}  # the history views' DDL
    assert set(dag.task_ids) == {"plan", "chunk_playlists", "extract_playlist", "transform", "check_extracts",
                                 *crawl, *views, "athena_validation", "validate", "report"}  # fmt: skip
    upstream = _common_structure(dag)
    types = {t.task_id: type(t).__name__ for t in dag.tasks}
    assert types["catalog.database"] == "GlueCatalogCreateDatabaseOperator" and upstream["catalog.database"] == {
        "transform"
    }
    assert types["catalog.create_crawler"] == "GlueCrawlerCreateOperator"
    assert types["catalog.run_crawler"] == "GlueCrawlerRunOperator" and dag.task_dict["catalog.run_crawler"].deferrable
    assert upstream["catalog.run_crawler"] == {
        "catalog.crawler_action",
        "catalog.create_crawler",
        "catalog.recreate_crawler",
    }
    for view in views:  # after the crawl: Athena checks a view's tables exist when it creates it
        assert types[view] == "AthenaOperator" and dag.task_dict[view].deferrable
        assert upstream[view] == {"catalog.run_crawler"}
    assert types["athena_validation"] == "AthenaOperator" and dag.task_dict["athena_validation"].deferrable
    assert upstream["athena_validation"] == views  # the SQL is rendered by Airflow, no task of its own
    assert upstream["validate"] == {"athena_validation"}
    assert "aws" in dag.tags
    for task in dag.tasks:
        assert task.owner == "data-engineering" and task.retries == dag.default_args["retries"] >= 1, task.task_id


def test_every_target_has_a_catalog_and_validate_builder() -> None:
    from spotify_etl.airflow.targets import BUILDERS
    from spotify_etl.targets import TARGETS

    assert set(BUILDERS) == set(TARGETS)
    # The DAG file does not branch: its only `if` is the type checkers' import block.
    tree = ast.parse(DAG_FILE.read_text())
    branches = [ast.unparse(n.test) for n in ast.walk(tree) if isinstance(n, ast.If | ast.IfExp)]
    branches += [ast.unparse(c) for n in ast.walk(tree) if isinstance(n, ast.comprehension) for c in n.ifs]
    assert branches == ["TYPE_CHECKING"]


def test_athena_renders_the_validation_sql_as_duckdb_does(aws_dagbag) -> None:  # type: ignore[no-untyped-def]
    """Airflow renders include/sql/validate.sql for Athena; spotify_etl.quality renders it for DuckDB: the same text."""
    from spotify_etl.quality import render_validation_sql

    from tests.dags.conftest import AWS_SETTINGS

    dag = aws_dagbag.dags[DAG_ID]
    athena = dag.task_dict["athena_validation"]
    assert "query" in athena.template_fields
    context = {"ds": "2026-01-05", "params": {name: athena.params[name] for name in athena.params}}
    rendered = athena.render_template(athena.query, context, jinja_env=dag.get_template_env())
    database, prefix = AWS_SETTINGS["SPOTIFY_ETL_DATABASE"], AWS_SETTINGS["SPOTIFY_ETL_TABLE_PREFIX"]
    assert rendered == render_validation_sql("2026-01-05", database, prefix)
    assert f'"{database}"."{prefix}songs"' in rendered and "dt = '2026-01-05'" in rendered


def test_schedule_defaults_and_docs(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[DAG_ID]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.start_date is not None and dag.start_date.year == 2026
    assert dag.tags and "spotify" in dag.tags
    assert "runbook" in (dag.doc_md or "") and "safe to re-run" in dag.doc_md
    for task in dag.tasks:
        assert task.owner == "data-engineering", task.task_id
        assert task.retries == dag.default_args["retries"] and task.retries >= 1, task.task_id
    assert dag.task_dict["extract_playlist"].partial_kwargs.get("retries", dag.default_args["retries"]) >= 0
    assert dag.default_args["retry_exponential_backoff"] is True
    assert dag.default_args["retry_delay"].total_seconds() == 30  # SPOTIFY_ETL_RETRY_DELAY's default
    assert set(dag.params.keys()) == {"playlists"}
    assert dag.params["playlists"] == []  # the user's list, shipped empty: never the sample playlists
    assert dag.description.startswith("Daily Spotify playlist ETL: local target, lake file:///")


def test_the_retry_delay_is_the_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    dag = _dagbag(tmp_path_factory, SPOTIFY_ETL_RETRY_DELAY="5").dags[DAG_ID]
    assert {task.retry_delay.total_seconds() for task in dag.tasks} == {5}


def test_transform_declares_table_assets(dagbag, aws_dagbag) -> None:  # type: ignore[no-untyped-def]
    names = ("albums", "artists", "songs", "song_artists", "playlist_items", "playlists")
    for bag in (dagbag, aws_dagbag):
        outlets = bag.dags[DAG_ID].task_dict["transform"].outlets
        # The same identity whatever the settings (tests/e2e/test_asset_switch.py switches them).
        assert sorted((a.name, a.uri) for a in outlets) == sorted(
            (f"spotify_etl.tables.{t}", f"x-spotify-etl://tables/{t}") for t in names
        )


def _run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = airflow_env(tmp_path)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=180
    )


def test_parse_is_fast_and_imports_nothing_heavy(tmp_path: Path) -> None:
    proc = _run_python(
        f"""
        import importlib.util, sys, time
        import airflow.sdk
        t = time.process_time()
        spec = importlib.util.spec_from_file_location("dagfile", {str(DAG_FILE)!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        print("SECONDS", time.process_time() - t)
        heavy = ("duckdb", "pyarrow", "pandas", "spotipy", "boto3", "airflow.providers.amazon.aws.operators.athena")
        print("HEAVY", sorted(m for m in heavy if m in sys.modules))
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    seconds = float(proc.stdout.split("SECONDS")[1].split()[0])
    # CPU seconds, not wall time: the tests run side by side on busy cores, where a wall-clock
    # bound measures the neighbours. A heavy import costs CPU time; the real budget lives in make bench.
    assert seconds < 1.0, seconds
    assert "HEAVY []" in proc.stdout  # the Amazon provider's operators only when the aws builder runs


def test_no_network_at_parse_time(tmp_path: Path) -> None:
    proc = _run_python(
        PARSE_OFFLINE
        + 'print("PARSED", mod.spotify_playlist_etl.__name__ if hasattr(mod, "spotify_playlist_etl") else "")',
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "PARSED" in proc.stdout


def test_dag_file_has_no_variable_or_connection_lookups() -> None:
    text = DAG_FILE.read_text()
    for banned in ("Variable.get", "get_connection(", "datetime.now", "dt.datetime.now", "utcnow"):
        assert banned not in text
    assert os.path.getsize(DAG_FILE) < 10_000  # stays a thin wiring file


@pytest.mark.parametrize(
    ("name", "value"),
    [("SPOTIFY_ETL_MAX_RETRY_AFTER", "nan"), ("SPOTIFY_ETL_DEADLINE_HOURS", "1e308"), ("SPOTIFY_ETL_DATABASE", "a-b")],
)
def test_a_bad_setting_fails_the_parse_naming_it(tmp_path_factory: pytest.TempPathFactory, name: str,
                                                 value: str) -> None:  # fmt: skip
    """Refused when the DAG file is parsed, before any task runs: one import error, the SettingsError's message."""
    bag = _dagbag(tmp_path_factory, **{name: value})
    assert DAG_ID not in bag.dags
    [error] = bag.import_errors.values()
    assert f"SettingsError: {name}={value!r}: {SETTINGS_DOC[name].allowed}" in error
