"""Publishing a date's six tables as one unit.

Each partition file is replaced atomically on its own (:meth:`Lake.swap_into_place`); what
makes the six one unit is this protocol, under ``<lake>/_publish/dt=<date>/``:

1. **Lock.** One publisher per date at a time: ``lock`` is created only if it does not
   exist (:meth:`Lake.create_exclusive`: a hard link locally, ``If-None-Match: *`` on S3).
   It names its holder and a lease; a lock past its lease, or held by a process of this
   host that is gone, is taken over, so a crashed holder does not block the date. A second
   publisher waits up to ``wait`` seconds, then fails retryably naming the holder.
2. **Recover.** A recorded ``intent.json`` (a publish that stopped between its swaps) is
   completed first (rolled forward), then leftovers of killed runs are removed: hidden files
   in the date's partitions and staged files of publishes that never recorded an intent.
3. **Stage.** The six files are copied into their partitions under hidden names
   (``.part-00000.parquet.<publish id>``): DuckDB's ``*.parquet`` globs and the Glue
   crawler's exclusions (``**/.*``) ignore them.
4. **Intent.** ``intent.json`` records the publish id once all six are staged.
5. **Swap** each staged file over its partition file, then **clear** the intent and the
   staging, then release the lock.

A crash before the intent leaves the previous version; a crash after it leaves the intent,
which the next publish of the date completes. Every row carries its publish's id (column
``publish_id``), so validation's ``tables_one_publish`` fails a date whose tables still
come from two publishes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from spotify_etl.lake import PART_FILE, Lake, LakeError
from spotify_etl.tables import TABLE_NAMES

log = logging.getLogger(__name__)

LEASE_SECONDS = 15 * 60  # a lock older than this is a crashed holder's: publishing takes seconds
WAIT_SECONDS = 5 * 60  # how long a second publisher of the date waits before failing (retryably)
TAKEOVER_SECONDS = 60  # a takeover marker older than this is a dead taker's: a takeover is two requests


class PublishLocked(LakeError):
    """Another publisher holds the date's lock; a retry can succeed once it is done."""


def new_publish_id() -> str:
    """A unique, time-ordered id: ``20261207T031500123456Z-1a2b3c4d``."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def staged_path(lake: Lake, table: str, day: str, publish_id: str) -> str:
    return f"{lake.partition_dir(table, day)}/.{PART_FILE}.{publish_id}"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (a reused pid counts as alive: the safe side)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish_date(lake: Lake, day: str, files: Mapping[str, str], publish_id: str, *,
                 lease: float = LEASE_SECONDS, wait: float = WAIT_SECONDS) -> None:  # fmt: skip
    """Make the local ``files`` (table -> path, all six tables) ``day``'s partitions, as one unit."""
    if sorted(files) != sorted(TABLE_NAMES):
        raise ValueError(f"a publish holds all six tables {TABLE_NAMES}, got {sorted(files)}")
    with date_lock(lake, day, publish_id, lease=lease, wait=wait):
        recover(lake, day)
        try:
            for table, local_file in files.items():
                lake.stage_file(local_file, staged_path(lake, table, day, publish_id))
            lake.write_json(_intent_path(lake, day), {"publish_id": publish_id, "tables": list(files)})
        except BaseException:
            # Nothing swapped yet: the previous version stays whole; drop what was staged.
            with suppress(Exception):
                _clean_partitions(lake, day)
            raise
        _complete(lake, day, publish_id, list(files))


def recover(lake: Lake, day: str) -> None:
    """Complete ``day``'s recorded intent, if any, and remove staging left by killed runs.
    Call with the date's lock held."""
    intent_file = _intent_path(lake, day)
    if intent_file in lake.files(lake.publish_dir(day)):
        intent = lake.read_json(intent_file)
        log.warning("dt=%s: completing publish %s, interrupted after its intent", day, intent["publish_id"])
        _complete(lake, day, intent["publish_id"], intent["tables"])
    else:
        _clean_partitions(lake, day)


def _complete(lake: Lake, day: str, publish_id: str, tables: list[str]) -> None:
    """Swap every staged file still there over its partition file, then clear the intent and staging."""
    for table in tables:
        staged, folder = staged_path(lake, table, day, publish_id), lake.partition_dir(table, day)
        if staged in lake.files(folder):  # locally a rename consumed it: that table is already swapped
            lake.swap_into_place(staged, f"{folder}/{PART_FILE}")
    lake.delete(_intent_path(lake, day))
    _clean_partitions(lake, day)


