"""The lake: where raw documents and Parquet partitions live, a local folder (:class:`LocalLake`)
or S3 (:class:`S3Lake`).

All storage goes through one fsspec filesystem, so :class:`Lake` holds the layout and every
read; each half holds what differs (atomic writes, URLs, error hints). Every write replaces
whole objects atomically: locally by writing a hidden temporary file and renaming it over the
target, on S3 by a single PUT (S3 replaces an object atomically). Readers therefore see either
the old file or the new one, never a half-written one.

Layout under the root::

    raw/playlists/dt=YYYY-MM-DD/playlist_id=<id>.json
    processed/<table>/dt=YYYY-MM-DD/part-00000.parquet
    processed/pipeline_runs/dt=YYYY-MM-DD/run-<run>.parquet   (the run log: spotify_etl.runlog)
    _publish/dt=YYYY-MM-DD/lock, intent.json   (while a date's tables are published)
    reports/dt=YYYY-MM-DD/index.html, reports/latest/index.html   (the trends report: spotify_etl.report)

A date's six partition files are published together by :mod:`spotify_etl.publish`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from spotify_etl.dates import check_date
from spotify_etl.errors import PipelineError
from spotify_etl.ids import is_spotify_id

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

PART_FILE = "part-00000.parquet"
TABLES_DIR = "processed"  # the folder of the tables under the lake's root
REPORTS_DIR = "reports"  # the trends reports under the lake's root (spotify_etl.report, the Trends view)
REPORT_PAGE = "index.html"
_DT_DIR = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")
_RAW_FILE = re.compile(r"playlist_id=([0-9A-Za-z]{22})\.json")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def table_path(table: str) -> str:
    """Where ``table`` lives under the lake's root; the one place that says so."""
    return f"{TABLES_DIR}/{table}"


def raw_playlist_id(path: str) -> str | None:
    """The playlist id in a raw document's name (``.../playlist_id=<id>.json``), else None."""
    match = _RAW_FILE.fullmatch(path.rsplit("/", 1)[-1])
    return match.group(1) if match else None


class LakeError(PipelineError, RuntimeError):
    """A storage operation failed; the message names the object and what to check."""


