"""`make run`'s driver (devtools/make_run.py) as the README's first command runs it: the
whole DAG for today on the embedded default, then the summary a user reads."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.airflow_run import PROJECT, airflow_env
from tests.support.slack_webhook import TOKEN, slack_webhook

pytestmark = pytest.mark.e2e


def make_run(home: Path, lake: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.make_run"],
        env=airflow_env(home, SPOTIFY_ETL_LAKE_DIR=str(lake), **env),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT,
    )


def test_make_run_runs_todays_dag_and_prints_rows_checks_and_where_data_is(
    airflow_template_db: Path, tmp_path: Path
) -> None:
    home, lake = tmp_path / "home", tmp_path / "lake"
    home.mkdir()
    shutil.copyfile(airflow_template_db, home / "airflow.db")
    today = dt.datetime.now(dt.UTC).date().isoformat()

    proc = make_run(home, lake)

    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert f"Run for dt={today} succeeded." in out
    assert "Source: embedded sample data" in out
    rows = {
        line.split()[0]: int(line.split()[1])
        for line in out.split("Rows per table")[1].split("\n\n")[0].splitlines()[1:]
    }
    assert set(rows) == {"albums", "artists", "songs", "song_artists", "playlist_items", "playlists"}
    assert min(rows.values()) > 0
    assert "PASS songs_pk_unique_not_null" in out and "FAIL" not in out
    assert f"Lake:            {lake}" in out
    assert (lake / "raw" / "playlists" / f"dt={today}").is_dir()
    assert (home / "logs" / f"make-run-{today}.log").is_file()
    assert "History views:   spotify_etl.playlist_changes, spotify_etl.playlist_song_spans" in out
    report = out.split("Trends report:   ")[1].split()[0]  # the page to open, written by the run's report task
    assert report == str(lake / "reports" / f"dt={today}" / "index.html")
    assert 'id="report-data"' in Path(report).read_text(encoding="utf-8")
    # The printed history query, as a user pastes it: spotify-etl query answers it from the views.
    command = out.split("And one over the history")[1].splitlines()[1].strip()
    assert command.startswith('.venv/bin/spotify-etl query "SELECT ') and command.endswith('"')
    answer = subprocess.run(
        [str(Path(sys.executable).parent / "spotify-etl"), "query", command.split(" ", 2)[2][1:-1]],
        env=airflow_env(home, SPOTIFY_ETL_LAKE_DIR=str(lake)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert "dates_present" in answer.stdout and "10 rows" in answer.stdout  # the sample data's first ten stays


def test_make_run_refuses_the_aws_target_and_says_why(airflow_template_db: Path, tmp_path: Path) -> None:
    proc = make_run(tmp_path / "home", tmp_path / "lake", SPOTIFY_ETL_TARGET="aws")
    assert proc.returncode == 2
    assert "make run uses the embedded default; unset SPOTIFY_ETL_TARGET" in proc.stdout


def test_make_runs_saved_log_never_shows_the_alert_webhooks_token(airflow_template_db: Path, tmp_path: Path) -> None:
    """Issue 22: the saved log is what a user attaches to a bug report. A lake path that is a
    file fails the plan, so the failure alerts go to a webhook answering 500, at DEBUG."""
    home, lake = tmp_path / "home", tmp_path / "lake"
    home.mkdir()
    shutil.copyfile(airflow_template_db, home / "airflow.db")
    lake.write_text("a file, not a folder\n")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    with slack_webhook() as hook:
        hook.break_channel(500, "internal_error")
        proc = make_run(
            home,
            lake,
            AIRFLOW_CONN_ALERTS_WEBHOOK=json.dumps(hook.connection()),
            SPOTIFY_ETL_ALERT_SLACK_CONN_ID="alerts_webhook",
            AIRFLOW__LOGGING__LOGGING_LEVEL="DEBUG",
        )

    saved = (home / "logs" / f"make-run-{today}.log").read_text(errors="replace")
    assert proc.returncode == 1 and "FAILED: the DAG run did not succeed" in proc.stdout, proc.stdout[-3000:]
    assert hook.refused >= 2 and "Status Code: 500" in saved, saved[-3000:]
    # At DEBUG Airflow's supervisor logs the message registering a secret for masking (SECURITY.md).
    for where, text in {"saved log": saved, "stdout": proc.stdout, "stderr": proc.stderr}.items():
        shown = [line for line in text.splitlines() if TOKEN in line and "msg=MaskSecret(value=" not in line]
        assert shown == [], f"{where}: " + "\n".join(shown)
