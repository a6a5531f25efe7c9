"""The date's publish lock on a local lake: what it refuses, whose lock it releases, when it takes over."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from spotify_etl import publish, tables
from spotify_etl.lake import LakeError, LocalLake

DAY = "2026-11-25"
LOCK = f"_publish/dt={DAY}/lock"


def lock_of(publish_id: str, expires: dt.datetime) -> bytes:
    return json.dumps(
        {"publish_id": publish_id, "host": "another-host", "pid": 1, "expires": expires.isoformat()}
    ).encode()


def test_a_publish_without_all_six_tables_is_refused_before_any_lock(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    files = dict.fromkeys(tables.TABLE_NAMES[1:], str(tmp_path / "x"))
    with pytest.raises(ValueError, match="a publish holds all six tables"):
        publish.publish_date(lake, DAY, files, "mine")
    assert not (tmp_path / "_publish").exists()


def test_a_lock_that_cannot_be_read_is_an_error_not_taken_over(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    assert lake.create_exclusive(f"{lake.root}/{LOCK}", b"{half a lock")
    with pytest.raises(LakeError, match="is not valid JSON"), publish.date_lock(lake, DAY, "mine", wait=5):
        pass
    assert (tmp_path / LOCK).read_bytes() == b"{half a lock"


def test_release_leaves_a_successors_lock_and_a_lock_already_gone(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    successor = lock_of("successor", dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    with publish.date_lock(lake, DAY, "mine", lease=0.1):
        (tmp_path / LOCK).write_bytes(successor)  # our lease ran out and another publisher took the date
    assert (tmp_path / LOCK).read_bytes() == successor

    (tmp_path / LOCK).unlink()
    with publish.date_lock(lake, DAY, "mine"):
        (tmp_path / LOCK).unlink()  # taken over by another publisher, which released it already
    assert not (tmp_path / LOCK).exists()


def test_a_takeover_deletes_only_the_stale_holders_lock(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    path = f"{lake.root}/{LOCK}"
    stale = json.loads(lock_of("crashed", dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    newer = lock_of("faster", dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert lake.create_exclusive(path, newer)  # a faster publisher replaced the stale lock meanwhile
    me = json.loads(lock_of("mine", dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))
    assert publish._take_over(lake, path, stale, me)  # it went through the takeover (a caller tries the lock again)
    assert (tmp_path / LOCK).read_bytes() == newer
    assert sorted(p.name for p in (tmp_path / LOCK).parent.iterdir()) == ["lock"]  # its takeover marker removed


def test_a_second_takeover_of_one_stale_lock_waits_for_the_first(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    stale = lock_of("crashed", dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert lake.create_exclusive(f"{lake.root}/{LOCK}", stale)
    marker = tmp_path / f"{LOCK}.takeover-crashed"
    marker.write_bytes(lock_of("taker", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)))  # another is taking over
    done = threading.Timer(0.3, marker.unlink)  # ... and gives up without deleting it
    done.start()
    try:
        with publish.date_lock(lake, DAY, "mine", wait=10) as holder:
            assert not marker.exists()  # we took over only after the first takeover ended
            assert json.loads((tmp_path / LOCK).read_bytes())["publish_id"] == holder["publish_id"] == "mine"
    finally:
        done.cancel()
        done.join(timeout=10)
    assert not (tmp_path / LOCK).exists()


def test_a_takeover_marker_that_stays_is_waited_for_within_the_bound(tmp_path: Path) -> None:
    """A live taker's marker that never goes: the wait ends at its bound, retryably, naming the holder."""
    lake = LocalLake(tmp_path)
    assert lake.create_exclusive(f"{lake.root}/{LOCK}", lock_of("crashed", dt.datetime.now(dt.UTC)))
    marker = tmp_path / f"{LOCK}.takeover-crashed"
    marker.write_bytes(lock_of("taker", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)))
    with pytest.raises(publish.PublishLocked, match="publish crashed"), publish.date_lock(lake, DAY, "mine", wait=0.5):
        pass
    assert marker.exists() and json.loads((tmp_path / LOCK).read_bytes())["publish_id"] == "crashed"


def test_a_dead_takers_marker_is_removed_and_the_stale_lock_taken_over(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    assert lake.create_exclusive(f"{lake.root}/{LOCK}", lock_of("crashed", dt.datetime.now(dt.UTC)))
    marker = tmp_path / f"{LOCK}.takeover-crashed"
    marker.write_bytes(lock_of("dead-taker", dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))  # past its bound
    with publish.date_lock(lake, DAY, "mine", wait=5) as holder:
        assert holder["publish_id"] == "mine" and not marker.exists()
    assert not (tmp_path / LOCK).exists()
