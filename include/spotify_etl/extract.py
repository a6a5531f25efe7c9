"""Extract: one playlist -> one raw document in the lake.

The raw document holds the API pages exactly as received plus metadata, so every later
stage can be rebuilt from it. The source is anything that implements
:class:`PlaylistSource`: the live Web API through spotipy (:mod:`spotify_etl.spotify`) or the recorded
responses shipped in ``include/sample_data`` (:class:`SampleSource`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from spotify_etl.errors import PipelineError
from spotify_etl.ids import is_spotify_id
from spotify_etl.lake import Lake
from spotify_etl.paths import SAMPLE_DATA_DIR
from spotify_etl.raw_format import PLAYLIST, RAW_FORMAT, TRACK_KEYS, declared, shape_error

log = logging.getLogger(__name__)

PAGE_LIMIT = 50  # the /items endpoint's maximum page size


class PayloadError(PipelineError, RuntimeError):
    """The API answered with something it does not promise; nothing was landed."""


class NotInSampleData(PipelineError, RuntimeError, retryable=False):
    """The embedded sample data has no such playlist: no retry can add it, so the task fails at once."""


class PlaylistSource(Protocol):
    name: str

    @property
    def api_calls(self) -> int:
        """API calls made through the source by the calling thread (see :class:`CallCounter`)."""

    def playlist(self, playlist_id: str) -> dict[str, Any]:
        """Playlist metadata: id, name, owner, snapshot_id and the items total, with the first
        page of entries embedded where the source has it (see :func:`embedded_page`)."""

    def items_page(self, playlist_id: str, offset: int, limit: int) -> Any:
        """One paging object of playlist entries starting at ``offset``."""


class CallCounter:
    """Counts a source's API calls per thread: a chunk's playlists share one source (one token)
    on several threads (:mod:`spotify_etl.chunks`), and each playlist reports its own calls."""

    def __init__(self) -> None:
        self._local = threading.local()

    def add(self) -> None:
        self._local.calls = self.mine + 1

    @property
    def mine(self) -> int:
        return int(getattr(self._local, "calls", 0))


@dataclass(frozen=True)
class ExtractResult:
    playlist_id: str
    name: str
    snapshot_id: str | None
    items: int
    pages: int
    api_calls: int
    bytes_written: int
    unchanged: bool
    source: str
    path: str
    seconds: float

    @classmethod
    def of_document(
        cls,
        doc: dict[str, Any],
        path: str,
        *,
        unchanged: bool,
        api_calls: int = 0,
        bytes_written: int = 0,
        seconds: float = 0.0,
    ) -> ExtractResult:
        """The result of landing raw document ``doc`` at ``path`` (a URL)."""
        return cls(
            playlist_id=str(doc.get("playlist_id")),
            name=str(doc.get("name")),
            snapshot_id=doc.get("snapshot_id"),
            items=doc.get("total", 0),
            pages=len(doc.get("pages") or []),
            api_calls=api_calls,
            bytes_written=bytes_written,
            unchanged=unchanged,
            source=str(doc.get("source")),
            path=path,
            seconds=seconds,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _items_total(meta: dict[str, Any]) -> int | None:
    for key in TRACK_KEYS:  # 2026 responses say "items", older ones "tracks"
        block = meta.get(key)
        if isinstance(block, dict) and isinstance(block.get("total"), int):
            return int(block["total"])
    return None


def embedded_page(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The first page of entries that rode on the metadata request, or None: Spotify embeds it
    only for a playlist the token's user owns or collaborates on (other playlists: metadata only)."""
    for key in TRACK_KEYS:
        block = meta.get(key)
        if isinstance(block, dict) and "items" in block:
            return block
    return None


