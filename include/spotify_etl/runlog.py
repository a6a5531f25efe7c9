"""The run log: table ``pipeline_runs``, one row per DAG run that published a date (the idea of
dlt's ``_dlt_loads``): what the run planned, landed and published, and the ``publish_id`` its
table rows carry, so a run's row joins to the rows it published.

Layout: ``processed/pipeline_runs/dt=YYYY-MM-DD/run-<name>.parquet``, one file of one row per run,
beside the tables and partitioned by ``dt`` like them, so the local catalog's view and the Glue
crawler read it as they read a table. A file per run id makes the log idempotent per run: a
cleared and re-run run replaces its own file (atomically, :meth:`Lake.write_bytes`), another run
of the same date adds its own. It is written after the date's publish, not inside it
(:mod:`spotify_etl.publish`): a row records a publish that happened.

The columns are plain (no nested maps) so DuckDB and Athena query them alike: one ``rows_<table>``
per table of :data:`spotify_etl.tables.TABLE_NAMES` and one ``rejected_<reason>`` per reason of
:data:`spotify_etl.transform.REASONS`, so a new table or reason becomes a column here unedited.
The types are :mod:`spotify_etl.tables`' type names.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from spotify_etl import tables
from spotify_etl.dates import check_date
from spotify_etl.plan import EXTRACT
from spotify_etl.transform import REASONS

if TYPE_CHECKING:
    import pyarrow as pa

    from spotify_etl.lake import Lake

log = logging.getLogger(__name__)

TABLE = "pipeline_runs"

# (column, type name as in tables.py, nullable); dt is the partition folder, as for the tables.
_RUN_COLUMNS: list[tuple[str, str, bool]] = [
    ("run_id", "string", False),  # the DAG run's id
    ("run_type", "string", False),  # Airflow's: scheduled, manual, backfill, asset_triggered...
    ("mode", "string", False),  # the plan's: extract or reprocess (a skipped run publishes nothing, so has no row)
    ("publish_id", "string", False),  # the publish this run made: every table row it wrote carries it
    ("started_at", "timestamp_utc", False),  # the DAG run's start as Airflow recorded it
    ("published_at", "timestamp_utc", False),  # when that publish completed
    ("playlists_planned", "int64", False),  # the plan's playlists: the run's scope
    ("playlists_landed", "int64", False),  # raw documents this run landed from Spotify (none on a reprocess)
    ("playlists_unchanged", "int64", False),  # of those, an unchanged snapshot: items reused, not requested
    ("playlists_failed", "int64", False),  # planned for extract, nothing landed: absent from the tables
    # Spotify Web API requests for the landed playlists, as their extract results report them (one
    # landed by an earlier try of its chunk task reports none; a failed playlist's are not counted).
    ("spotify_requests", "int64", False),
    ("items_read", "int64", False),  # playlist entries read from Spotify (an unchanged playlist's are reused)
    ("transform_seconds", "float64", False),
]
ROWS_PREFIX, REJECTED_PREFIX = "rows_", "rejected_"


def columns() -> list[tuple[str, str, bool]]:
    """Every column but ``dt``: the run's, then rows per table, then entries rejected per reason."""
    return [
        *_RUN_COLUMNS,
        *((ROWS_PREFIX + table, "int64", False) for table in tables.TABLE_NAMES),
        *((REJECTED_PREFIX + reason, "int64", False) for reason in REASONS),
    ]


def schema() -> pa.Schema:
    return tables.arrow_schema(columns())


@dataclass(frozen=True)
class RunRow:
    dt: str
    run_id: str
    run_type: str
    mode: str
    publish_id: str
    started_at: datetime
    published_at: datetime
    playlists_planned: int
    playlists_landed: int
    playlists_unchanged: int
    playlists_failed: int
    spotify_requests: int
    items_read: int
    transform_seconds: float
    rows: Mapping[str, int]  # table -> rows published
    rejected: Mapping[str, int]  # reason -> entries not loaded as songs

    def record(self) -> dict[str, Any]:
        """The row as :func:`schema`'s columns, in order (``dt`` is the file's folder)."""
        plain = {name: getattr(self, name) for name, _, _ in _RUN_COLUMNS}
        rows = {ROWS_PREFIX + table: self.rows[table] for table in tables.TABLE_NAMES}
        rejected = {REJECTED_PREFIX + reason: self.rejected.get(reason, 0) for reason in REASONS}
        return plain | rows | rejected


def _utc(moment: datetime | str) -> datetime:
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if value.tzinfo is None:
        raise ValueError(f"a run log time needs a time zone, got {value.isoformat()}")
    return value.astimezone(UTC)


def build_row(*, run_id: str, run_type: str, started_at: datetime, mode: str, planned: Sequence[str],
              extracted: Iterable[Mapping[str, Any]], transformed: Mapping[str, Any]) -> RunRow:  # fmt: skip
    """A run's row from plain values: ``planned``, the plan's playlists; ``extracted``, the extract
    results (:meth:`ExtractResult.as_dict`) of the playlists the run landed (none on a reprocess);
    ``transformed``, its transform's result (:meth:`TransformResult.as_dict`)."""
    landed = {r["playlist_id"]: r for r in extracted}
    read = [r for r in landed.values() if not r["unchanged"]]
    return RunRow(
        dt=check_date(transformed["dt"]),
        run_id=run_id,
        run_type=run_type,
        mode=mode,
        publish_id=transformed["publish_id"],
        started_at=_utc(started_at),
        published_at=_utc(transformed["published_at"]),
        playlists_planned=len(planned),
        playlists_landed=len(landed),
        playlists_unchanged=len(landed) - len(read),
        playlists_failed=sum(p not in landed for p in planned) if mode == EXTRACT else 0,
        spotify_requests=sum(int(r["api_calls"]) for r in landed.values()),
        items_read=sum(int(r["items"]) for r in read),
        transform_seconds=float(transformed["seconds"]),
        rows={table: int(transformed["rows"][table]) for table in tables.TABLE_NAMES},
        rejected={reason: int(transformed["rejected"].get(reason, 0)) for reason in REASONS},
    )


_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


def file_name(run_id: str) -> str:
    """The object name of ``run_id``'s row: ``run-<run id, safe>-<digest>.parquet``.

    Run ids hold characters that are unsafe in object names (``manual__2026-12-07T03:15:00+00:00``:
    ``:`` is refused by some filesystems, ``+`` is read as a space where keys are URL-decoded), so
    every character but letters, digits, ``.``, ``_`` and ``-`` becomes ``_`` (kept readable, cut
    to 100 characters), and 16 hex digits of the exact id's SHA-256 keep two ids that read alike
    (``a:b``, ``a+b``) apart. The ``run-`` prefix keeps a run id that starts with ``.`` or ``_``
    from naming a file readers skip as hidden (DuckDB's globs, the crawler's exclusions).
    """
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:16]
    return f"run-{_UNSAFE.sub('_', run_id)[:100]}-{digest}.parquet"


def row_path(lake: Lake, day: str, run_id: str) -> str:
    return f"{lake.partition_dir(TABLE, day)}/{file_name(run_id)}"


def write_row(lake: Lake, row: RunRow) -> str:
    """Write ``row`` as its run's file, replacing the run's earlier one (atomically); return its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([row.record()], schema=schema()), sink, compression="zstd")
    path = row_path(lake, row.dt, row.run_id)
    lake.write_bytes(path, sink.getvalue().to_pybytes())
    log.info("dt=%s: run %s (%s, publish %s) recorded in the run log: %s", row.dt, row.run_id, row.mode,
             row.publish_id, lake.url(path))  # fmt: skip
    return path
