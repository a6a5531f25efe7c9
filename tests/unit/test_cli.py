"""The ``spotify-etl`` command through ``main([...])``: each subcommand's output and exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from spotify_etl import cli, tables

DAY = "2026-11-25"
LSD = "4dn0iEoAxn69ea0Tyov8V5"
SAMPLE_IDS = sorted(p.name for p in (Path(cli.__file__).parents[1] / "sample_data" / "playlists").iterdir())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_extract_lands_every_sample_playlist_and_prints_one_json_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "extract", "--lake", str(tmp_path), "--date", DAY)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted(line["playlist_id"] for line in lines) == SAMPLE_IDS
    landed = sorted(p.name for p in (tmp_path / f"raw/playlists/dt={DAY}").glob("*.json"))
    assert landed == [f"playlist_id={i}.json" for i in SAMPLE_IDS]


def test_extract_transform_validate_query_on_one_playlist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = tmp_path / "lake"
    code, out, _ = run(capsys, "extract", "--lake", str(lake), "--date", DAY, "--playlist", f"spotify:playlist:{LSD}")
    assert code == 0 and json.loads(out)["playlist_id"] == LSD and json.loads(out)["items"] == 200

    # transform from a plain folder of raw documents (not a lake's date partition)
    docs = tmp_path / "docs"
    shutil.copytree(lake / f"raw/playlists/dt={DAY}", docs)
    (docs / "notes.json").write_text("{}")  # not a raw document: ignored
    code, out, _ = run(capsys, "transform", "--raw", str(docs), "--out", str(lake), "--date", DAY)
    assert code == 0
    result = json.loads(out)
    assert result["documents"] == 1 and result["rows"]["songs"] > 0

    db = tmp_path / "catalog.duckdb"
    code, out, err = run(capsys, "validate", "--lake", str(lake), "--db", str(db), "--date", DAY)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines and all(line.startswith("PASS ") for line in lines) and db.is_file()
    assert "PASS playlist_items_not_empty: 0 violations in 200 rows" in lines

    code, out, _ = run(capsys, "query", "--db", str(db), "SELECT 'row-' || 41 + 1 AS answer")
    assert code == 0 and "row-42" in out
    code, out, _ = run(capsys, "query", "--db", str(db), "SELECT view_name FROM duckdb_views() WHERE NOT internal")
    assert code == 0 and all(table in out for table in tables.TABLE_NAMES)


def test_validate_of_a_date_without_data_fails_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["extract", "--lake", str(tmp_path), "--date", DAY, "--playlist", LSD],
                 ["transform", "--raw", str(tmp_path), "--out", str(tmp_path), "--date", DAY]):  # fmt: skip
        assert run(capsys, *argv)[0] == 0
    code, _, err = run(capsys, "validate", "--lake", str(tmp_path), "--date", "2026-11-26")
    assert code == 1 and err.startswith("validation failed: ")
    assert (tmp_path / "catalog.duckdb").is_file()  # the default catalog: <lake>/catalog.duckdb


def test_an_error_is_one_line_with_exit_2_and_raised_with_verbose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "validate", "--lake", str(tmp_path), "--date", DAY)
    assert (code, out) == (2, "")
    assert err.startswith("spotify-etl validate: FileNotFoundError: table ") and "run the transform first" in err
    with pytest.raises(FileNotFoundError, match="has no partitions"):
        cli.main(["-v", "validate", "--lake", str(tmp_path), "--date", DAY])
    code, _, err = run(capsys, "query", "--db", str(tmp_path / "catalog.duckdb"), "SELECT * FROM no_such_table")
    assert code == 2 and err.startswith("spotify-etl query: CatalogException: ") and "no_such_table" in err


def test_a_bad_date_or_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["extract", "--date", "2026-13-01"], []):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        assert "usage: spotify-etl" in capsys.readouterr().err
