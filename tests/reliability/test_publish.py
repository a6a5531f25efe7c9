"""A date's six tables are published as one unit (issue 22): the per-date lock, concurrent
transforms of one date, a full disk at each step of a publish, and the lock on S3 (moto).

Every case ends with the date holding one whole version: the six tables' rows of one input,
all carrying one publish id, and validation failing while a date is mixed.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from spotify_etl import publish, tables
from spotify_etl.lake import PART_FILE, Lake, LakeError, LocalLake
from spotify_etl.transform import transform, transform_day

from tests.reliability.test_faults import (
    DAY,
    ONE_FILE_EACH,
    checks,
    fail_on_call,
    land_v1,
    land_v2,
    objects,
    one_publish,
    publish_ids,
    reference_rows,
    rows,
    s3_lake,
)
from tests.support.moto_server import MotoAws

LOCK = f"_publish/dt={DAY}/lock"


def lake_of(target: str, tmp_path: Path, aws: MotoAws) -> Lake:
    return LocalLake(tmp_path / "lake") if target == "local" else s3_lake(aws)


def only_part_files(lake: Lake) -> bool:
    return sorted(k for k in objects(lake) if k.startswith(("processed/", "_publish/"))) == ONE_FILE_EACH


# ---- a full disk at each step ------------------------------------------------------------------
def full_disk() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("swap", [1, 2, 3, 4, 5])
def test_a_full_disk_at_each_swap_fails_validation_until_the_next_transform_completes_the_publish(
    swap: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lake = LocalLake(tmp_path / "lake")
    land_v1(lake)
    first = transform_day(lake, DAY)
    old = rows(lake)
    land_v2(lake)
    new = reference_rows(tmp_path)

    with monkeypatch.context() as patch:
        is_swap = lambda *args: str(args[-1]).endswith(PART_FILE)  # noqa: E731 - the rename of a swap
        patch.setattr(lake.fs, "mv", fail_on_call(swap, lake.fs.mv, full_disk(), when=is_swap))
        with pytest.raises(LakeError) as err:
            transform_day(lake, DAY)
    assert err.value.retryable and "No space left on device" in str(err.value)
    assert rows(lake) == {t: (new if i < swap - 1 else old)[t] for i, t in enumerate(tables.TABLE_NAMES)}
    status = checks(lake, tmp_path / "catalog.duckdb")
    assert status["tables_one_publish"] == ("PASS" if swap == 1 else "FAIL")  # a mixed date never validates
    assert LOCK not in objects(lake)
    interrupted = json.loads((tmp_path / "lake" / f"_publish/dt={DAY}/intent.json").read_text())["publish_id"]
    assert interrupted != first.publish_id

    with caplog.at_level("WARNING", logger="spotify_etl.publish"):
        result = transform_day(lake, DAY)
    assert f"completing publish {interrupted}, interrupted after its intent" in caplog.text
    assert rows(lake) == new and only_part_files(lake)
    assert publish_ids(lake) == one_publish(result.publish_id)
    assert set(checks(lake, tmp_path / "catalog.duckdb").values()) == {"PASS"}


@pytest.mark.parametrize("step", ["stage 1", "stage 3", "stage 5", "intent"])
def test_a_full_disk_before_the_intent_keeps_the_previous_version_and_leaves_nothing(
    step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LocalLake(tmp_path / "lake")
    land_v1(lake)
    first = transform_day(lake, DAY)
    land_v2(lake)
    landed = objects(lake)
    with monkeypatch.context() as patch:
        if step == "intent":  # the file system's write of the intent
            patch.setattr(lake.fs, "pipe_file", fail_on_call(1, lake.fs.pipe_file, full_disk()))
        else:  # the file system's copy of a staged file
            patch.setattr(lake.fs, "put_file", fail_on_call(int(step[-1]), lake.fs.put_file, full_disk()))
        with pytest.raises(LakeError, match="No space left on device"):
            transform_day(lake, DAY)
    assert objects(lake) == landed  # the previous version, and no staging left
    assert publish_ids(lake) == one_publish(first.publish_id)


# ---- concurrent transforms of one date ----------------------------------------------------------
def test_concurrent_transforms_of_one_date_with_different_inputs_publish_one_whole_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two transforms, inputs differing by one document, publish at once. A transform's first swap
    waits up to 3 s for the other's: without the lock their swaps interleave (the issue saw
    albums/artists of one and the rest of the other); with it the second waits its turn."""
    lake = LocalLake(tmp_path / "lake")
    land_v1(lake)
    v1_files = lake.raw_files(DAY)
    land_v2(lake)
    both_files = lake.raw_files(DAY)
    v1_lake, both_lake = LocalLake(tmp_path / "v1"), LocalLake(tmp_path / "both")
    transform(v1_files, v1_lake, DAY)
    transform(both_files, both_lake, DAY)
    expected = {"v1": rows(v1_lake), "both": rows(both_lake)}
    assert all(expected["v1"][t] != expected["both"][t] for t in tables.TABLE_NAMES)

    swaps: Counter[str] = Counter()
    started = {"v1": threading.Event(), "both": threading.Event()}
    overlapped = threading.Event()
    real_swap = LocalLake.swap_into_place

    def slow_swap(self: Lake, staged: str, target: str) -> None:
        me = threading.current_thread().name
        if any(0 < count < len(tables.TABLE_NAMES) for name, count in swaps.items() if name != me):
            overlapped.set()  # the other publish is between its first and last swap
        swaps[me] += 1
        started[me].set()
        if swaps[me] == 1:
            next(e for name, e in started.items() if name != me).wait(3)
        real_swap(self, staged, target)

    monkeypatch.setattr(LocalLake, "swap_into_place", slow_swap)
    results: dict[str, Any] = {}

    def run(name: str, files: list[str]) -> None:
        try:
            results[name] = transform(files, lake, DAY)
        except Exception as exc:  # noqa: BLE001 - asserted below
            results[name] = exc

    threads = [threading.Thread(target=run, args=a, name=a[0]) for a in (("v1", v1_files), ("both", both_files))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert swaps == dict.fromkeys(("v1", "both"), len(tables.TABLE_NAMES))  # each swapped through the spy
    assert not overlapped.is_set()  # never two publishes swapping at once
    assert {name: type(r).__name__ for name, r in results.items()} == dict.fromkeys(("v1", "both"), "TransformResult")

    ids = publish_ids(lake)
    (winner,) = {name for name, r in results.items() if ids == one_publish(r.publish_id)}
    assert rows(lake) == expected[winner]  # the last publish, whole
    assert only_part_files(lake)
    assert set(checks(lake, tmp_path / "catalog.duckdb").values()) == {"PASS"}


# ---- the lock ---------------------------------------------------------------------------------
def lock_of(host: str, pid: int, expires: dt.datetime, publish_id: str = "crashed-publish") -> bytes:
    return json.dumps({"publish_id": publish_id, "host": host, "pid": pid, "expires": expires.isoformat()}).encode()


@pytest.mark.parametrize("target", ["local", "s3"])
def test_a_second_publisher_waits_then_fails_retryably_naming_the_holder(
    target: str, tmp_path: Path, aws: MotoAws
) -> None:
    lake = lake_of(target, tmp_path, aws)
    land_v1(lake)
    files = {t: str(tmp_path / "empty") for t in tables.TABLE_NAMES}
    (tmp_path / "empty").write_bytes(b"")
    with publish.date_lock(lake, DAY, "first-publish") as holder:
        assert not lake.create_exclusive(f"{lake.root}/{LOCK}", b"x")  # refused while held
        started = time.monotonic()
        with pytest.raises(publish.PublishLocked) as err:
            publish.publish_date(lake, DAY, files, "second-publish", wait=0.5)
        assert 0.4 < time.monotonic() - started < 10
    message = str(err.value)
    assert err.value.retryable
    assert f"dt={DAY}: another publish holds the lock" in message and LOCK in message
    assert f"publish first-publish of pid {os.getpid()} on host {socket.gethostname()}" in message
    assert f"lease until {holder['expires']}" in message
    assert not any(k.startswith(("processed/", "_publish/")) for k in objects(lake))  # nothing written, lock released

    result = transform_day(lake, DAY)  # once released, the date publishes
    assert publish_ids(lake) == one_publish(result.publish_id)


def test_s3_refuses_a_second_conditional_create_with_412_as_aws_does(aws: MotoAws) -> None:
    lake = s3_lake(aws)
    bucket, key = lake.root.split("/", 1)[0], f"lake/{LOCK}"
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"first"


@pytest.mark.parametrize(
    ("target", "holder"),
    [
        ("local", "expired"),
        ("s3", "expired"),
        ("local", "dead process of this host"),
    ],
)
def test_a_crashed_holders_lock_is_taken_over(target: str, holder: str, tmp_path: Path, aws: MotoAws) -> None:
    lake = lake_of(target, tmp_path, aws)
    land_v1(lake)
    now = dt.datetime.now(dt.UTC)
    if holder == "expired":  # a worker on another host, gone for good
        lock = lock_of("another-host", 1, now - dt.timedelta(seconds=1))
    else:  # within its lease, but its process is gone (a pid above the kernel's maximum)
        lock = lock_of(socket.gethostname(), 2**22 + 1, now + dt.timedelta(hours=1))
    assert lake.create_exclusive(f"{lake.root}/{LOCK}", lock)

    result = transform_day(lake, DAY)
    assert publish_ids(lake) == one_publish(result.publish_id)
    assert only_part_files(lake)


def test_a_live_holder_within_its_lease_is_not_taken_over(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    lock = lock_of("another-host", 1, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), "live-publish")
    assert lake.create_exclusive(f"{lake.root}/{LOCK}", lock)
    files = dict.fromkeys(tables.TABLE_NAMES, str(tmp_path / "x"))
    with pytest.raises(publish.PublishLocked, match="publish live-publish of pid 1 on host another-host"):
        publish.publish_date(lake, DAY, files, "mine", wait=0.2)
    assert (tmp_path / "lake" / LOCK).read_bytes() == lock


# ---- the transform's working folders --------------------------------------------------------------
def test_working_folders_of_gone_transforms_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    from spotify_etl.transform import remove_stale_workdirs

    gone = tmp_path / f"spotify-etl-{2**22 + 1}-abc"
    live = tmp_path / f"spotify-etl-{os.getpid()}-def"
    old_style, recent_old_style, other = tmp_path / "spotify-etl-x1y2", tmp_path / "spotify-etl-z9", tmp_path / "keep"
    for folder in (gone, live, old_style, recent_old_style, other):
        folder.mkdir()
        (folder / "songs.parquet").write_bytes(b"staged")
    os.utime(old_style, (time.time() - 2 * 86400,) * 2)
    assert sorted(remove_stale_workdirs(str(tmp_path))) == sorted([str(gone), str(old_style)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, recent_old_style, other))


# ---- a real full file system --------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (tests run as root, here and in CI), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True, timeout=30)
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True, timeout=30)