def fetch_pages(
    source: PlaylistSource, playlist_id: str, total: int | None, first: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every page of the playlist, from ``first`` (the page embedded in the metadata) if given,
    then from the items endpoint where it ended, following ``next`` until it is null; each entry
    checked against :data:`spotify_etl.raw_format.ENTRY` (see :func:`~spotify_etl.raw_format.shape_error`)."""
    pages: list[dict[str, Any]] = []
    offset = 0
    page: Any = first
    while True:
        if page is None:
            page = source.items_page(playlist_id, offset, PAGE_LIMIT)
            where = f"playlist {playlist_id} page at offset {offset}"
        else:
            where = f"playlist {playlist_id} first page (in the metadata response)"
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise PayloadError(f"{where}: response has no 'items' list; nothing landed for this playlist")
        if isinstance(page.get("offset"), int) and page["offset"] != offset:
            raise PayloadError(f"{where}: response says offset {page['offset']}; nothing landed for this playlist")
        for index, entry in enumerate(page["items"]):
            if problem := shape_error(entry):
                raise PayloadError(f"{where}: {problem} (position {offset + index}); nothing landed for this playlist")
        if total is None and isinstance(page.get("total"), int):
            total = page["total"]
        pages.append(page)
        offset += len(page["items"])
        if not page.get("next"):
            break
        if not page["items"]:
            raise PayloadError(f"{where}: empty page with a 'next' link; nothing landed for this playlist")
        if len(pages) > 10_000:
            raise PayloadError(f"{where}: more than 10000 pages; nothing landed for this playlist")
        page = None
    if total is not None and offset != total:
        raise PayloadError(
            f"playlist {playlist_id}: pages hold {offset} items but the API reported total {total} "
            f"(last page at offset {offset - len(pages[-1]['items'])}); nothing landed for this playlist"
        )
    return pages


def extract_playlist(
    source: PlaylistSource, lake: Lake, playlist_id: str, day: str, extracted_at: str, run: str | None = None
) -> ExtractResult:
    """Land ``playlist_id`` for ``day``; reuse the previous items if the snapshot is unchanged.
    ``run`` (metadata) names the run attempt that wrote the document (see :mod:`spotify_etl.chunks`)."""
    if not is_spotify_id(playlist_id):
        raise ValueError(f"invalid playlist id {playlist_id!r}")
    started = time.monotonic()
    calls_before = source.api_calls
    meta = source.playlist(playlist_id)
    if not isinstance(meta, dict):
        raise PayloadError(f"playlist {playlist_id}: metadata response is not a JSON object")
    snapshot_id = meta.get("snapshot_id")
    owner: dict[str, Any] = meta["owner"] if isinstance(meta.get("owner"), dict) else {}
    if problem := shape_error(meta, PLAYLIST, "metadata"):
        raise PayloadError(f"playlist {playlist_id}: {problem}; nothing landed for this playlist")
    previous = _same_snapshot(lake, playlist_id, day, snapshot_id)
    pages = previous["pages"] if previous else fetch_pages(source, playlist_id, _items_total(meta), embedded_page(meta))
    document: dict[str, Any] = {
        "format": RAW_FORMAT,
        "playlist_id": playlist_id,
        "dt": day,
        "name": meta.get("name"),
        "owner_id": owner.get("id"),
        "snapshot_id": snapshot_id,
        "total": sum(len(p["items"]) for p in pages),
        "extracted_at": extracted_at,
        "run": run,
        "source": source.name,
        "unchanged_since": _unchanged_since(previous) if previous else None,
        "api_calls": source.api_calls - calls_before,
        "metadata": declared(meta, PLAYLIST),  # the declared keys as received (the sample data holds more)
        "pages": pages,
    }
    target = lake.raw_path(day, playlist_id)
    size = lake.write_json(target, document)
    result = ExtractResult.of_document(
        document,
        lake.url(target),
        unchanged=previous is not None,
        api_calls=document["api_calls"],
        bytes_written=size,
        seconds=round(time.monotonic() - started, 3),
    )
    _log_landed(result)
    return result


def _unchanged_since(doc: dict[str, Any]) -> Any:
    return doc.get("unchanged_since") or doc.get("dt")


def _same_snapshot(lake: Lake, playlist_id: str, day: str, snapshot_id: Any) -> dict[str, Any] | None:
    """The playlist's latest raw document before ``day`` if it holds the same snapshot (its items
    are still current and are reused), else None."""
    previous = lake.previous_raw(playlist_id, day) if snapshot_id else None
    doc = lake.read_json(previous) if previous else None
    if not isinstance(doc, dict) or doc.get("snapshot_id") != snapshot_id:
        return None
    log.info(
        "playlist %s: snapshot %s unchanged since %s; reusing its items",
        playlist_id,
        snapshot_id,
        _unchanged_since(doc),
    )
    return doc


def _log_landed(result: ExtractResult) -> None:
    log.info(
        "playlist %s (%s): %d items in %d pages, %d API calls, %d bytes in %.2fs -> %s%s",
        result.playlist_id,
        result.name,
        result.items,
        result.pages,
        result.api_calls,
        result.bytes_written,
        result.seconds,
        result.path,
        " (unchanged snapshot)" if result.unchanged else "",
    )


class SampleSource:
    """Recorded Spotify responses from ``include/sample_data``: the offline default source."""

    name = "sample"

    def __init__(self, root: Path = SAMPLE_DATA_DIR / "playlists") -> None:
        self.root = root
        self.calls = CallCounter()

    @property
    def api_calls(self) -> int:
        return self.calls.mine

    def available(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_spotify_id(p.name))

    def _load(self, playlist_id: str, name: str) -> Any:
        self.calls.add()
        path = self.root / playlist_id / name
        if not path.is_file():
            raise NotInSampleData(
                f"playlist {playlist_id} is not in the embedded sample data ({name} missing); sample "
                f"playlists are: {', '.join(self.available())}. Configure the Spotify connection to extract others "
                "(docs/spotify-credentials.md)."
            )
        return json.loads(path.read_text(encoding="utf-8"))

    def playlist(self, playlist_id: str) -> dict[str, Any]:
        data = self._load(playlist_id, "playlist.json")
        return data if isinstance(data, dict) else {}

    def items_page(self, playlist_id: str, offset: int, limit: int) -> Any:
        return self._load(playlist_id, f"items_offset_{offset}.json")
