"""What the reliability tests assert about a lake: its exact bytes, and that readers see whole files only."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from spotify_etl import tables
from spotify_etl.lake import PART_FILE


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) -> sha256 of its bytes."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def hidden_files(root: Path) -> list[str]:
    """Leftovers of interrupted writes (``.<name>.tmp-<uuid>``): readers skip them, tests want none."""
    return [k for k in snapshot(root) if any(part.startswith(".") for part in Path(k).parts)]


def partition_rows(lake_dir: Path, day: str) -> dict[str, list[dict[str, Any]]]:
    """Every table's partition for ``day``, read whole, without the publish id and extraction time;
    asserts each is exactly one complete file with its schema."""
    out = {}
    for table in tables.TABLE_NAMES:
        folder = lake_dir / "processed" / table / f"dt={day}"
        visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        assert visible == [PART_FILE], f"{folder}: {visible}"
        assert pq.read_schema(folder / PART_FILE).equals(tables.schema(table)), table
        rows = pq.read_table(folder / PART_FILE).drop_columns([tables.PUBLISH_ID])
        # playlists.extracted_at is when that run read Spotify: each run's own, like the publish id.
        out[table] = rows.drop_columns([c for c in rows.column_names if c == "extracted_at"]).to_pylist()
    return out