def fill(disk: Path, leave_pages: int) -> Path:
    """Fill ``disk`` up, then free ``leave_pages`` pages of 4 KiB; return the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError, match="No space left on device"):
            for _ in range(1024):  # bounded: the disk holds 512 pages
                os.write(fd, b"\0" * 4096)
        os.ftruncate(fd, os.fstat(fd).st_size - leave_pages * 4096)
    finally:
        os.close(fd)
    return filler


def test_a_really_full_disk_while_staging_keeps_the_previous_version_and_leaves_nothing(small_disk: Path) -> None:
    lake = LocalLake(small_disk / "lake")
    land_v1(lake)
    first = transform_day(lake, DAY)
    land_v2(lake)
    landed = objects(lake)
    filler = fill(small_disk, leave_pages=2)  # the lock takes one, the first staged file(s) the rest

    with pytest.raises(LakeError, match="No space left on device") as err:
        transform_day(lake, DAY)
    assert f"/.{PART_FILE}." in str(err.value)  # while staging a file
    assert objects(lake) == landed  # the previous version whole, nothing staged left, the lock released
    assert publish_ids(lake) == one_publish(first.publish_id)

    filler.unlink()
    result = transform_day(lake, DAY)
    assert publish_ids(lake) == one_publish(result.publish_id) and only_part_files(lake)
