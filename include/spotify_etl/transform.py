"""Transform: the raw documents of one date -> five Parquet tables, vectorised in DuckDB.

DuckDB parses each raw document once into typed structs (leaves as VARCHAR so a value of
the wrong type is rejected per row instead of failing the file), flattens the pages into
one row per playlist entry, and derives the tables with set operations. Results stream
out as Arrow batches, are cast to the explicit schemas in :mod:`spotify_etl.tables`,
written to local Parquet files and published one file per table partition
(:meth:`Lake.publish_partition_file`), so a failed run leaves the previous partition.

Every entry that does not become a song is counted under one reason (see ``REASONS``);
playlist_items keeps every entry, with ``song_id`` null where no song was loaded.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spotify_etl import tables
from spotify_etl.lake import Lake, check_date

log = logging.getLogger(__name__)

# Why an entry did not become a song, in the order they are tested.
REASONS = (
    "null_entry",  # track/item missing or null (removed tracks, legacy entries)
    "local_file",  # is_local: a file on the user's device, no Spotify ids
    "not_a_track",  # a podcast episode or another non-track type
    "invalid_track_id",  # id missing or not 22 base62 characters
    "invalid_duration_ms",  # missing, not an integer, or <= 0 (unavailable "ghost" tracks)
    "invalid_popularity",  # present but not an integer in 0..100
    "invalid_album_id",  # album missing or its id invalid
    "invalid_artist_id",  # no artists, or the first artist's id invalid
)

_URL = "STRUCT(spotify VARCHAR)"
_ARTIST = f"STRUCT(id VARCHAR, name VARCHAR, external_urls {_URL})"
_ALBUM = (
    "STRUCT(id VARCHAR, name VARCHAR, release_date VARCHAR, release_date_precision VARCHAR, "
    f"total_tracks VARCHAR, external_urls {_URL})"
)
_TRACK = (
    "STRUCT(id VARCHAR, name VARCHAR, type VARCHAR, is_local VARCHAR, duration_ms VARCHAR, "
    f"popularity VARCHAR, explicit VARCHAR, external_urls {_URL}, album {_ALBUM}, artists {_ARTIST}[])"
)
_ENTRY = f"STRUCT(added_at VARCHAR, added_by STRUCT(id VARCHAR), is_local VARCHAR, track {_TRACK}, item {_TRACK})"
RAW_COLUMNS = {"playlist_id": "VARCHAR", "pages": f"STRUCT(items {_ENTRY}[])[]"}
MAX_DOCUMENT_BYTES = 64 << 20  # DuckDB buffers 2x this per thread; a 10,000-item playlist is ~20 MB
_ID_RE = "^[0-9A-Za-z]{22}$"

_ENTRIES_SQL = f"""
CREATE OR REPLACE TEMP TABLE entries AS
WITH docs AS (
    SELECT filename, playlist_id, pages FROM read_json(
        $files, columns = $columns, format = 'auto', filename = true,
        maximum_object_size = {MAX_DOCUMENT_BYTES})
), pages AS (
    SELECT d.playlist_id, p.page.items AS items, p.page_no
    FROM docs d, unnest(d.pages) WITH ORDINALITY AS p(page, page_no)
), offsets AS (
    SELECT playlist_id, items, coalesce(sum(len(items)) OVER (
        PARTITION BY playlist_id ORDER BY page_no
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS page_offset
    FROM pages
), flat AS (
    SELECT o.playlist_id, CAST(o.page_offset + e.idx - 1 AS INTEGER) AS position, e.entry
    FROM offsets o, unnest(o.items) WITH ORDINALITY AS e(entry, idx)
), typed AS (
    SELECT playlist_id, position,
        TRY_CAST(entry.added_at AS TIMESTAMPTZ) AS added_at,
        nullif(entry.added_by.id, '') AS added_by,
        coalesce(TRY_CAST(entry.is_local AS BOOLEAN), TRY_CAST(coalesce(entry.item, entry.track).is_local AS BOOLEAN), false) AS is_local,
        coalesce(entry.item, entry.track) AS t
    FROM flat
)
SELECT playlist_id, position, added_at, added_by, is_local, t,
    -- Integers only: DuckDB's cast would also turn '215000.5', '1e3' or '0x10' into numbers.
    CASE WHEN regexp_full_match(t.duration_ms, '-?[0-9]{{1,18}}') THEN CAST(t.duration_ms AS BIGINT) END AS duration_ms,
    CASE WHEN regexp_full_match(t.popularity, '-?[0-9]{{1,9}}') THEN CAST(t.popularity AS INTEGER) END AS popularity,
    CASE
        WHEN t IS NULL THEN 'null_entry'
        WHEN is_local THEN 'local_file'
        WHEN coalesce(t.type, 'track') <> 'track' THEN 'not_a_track'
        WHEN NOT coalesce(regexp_full_match(t.id, '{_ID_RE[1:-1]}'), false) THEN 'invalid_track_id'
        WHEN coalesce(duration_ms, 0) <= 0 THEN 'invalid_duration_ms'
        WHEN t.popularity IS NOT NULL AND NOT coalesce(popularity BETWEEN 0 AND 100, false) THEN 'invalid_popularity'
        WHEN NOT coalesce(regexp_full_match(t.album.id, '{_ID_RE[1:-1]}'), false) THEN 'invalid_album_id'
        WHEN NOT coalesce(regexp_full_match(t.artists[1].id, '{_ID_RE[1:-1]}'), false) THEN 'invalid_artist_id'
    END AS reject_reason
FROM typed
"""  # SQL from module constants; file names are bound  # nosec B608

_FIRST_SONGS_SQL = """
CREATE OR REPLACE TEMP TABLE first_songs AS
SELECT * FROM entries WHERE reject_reason IS NULL
QUALIFY row_number() OVER (PARTITION BY t.id ORDER BY playlist_id, position) = 1
"""

_RELEASE_DATE = """
CASE coalesce(t.album.release_date_precision,
              CASE length(t.album.release_date) WHEN 4 THEN 'year' WHEN 7 THEN 'month' ELSE 'day' END)
    WHEN 'year' THEN TRY_CAST(try_strptime(t.album.release_date, '%Y') AS DATE)
    WHEN 'month' THEN TRY_CAST(try_strptime(t.album.release_date, '%Y-%m') AS DATE)
    ELSE TRY_CAST(try_strptime(t.album.release_date, '%Y-%m-%d') AS DATE)
END
"""

TABLE_SQL: dict[str, str] = {
    "songs": """
        SELECT t.id AS song_id, t.name, duration_ms, popularity,
               TRY_CAST(t.explicit AS BOOLEAN) AS explicit, t.album.id AS album_id,
               t.artists[1].id AS artist_id, t.external_urls.spotify AS url
        FROM first_songs ORDER BY song_id""",
    "albums": f"""
        SELECT t.album.id AS album_id, t.album.name AS name, {_RELEASE_DATE} AS release_date,
               t.album.release_date_precision AS release_date_precision,
               TRY_CAST(t.album.total_tracks AS INTEGER) AS total_tracks,
               t.album.external_urls.spotify AS url
        FROM first_songs
        QUALIFY row_number() OVER (PARTITION BY t.album.id ORDER BY playlist_id, position) = 1
        ORDER BY album_id""",  # SQL from module constants; file names are bound  # nosec B608
    "song_artists": f"""
        SELECT song_id, artist_id, min(position) AS position FROM (
            SELECT t.id AS song_id, a.artist.id AS artist_id, CAST(a.idx - 1 AS INTEGER) AS position
            FROM first_songs, unnest(t.artists) WITH ORDINALITY AS a(artist, idx)
            WHERE regexp_full_match(a.artist.id, '{_ID_RE[1:-1]}'))
        GROUP BY song_id, artist_id ORDER BY song_id, artist_id""",  # SQL from module constants; file names are bound  # nosec B608
    "artists": f"""
        SELECT artist_id, name, external_url FROM (
            SELECT a.artist.id AS artist_id, a.artist.name AS name,
                   a.artist.external_urls.spotify AS external_url, playlist_id, position, a.idx
            FROM first_songs, unnest(t.artists) WITH ORDINALITY AS a(artist, idx)
            WHERE regexp_full_match(a.artist.id, '{_ID_RE[1:-1]}'))
        QUALIFY row_number() OVER (PARTITION BY artist_id ORDER BY playlist_id, position, idx) = 1
        ORDER BY artist_id""",  # SQL from module constants; file names are bound  # nosec B608
    "playlist_items": """
        SELECT playlist_id, position, CASE WHEN reject_reason IS NULL THEN t.id END AS song_id,
               added_at, added_by, is_local
        FROM entries ORDER BY playlist_id, position""",
}


class TransformError(RuntimeError):
    """Raw input could not be read; the message names the file."""


@dataclass
class TransformResult:
    dt: str
    documents: int
    entries: int
    rows: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    bytes_written: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def connect(memory_limit: str = "1GB", threads: int | None = None) -> Any:
    import duckdb

    con = duckdb.connect(config={"memory_limit": memory_limit, "preserve_insertion_order": False})
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _find_bad_document(con: Any, files: list[str]) -> str:
    """Name the first file that DuckDB cannot read as a raw document (error path only)."""
    for path in files:
        try:
            rows = con.execute(
                "SELECT playlist_id, pages IS NULL FROM read_json($f, columns = $c, format = 'auto', "
                f"maximum_object_size = {MAX_DOCUMENT_BYTES})",  # SQL from module constants; file names are bound  # nosec B608
                {"f": [path], "c": RAW_COLUMNS},
            ).fetchall()
        except Exception as exc:  # noqa: BLE001 - turned into a message naming the file
            return f"{path}: {str(exc).splitlines()[0]}"
        if len(rows) != 1 or rows[0][1]:
            return f"{path}: not a raw playlist document (expected one object with a 'pages' array)"
    return "no single file reproduces the error"


def _check_documents(con: Any, files: list[str]) -> int:
    rows = con.execute(
        "SELECT filename, playlist_id, pages IS NULL FROM read_json($f, columns = $c, format = 'auto', "
        f"filename = true, maximum_object_size = {MAX_DOCUMENT_BYTES})",  # SQL from module constants; file names are bound  # nosec B608
        {"f": files, "c": RAW_COLUMNS},
    ).fetchall()
    problems = []
    for filename, playlist_id, no_pages in rows:
        expected = re.search(r"playlist_id=([0-9A-Za-z]{22})\.json$", filename)
        if no_pages:
            problems.append(f"{filename}: no 'pages' array")
        elif not expected or playlist_id != expected.group(1):
            problems.append(f"{filename}: playlist_id {playlist_id!r} does not match the file name")
    if len(rows) != len(files):
        problems.append(f"{len(files)} files but {len(rows)} documents (a file holds more or less than one object)")
    if problems:
        raise TransformError("raw documents are not valid; nothing was written: " + "; ".join(problems))
    return len(rows)


def build_tables(con: Any, files: list[str]) -> tuple[int, int, dict[str, int]]:
    """Load ``files`` into the ``entries`` / ``first_songs`` temp tables; return counts."""
    try:
        documents = _check_documents(con, files)
        con.execute(_ENTRIES_SQL, {"files": files, "columns": RAW_COLUMNS})
    except TransformError:
        raise
    except Exception as exc:
        raise TransformError(f"cannot read raw documents; nothing was written: {_find_bad_document(con, files)}") from exc
    con.execute(_FIRST_SONGS_SQL)
    entries = con.execute("SELECT count(*) FROM entries").fetchone()[0]
    rejected = dict(
        con.execute(
            "SELECT reject_reason, count(*) FROM entries WHERE reject_reason IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    return documents, entries, rejected


def write_table(con: Any, table: str, out_file: Path, batch_rows: int = 128_000) -> int:
    """Stream ``table``'s query into ``out_file`` with its explicit schema; return rows written."""
    import pyarrow.parquet as pq

    schema = tables.schema(table)
    reader = con.sql(TABLE_SQL[table]).to_arrow_reader(batch_rows)
    rows = 0
    with pq.ParquetWriter(out_file, schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch.cast(schema))
            rows += batch.num_rows
    return rows


def transform(
    files: list[str], lake: Lake, day: str, *, con: Any = None, workdir: str | None = None
) -> TransformResult:
    """Transform the raw documents ``files`` into the five tables' partitions for ``day``."""
    day = check_date(day)
    if not files:
        raise TransformError(f"no raw documents for dt={day}; nothing was written")
    started = time.monotonic()
    con = con or connect()
    if lake.protocol != "file":
        con.register_filesystem(lake.fs)
    documents, entries, rejected = build_tables(con, [lake.url(f) if lake.protocol != "file" else f for f in files])
    result = TransformResult(dt=day, documents=documents, entries=entries, rejected=rejected)
    with tempfile.TemporaryDirectory(prefix="spotify-etl-", dir=workdir) as tmp:
        staged = {}
        for table in tables.TABLE_NAMES:  # write every table before publishing any
            staged[table] = Path(tmp) / f"{table}.parquet"
            result.rows[table] = write_table(con, table, staged[table])
            result.bytes_written[table] = staged[table].stat().st_size
        for table in tables.TABLE_NAMES:
            lake.publish_partition_file(str(staged[table]), table, day)
    result.seconds = round(time.monotonic() - started, 3)
    log.info(
        "dt=%s: %d documents, %d entries -> %s; not loaded as songs: %s; %d bytes in %.2fs",
        day, documents, entries, result.rows, rejected or "none", sum(result.bytes_written.values()), result.seconds,
    )
    return result


def transform_day(lake: Lake, day: str, **kwargs: Any) -> TransformResult:
    """Transform every raw document landed for ``day``."""
    return transform(lake.raw_files(day), lake, day, **kwargs)
