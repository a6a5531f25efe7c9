"""Extract against the embedded sample source: landing, pagination checks, snapshot reuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from spotify_etl.extract import NotInSampleData, PayloadError, SampleSource, extract_playlist, fetch_pages
from spotify_etl.lake import Lake
from spotify_etl.settings import Settings

LSD = "4dn0iEoAxn69ea0Tyov8V5"


class PagesSource:
    """A source serving given pages by offset; counts calls like the real ones."""

    name = "test"

    def __init__(self, meta: dict[str, Any], pages: dict[int, Any]) -> None:
        self.meta, self.pages, self.api_calls = meta, pages, 0

    def playlist(self, playlist_id: str) -> dict[str, Any]:
        self.api_calls += 1
        return self.meta

    def items_page(self, playlist_id: str, offset: int, limit: int) -> Any:
        self.api_calls += 1
        return self.pages[offset]


def test_sample_playlist_lands_all_pages(lake: Lake, lake_dir: Path) -> None:
    result = extract_playlist(SampleSource(), lake, LSD, "2026-11-25", "2026-11-25T06:00:00+00:00")
    assert (result.items, result.pages, result.api_calls, result.unchanged) == (200, 2, 3, False)
    doc = json.loads((lake_dir / "raw/playlists/dt=2026-11-25" / f"playlist_id={LSD}.json").read_text())
    assert doc["playlist_id"] == LSD and doc["name"] == "LSDream Theatre" and doc["source"] == "sample"
    assert doc["snapshot_id"].startswith("MzkxLGQ4") and doc["owner_id"] == "marcel#spotify"
    assert [p["offset"] for p in doc["pages"]] == [0, 100] and doc["total"] == 200
    assert doc["metadata"] == {  # the declared keys (raw_format.PLAYLIST) as received, nothing else
        "name": "LSDream Theatre",
        "description": "",
        "public": True,
        "collaborative": False,
        "owner": {"display_name": "marcel#spotify", "id": "marcel#spotify"},
        "followers": {"total": 54},
    }
    assert result.bytes_written == (lake_dir / "raw/playlists/dt=2026-11-25" / f"playlist_id={LSD}.json").stat().st_size


def test_unchanged_snapshot_reuses_previous_items_with_one_call(lake: Lake, lake_dir: Path) -> None:
    extract_playlist(SampleSource(), lake, LSD, "2026-11-24", "2026-11-24T06:00:00+00:00")
    source = SampleSource()
    result = extract_playlist(source, lake, LSD, "2026-11-25", "2026-11-25T06:00:00+00:00")
    assert result.unchanged and source.api_calls == 1 and result.api_calls == 1
    old = json.loads((lake_dir / "raw/playlists/dt=2026-11-24" / f"playlist_id={LSD}.json").read_text())
    new = json.loads((lake_dir / "raw/playlists/dt=2026-11-25" / f"playlist_id={LSD}.json").read_text())
    assert new["pages"] == old["pages"] and new["unchanged_since"] == "2026-11-24" and new["dt"] == "2026-11-25"


def test_rerun_of_a_date_replaces_its_document(lake: Lake, lake_dir: Path) -> None:
    for _ in range(2):
        extract_playlist(SampleSource(), lake, LSD, "2026-11-25", "2026-11-25T06:00:00+00:00")
    assert [p.name for p in (lake_dir / "raw/playlists/dt=2026-11-25").iterdir()] == [f"playlist_id={LSD}.json"]


@pytest.mark.parametrize(
    ("pages", "message"),
    [
        (
            {0: {"items": [{}] * 2, "offset": 0, "next": "n", "total": 3}, 2: "<html>oops</html>"},
            "offset 2: response has no 'items'",
        ),
        (
            {0: {"items": [{}] * 2, "offset": 0, "next": None, "total": 3}},
            "pages hold 2 items but the API reported total 3",
        ),
        (
            {
                0: {"items": [{}] * 2, "offset": 0, "next": "n", "total": 4},
                2: {"items": [{}], "offset": 5, "next": None},
            },
            "offset 2: response says offset 5",
        ),
        ({0: {"items": [], "offset": 0, "next": "n", "total": 4}}, "empty page with a 'next' link"),
    ],
)
def test_malformed_pages_fail_naming_playlist_and_offset_and_land_nothing(
    lake: Lake, lake_dir: Path, pages: dict[int, Any], message: str
) -> None:
    source = PagesSource({"name": "x", "snapshot_id": "s"}, pages)
    with pytest.raises(PayloadError, match=message) as err:
        extract_playlist(source, lake, LSD, "2026-11-25", "t")
    assert LSD in str(err.value)
    assert not (lake_dir / "raw").exists()


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"owner": "someone"}, "metadata.owner is a str, not an object"),
        ({"followers": 54}, "metadata.followers is a int, not an object"),
    ],
)
def test_metadata_objects_that_are_not_objects_fail_and_land_nothing(
    lake: Lake, lake_dir: Path, meta: dict[str, Any], message: str
) -> None:
    # DuckDB would refuse the whole batch of documents over one such value: refused here, per playlist.
    source = PagesSource({"name": "x", "snapshot_id": "s", **meta}, {0: {"items": [], "offset": 0, "next": None}})
    with pytest.raises(PayloadError, match=f"playlist {LSD}: {message}; nothing landed"):
        extract_playlist(source, lake, LSD, "2026-11-25", "t")
    assert not (lake_dir / "raw").exists()


def test_empty_playlist_lands_an_empty_document(lake: Lake) -> None:
    source = PagesSource(
        {"name": "empty", "snapshot_id": "s", "items": {"total": 0}},
        {0: {"items": [], "offset": 0, "next": None, "total": 0}},
    )
    result = extract_playlist(source, lake, LSD, "2026-11-25", "t")
    assert (result.items, result.pages) == (0, 1)


def test_fetch_pages_uses_metadata_total() -> None:
    source = PagesSource({}, {0: {"items": [{}], "offset": 0, "next": None}})
    with pytest.raises(PayloadError, match="total 5"):
        fetch_pages(source, LSD, 5)


def test_unknown_sample_playlist_names_the_available_ones_and_is_not_retried(lake: Lake, lake_dir: Path) -> None:
    with pytest.raises(NotInSampleData, match=r"not in the embedded sample data.*4dn0iEoAxn69ea0Tyov8V5") as err:
        extract_playlist(SampleSource(), lake, "0" * 22, "2026-11-25", "t")
    assert err.value.retryable is False and "Spotify connection" in str(err.value)

    # The extract task's Airflow layer fails such an error at once, without Airflow's retries.
    from airflow.sdk.exceptions import AirflowFailException
    from spotify_etl.airflow.tasks import run_extract_chunk

    class FirstOfFourTries:  # the task instance: retries are left, yet none is used
        try_number, max_tries = 1, 3

        def xcom_push(self, key: str, value: Any) -> None:
            self.pushed = (key, value)

    class Run:
        run_id, clear_number = "manual__2026-11-25", 0

    local = Settings(target="local", lake_dir=lake_dir, spotify_conn_id="spotify_etl_unit_test_no_such_connection")
    ti = FirstOfFourTries()
    with pytest.raises(AirflowFailException, match="0000000000000000000000 is not in the embedded sample data"):
        run_extract_chunk(local, ["0" * 22], "2026-11-25", Run(), ti, {})  # type: ignore[arg-type]
    assert ti.pushed[1]["landed"] == [] and not (lake_dir / "raw").exists()
