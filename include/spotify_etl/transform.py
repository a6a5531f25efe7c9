"""Transform: the raw documents of one date -> five Parquet tables, vectorised in DuckDB.

The documents are read in batches of bounded size, in playlist id order. DuckDB parses
each batch once into typed structs (leaves as VARCHAR so a value of the wrong type is
rejected per row instead of failing the file) and flattens the pages into one row per
playlist entry. ``playlist_items`` rows stream straight into their Parquet file; songs,
albums, artists and song-artist pairs seen for the first time are added to tables of
distinct entities. Memory therefore grows with the number of distinct entities, not with
the number of documents or entries.

"First" means first in (playlist id, position) order, which is the batch order, so a
song, album or artist row always comes from its first occurrence, as if every document
had been read at once. Every table is written to a local file with its explicit schema
(:mod:`spotify_etl.tables`) and published one file per table partition
(:meth:`Lake.publish_partition_file`) only after all are written, so a failed run leaves
the previous partition.

Every entry that does not become a song is counted under one reason (see ``REASONS``);
playlist_items keeps every entry, with ``song_id`` null where no song was loaded.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spotify_etl import tables
from spotify_etl.errors import PipelineError
from spotify_etl.lake import Lake, check_date
from spotify_etl.settings import DUCKDB_MEMORY_LIMIT

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

# Where the time goes (``TransformResult.step_seconds``), in order.
STEPS = (
    "read",  # DuckDB parses a batch's documents, flattens them into entries and applies the rules
    "playlist_items",  # the batch's checks, reject counts and rows into playlist_items.parquet
    "first_occurrences",  # the batch's songs, albums, artists and song-artist pairs not seen before
    "entity_tables",  # the distinct-entity tables, sorted, into their Parquet files
    "publish",  # the five files into the lake's partitions
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
MAX_DOCUMENT_BYTES = 64 << 20  # largest raw document read; a 10,000-item playlist as the extract keeps it is ~8 MB
BATCH_BYTES = 256 << 20  # raw JSON per batch: big enough to keep both cores busy, small next to the entity tables
_ID = "[0-9A-Za-z]{22}"

# One row per entry. The padded unnests ([true] is zipped beside the lists) give every
# document and every page at least one row, so documents without entries still reach
# the checks without a second read: the row with ``head`` is the document's, and rows
# with a null ``idx`` are padding, not entries. ``position`` counts the entries of the
# earlier pages (so no window sorts the rows) and ``ord``, the file's place in the batch
# and the position in one BIGINT, orders "first" cheaply.
_BATCH_SQL = f"""
CREATE OR REPLACE TABLE batch AS
WITH pages AS (
    SELECT filename, playlist_id, pages IS NULL AS no_pages, list_position($files, filename) AS file_no,
        list_transform(pages, lambda p: len(p.items)) AS page_sizes,
        unnest(pages) AS page, generate_subscripts(pages, 1) AS page_no, unnest([true]) AS head
    FROM read_json($files, columns = $columns, format = $format, filename = true,
                   maximum_object_size = $max_object)
), flat AS (
    SELECT filename, playlist_id, no_pages, file_no, coalesce(list_sum(page_sizes[:page_no - 1]), 0) AS page_start,
        unnest(page.items) AS entry, generate_subscripts(page.items, 1) AS idx, unnest([head]) AS head
    FROM pages
), typed AS (
    SELECT filename, file_no, playlist_id, no_pages, head, idx, CAST(page_start + idx - 1 AS INTEGER) AS position,
        CAST(file_no AS BIGINT) << 32 | (page_start + idx - 1) AS ord,
        TRY_CAST(entry.added_at AS TIMESTAMPTZ) AS added_at,
        nullif(entry.added_by.id, '') AS added_by,
        TRY_CAST(entry.is_local AS BOOLEAN) AS entry_is_local,
        coalesce(entry.item, entry.track) AS t
    FROM flat
)
SELECT CASE WHEN head THEN filename END AS filename, CASE WHEN head THEN file_no END AS file_no, playlist_id, head AND no_pages AS no_pages,
    coalesce(head, false) AS head, idx, position, ord, added_at, added_by,
    coalesce(entry_is_local, TRY_CAST(t.is_local AS BOOLEAN), false) AS is_local,
    t.id AS song_id, t.name AS name, TRY_CAST(t.explicit AS BOOLEAN) AS explicit, t.external_urls.spotify AS url,
    -- Integers only: DuckDB's cast would also turn '215000.5', '1e3' or '0x10' into numbers.
    CASE WHEN regexp_full_match(t.duration_ms, '-?[0-9]{{1,18}}') THEN CAST(t.duration_ms AS BIGINT) END AS duration_ms,
    CASE WHEN regexp_full_match(t.popularity, '-?[0-9]{{1,9}}') THEN CAST(t.popularity AS INTEGER) END AS popularity,
    CASE
        WHEN t IS NULL THEN 'null_entry'
        WHEN is_local THEN 'local_file'
        WHEN coalesce(t.type, 'track') <> 'track' THEN 'not_a_track'
        WHEN NOT coalesce(regexp_full_match(t.id, '{_ID}'), false) THEN 'invalid_track_id'
        WHEN coalesce(duration_ms, 0) <= 0 THEN 'invalid_duration_ms'
        WHEN t.popularity IS NOT NULL AND NOT coalesce(popularity BETWEEN 0 AND 100, false) THEN 'invalid_popularity'
        WHEN NOT coalesce(regexp_full_match(t.album.id, '{_ID}'), false) THEN 'invalid_album_id'
        WHEN NOT coalesce(regexp_full_match(t.artists[1].id, '{_ID}'), false) THEN 'invalid_artist_id'
    END AS reject_reason,
    t.album AS album, t.artists AS artists
