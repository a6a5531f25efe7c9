"""A local lake's reads and writes when the storage refuses: a clear LakeError naming the path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spotify_etl.lake import LakeError, LocalLake

DAY = "2026-11-25"
A, B = "4dn0iEoAxn69ea0Tyov8V5", "1h9q8vXXDl2vHOmwdsuXms"
HINT = "(check the folder exists and is writable (SPOTIFY_ETL_LAKE_DIR))"


@pytest.fixture
def blocked(tmp_path: Path) -> LocalLake:
    """A lake whose root is a file: every folder below it fails with NotADirectoryError."""
    root = tmp_path / "lake"
    root.write_text("not a folder")
    return LocalLake(root)


def test_listing_below_a_root_that_is_a_file_is_an_error_not_an_empty_lake(blocked: LocalLake) -> None:
    for read in (lambda: blocked.raw_documents(DAY), blocked.raw_days, lambda: blocked.files(blocked.raw_dir(DAY))):
        with pytest.raises(LakeError, match=r"could not list .*NotADirectoryError") as exc:
            read()
        assert str(exc.value).endswith(HINT)


def test_a_refused_exclusive_create_or_delete_is_an_error(blocked: LocalLake, tmp_path: Path) -> None:
    with pytest.raises(LakeError, match=r"could not write .*/lock'"):
        blocked.create_exclusive(f"{blocked.root}/_publish/lock", b"x")
    folder = tmp_path / "folder"
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(LakeError, match="could not delete"):
        LocalLake(tmp_path).delete(str(folder))
    assert (folder / "inside").is_dir()
    LocalLake(tmp_path).delete(str(tmp_path / "gone"))  # already gone: fine


def test_a_lone_surrogate_is_stored_as_the_replacement_character(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    path = f"{lake.root}/doc.json"
    size = lake.write_json(path, {"name": "broken \ud800 name", "ok": "ü"})
    data = (tmp_path / "doc.json").read_bytes()
    assert size == len(data) and json.loads(data) == {"name": "broken \ufffd name", "ok": "ü"}
    assert lake.read_json(path)["name"] == "broken \ufffd name"


def test_previous_raw_is_the_newest_earlier_day_holding_the_playlist(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    lake.write_json(lake.raw_path("2026-11-23", A), {"day": 23})
    lake.write_json(lake.raw_path("2026-11-24", B), {"day": 24})  # another playlist only
    lake.write_json(lake.raw_path(DAY, A), {"day": 25})
    assert lake.previous_raw(A, DAY) == lake.raw_path("2026-11-23", A)
    assert lake.previous_raw(A, "2026-11-26") == lake.raw_path(DAY, A)
    assert lake.previous_raw(B, "2026-11-24") is None
    assert repr(lake) == f"LocalLake('file://{tmp_path}')"