def _clean_partitions(lake: Lake, day: str) -> None:
    """Leave each of ``day``'s partitions holding its one data file: hidden files are staging
    or temporary files of killed runs (the lock is held, so none is in use), other files an
    older layout's."""
    for table in TABLE_NAMES:
        for path in lake.files(lake.partition_dir(table, day)):
            if path.rsplit("/", 1)[-1] != PART_FILE:
                lake.delete(path)


def _intent_path(lake: Lake, day: str) -> str:
    return f"{lake.publish_dir(day)}/intent.json"


# ---- the date's lock --------------------------------------------------------------------------
@contextmanager
def date_lock(lake: Lake, day: str, publish_id: str, *, lease: float = LEASE_SECONDS,
              wait: float = WAIT_SECONDS) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Hold ``day``'s publish lock for the block; see the module docstring."""
    holder = _acquire(lake, day, publish_id, lease, wait)
    try:
        yield holder
    finally:
        with suppress(LakeError):  # else its lease frees the date
            _release(lake, day, publish_id)


def _acquire(lake: Lake, day: str, publish_id: str, lease: float, wait: float) -> dict[str, Any]:
    path = f"{lake.publish_dir(day)}/lock"
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lease)
        me = {"publish_id": publish_id, "host": socket.gethostname(), "pid": os.getpid(),
              "expires": expires.isoformat(timespec="seconds")}  # fmt: skip
        if lake.create_exclusive(path, json.dumps(me).encode()):
            return me
        holder = _holder(lake, path)
        if holder is not None and _stale(holder) and _take_over(lake, path, holder, me):
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PublishLocked(
                f"dt={day}: another publish holds the lock {lake.url(path)} after waiting {wait:.0f}s: "
                f"{_describe(holder)}; a retry publishes once it is done (a crashed holder's lock "
                f"expires at its lease)"
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 2.0)


def _holder(lake: Lake, path: str) -> dict[str, Any] | None:
    """The lock's content; None if it was released meanwhile."""
    try:
        return dict(lake.read_json(path))
    except LakeError:
        if lake.exists(path):
            raise
        return None


def _stale(holder: dict[str, Any]) -> bool:
    expired = dt.datetime.fromisoformat(holder["expires"]) < dt.datetime.now(dt.UTC)
    gone = holder["host"] == socket.gethostname() and not process_alive(int(holder["pid"]))
    return expired or gone


def _take_over(lake: Lake, path: str, holder: dict[str, Any], me: dict[str, Any]) -> bool:
    """Delete a stale lock, once: only the publisher that creates the stale holder's takeover
    marker deletes it, after checking it still is that holder's (not a new lock of a faster one).
    False when another publisher's marker is there: the caller waits. A marker left by a taker
    that died is itself stale (its pid gone, or past :data:`TAKEOVER_SECONDS`) and is removed,
    so the next attempt can take over."""
    marker = f"{path}.takeover-{holder['publish_id']}"
    taker = {**me, "expires": (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=TAKEOVER_SECONDS)).isoformat()}
    if not lake.create_exclusive(marker, json.dumps(taker).encode()):
        other = _holder(lake, marker)
        if other is not None and _stale(other):
            log.warning(
                "removing the takeover marker %s of a taker that is gone: %s", lake.url(marker), _describe(other)
            )
            lake.delete(marker)
        return False
    try:
        current = _holder(lake, path)
        if current is not None and current["publish_id"] == holder["publish_id"]:
            log.warning("taking over the stale publish lock %s: %s", lake.url(path), _describe(holder))
            lake.delete(path)
    finally:
        lake.delete(marker)
    return True


def _release(lake: Lake, day: str, publish_id: str) -> None:
    path = f"{lake.publish_dir(day)}/lock"
    holder = _holder(lake, path)
    if holder is not None and holder["publish_id"] == publish_id:  # not a successor's, after our lease ran out
        lake.delete(path)


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "released meanwhile"
    return f"publish {holder['publish_id']} of pid {holder['pid']} on host {holder['host']}, lease until {holder['expires']}"
