"""The benchmark at a tiny size: it runs end to end, and the baseline and the transform agree.

Also what the benchmark's data and the batched transform must hold: the generator's
shapes and determinism, and batches that give the same tables as one read. Timings are
not asserted here: they belong to ``make bench`` and ``bench/RESULTS.md``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from spotify_etl import raw_format, tables
from spotify_etl.lake import LocalLake
from spotify_etl.transform import STEPS, TransformError, transform_day

from tests.support.partitions import partition_data

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import baseline  # noqa: E402 - bench/ is a folder of scripts, not a package
import generate  # noqa: E402
import run_bench  # noqa: E402

DAY = run_bench.DAY


def test_benchmark_runs_and_baseline_writes_the_transforms_rows(tmp_path: Path) -> None:
    results_file = tmp_path / "RESULTS.md"
    results = run_bench.main(
        [
            "--items",
            "2000",
            "--repeat",
            "1",
            "--dag-repeat",
            "1",
            "--files-check-items",
            "2000",
            "--data-dir",
            str(tmp_path / "data"),
            "--work-dir",
            str(tmp_path / "out"),
            "--results",
            str(results_file),
        ]
    )

    assert results is not None
    assert results["verdicts"] == dict.fromkeys(tables.TABLE_NAMES, "same")
    figures = results["figures"]
    assert set(figures) == {"baseline", "transform", "transform-1thread", *run_bench.PARSERS, "read-typed"}
    steps = figures["transform"].runs[0].detail["steps"]
    assert list(steps) == list(STEPS) and all(seconds >= 0 for seconds in steps.values())
    assert sum(steps.values()) <= figures["transform"].runs[0].seconds
    transform_rows = figures["transform"].runs[0].detail["rows"]
    assert transform_rows == figures["baseline"].runs[0].detail["rows"]
    assert transform_rows == figures["transform-1thread"].runs[0].detail["rows"]
    assert transform_rows["playlist_items"] == results["data"]["items"] == 2000
    documents = results["data"]["documents"]
    assert figures["parse-duckdb"].runs[0].detail["documents"] == documents
    assert figures["parse-pyarrow"].runs[0].detail["documents"] == documents
    assert figures["parse-json"].runs[0].detail["documents"] == documents
    assert figures["read-typed"].runs[0].detail["documents"] == documents
    assert all(r.seconds > 0 and r.cpu_seconds > 0 and r.rss_mb > 0 for f in figures.values() for r in f.runs)
    large = results["large"]
    assert large["verdicts"] == dict.fromkeys(tables.TABLE_NAMES, "same")
    assert set(large["figures"]) == set(run_bench.LARGE_KINDS)
    assert large["data"]["items"] == 2000 and large["data"]["documents"] == 1  # one playlist of 2,000 entries
    assert large["figures"]["transform"].runs[0].detail["rows"]["playlist_items"] == 2000
    few, many = results["files_check"]["few"], results["files_check"]["many"]
    assert few["stats"]["items"] == many["stats"]["items"] == 2000
    assert many["stats"]["documents"] > 2 * few["stats"]["documents"]
    assert results["dag"]["import-dag"][0].detail["dag_only"] > 0

    text = results_file.read_text()
    assert "## Targets" in text and "| (a) and (b) write the same rows | every table | met |" in text
    assert "2,000 playlist items" in text
    assert f"peak RSS at most {run_bench.TARGET_RSS_MB} MiB at its default settings" in text
    assert "## What the baseline does" in text
    assert "## Large documents" in text and "| the same with documents of ~" in text
    assert all(f"| {step} | " in text for step in STEPS)


def _raw_documents(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "raw").rglob("*.json"))}


def test_generator_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = generate.generate(tmp_path / "a", DAY, 700, seed=3)
    again = generate.generate(tmp_path / "b", DAY, 700, seed=3)
    other = generate.generate(tmp_path / "c", DAY, 700, seed=4)
    assert first == again and first.items == 700
    assert _raw_documents(tmp_path / "a") == _raw_documents(tmp_path / "b")
    assert _raw_documents(tmp_path / "a") != _raw_documents(tmp_path / "c")
    assert other.items == 700


def test_generated_documents_look_like_the_api(tmp_path: Path) -> None:
    stats = generate.generate(tmp_path, DAY, 20_000, seed=11)
    lake = LocalLake(tmp_path)
    documents = [json.loads(Path(p).read_text(encoding="utf-8")) for p in lake.raw_files(DAY)]
    assert stats.documents == len(documents)
    entries: list[dict[str, Any]] = []
    for doc in documents:
        assert set(doc) == {
            "format",
            "playlist_id",
            "dt",
            "name",
            "owner_id",
            "snapshot_id",
            "total",
            "extracted_at",
            "source",
            "unchanged_since",
            "api_calls",
            "metadata",
            "pages",
        }
        assert set(doc["metadata"]) == set(raw_format.PLAYLIST.keys)  # what the extract keeps
        pages = doc["pages"]
        assert [p["offset"] for p in pages] == list(range(0, doc["total"], 50))
        assert all(len(p["items"]) == 50 for p in pages[:-1]) and pages[-1]["next"] is None
        assert {key for p in pages for key in p} == {"items", "limit", "next", "offset", "total"}  # the fields filter
        entries += [e for p in pages for e in p["items"]]
    sizes = [doc["total"] for doc in documents]
    assert sum(sizes) == len(entries) == 20_000
    assert all(s <= 10_000 for s in sizes) and all(s >= 100 for s in sizes[:-1])  # the last takes what is left

    assert {key for e in entries for key in e} == {"added_at", "added_by", "is_local", "item", "track"}
    assert {key for e in entries for key in e["added_by"]} == {"id"}
    keys = Counter("item" if "item" in e else "track" for e in entries)
    assert keys["item"] > 0.2 * len(entries) and keys["track"] > 0.2 * len(entries)
    bodies = [e.get("item", e.get("track")) for e in entries]
    tracks = [b for b in bodies if b and b["type"] == "track" and not b["is_local"]]
    kinds = Counter("null" if b is None else "local" if b.get("is_local") else b["type"] for b in bodies)
    for kind in ("null", "local", "episode"):
        assert 0 < kinds[kind] < 0.02 * len(entries)
    distinct = {t["id"] for t in tracks}
    assert 0.5 < len(distinct) / len(tracks) < 0.7
    assert {len(t["artists"]) for t in tracks} == {1, 2, 3}
    assert {t["album"]["release_date_precision"] for t in tracks} == {"day", "month", "year"}
    legacy = [e["track"] for e in entries if e.get("track") and e["track"]["type"] == "track"]
    assert legacy and all("popularity" in t for t in legacy)  # the /tracks endpoint still sent popularity
    assert not any("popularity" in e["item"] for e in entries if e.get("item"))
    assert sum(1 for t in tracks if t["duration_ms"] == 0) > 0  # unavailable "ghost" tracks
    assert {key for t in tracks for key in t} == {
        "id",
        "name",
        "type",
        "is_local",
        "duration_ms",
        "popularity",
        "explicit",
        "external_urls",
        "album",
        "artists",
    }
    assert {key for t in tracks for key in t["album"]} == {
        "id",
        "name",
        "release_date",
        "release_date_precision",
        "total_tracks",
        "external_urls",
    }
    assert {key for t in tracks for a in t["artists"] for key in a} == {"id", "name", "external_urls"}


@pytest.mark.parametrize("batch_bytes", [1, 3_000_000])
def test_transform_in_batches_writes_the_same_rows_as_in_one(tmp_path: Path, batch_bytes: int) -> None:
    """Songs, albums and artists repeat across batches; each still comes from its first entry."""
    generate.generate(tmp_path / "lake", DAY, 6_000, seed=5, min_size=100, max_size=1_500)
    lake = LocalLake(tmp_path / "lake")
    whole = transform_day(lake, DAY)
    expected = {t: partition_data(lake, t, DAY) for t in tables.TABLE_NAMES}
    batched = transform_day(lake, DAY, batch_bytes=batch_bytes)
    assert batched.rows == whole.rows and batched.rejected == whole.rejected and batched.entries == 6_000
    for table in tables.TABLE_NAMES:
        assert partition_data(lake, table, DAY).equals(expected[table]), table
    baseline_rows = baseline.transform(lake.raw_files(DAY), tmp_path / "baseline")
    assert baseline_rows == batched.rows


def test_document_over_several_lines_is_read_like_a_compact_one(tmp_path: Path) -> None:
    """Documents are read as one line each; one written with indentation takes the slower path, same rows."""
    generate.generate(tmp_path / "lake", DAY, 1_200, seed=9, min_size=100, max_size=400)
    lake = LocalLake(tmp_path / "lake")
    compact = transform_day(lake, DAY, batch_bytes=1)
    expected = {t: partition_data(lake, t, DAY) for t in tables.TABLE_NAMES}
    second = Path(lake.raw_files(DAY)[1])
    second.write_text(json.dumps(json.loads(second.read_text(encoding="utf-8")), indent=2), encoding="utf-8")
    assert second.read_text(encoding="utf-8").count("\n") > 1000

    indented = transform_day(lake, DAY, batch_bytes=1)
    assert indented.rows == compact.rows and indented.documents == compact.documents
    for table in tables.TABLE_NAMES:
        assert partition_data(lake, table, DAY).equals(expected[table]), table


def test_a_bad_document_in_a_later_batch_fails_the_run_before_anything_is_published(tmp_path: Path) -> None:
    generate.generate(tmp_path / "lake", DAY, 1_200, seed=9, min_size=100, max_size=400)
    lake = LocalLake(tmp_path / "lake")
    files = lake.raw_files(DAY)
    last = Path(files[-1])
    document = json.loads(last.read_text(encoding="utf-8"))
    last.write_text(json.dumps({**document, "playlist_id": Path(files[0]).stem.split("=")[1]}), encoding="utf-8")
    with pytest.raises(TransformError, match=rf"{last.name}: playlist_id .* does not match the file name"):
        transform_day(lake, DAY, batch_bytes=1)
    assert not (tmp_path / "lake" / "processed").exists()

    last.write_text(json.dumps(document) + "\n" + json.dumps(document), encoding="utf-8")
    with pytest.raises(TransformError, match=f"{len(files)} files but {len(files) + 1} documents"):
        transform_day(lake, DAY, batch_bytes=1)
    last.write_text(json.dumps(document)[:-100], encoding="utf-8")
    with pytest.raises(TransformError, match=f"cannot read raw documents; nothing was written: {last}"):
        transform_day(lake, DAY, batch_bytes=1)
    assert not (tmp_path / "lake" / "processed").exists()