FROM typed
"""  # SQL from module constants; file names are bound  # nosec B608

_PLAYLIST_ITEMS_SQL = """
SELECT playlist_id, position, CASE WHEN reject_reason IS NULL THEN song_id END AS song_id, added_at, added_by, is_local
FROM batch WHERE idx IS NOT NULL
ORDER BY ord
"""

_RELEASE_DATE = """
CASE coalesce(album.release_date_precision,
              CASE length(album.release_date) WHEN 4 THEN 'year' WHEN 7 THEN 'month' ELSE 'day' END)
    WHEN 'year' THEN TRY_CAST(try_strptime(album.release_date, '%Y') AS DATE)
    WHEN 'month' THEN TRY_CAST(try_strptime(album.release_date, '%Y-%m') AS DATE)
    ELSE TRY_CAST(try_strptime(album.release_date, '%Y-%m-%d') AS DATE)
END
"""

_ENTITY_TABLES_SQL = """
CREATE OR REPLACE TABLE songs (song_id VARCHAR, name VARCHAR, duration_ms BIGINT, popularity INTEGER,
    explicit BOOLEAN, album_id VARCHAR, artist_id VARCHAR, url VARCHAR);
CREATE OR REPLACE TABLE albums (album_id VARCHAR, name VARCHAR, release_date DATE,
    release_date_precision VARCHAR, total_tracks INTEGER, url VARCHAR);
CREATE OR REPLACE TABLE artists (artist_id VARCHAR, name VARCHAR, external_url VARCHAR);
CREATE OR REPLACE TABLE song_artists (song_id VARCHAR, artist_id VARCHAR, position INTEGER);
"""

# The batch's songs not seen in an earlier batch, each at its first entry; then what they
# bring that is new: albums and artists at their first song, and every song's artists.
# arg_min over narrow rows picks each first row, cheaper than a window over the wide ones.
_ADD_ENTITIES_SQL = f"""
CREATE OR REPLACE TABLE new_songs AS
SELECT ord, song_id, name, duration_ms, popularity, explicit, url, album, artists
FROM batch WHERE rowid IN (
    SELECT arg_min(rowid, ord) FROM batch b
    WHERE idx IS NOT NULL AND reject_reason IS NULL AND NOT EXISTS (SELECT 1 FROM songs s WHERE s.song_id = b.song_id)
    GROUP BY song_id);

