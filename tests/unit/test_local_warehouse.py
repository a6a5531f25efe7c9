"""The local warehouse (DuckDB catalog): row counts per date and waiting for another process's lock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from spotify_etl import cli, tables
from spotify_etl.lake import LocalLake
from spotify_etl.warehouse import local

DAY = "2026-11-25"
LSD = "4dn0iEoAxn69ea0Tyov8V5"
# Holds the catalog open for writing (DuckDB's file lock) for argv[2] seconds, bounded.
HOLDER = "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2]))"


def test_row_counts_are_the_dates_rows_per_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["extract", "--lake", str(tmp_path), "--date", DAY, "--playlist", LSD]) == 0
    capsys.readouterr()
    assert cli.main(["transform", "--raw", str(tmp_path), "--out", str(tmp_path), "--date", DAY]) == 0
    written = json.loads(capsys.readouterr().out)["rows"]
    db = tmp_path / "catalog.duckdb"
    views = local.register_tables(LocalLake(tmp_path), db, "music", "t_")
    assert sorted(views) == sorted(f"music.t_{t}" for t in tables.TABLE_NAMES)
    counts = local.row_counts(db, DAY, "music", "t_")
    assert counts == {t: written[t] for t in tables.TABLE_NAMES} and counts["playlist_items"] == 200
    assert local.row_counts(db, "2026-11-26", "music", "t_") == dict.fromkeys(tables.TABLE_NAMES, 0)


def test_connect_waits_for_another_process_lock_then_gives_up_or_gets_it(tmp_path: Path) -> None:
    db = tmp_path / "catalog.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(duckdb.IOException, match=r"(?i)lock"):
            local._connect(db, wait_seconds=0.3)  # retried while the deadline allows, then the lock error
        with local._connect(db, wait_seconds=30) as con:  # the holder exits after 1.5 s
            assert con.execute("SELECT 42").fetchone() == (42,)
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_connect_does_not_wait_on_an_error_other_than_the_lock(tmp_path: Path) -> None:
    not_a_db = tmp_path / "catalog.duckdb"
    not_a_db.write_text("not a database\n" * 1000)
    with pytest.raises(duckdb.IOException) as exc:
        local._connect(not_a_db, wait_seconds=30)
    assert "lock" not in str(exc.value).lower()
