"""Transform: the raw documents of one date -> six Parquet tables, vectorised in DuckDB.

The documents are read in batches of bounded size, in playlist id order. DuckDB parses
each batch once into typed structs (leaves as VARCHAR so a value of the wrong type is
rejected per row instead of failing the file) and flattens the pages into one row per
playlist entry. ``playlist_items`` and ``playlists`` (one row per document) rows stream
straight into their Parquet files; songs, albums, artists and song-artist pairs seen for
the first time are added to tables of distinct entities. Memory therefore grows with the
number of distinct entities, not with the number of documents or entries.

"First" means first in (playlist id, position) order, which is the batch order, so a
song, album or artist row always comes from its first occurrence, as if every document
had been read at once. Every table is written to a local file with its explicit schema
(:mod:`spotify_etl.tables`); only when all six are written are they published, as one
unit (:mod:`spotify_etl.publish`), every row carrying the publish's id: a failed run
leaves the previous version of the date.

Every entry that does not become a song is counted under one reason (see ``REASONS``);
playlist_items keeps every entry, with ``song_id`` null where no song was loaded.

The queries are in ``include/sql/transform/`` (values bound, never formatted in); the read
types come from :mod:`spotify_etl.raw_format`, the entity tables' DDL from :mod:`spotify_etl.tables`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections import Counter, deque
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from spotify_etl import publish, tables
from spotify_etl.dates import check_date
from spotify_etl.errors import PipelineError, first_few
from spotify_etl.lake import Lake, raw_playlist_id
from spotify_etl.paths import SQL_DIR
from spotify_etl.raw_format import RAW_COLUMNS

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
    "playlist_items",  # the batch's checks, reject counts and rows into playlist_items.parquet and playlists.parquet
    "first_occurrences",  # the batch's songs, albums, artists and song-artist pairs not seen before
    "entity_tables",  # the distinct-entity tables, sorted, into their Parquet files
    "publish",  # the six files into the lake's partitions, as one unit
)

# DuckDB's memory limit unless SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT says otherwise (the setting's
# default): fits a task slot of the smallest MWAA worker (docs/performance.md).
DUCKDB_MEMORY_LIMIT = "256MB"
MAX_DOCUMENT_BYTES = 64 << 20  # largest raw document read; a 10,000-item playlist as the extract keeps it is ~8 MB
ARROW_BATCH_ROWS = 32_000  # rows per Arrow batch out of DuckDB: its buffers are outside DuckDB's memory_limit
# Raw JSON per batch: big enough to keep both cores busy, small next to the memory limit (the
# batch's parsed entries live in DuckDB beside the entity tables; docs/performance.md). At most
# half the memory limit (a smaller limit reads smaller batches).
BATCH_BYTES = 128 << 20
# DuckDB memory to parse one document of n bytes on one thread is at most ALONE_BYTES +
# ALONE_BYTES_PER_BYTE * n (the measurements: docs/performance.md#large-documents). Only a
# document that does not fit the limit alone gets that much on top of it (:func:`_load_alone`).
ALONE_BYTES = 64 << 20
ALONE_BYTES_PER_BYTE = 10
# The four tables of distinct entities, in the order they are written.
ENTITY_TABLES = ("songs", "albums", "song_artists", "artists")


@cache
def sql(name: str) -> str:
    """``include/sql/transform/<name>.sql``, read once: SQL lives in files, values are bound."""
    return (SQL_DIR / "transform" / f"{name}.sql").read_text(encoding="utf-8")


def entity_tables_sql() -> str:
    """The entity tables' DDL, from their schemas in :mod:`spotify_etl.tables`."""
    return "\n".join(tables.create_table_sql(table) for table in ENTITY_TABLES)


def table_sql(table: str) -> str:
    """Entity ``table`` in primary-key order: the published files are sorted."""
    order = ", ".join(tables.primary_key(table))  # names from tables.py
    return f"SELECT t.*, p.publish_id AS {tables.PUBLISH_ID} FROM {table} t, publish p ORDER BY {order}"


class TransformError(PipelineError, RuntimeError, retryable=False):
    """Raw input could not be read; the message names the file."""