INSERT INTO songs
SELECT song_id, name, duration_ms, popularity, explicit, album.id, artists[1].id, url
FROM new_songs;

INSERT INTO albums
SELECT album.id, album.name, {_RELEASE_DATE}, album.release_date_precision,
       TRY_CAST(album.total_tracks AS INTEGER), album.external_urls.spotify
FROM new_songs WHERE rowid IN (
    SELECT arg_min(rowid, ord) FROM new_songs n
    WHERE NOT EXISTS (SELECT 1 FROM albums a WHERE a.album_id = n.album.id)
    GROUP BY album.id);

CREATE OR REPLACE TABLE new_song_artists AS
SELECT * FROM (
    SELECT ord, song_id, unnest(artists) AS artist, generate_subscripts(artists, 1) AS artist_no
    FROM new_songs)
WHERE regexp_full_match(artist.id, '{_ID}');

INSERT INTO song_artists
SELECT song_id, artist.id, CAST(min(artist_no) - 1 AS INTEGER) FROM new_song_artists GROUP BY song_id, artist.id;

INSERT INTO artists
SELECT artist.id, artist.name, artist.external_urls.spotify
FROM new_song_artists WHERE rowid IN (
    SELECT arg_min(rowid, (ord, artist_no)) FROM new_song_artists n
    WHERE NOT EXISTS (SELECT 1 FROM artists a WHERE a.artist_id = n.artist.id)
    GROUP BY artist.id);
