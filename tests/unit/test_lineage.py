"""spotify_etl.airflow.lineage, without a DAG run (tests/e2e/test_observe.py runs one): the lineage
URIs become the datasets OpenLineage's naming conventions give (through the providers' own converters).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem
from spotify_etl.airflow import lineage
from spotify_etl.lake import LocalLake, S3Lake
from spotify_etl.tables import TABLE_NAMES

DAY = "2026-03-01"
PLAYLIST = "37i9dQZF1DXcBWIGoYBM5M"


def openlineage_dataset(uri: str) -> tuple[str, str]:
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset
    from airflow.sdk import Asset

    dataset = translate_airflow_asset(Asset(uri=uri), None)
    assert dataset is not None, uri
    return dataset.namespace, dataset.name


def test_s3_objects_follow_openlineage_s3_naming() -> None:
    lake = S3Lake(LocalFileSystem(), "spotify-lake", "data/spotify")
    assert [openlineage_dataset(u) for u in lineage.raw_documents(lake, DAY, [PLAYLIST])] == [
        ("s3://spotify-lake", f"data/spotify/raw/playlists/dt={DAY}/playlist_id={PLAYLIST}.json")
    ]
    assert [openlineage_dataset(u) for u in lineage.partitions(lake, DAY)] == [
        ("s3://spotify-lake", f"data/spotify/processed/{t}/dt={DAY}") for t in TABLE_NAMES
    ]


def test_local_files_follow_openlineage_file_naming(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    assert [openlineage_dataset(u) for u in lineage.partitions(lake, DAY)] == [
        ("file", f"{tmp_path}/lake/processed/{t}/dt={DAY}") for t in TABLE_NAMES
    ]


class RecordingCollector:
    def __init__(self) -> None:
        self.added: list[tuple[str, str]] = []

    def add_input_asset(self, context: object, uri: str) -> None:
        self.added.append(("in", uri))

    def add_output_asset(self, context: object, uri: str) -> None:
        self.added.append(("out", uri))


def test_uris_reach_the_collector_only_when_a_plugin_reads_hook_lineage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a reader (OpenLineage off) Airflow's collector is a no-op whose set-up imports every
    provider's asset handlers: report() does not ask for it."""
    import airflow.sdk.lineage
    from airflow.sdk import plugins_manager

    collectors: list[RecordingCollector] = []
    monkeypatch.setattr(airflow.sdk.lineage, "get_hook_lineage_collector", lambda: collectors[-1])
    monkeypatch.setattr(plugins_manager, "get_hook_lineage_readers_plugins", list)
    lineage.report(None, inputs=["file:///raw.json"], outputs=["file:///part"])  # no collector to hand out
    collectors.append(RecordingCollector())
    monkeypatch.setattr(plugins_manager, "get_hook_lineage_readers_plugins", lambda: [object])
    lineage.report(None, inputs=["file:///raw.json"], outputs=["file:///part"])
    assert collectors[0].added == [("in", "file:///raw.json"), ("out", "file:///part")]