class TransformOutOfMemory(TransformError, retryable=True):
    """DuckDB ran out of memory even after reading less at a time. Not the input's fault, so not
    failed as bad input: Airflow's retries run (one after SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT is
    raised succeeds); the message says it is memory and names the setting."""


@dataclass
class TransformResult:
    dt: str
    documents: int
    entries: int
    publish_id: str = ""  # the id in every row it published (column publish_id), for the run's record
    published_at: str = ""  # when that publish completed (UTC, ISO 8601): the run log's published_at
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


def _is_out_of_memory(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.OutOfMemoryException)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _find_bad_document(con: Any, files: list[str], sizes: dict[str, int]) -> str | None:
    """The first file that DuckDB cannot read as a raw document, and why (error path only); None
    if each one reads alone. A file too large to read alone within the memory limit is not bad."""
    for path in files:
        try:
            params = {"f": [path], "c": RAW_COLUMNS, "max_object": min(sizes[path] + 1, MAX_DOCUMENT_BYTES)}
            rows = con.execute(sql("read_document"), params).fetchall()
        except Exception as exc:  # noqa: BLE001 - turned into a message naming the file
            if _is_out_of_memory(exc):
                continue
            return f"{path}: {_first_line(exc)}"
        if len(rows) != 1 or rows[0][1]:
            return f"{path}: not a raw playlist document (expected one object with a 'pages' array)"
    return None


def _load_batch(con: Any, files: list[str], sizes: dict[str, int]) -> None:
    """Parse ``files`` into the ``batch`` table, naming the unreadable file if one is. DuckDB's
    out-of-memory error is raised as it is: memory, not a bad file (see :func:`_read_batches`).

    DuckDB's read buffers follow ``maximum_object_size``: sized to the batch's largest file,
    they stay small for the usual documents (fresh large buffers per file cost page faults).
    """
    largest = max(sizes[path] for path in files)
    params = {"files": files, "columns": RAW_COLUMNS, "max_object": min(largest + 1, MAX_DOCUMENT_BYTES)}
    try:
        try:
            con.execute(sql("batch"), {**params, "format": "newline_delimited"})
        except Exception as exc:
            if _is_out_of_memory(exc):
                raise
            # a document spread over several lines: read the batch as plain JSON
            con.execute(sql("batch"), {**params, "format": "auto"})
    except Exception as exc:
        if _is_out_of_memory(exc):
            raise
        bad = _find_bad_document(con, files, sizes) or f"no single file reproduces the error ({_first_line(exc)})"
        raise TransformError(f"cannot read raw documents; nothing was written: {bad}") from exc