"""  # SQL from module constants; file names are bound  # nosec B608

TABLE_SQL: dict[str, str] = {
    "songs": "SELECT * FROM songs ORDER BY song_id",
    "albums": "SELECT * FROM albums ORDER BY album_id",
    "song_artists": "SELECT * FROM song_artists ORDER BY song_id, artist_id",
    "artists": "SELECT * FROM artists ORDER BY artist_id",
}


class TransformError(PipelineError, RuntimeError, retryable=False):
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
    step_seconds: dict[str, float] = field(default_factory=dict)  # see STEPS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def connect(
    memory_limit: str = DUCKDB_MEMORY_LIMIT, threads: int | None = None, temp_directory: str | None = None
) -> Any:
    """A fresh in-memory DuckDB; ``memory_limit``/``threads`` as SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT/_THREADS."""
    import duckdb

    config: dict[str, Any] = {
        "memory_limit": memory_limit,
        "preserve_insertion_order": False,
        # Otherwise every 16 MB of inserts checkpoints the working tables, rewriting the growing
        # entity tables each time (seconds per batch at a million entries); nothing here is kept.
        "checkpoint_threshold": "1TB",
    }
    if temp_directory:
        config["temp_directory"] = temp_directory  # spill here, not into the working directory
    if threads:
        config["threads"] = int(threads)  # else DuckDB's default: one per CPU it sees
    return duckdb.connect(config=config)


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


def _load_batch(con: Any, files: list[str], largest: int) -> None:
    """Parse ``files`` into the ``batch`` table, naming the unreadable file if one is.

    DuckDB's read buffers follow ``maximum_object_size``: sized to the batch's largest file,
    they stay small for the usual documents (fresh large buffers per file cost page faults).
    """
    params = {"files": files, "columns": RAW_COLUMNS, "max_object": min(largest + 1, MAX_DOCUMENT_BYTES)}
    try:
        try:
            con.execute(_BATCH_SQL, {**params, "format": "newline_delimited"})
        except Exception:  # noqa: BLE001 - a document spread over several lines: read the batch as plain JSON
            con.execute(_BATCH_SQL, {**params, "format": "auto"})
    except Exception as exc:
        raise TransformError(f"cannot read raw documents; nothing was written: {_find_bad_document(con, files)}") from exc


def _check_batch(con: Any, files: list[str]) -> tuple[int, list[str]]:
    """The batch's documents and their problems: no pages, an id unlike the file's, or a file name
    the reader reports differently from the one it was given (the order of "first" needs it)."""
    rows = con.execute("SELECT filename, file_no, playlist_id, no_pages FROM batch WHERE head").fetchall()
    problems = []
    for filename, file_no, playlist_id, no_pages in rows:
        expected = re.search(rf"playlist_id=({_ID})\.json$", filename)
        if file_no is None:  # the reader named the file differently from the list it was given
            problems.append(f"{filename}: not among the {len(files)} file names given to the reader")
        elif no_pages:
            problems.append(f"{filename}: no 'pages' array")
        elif not expected or playlist_id != expected.group(1):
            problems.append(f"{filename}: playlist_id {playlist_id!r} does not match the file name")
    return len(rows), problems


def _batches(files: list[str], sizes: list[int], limit: int) -> list[tuple[list[str], int]]:
    """Consecutive files of at most ``limit`` bytes together (at least one file), with their largest size."""
    batches: list[tuple[list[str], int]] = []
    batch: list[str] = []
    total = largest = 0
    for path, size in zip(files, sizes, strict=True):
        if batch and total + size > limit:
            batches.append((batch, largest))
            batch, total, largest = [], 0, 0
        batch.append(path)
        total += size
        largest = max(largest, size)
    return [*batches, (batch, largest)]


def _write_arrow(writer: Any, schema: Any, reader: Any) -> int:
    rows = 0
    for batch in reader:
        writer.write_batch(batch.cast(schema))
        rows += batch.num_rows
    return rows


def write_table(con: Any, table: str, out_file: Path, batch_rows: int = 128_000) -> int:
    """Stream entity ``table`` into ``out_file`` with its explicit schema; return rows written."""
    import pyarrow.parquet as pq

    schema = tables.schema(table)
    with con.cursor() as cursor, pq.ParquetWriter(out_file, schema, compression="zstd") as writer:
        return _write_arrow(writer, schema, cursor.sql(TABLE_SQL[table]).to_arrow_reader(batch_rows))


def write_entity_tables(con: Any, folder: Path) -> dict[str, int]:
    """Write the entity tables into ``folder`` two at a time: Parquet encoding runs on one core per file."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2, thread_name_prefix="spotify-etl-write") as pool:
        futures = {table: pool.submit(write_table, con, table, folder / f"{table}.parquet") for table in TABLE_SQL}
        return {table: future.result() for table, future in futures.items()}


