"""Read what a run left in the local lake, and what the library makes of the same raw documents."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from spotify_etl import tables
from spotify_etl.lake import LocalLake
from spotify_etl.paths import SAMPLE_DATA_DIR
from spotify_etl.transform import transform

SPOTIFY_ETL = Path(sys.executable).parent / "spotify-etl"


def raw_dir(lake: Path, day: str) -> Path:
    return lake / "raw" / "playlists" / f"dt={day}"


def raw_playlists(lake: Path, day: str) -> list[str]:
    return sorted(p.stem.removeprefix("playlist_id=") for p in raw_dir(lake, day).glob("playlist_id=*.json"))


def raw_digests(lake: Path, day: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(raw_dir(lake, day).glob("*"))}


def land_with_cli(lake: Path, day: str, playlists: list[str]) -> None:
    """Land raw documents as a user would before a backfill: ``spotify-etl extract``."""
    argv = [str(SPOTIFY_ETL), "extract", "--lake", str(lake), "--date", day]
    for playlist in playlists:
        argv += ["--playlist", playlist]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert raw_playlists(lake, day) == sorted(playlists)


def partition_files(lake: Path, table: str, day: str) -> list[Path]:
    return sorted((lake / "processed" / table / f"dt={day}").glob("*"))


def partition_rows(lake: Path, table: str, day: str) -> list[dict[str, Any]]:
    files = partition_files(lake, table, day)
    assert [f.name for f in files] == ["part-00000.parquet"], f"{table} dt={day}: {files}"
    return pq.read_table(files[0]).to_pylist()


def sorted_rows(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as sorted JSON, without their publish id (each transform's own)."""
    return sorted(json.dumps({**r, tables.PUBLISH_ID: None}, sort_keys=True, default=str) for r in rows)


def tables_of_day(lake: Path, day: str) -> dict[str, list[str]]:
    """Every table's partition for ``day`` as sorted JSON rows (order-free comparison)."""
    return {t: sorted_rows(partition_rows(lake, t, day)) for t in tables.TABLE_NAMES}


def reference_tables(raw_files: list[Path], workdir: Path, day: str) -> dict[str, list[str]]:
    """What the library's transform makes of ``raw_files``, computed outside Airflow."""
    out = LocalLake(workdir)
    transform([str(f) for f in raw_files], out, day)
    return tables_of_day(workdir, day)


def duplicated_keys(rows: list[dict[str, Any]], table: str) -> list[tuple[Any, ...]]:
    """The primary keys (what identifies one row) seen more than once."""
    seen: set[tuple[Any, ...]] = set()
    dupes = []
    for row in rows:
        key = tuple(row[k] for k in tables.primary_key(table))
        if key in seen:
            dupes.append(key)
        seen.add(key)
    return dupes


def processed_days(lake: Path, table: str) -> list[str]:
    return sorted(p.name.removeprefix("dt=") for p in (lake / "processed" / table).glob("dt=*"))


def sample_numbers(playlist_id: str) -> dict[str, int]:
    """Pages, items and API calls the extract should report for an embedded sample playlist."""
    pages = sorted((SAMPLE_DATA_DIR / "playlists" / playlist_id).glob("items_offset_*.json"))
    items = sum(len(json.loads(p.read_text(encoding="utf-8"))["items"]) for p in pages)
    return {"pages": len(pages), "items": items, "api_calls": len(pages) + 1}