def _memory_bytes(setting: str) -> int:
    """DuckDB's memory_limit as it reports it (``244.1 MiB``: a share like 50% already resolved) in bytes."""
    number, unit = setting.split()
    return int(float(number) * {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[unit])


def _out_of_memory(exc: BaseException, limit: str, where: str) -> TransformOutOfMemory:
    return TransformOutOfMemory(
        f"DuckDB ran out of memory {where} ({_first_line(exc)}); nothing was written. This is memory, not bad "
        f"input: raise SPOTIFY_ETL_DUCKDB_MEMORY_LIMIT (now {limit}) or run on a larger worker; a retry tries again"
    )


def _load_alone(con: Any, path: str, size: int, limit: str) -> None:
    """One more try at a document that does not fit the memory limit alone on one thread: with the
    limit raised, for it alone, by what parsing it takes (``ALONE_BYTES``, ``ALONE_BYTES_PER_BYTE``)."""
    raised = f"{(_memory_bytes(limit) + ALONE_BYTES + ALONE_BYTES_PER_BYTE * size) >> 20}MiB"
    log.warning(
        "%s (%.1f MiB) does not fit DuckDB's memory limit of %s alone: reading it with the limit raised to %s",
        path,
        size / 2**20,
        limit,
        raised,
    )
    con.execute("SET memory_limit = $limit", {"limit": raised})
    try:
        _load_batch(con, [path], {path: size})
    except Exception as exc:
        if _is_out_of_memory(exc):
            raise _out_of_memory(exc, limit, f"reading {path} ({size / 2**20:.1f} MiB) alone at {raised}") from exc
        raise
    finally:
        con.execute("SET memory_limit = $limit", {"limit": limit})


def _read_batches(
    con: Any, files: list[str], sizes: list[int], batch_bytes: int, limit: str, steps: dict[str, float]
) -> Generator[list[str]]:
    """Load the batches into the ``batch`` table one after the other, in order; yield each one's files.

    Each DuckDB thread parses a whole document at a time, its read buffer and parse tree 10-16
    times the document's bytes, whatever the batch's size: a day of 7 MB documents needs about
    twice the memory on two threads that it needs on one, more than the default limit. So on
    out of memory the batch is read again: on one thread (the later batches too, and what is done
    with them; the threads are restored after the last), then in halves down to one document, then
    that document alone with a higher limit (:func:`_load_alone`); only then does the run fail,
    retryable, naming the setting. Batches are at most half the limit.
    """
    size_of = dict(zip(files, sizes, strict=True))
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    pending = deque(_batches(files, sizes, min(batch_bytes, _memory_bytes(limit) // 2)))
    try:
        while pending:
            batch = pending.popleft()
            try:
                with _timed(steps, "read"):
                    _load_batch(con, batch, size_of)
            except Exception as exc:
                if not _is_out_of_memory(exc):
                    raise
                one_thread = con.execute("SELECT current_setting('threads') = 1").fetchone()[0]
                log.warning(
                    "DuckDB ran out of memory reading %d document(s), %.1f MiB, within %s (%s): reading them %s",
                    len(batch),
                    sum(size_of[path] for path in batch) / 2**20,
                    limit,
                    _first_line(exc),
                    "again on one thread" if not one_thread else "in halves" if len(batch) > 1 else "alone",
                )
                if not one_thread:
                    con.execute("SET threads = 1")
                    pending.appendleft(batch)
                    continue
                if len(batch) > 1:
                    half = len(batch) // 2
                    pending.extendleft([batch[half:], batch[:half]])
                    continue
                with _timed(steps, "read"):
                    _load_alone(con, batch[0], size_of[batch[0]], limit)
            yield batch
    finally:
        con.execute("SET threads = $threads", {"threads": threads})


def _check_batch(con: Any, files: list[str], sizes: dict[str, int]) -> tuple[int, list[str]]:
    """The batch's documents and their problems: a file with no object or several, no pages, an id
    unlike the file's, or a file name the reader reports differently from the one it was given
    (the order of "first" needs it)."""
    rows = con.execute("SELECT filename, file_no, playlist_id, no_pages FROM batch WHERE head").fetchall()
    problems = []
    objects = Counter(filename for filename, *_ in rows)
    for path in files:
        if objects[path] == 0:
            problems.append(f"{path}: empty file (0 bytes)" if sizes[path] == 0 else f"{path}: no JSON object")
        elif objects[path] > 1:
            problems.append(f"{path}: {objects[path]} JSON objects, not one")
    for filename, file_no, playlist_id, no_pages in rows:
        expected = raw_playlist_id(filename)
        if file_no is None:  # the reader named the file differently from the list it was given
            problems.append(f"{filename}: not among the {len(files)} file names given to the reader")
        elif no_pages:
            problems.append(f"{filename}: no 'pages' array")
        elif expected is None or playlist_id != expected:
            problems.append(f"{filename}: playlist_id {playlist_id!r} does not match the file name")
    return len(rows), problems


def _batches(files: list[str], sizes: list[int], limit: int) -> list[list[str]]:
    """Consecutive files of at most ``limit`` bytes together (at least one file)."""
    batches: list[list[str]] = []
    batch: list[str] = []
    total = 0
    for path, size in zip(files, sizes, strict=True):
        if batch and total + size > limit:
            batches.append(batch)
            batch, total = [], 0
        batch.append(path)
        total += size
    return [*batches, batch]


def _write_arrow(writer: Any, schema: Any, reader: Any) -> int:
    rows = 0
    for batch in reader:
        writer.write_batch(batch.cast(schema))
        rows += batch.num_rows
    return rows


def write_table(con: Any, table: str, out_file: Path, batch_rows: int = ARROW_BATCH_ROWS) -> int:
    """Stream entity ``table`` into ``out_file`` with its explicit schema; return rows written."""
    import pyarrow.parquet as pq

    schema = tables.schema(table)
    with con.cursor() as cursor, pq.ParquetWriter(out_file, schema, compression="zstd") as writer:
        return _write_arrow(writer, schema, cursor.sql(table_sql(table)).to_arrow_reader(batch_rows))


def write_entity_tables(con: Any, folder: Path) -> dict[str, int]:
    """Write the entity tables into ``folder``, one after the other: two at a time hold two
    sorts and their Arrow batches at once, for no speed (docs/performance.md)."""
    return {table: write_table(con, table, folder / f"{table}.parquet") for table in ENTITY_TABLES}


@contextmanager
def _timed(steps: dict[str, float], step: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        steps[step] = round(steps.get(step, 0.0) + time.monotonic() - started, 3)


BATCH_TABLES = ("playlist_items", "playlists")  # written batch by batch, each by include/sql/transform/<table>.sql


@contextmanager
def _batch_writers(folder: Path) -> Iterator[dict[str, Any]]:
    """A Parquet writer per table of :data:`BATCH_TABLES`, closed at the end."""
    import pyarrow.parquet as pq

    writers: dict[str, Any] = {}
    try:
        for table in BATCH_TABLES:
            writers[table] = pq.ParquetWriter(folder / f"{table}.parquet", tables.schema(table), compression="zstd")
        yield writers
    finally:
        for writer in writers.values():
            writer.close()


def _stage(
    con: Any, urls: list[str], sizes: list[int], batch_bytes: int, folder: Path, result: TransformResult
) -> None:
    """Write the six tables into ``folder``, counting into ``result``; raise if a document is not valid.

    One batch at a time: DuckDB already parses on every core (docs/performance.md). Each
    batch's tables are dropped before the next is read, so they need not spill.
    """
    rejected: Counter[str] = Counter()
    problems: list[str] = []
    steps = result.step_seconds
    size_of = dict(zip(urls, sizes, strict=True))
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # as DuckDB resolved it
    con.execute(entity_tables_sql())
    result.rows.update(dict.fromkeys(BATCH_TABLES, 0))
    try:
        with (
            _batch_writers(folder) as writers,
            closing(_read_batches(con, urls, sizes, batch_bytes, limit, steps)) as batches,
        ):
            for files in batches:
                with _timed(steps, "playlist_items"):
                    documents, found = _check_batch(con, files, size_of)
                    result.documents += documents
                    problems += found
                    counts = con.execute("SELECT reject_reason, count(*) FROM batch WHERE idx IS NOT NULL GROUP BY 1")
                    for reason, count in counts.fetchall():
                        result.entries += count
                        if reason is not None:
                            rejected[reason] += count
                    for table, writer in writers.items():
                        reader = con.sql(sql(table)).to_arrow_reader(ARROW_BATCH_ROWS)
                        result.rows[table] += _write_arrow(writer, writer.schema, reader)
                with _timed(steps, "first_occurrences"):
                    con.execute(sql("add_entities"))
                    con.execute("DROP TABLE batch; DROP TABLE new_songs; DROP TABLE new_song_artists")
        if result.documents != len(urls):
            problems.insert(
                0, f"{len(urls)} files but {result.documents} documents (a file holds more or less than one object)"
            )
        if problems:
            raise TransformError("raw documents are not valid; nothing was written: " + first_few(problems, sep="; "))
        with _timed(steps, "entity_tables"):
            result.rows.update(write_entity_tables(con, folder))
    except Exception as exc:
        if _is_out_of_memory(exc):
            raise _out_of_memory(exc, limit, "transforming the raw documents") from exc
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS batch")
    result.rows = {table: result.rows[table] for table in tables.TABLE_NAMES}
    result.rejected = dict(sorted(rejected.items()))


WORKDIR_PREFIX = "spotify-etl-"  # + the pid of the transform using it
_WORKDIR = re.compile(rf"{WORKDIR_PREFIX}(?:(\d+)-)?\w+")
STALE_WORKDIR_SECONDS = 24 * 3600  # for a folder named without a pid (older versions)


def remove_stale_workdirs(workdir: str | None = None) -> list[str]:
    """Remove the working folders of transforms killed on this host (their spill and staged
    files, up to the size of a day's tables): named with a pid that is gone, or without one
    and older than a day. Returns the folders removed."""
    removed = []
    for folder in Path(workdir or tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        match = _WORKDIR.fullmatch(folder.name)
        if not match or not folder.is_dir():
            continue
        pid = match.group(1)
        try:
            stale = not publish.process_alive(int(pid)) if pid else (
                time.time() - folder.stat().st_mtime > STALE_WORKDIR_SECONDS)  # fmt: skip
        except OSError:
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed %s, left by a transform that no longer runs", folder)
            removed.append(str(folder))
    return removed


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
    """Transform the raw documents ``files`` into the six tables' partitions for ``day``.

    ``memory_limit`` and ``threads`` configure the DuckDB it opens (not a given ``con``).
    """
    day = check_date(day)
    if not files:
        raise TransformError(f"no raw documents for dt={day}; nothing was written")
    started = time.monotonic()
    files = sorted(files, key=lambda f: f.rsplit("/", 1)[-1])  # playlist id order: the order of "first"
    sizes = [int(s) for s in lake.fs.sizes(files)]
    urls = [lake.reader_path(f) for f in files]
    result = TransformResult(dt=day, documents=0, entries=0, publish_id=publish.new_publish_id())
    remove_stale_workdirs(workdir)
    with tempfile.TemporaryDirectory(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-", dir=workdir) as tmp:
        own = con is None
        con = con or connect(memory_limit, threads, temp_directory=tmp)
        try:
            lake.attach(con)
            # One row read by the SQL that writes the tables (a table, not a variable: cursors see it).
            con.execute("CREATE OR REPLACE TABLE publish AS SELECT ?::VARCHAR AS publish_id", [result.publish_id])
            _stage(con, urls, sizes, batch_bytes, Path(tmp), result)
        finally:
            if own:
                con.close()  # before its spill folder is removed
        staged = {table: str(Path(tmp) / f"{table}.parquet") for table in tables.TABLE_NAMES}
        result.bytes_written = {table: Path(path).stat().st_size for table, path in staged.items()}
        with _timed(result.step_seconds, "publish"):
            publish.publish_date(lake, day, staged, result.publish_id)
        result.published_at = datetime.now(UTC).isoformat()
    result.seconds = round(time.monotonic() - started, 3)
    log.info(
        "dt=%s: %d documents, %d entries -> %s; not loaded as songs: %s; %d bytes in %.2fs (%s); publish %s",
        day,
        result.documents,
        result.entries,
        result.rows,
        result.rejected or "none",
        sum(result.bytes_written.values()),
        result.seconds,
        ", ".join(f"{step} {seconds:.2f}s" for step, seconds in result.step_seconds.items()),
        result.publish_id,
    )
    return result


def transform_day(lake: Lake, day: str, playlists: list[str] | None = None, **kwargs: Any) -> TransformResult:
    """Transform the raw documents landed for ``day`` of ``playlists`` (a run's scope), or of
    every playlist landed for it when ``playlists`` is None. Other documents stay in the lake
    but are not in the published tables."""
    landed = lake.raw_documents(day)
    if playlists is None:
        return transform(list(landed.values()), lake, day, **kwargs)
    missing = [p for p in playlists if p not in landed]
    if missing:
        raise TransformError(
            f"dt={check_date(day)}: no raw document landed for {first_few(missing)}; nothing was written"
        )
    if not playlists:
        raise TransformError(
            f"dt={check_date(day)}: no playlist of this run was extracted, so nothing was written; the "
            "date's tables, if any, are unchanged (the extract_playlist logs say why)"
        )
    return transform([landed[p] for p in dict.fromkeys(playlists)], lake, day, **kwargs)
