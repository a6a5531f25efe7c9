"""The raw playlist entry and metadata, declared once: which keys the pipeline asks Spotify for and reads.

From :data:`ENTRY` (and :data:`PLAYLIST`, the metadata) come the three views of it that must agree:

- :func:`items_fields`: the ``fields`` filter of an items page sent to Spotify, and
  :func:`playlist_fields`, that of ``GET /playlists/{id}`` (:data:`PLAYLIST` and the first
  page of entries, which rides on that request);
- :func:`shape_error`: the extract's check that objects and lists are objects and lists
  (one value of another JSON type makes DuckDB refuse the whole document, so every
  playlist of that date); leaves (ids, names, numbers) may hold anything, the transform
  rejects bad values per row with a reason;
- :data:`RAW_COLUMNS`: the transform's DuckDB read types, leaves as VARCHAR so a value
  of the wrong type is rejected per row instead of failing the file.

The raw document keeps the pages exactly as received (:data:`RAW_FORMAT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

RAW_FORMAT = "spotify-etl/raw-playlist@1"

LEAF = None  # a JSON scalar, read as VARCHAR


@dataclass(frozen=True)
class Obj:
    """A JSON object with these keys; ``ask_whole``: the filter names it without its keys, so
    Spotify sends all of them (``external_urls``: we read ``spotify``, it may add others)."""

    keys: dict[str, Node]
    ask_whole: bool = False


@dataclass(frozen=True)
class ListOf:
    """A JSON array of objects."""

    item: Obj


Node: TypeAlias = Obj | ListOf | None

_URLS = Obj({"spotify": LEAF}, ask_whole=True)
_ALBUM = Obj(
    {
        "id": LEAF,
        "name": LEAF,
        "release_date": LEAF,
        "release_date_precision": LEAF,
        "total_tracks": LEAF,
        "external_urls": _URLS,
    }
)
_ARTIST = Obj({"id": LEAF, "name": LEAF, "external_urls": _URLS})
TRACK = Obj(
    {
        "id": LEAF,
        "name": LEAF,
        "type": LEAF,
        "is_local": LEAF,
        "duration_ms": LEAF,
        "popularity": LEAF,
        "explicit": LEAF,
        "external_urls": _URLS,
        "album": _ALBUM,
        "artists": ListOf(_ARTIST),
    }
)
# /items names the entry's track `item`; /tracks (closed to development-mode apps in 2026)
# names it `track`. The transform reads `item` and falls back to `track`.
TRACK_KEYS = {"items": "item", "tracks": "track"}
ENTRY = Obj({"added_at": LEAF, "added_by": Obj({"id": LEAF}), "is_local": LEAF, "track": TRACK, "item": TRACK})
PAGE_KEYS = ("offset", "limit", "next", "total")  # paging keys the extract follows and checks
# The playlist's metadata the raw document keeps (its ``metadata``, the playlists table's source).
# Documents landed before it was kept have none: the transform reads their columns as null.
PLAYLIST = Obj(
    {
        "name": LEAF,
        "description": LEAF,
        "public": LEAF,
        "collaborative": LEAF,
        "owner": Obj({"id": LEAF, "display_name": LEAF}),
        "followers": Obj({"total": LEAF}),  # absent from some answers (2026 development mode): null
    }
)


# ---- the Spotify `fields` filter -------------------------------------------------------
def _filter(obj: Obj) -> str:
    parts = []
    for key, node in obj.keys.items():
        sub = node.item if isinstance(node, ListOf) else node
        if sub is None or sub.ask_whole:
            parts.append(key)
        elif len(sub.keys) == 1 and next(iter(sub.keys.values())) is None:
            parts.append(f"{key}.{next(iter(sub.keys))}")
        else:
            parts.append(f"{key}({_filter(sub)})")
    return ",".join(parts)


def items_fields(endpoint: str) -> str:
    """The ``fields`` filter of an items page of ``endpoint`` (``items`` or ``tracks``).

    Each endpoint gets only its own track key: asking ``/items`` for the deprecated copy
    ``track`` too would land every track twice while Spotify still sends both.
    """
    own = TRACK_KEYS[endpoint]
    other = set(TRACK_KEYS.values()) - {own}
    entry = Obj({k: v for k, v in ENTRY.keys.items() if k not in other})
    return ",".join((*PAGE_KEYS, f"items({_filter(entry)})"))


def playlist_fields() -> str:
    """The ``fields`` filter of ``GET /playlists/{id}``: the id, the snapshot, :data:`PLAYLIST`
    and the playlist's first page of entries, so that one request lands a short playlist whole.

    Spotify embeds that page (up to 100 entries, with ``total`` and ``next`` when the filter names
    them) only for playlists the token's user owns or collaborates on; a development-mode app
    finds it under ``items`` with entries keyed ``item`` (2026), an app in extended quota mode
    under ``tracks`` with ``track``. Each container is asked for with its own entry key.
    """
    return ",".join(("id", "snapshot_id", _filter(PLAYLIST), *(f"{key}({items_fields(key)})" for key in TRACK_KEYS)))


# ---- the extract's shape check ---------------------------------------------------------
def shape_error(value: Any, node: Node = ENTRY, where: str = "entry") -> str | None:
    """Where ``value`` is not an object/list that ``node`` declares one (null is always fine), or None."""
    if value is None or node is None:
        return None
    if isinstance(node, ListOf):
        if not isinstance(value, list):
            return f"{where} is a {type(value).__name__}, not a list"
        return next((e for i, v in enumerate(value) if (e := shape_error(v, node.item, f"{where}[{i}]"))), None)
    if not isinstance(value, dict):
        return f"{where} is a {type(value).__name__}, not an object"
    return next(
        (e for key, sub in node.keys.items() if (e := shape_error(value.get(key), sub, f"{where}.{key}"))), None
    )


def declared(value: Any, node: Node) -> Any:
    """``value`` with only the keys ``node`` declares (an object asked whole: all of them); call
    after :func:`shape_error` found nothing. What a source sends beyond the filter is not kept."""
    if value is None or node is None or (isinstance(node, Obj) and node.ask_whole):
        return value
    if isinstance(node, ListOf):
        return [declared(v, node.item) for v in value]
    return {key: declared(value.get(key), sub) for key, sub in node.keys.items()}


# ---- the transform's DuckDB read types -------------------------------------------------
def duckdb_type(node: Node) -> str:
    if node is None:
        return "VARCHAR"
    if isinstance(node, ListOf):
        return f"{duckdb_type(node.item)}[]"
    return "STRUCT(" + ", ".join(f"{key} {duckdb_type(sub)}" for key, sub in node.keys.items()) + ")"


# The raw document as the transform reads it: the id, what the extract recorded of the playlist
# (name, owner_id, snapshot_id, total, extracted_at, metadata) and each page's entries.
RAW_COLUMNS = {
    "playlist_id": "VARCHAR",
    **dict.fromkeys(("name", "owner_id", "snapshot_id", "total", "extracted_at"), "VARCHAR"),
    "metadata": duckdb_type(PLAYLIST),
    "pages": f"STRUCT(items {duckdb_type(ListOf(ENTRY))})[]",
}