@contextmanager
def _timed(steps: dict[str, float], step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        steps[step] = round(steps.get(step, 0.0) + time.monotonic() - started, 3)


def _stage(con: Any, urls: list[str], sizes: list[int], batch_bytes: int, folder: Path, result: TransformResult) -> None:
    """Write the five tables into ``folder``, counting into ``result``; raise if a document is not valid.

    One batch at a time: DuckDB already parses on every core, and reading the next batch
    while this one is processed was measured slower (both compete for cores and memory).
    """
    import pyarrow.parquet as pq

    rejected: Counter[str] = Counter()
    problems: list[str] = []
    steps = result.step_seconds
    con.execute(_ENTITY_TABLES_SQL)
    items_schema = tables.schema("playlist_items")
    result.rows["playlist_items"] = 0
    try:
        with pq.ParquetWriter(folder / "playlist_items.parquet", items_schema, compression="zstd") as items:
            for files, largest in _batches(urls, sizes, batch_bytes):
                with _timed(steps, "read"):
                    _load_batch(con, files, largest)
                with _timed(steps, "playlist_items"):
                    documents, found = _check_batch(con, files)
                    result.documents += documents
                    problems += found
                    counts = con.execute("SELECT reject_reason, count(*) FROM batch WHERE idx IS NOT NULL GROUP BY 1")
                    for reason, count in counts.fetchall():
                        result.entries += count
                        if reason is not None:
                            rejected[reason] += count
                    reader = con.sql(_PLAYLIST_ITEMS_SQL).to_arrow_reader(128_000)
                    result.rows["playlist_items"] += _write_arrow(items, items_schema, reader)
                with _timed(steps, "first_occurrences"):
                    con.execute(_ADD_ENTITIES_SQL)
    finally:
        con.execute("DROP TABLE IF EXISTS batch")
    if result.documents != len(urls):
        problems.append(f"{len(urls)} files but {result.documents} documents (a file holds more or less than one object)")
    if problems:
        raise TransformError("raw documents are not valid; nothing was written: " + "; ".join(problems))
    with _timed(steps, "entity_tables"):
        result.rows.update(write_entity_tables(con, folder))
    result.rows = {table: result.rows[table] for table in tables.TABLE_NAMES}
    result.rejected = dict(sorted(rejected.items()))


def transform(
    files: list[str],
    lake: Lake,
    day: str,
    *,
    con: Any = None,
    workdir: str | None = None,
    batch_bytes: int = BATCH_BYTES,
    memory_limit: str = DUCKDB_MEMORY_LIMIT,
    threads: int | None = None,
) -> TransformResult:
    """Transform the raw documents ``files`` into the five tables' partitions for ``day``.

    ``memory_limit`` and ``threads`` configure the DuckDB it opens (not a given ``con``).
    """
    day = check_date(day)
    if not files:
        raise TransformError(f"no raw documents for dt={day}; nothing was written")
    started = time.monotonic()
    files = sorted(files, key=lambda f: f.rsplit("/", 1)[-1])  # playlist id order: the order of "first"
    sizes = [int(s) for s in lake.fs.sizes(files)]
    urls = [lake.url(f) if lake.protocol != "file" else f for f in files]
    result = TransformResult(dt=day, documents=0, entries=0)
    with tempfile.TemporaryDirectory(prefix="spotify-etl-", dir=workdir) as tmp:
        own = con is None
        con = con or connect(memory_limit, threads, temp_directory=tmp)
        try:
            if lake.protocol != "file":
                con.register_filesystem(lake.fs)
            _stage(con, urls, sizes, batch_bytes, Path(tmp), result)
        finally:
            if own:
                con.close()  # before its spill folder is removed
        staged = {table: Path(tmp) / f"{table}.parquet" for table in tables.TABLE_NAMES}
        result.bytes_written = {table: path.stat().st_size for table, path in staged.items()}
        with _timed(result.step_seconds, "publish"):
            for table, path in staged.items():  # every table is written before any is published
                lake.publish_partition_file(str(path), table, day)
    result.seconds = round(time.monotonic() - started, 3)
    log.info(
        "dt=%s: %d documents, %d entries -> %s; not loaded as songs: %s; %d bytes in %.2fs (%s)",
        day, result.documents, result.entries, result.rows, result.rejected or "none",
        sum(result.bytes_written.values()), result.seconds,
        ", ".join(f"{step} {seconds:.2f}s" for step, seconds in result.step_seconds.items()),
    )
    return result


def transform_day(lake: Lake, day: str, playlists: list[str] | None = None, **kwargs: Any) -> TransformResult:
    """Transform the raw documents landed for ``day`` of ``playlists`` (a run's scope), or of
    every playlist landed for it when ``playlists`` is None. Other documents stay in the lake
    but are not in the published tables."""
    files = lake.raw_files(day)
    if playlists is not None:
        landed = {f.rsplit("=", 1)[-1].removesuffix(".json"): f for f in files}
        missing = [p for p in playlists if p not in landed]
        if missing:
            raise TransformError(f"dt={check_date(day)}: no raw document landed for {', '.join(missing)}; nothing was written")
        if not playlists:
            raise TransformError(
                f"dt={check_date(day)}: no playlist of this run was extracted, so nothing was written; the "
                "date's tables, if any, are unchanged (the extract_playlist logs say why)"
            )
        files = [landed[p] for p in dict.fromkeys(playlists)]
    return transform(files, lake, day, **kwargs)