class Lake(ABC):
    """The layout and every read, shared by both halves; ``root`` has no scheme:
    ``/abs/lake`` or ``bucket/prefix``."""

    scheme: ClassVar[str]
    fs: AbstractFileSystem
    root: str
    write_kwargs: dict[str, Any]  # extra arguments of every write (S3's encryption headers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url(self.root)!r})"

    # ---- paths -------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.scheme}://{path}"

    def reader_path(self, path: str) -> str:
        """What DuckDB reads ``path`` by, once :meth:`attach` has given it the filesystem."""
        return self.url(path)

    def attach(self, con: Any) -> None:
        """Let the DuckDB connection ``con`` read this lake."""
        con.register_filesystem(self.fs)

    def raw_dir(self, day: str) -> str:
        return f"{self.root}/raw/playlists/dt={check_date(day)}"

    def raw_path(self, day: str, playlist_id: str) -> str:
        if not is_spotify_id(playlist_id):
            raise ValueError(f"refusing to build a path from an invalid playlist id {playlist_id!r}")
        return f"{self.raw_dir(day)}/playlist_id={playlist_id}.json"

    def table_dir(self, table: str) -> str:
        return f"{self.root}/{table_path(table)}"

    def partition_dir(self, table: str, day: str) -> str:
        return f"{self.table_dir(table)}/dt={check_date(day)}"

    def publish_dir(self, day: str) -> str:
        """The date's publish lock and intent (:mod:`spotify_etl.publish`); no reader looks here."""
        return f"{self.root}/_publish/dt={check_date(day)}"

    def report_path(self, day: str | None) -> str:
        """The trends report of ``day``, or the latest one (``None``); the one place that says where
        reports live (the report task writes them, the Trends view reads them)."""
        folder = "latest" if day is None else f"dt={check_date(day)}"
        return f"{self.root}/{REPORTS_DIR}/{folder}/{REPORT_PAGE}"

    # ---- reading -----------------------------------------------------------
    def report_dates(self) -> list[str]:
        """Dates with a report folder, oldest first."""
        folders = (path.rstrip("/").rsplit("/", 1)[-1] for path in self.files(f"{self.root}/{REPORTS_DIR}"))
        return sorted(m.group(1) for name in folders if (m := _DT_DIR.fullmatch(name)))

    def exists(self, path: str) -> bool:
        return bool(self._call("check", path, self.fs.exists, path))

    def read_json(self, path: str) -> Any:
        data = self._call("read", path, self.fs.cat_file, path)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise LakeError(f"{self.url(path)} is not valid JSON: {exc}") from exc

    def raw_documents(self, day: str) -> dict[str, str]:
        """Raw documents landed for ``day``: playlist id -> path, in playlist id order.

        The one reader of the raw file-name layout; other files in the folder are ignored.
        """
        folder = self.raw_dir(day)
        try:
            names = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            self._check_root(folder)
            return {}
        except Exception as exc:
            raise self._error("list", folder, exc) from exc
        landed = {playlist_id: path for path in names if (playlist_id := raw_playlist_id(path))}
        return dict(sorted(landed.items()))

    def raw_files(self, day: str) -> list[str]:
        """Paths of the raw documents landed for ``day``, in playlist id order."""
        return list(self.raw_documents(day).values())

    def raw_days(self) -> list[str]:
        folder = f"{self.root}/raw/playlists"
        try:
            names = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            self._check_root(folder)
            return []
        except Exception as exc:
            raise self._error("list", folder, exc) from exc
        days = (_DT_DIR.fullmatch(p.rstrip("/").rsplit("/", 1)[-1]) for p in names)
        return sorted(m.group(1) for m in days if m)

    def previous_raw(self, playlist_id: str, before: str) -> str | None:
        """Path of the newest raw document of ``playlist_id`` landed before day ``before``."""
        for day in reversed([d for d in self.raw_days() if d < before]):
            path = self.raw_path(day, playlist_id)
            if self.exists(path):
                return path
        return None

    # ---- writing -----------------------------------------------------------
    @abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace ``path`` with ``data`` atomically."""

    def write_json(self, path: str, document: Any) -> int:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        try:
            data = text.encode()
        except UnicodeEncodeError:
            # JSON's \u escapes can carry an unpaired surrogate (a name from a broken client);
            # UTF-8 cannot, and DuckDB refuses it, so it is stored as U+FFFD.
            data = _LONE_SURROGATE.sub("\ufffd", text).encode()
        self.write_bytes(path, data)
        return len(data)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create ``path`` holding ``data`` unless it exists; False if it does (or a concurrent
        create won). Locally a hard link of a whole temporary file (link fails if the name
        exists, so nobody reads a half-written file); on S3 a PUT with ``If-None-Match: *``,
        which S3 refuses with 412 when the key exists and 409 ConditionalRequestConflict when
        another conditional write to it is in flight."""
        try:
            self._create(path, data)
        except FileExistsError:  # s3fs turns the 412 into FileExistsError too
            return False
        except Exception as exc:
            if "ConditionalRequestConflict" in str(exc):
                return False
            raise self._error("write", path, exc) from exc
        return True

    def stage_file(self, local_file: str, path: str) -> None:
        """Copy ``local_file`` to ``path`` (a hidden staging name: not atomic, nobody reads it)."""
        self._call("write", path, self.fs.put_file, local_file, path, **self.write_kwargs)

    @abstractmethod
    def swap_into_place(self, staged: str, target: str) -> None:
        """Replace ``target`` with ``staged`` in one atomic step: locally a rename (``staged`` is
        gone after it), on S3 a server-side copy (S3 replaces an object atomically; ``staged``
        stays until deleted)."""

    def files(self, folder: str) -> list[str]:
        """Paths of the files directly in ``folder`` as they are now (not a cached listing: another
        process may have written there); none if it does not exist."""
        self.fs.invalidate_cache(folder)
        try:
            return sorted(self.fs.ls(folder, detail=False))
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._error("list", folder, exc) from exc

    def delete(self, path: str) -> None:
        """Delete ``path``; a path already gone is fine."""
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._error("delete", path, exc) from exc

    # ---- what each half does its own way ------------------------------------
    @abstractmethod
    def _create(self, path: str, data: bytes) -> None:
        """Create ``path``; raise FileExistsError if it exists."""

    @abstractmethod
    def _check_root(self, folder: str) -> None:
        """Raise if a missing ``folder`` means the lake itself is missing (a missing folder holds nothing yet)."""

    @abstractmethod
    def _error(self, action: str, path: str, exc: BaseException) -> LakeError:
        """How this half reports a failed storage operation."""

    def _call(self, action: str, path: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            raise self._error(action, path, exc) from exc


class LocalLake(Lake):
    """A lake in a local folder."""

    scheme = "file"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from fsspec.implementations.local import LocalFileSystem

        self.fs = LocalFileSystem(auto_mkdir=True)
        self.root = str(path).rstrip("/")
        self.write_kwargs = {}

    def reader_path(self, path: str) -> str:
        return path  # DuckDB reads local files itself

    def attach(self, con: Any) -> None:
        """DuckDB reads local files without a registered filesystem."""

    def write_bytes(self, path: str, data: bytes) -> None:
        self._replace_local(path, lambda tmp: self.fs.pipe_file(tmp, data))

    def swap_into_place(self, staged: str, target: str) -> None:
        self._call("write", target, self.fs.mv, staged, target)

    def _create(self, path: str, data: bytes) -> None:
        # A hard link of a whole temporary file: link fails if the name exists, so nobody
        # reads a half-written file.
        tmp = self._tmp_name(path)
        self.fs.pipe_file(tmp, data)
        try:
            os.link(tmp, path)
        finally:
            os.unlink(tmp)

    def _check_root(self, folder: str) -> None:
        """A missing folder of a local lake only holds nothing yet."""

    def _replace_local(self, path: str, write_tmp: Callable[[str], Any]) -> None:
        """Write a hidden temporary file with ``write_tmp``, then rename it over ``path``."""
        tmp = self._tmp_name(path)
        try:
            self._call("write", path, write_tmp, tmp)
            self._call("write", path, self.fs.mv, tmp, path)
        except BaseException:
            # A failed write leaves no half file behind (only a killed process can).
            with contextlib.suppress(OSError):
                self.fs.rm_file(tmp)
            raise

    @staticmethod
    def _tmp_name(path: str) -> str:
        head, _, name = path.rpartition("/")
        # Leading dot: hidden from Hive-style readers, DuckDB globs and Glue crawlers.
        return f"{head}/.{name}.tmp-{uuid.uuid4().hex}"

    def _error(self, action: str, path: str, exc: BaseException) -> LakeError:
        return LakeError(
            f"could not {action} {path!r}: {type(exc).__name__}: {exc} "
            "(check the folder exists and is writable (SPOTIFY_ETL_LAKE_DIR))"
        )


class S3Lake(Lake):
    """A lake under ``s3://bucket/prefix``; ``sse``/``kms_key_id`` as SPOTIFY_ETL_S3_SSE(_KMS_KEY_ID).

    Without ``sse`` no encryption header is sent, so the bucket's default encryption
    applies: an explicit header overrides it (SSE-KMS buckets would get SSE-S3 objects),
    fails where a bucket policy demands another algorithm, and MinIO without a KMS
    refuses it.
    """

    scheme = "s3"

    def __init__(
        self, fs: AbstractFileSystem, bucket: str, prefix: str = "", sse: str = "", kms_key_id: str = ""
    ) -> None:
        self.fs = fs
        self.root = f"{bucket}/{prefix.strip('/')}".rstrip("/")
        self.write_kwargs = {"ServerSideEncryption": sse} if sse else {}
        if kms_key_id:
            self.write_kwargs["SSEKMSKeyId"] = kms_key_id

    def write_bytes(self, path: str, data: bytes) -> None:
        self._call("write", path, self.fs.pipe_file, path, data, **self.write_kwargs)

    def swap_into_place(self, staged: str, target: str) -> None:
        self._call("write", target, self.fs.copy, staged, target, **self.write_kwargs)

    def _create(self, path: str, data: bytes) -> None:
        # If-None-Match: *; S3 refuses it with 412 (s3fs: FileExistsError) when the key exists.
        self.fs.pipe_file(path, data, mode="create", **self.write_kwargs)

    def _check_root(self, folder: str) -> None:
        # Without this check S3 reports a mistyped bucket like an empty folder, and a run for
        # a past date would skip as "nothing landed" instead of failing.
        bucket = self.root.split("/", 1)[0]
        if not self._call("check", folder, self.fs.exists, bucket):
            raise self._error("list", folder, FileNotFoundError(f"bucket {bucket!r} does not exist or is not visible"))

    def _error(self, action: str, path: str, exc: BaseException) -> LakeError:
        bucket, _, key = path.partition("/")
        return LakeError(
            f"could not {action} bucket {bucket!r}, key {key!r}: {type(exc).__name__}: {exc} "
            "(check the bucket exists, the AWS connection's credentials/endpoint_url, and that its role may access it)"
        )
