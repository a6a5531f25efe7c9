"""Build raw playlist documents (the extract's output format) from recorded API pages."""

from __future__ import annotations

from typing import Any

from spotify_etl.extract import RAW_FORMAT
from spotify_etl.lake import Lake


def raw_document(playlist_id: str, pages: list[dict[str, Any]], day: str = "2026-11-25") -> dict[str, Any]:
    return {
        "format": RAW_FORMAT,
        "playlist_id": playlist_id,
        "dt": day,
        "name": f"test {playlist_id}",
        "owner_id": "tester",
        "snapshot_id": f"snap-{playlist_id}",
        "total": sum(len(p.get("items") or []) for p in pages),
        "extracted_at": f"{day}T00:00:00+00:00",
        "source": "test",
        "unchanged_since": None,
        "api_calls": len(pages) + 1,
        "pages": pages,
    }


def land(lake: Lake, day: str, playlist_id: str, pages: list[dict[str, Any]]) -> str:
    path = lake.raw_path(day, playlist_id)
    lake.write_json(path, raw_document(playlist_id, pages, day))
    return path
