"""Fault injection: crashes while publishing a partition, a killed transform, Spotify
failing in the middle of a playlist, S3 refusing, and re-running a date.

Each test states what the lake holds afterwards, byte for byte: never a half-written or
mixed file where a reader looks, the previous data of the date kept until its
replacement is whole, and a retry that ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import requests
from spotify_etl import quality, tables
from spotify_etl.extract import extract_playlist
from spotify_etl.lake import PART_FILE, Lake, LakeError, LocalLake, S3Lake
from spotify_etl.spotify.client import RateLimited, SpotifyUnavailable
from spotify_etl.transform import transform_day
from spotify_etl.warehouse import local

from tests.conftest import load_fixture
from tests.reliability.lakestate import partition_rows, snapshot
from tests.support.airflow_run import PROJECT
from tests.support.moto_server import MotoAws, free_port
from tests.support.raw import land
from tests.support.spotify_server import LSD, RAP_RU, RESET, SpotifyServer, error_body

DAY = "2026-11-25"
EARLIER = "2026-11-24"


# ---- lakes on a folder and on S3 (moto) ------------------------------------------------
def s3_lake(aws: MotoAws, bucket: str | None = None) -> Lake:
    name = bucket or f"reliability-{uuid.uuid4().hex[:12]}"
    aws.client("s3").create_bucket(Bucket=name)
    return S3Lake(aws.s3fs(), name, "lake")


def objects(lake: Lake) -> dict[str, str]:
    """Every object under the lake's root (hidden ones too) -> sha256, on either filesystem."""
    return {
        path.removeprefix(lake.root + "/"): hashlib.sha256(lake.fs.cat_file(path)).hexdigest()
        for path in sorted(lake.fs.find(lake.root))
    }


def rows(lake: Lake, day: str = DAY) -> dict[str, str]:
    """table -> a digest of its partition's rows for ``day`` without their publish id (which every publish changes)."""
    out = {}
    for table in tables.TABLE_NAMES:
        got = pq.read_table(f"{lake.partition_dir(table, day)}/{PART_FILE}", filesystem=lake.fs)
        text = json.dumps(got.drop_columns([tables.PUBLISH_ID]).to_pylist(), sort_keys=True, default=str)
        out[table] = hashlib.sha256(text.encode()).hexdigest()
    return out


def publish_ids(lake: Lake, day: str = DAY) -> dict[str, set[str]]:
    """table -> the publish ids in its partition for ``day`` (one, when the date is one version)."""
    read = {
        t: pq.read_table(f"{lake.partition_dir(t, day)}/{PART_FILE}", filesystem=lake.fs) for t in tables.TABLE_NAMES
    }
    return {t: set(table[tables.PUBLISH_ID].to_pylist()) for t, table in read.items()}


def one_publish(publish_id: str) -> dict[str, set[str]]:
    """What :func:`publish_ids` gives for a date that is one whole publish."""
    return {t: {publish_id} for t in tables.TABLE_NAMES}


def visible_processed(state: dict[str, str]) -> list[str]:
    """The processed/ objects a reader sees (not hidden): exactly one part file per partition is whole."""
    return sorted(k for k in state if k.startswith("processed/") and not k.rsplit("/", 1)[-1].startswith("."))


ONE_FILE_EACH = sorted(f"processed/{t}/dt={DAY}/{PART_FILE}" for t in tables.TABLE_NAMES)


def land_v1(lake: Lake) -> None:
    land(lake, DAY, RAP_RU, [load_fixture("playlist_RapRU_get_playlist.json")["tracks"]])


def land_v2(lake: Lake) -> None:
    """The date's raw changes: a second playlist lands (a retry after a fixed extract, say)."""
    land(lake, DAY, LSD, [load_fixture("playlist_LSDreamTheatre_tracks_page1_offset0.json")])


def reference_rows(tmp_path: Path) -> dict[str, str]:
    """The rows an uninterrupted transform of v1 + v2 publishes."""
    lake = LocalLake(tmp_path / "reference")
    land_v1(lake)
    land_v2(lake)
    transform_day(lake, DAY)
    return rows(lake)


class Crash(OSError):
    """The injected failure."""


def fail_on_call(
    n: int, func: Callable[..., Any], exc: Exception, when: Callable[..., bool] = lambda *a: True
) -> Callable[..., Any]:
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if when(*args):
            calls[0] += 1
            if calls[0] == n:
                raise exc
        return func(*args, **kwargs)

    return wrapper


def inject(how: str, lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the third table's publication fail, at one of four levels."""
    if how == "swap":  # between two swaps: the process dies after two tables
        half = type(lake)  # the lake's own half: each swaps its own way
        monkeypatch.setattr(half, "swap_into_place", fail_on_call(3, half.swap_into_place, Crash("killed")))
    elif how == "upload":  # inside the third swap (local: the rename; S3: the copy)
        name = "mv" if lake.scheme == "file" else "copy"
        real = getattr(lake.fs, name)
        monkeypatch.setattr(
            lake.fs,
            name,
            fail_on_call(3, real, Crash("connection lost"), when=lambda *a: str(a[-1]).endswith(PART_FILE)),
        )
    elif how == "staging":  # disk full while copying the third file into the lake
        monkeypatch.setattr(Lake, "stage_file", fail_on_call(3, Lake.stage_file, Crash(28, "No space left on device")))
    else:  # the Parquet writer: disk full while writing the third table, before any publication
        import pyarrow.parquet

        real_writer = pyarrow.parquet.ParquetWriter
        made = itertools.count(1)

        class FullDisk(real_writer):  # type: ignore[misc, valid-type]
            number = 0  # which writer this is

            def write_batch(self, *args: Any, **kwargs: Any) -> None:
                super().write_batch(*args, **kwargs)
                if self.number == 3:
                    raise Crash(28, "No space left on device")

        def writer(*args: Any, **kwargs: Any) -> Any:
            instance = FullDisk(*args, **kwargs)
            instance.number = next(made)
            return instance

        monkeypatch.setattr(pyarrow.parquet, "ParquetWriter", writer)


@pytest.mark.parametrize("target", ["local", "s3"])
@pytest.mark.parametrize(("how", "swapped"), [("swap", 2), ("upload", 2), ("staging", 0), ("writer", 0)])
def test_crash_while_publishing_keeps_whole_files_and_the_retry_completes_one_version(
    how: str, swapped: int, target: str, aws: MotoAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LocalLake(tmp_path / "lake") if target == "local" else s3_lake(aws)
    land_v1(lake)
    transform_day(lake, DAY)
    old = rows(lake)
    land_v2(lake)
    new = reference_rows(tmp_path)
    assert all(old[t] != new[t] for t in tables.TABLE_NAMES)

    with monkeypatch.context() as patch:
        inject(how, lake, patch)
        with pytest.raises((Crash, LakeError)) as err:
            transform_day(lake, DAY)
    if how == "upload":  # the lake's message names the object and what to check
        assert isinstance(err.value, LakeError) and f"processed/{tables.TABLE_NAMES[2]}/dt={DAY}/{PART_FILE}" in str(
            err.value
        )

    after = objects(lake)
    # Exactly one whole file per partition, each either the old or the new one, in table order.
    assert rows(lake) == {t: (new if i < swapped else old)[t] for i, t in enumerate(tables.TABLE_NAMES)}
    assert visible_processed(after) == ONE_FILE_EACH
    hidden = [k for k in after if k.startswith("processed/") and k not in ONE_FILE_EACH]
    if swapped:  # the intent is recorded: its staged files wait for the next publish of the date
        assert f"_publish/dt={DAY}/intent.json" in after and len(hidden) == len(tables.TABLE_NAMES) - (
            swapped if target == "local" else 0
        )  # locally a swap is a rename, on S3 a copy
    else:  # nothing swapped: the previous version whole, nothing staged left
        assert hidden == [] and not any(k.startswith("_publish/") for k in after)
    assert f"_publish/dt={DAY}/lock" not in after  # released

    result = transform_day(lake, DAY)  # the retry
    assert rows(lake) == new
    assert publish_ids(lake) == one_publish(result.publish_id)
    final = objects(lake)
    assert sorted(k for k in final if k.startswith(("processed/", "_publish/"))) == ONE_FILE_EACH


# ---- a transform killed with SIGKILL right after its first swap, then run again -----------------
KILLED_AFTER_FIRST_SWAP = textwrap.dedent("""
    # `spotify-etl transform`, stopped for good (SIGKILL from the test) right after the
    # first table is swapped into place: the issue saw albums new and the rest old.
    import sys, time
    from pathlib import Path
    from spotify_etl import cli
    from spotify_etl.lake import LocalLake

    marker, argv = Path(sys.argv[1]), sys.argv[2:]
    real_swap = LocalLake.swap_into_place

    def swap(self, staged, target):
        real_swap(self, staged, target)
        marker.write_text(target)
        time.sleep(120)  # bounded: the test kills us long before

    LocalLake.swap_into_place = swap
    sys.exit(cli.main(argv))
""")


def cli_transform(lake_dir: Path, *prefix: str) -> list[str]:
    return [*prefix, "transform", "--raw", str(lake_dir), "--out", str(lake_dir), "--date", DAY]


def checks(lake: Lake, catalog: Path) -> dict[str, str]:
    local.register_tables(lake, catalog, "spotify_etl")
    return {r.name: r.status for r in local.run_validation(catalog, DAY, "spotify_etl")}


def test_transform_killed_after_its_first_swap_is_completed_by_the_next(tmp_path: Path) -> None:
    lake_dir, temp = tmp_path / "lake", tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}  # the transform's working folder, to see it cleaned
    lake = LocalLake(lake_dir)
    land_v1(lake)
    transform_day(lake, DAY)
    old = rows(lake)
    land_v2(lake)
    new = reference_rows(tmp_path)

    marker = tmp_path / "swapped"
    script = tmp_path / "killed_transform.py"
    script.write_text(KILLED_AFTER_FIRST_SWAP)
    proc = subprocess.Popen(
        cli_transform(lake_dir, sys.executable, str(script), str(marker)),
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), proc.communicate(timeout=30)[0].decode(errors="replace")[-3000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    killed = objects(lake)
    assert rows(lake) == {t: (new if i < 1 else old)[t] for i, t in enumerate(tables.TABLE_NAMES)}
    assert visible_processed(killed) == ONE_FILE_EACH  # readers see whole files...
    status = checks(lake, tmp_path / "catalog.duckdb")
    assert status["tables_one_publish"] == "FAIL"  # ...and validation sees the mix
    staged = [k for k in killed if k.startswith("processed/") and k not in ONE_FILE_EACH]
    assert len(staged) == len(tables.TABLE_NAMES) - 1 and all(Path(k).name.startswith(".") for k in staged)
    assert {f"_publish/dt={DAY}/lock", f"_publish/dt={DAY}/intent.json"} <= killed.keys()
    assert [p.name.startswith("spotify-etl-") for p in temp.iterdir()] == [True]  # its spill/staging folder

    rerun = subprocess.run(
        cli_transform(lake_dir, str(Path(sys.executable).parent / "spotify-etl")),
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "completing publish" in rerun.stderr and "taking over the stale publish lock" in rerun.stderr
    assert json.loads(rerun.stdout)["rows"]["playlist_items"] == 104
    assert rows(lake) == new
    assert publish_ids(lake) == one_publish(json.loads(rerun.stdout)["publish_id"])
    assert sorted(k for k in objects(lake) if k.startswith(("processed/", "_publish/"))) == ONE_FILE_EACH
    assert list(temp.iterdir()) == []  # the killed run's working folder is gone
    assert set(checks(lake, tmp_path / "catalog.duckdb").values()) == {"PASS"}
    assert local.row_counts(tmp_path / "catalog.duckdb", DAY, "spotify_etl")["playlist_items"] == 104


# ---- the same date, twice --------------------------------------------------------------
def run_day(server: SpotifyServer, lake: Lake, catalog: Path, extracted_at: str) -> list[str]:
    """What one DAG run does on the local target, stage by stage."""
    for pid in (LSD, RAP_RU):
        extract_playlist(server.source(retries=2), lake, pid, DAY, extracted_at)
    transform_day(lake, DAY)
    local.register_tables(lake, catalog, "spotify_etl")
    return [r.describe() for r in quality.judge(local.run_validation(catalog, DAY, "spotify_etl"), DAY)]


def test_running_a_date_twice_gives_the_same_files_and_rows(tmp_path: Path) -> None:
    lake_dir, catalog = tmp_path / "lake", tmp_path / "catalog.duckdb"
    lake = LocalLake(lake_dir)
    with SpotifyServer() as server:
        first_checks = run_day(server, lake, catalog, "2026-11-25T06:00:00+00:00")
        first, first_rows = snapshot(lake_dir), partition_rows(lake_dir, DAY)
        raw_first = {p.name: json.loads(p.read_text()) for p in (lake_dir / "raw").rglob("*.json")}
        second_checks = run_day(server, lake, catalog, "2026-11-25T09:30:00+00:00")

    second = snapshot(lake_dir)
    assert second.keys() == first.keys() and len(first) == 2 + len(tables.TABLE_NAMES)
    assert partition_rows(lake_dir, DAY) == first_rows and len(first_rows["playlist_items"]) == 204  # publish ids aside
    raw_second = {p.name: json.loads(p.read_text()) for p in (lake_dir / "raw").rglob("*.json")}
    for name, doc in raw_second.items():  # only the extraction time differs
        assert doc.pop("extracted_at") == "2026-11-25T09:30:00+00:00"
        assert doc == {k: v for k, v in raw_first[name].items() if k != "extracted_at"}
    assert second_checks == first_checks and local.row_counts(catalog, DAY, "spotify_etl")["playlist_items"] == 204


# ---- Spotify failing in the middle of a playlist -------------------------------------------
def items_at(offset: int) -> str:
    return rf"/items\?(.*&)?offset={offset}(&|$)"


def item_offsets(server: SpotifyServer) -> list[int]:
    return [int(r.query["offset"]) for r in server.api_requests("/items")]


# LSD's first 100 entries ride on the metadata request: /items is asked from offset 100.
RECOVERS = {
    "reset-once-at-100": (lambda s: s.fail(items_at(100), RESET), [100, 100, 150]),
    "reset-twice-at-150": (lambda s: s.fail(items_at(150), RESET, times=2), [100, 150, 150, 150]),
    "read-timeout-once-at-150": (lambda s: s.fail(items_at(150), 200, {}, delay=1.5), [100, 150, 150]),
}


@pytest.mark.parametrize("case", sorted(RECOVERS))
def test_mid_pagination_faults_within_the_transport_retries_recover(case: str, tmp_path: Path) -> None:
    setup, offsets = RECOVERS[case]
    lake = LocalLake(tmp_path / "lake")
    with SpotifyServer() as server:
        setup(server)
        result = extract_playlist(server.source(retries=2, timeout=(2.0, 1.0)), lake, LSD, DAY, "t")
        assert item_offsets(server) == offsets
    assert result.items == 200 and result.pages == 3
    doc = json.loads((tmp_path / f"lake/raw/playlists/dt={DAY}/playlist_id={LSD}.json").read_text())
    assert [p["offset"] for p in doc["pages"]] == [0, 100, 150] and doc["total"] == 200


FAILS = {
    "resets-at-100": (
        lambda s: s.fail(items_at(100), RESET, times=10),
        SpotifyUnavailable,
        "items page at offset 100: request to Spotify failed after 2 retries with backoff: ConnectionError",
    ),
    "read-timeouts-at-150": (
        lambda s: s.fail(items_at(150), 200, {}, delay=1.5, times=10),
        SpotifyUnavailable,
        "items page at offset 150: request to Spotify failed after 2 retries with backoff: ConnectionError",
    ),
    "503s-at-150": (
        lambda s: s.fail(items_at(150), 503, error_body(503, "Service unavailable"), times=10),
        SpotifyUnavailable,
        "items page at offset 150: Spotify answered 503 (Service unavailable) after 2 retries",
    ),
    "429-too-long-at-100": (
        lambda s: s.fail(
            items_at(100), 429, error_body(429, "API rate limit exceeded"), headers={"Retry-After": "86400"}
        ),
        RateLimited,
        "items page at offset 100: Spotify rate limit (429): Retry-After 86400 s exceeds",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILS))
def test_mid_pagination_faults_that_persist_fail_retryably_and_land_nothing(case: str, tmp_path: Path) -> None:
    setup, error, message = FAILS[case]
    lake_dir = tmp_path / "lake"
    lake = LocalLake(lake_dir)
    with SpotifyServer() as server:
        for day in (EARLIER, DAY):  # a good document of this very date (an earlier try) and of the day before
            extract_playlist(server.source(retries=2), lake, LSD, day, "t0")
        server.playlists[LSD].meta["snapshot_id"] = "changed"  # so the extract downloads every page again
        before = snapshot(lake_dir)
        setup(server)
        started = time.monotonic()
        with pytest.raises(error) as err:
            extract_playlist(server.source(retries=2, timeout=(2.0, 1.0)), lake, LSD, DAY, "t1")
        assert time.monotonic() - started < 30
        secrets = server.secrets()

    assert f"playlist {LSD} {message}" in str(err.value) and err.value.retryable  # Airflow retries it later
    assert not any(secret in str(err.value) for secret in secrets)
    assert snapshot(lake_dir) == before  # no partial document; the earlier one of this date is untouched


# ---- S3 refusing ---------------------------------------------------------------------------
def test_missing_bucket_fails_the_plan_and_the_transform_instead_of_finding_nothing(aws: MotoAws) -> None:
    """S3 lists a missing bucket like an empty folder; a past date would then skip as "nothing landed"."""
    import datetime as dt

    from spotify_etl import pipeline
    from spotify_etl.settings import Settings

    lake = S3Lake(aws.s3fs(), "no-such-lake-bucket", "lake")
    expected = "could not list bucket 'no-such-lake-bucket', key 'lake/raw/playlists/dt=2026-11-25': FileNotFoundError"
    with pytest.raises(LakeError) as err:
        pipeline.plan(lake, Settings(), dt.date(2026, 11, 25), dt.date(2026, 12, 31), True, [LSD])
    assert expected in str(err.value) and "check the bucket exists" in str(err.value)
    with pytest.raises(LakeError, match=expected):
        transform_day(lake, DAY)
    with pytest.raises(LakeError, match="could not list bucket 'no-such-lake-bucket', key 'lake/raw/playlists'"):
        lake.previous_raw(LSD, DAY)


def test_unreachable_endpoint_fails_naming_bucket_key_and_what_to_check(tmp_path: Path) -> None:
    import s3fs

    down = f"http://127.0.0.1:{free_port()}"
    fs = s3fs.S3FileSystem(
        key="testing",
        secret="testing",  # pragma: allowlist secret
        endpoint_url=down,
        skip_instance_cache=True,  # pragma: allowlist secret
        retries=1,
        config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 2},
    )
    lake = S3Lake(fs, "lake-bucket", "lake")
    started = time.monotonic()
    with pytest.raises(LakeError) as err:
        transform_day(lake, DAY)
    assert time.monotonic() - started < 60
    text = str(err.value)
    assert "could not list bucket 'lake-bucket', key 'lake/raw/playlists/dt=2026-11-25'" in text
    assert "endpoint_url" in text and "credentials" in text


def test_access_denied_mid_run_fails_naming_the_object_and_keeps_the_partitions(aws: MotoAws, tmp_path: Path) -> None:
    """The role may read but no longer write (a policy change): the date's data stays as it was."""
    lake = s3_lake(aws)
    land_v1(lake)
    transform_day(lake, DAY)
    land_v2(lake)
    before = objects(lake)

    iam = aws.client("iam")
    user = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="read-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    import s3fs

    reader_fs = s3fs.S3FileSystem(
        key=key["AccessKeyId"],
        secret=key["SecretAccessKey"],
        endpoint_url=aws.endpoint,
        client_kwargs={"region_name": "us-east-1"},
        skip_instance_cache=True,
    )
    reader = S3Lake(reader_fs, lake.root.split("/", 1)[0], "lake")
    assert requests.post(f"{aws.endpoint}/moto-api/reset-auth", data=b"0", timeout=10).status_code == 200
    try:
        with pytest.raises(LakeError) as err:
            transform_day(reader, DAY)
    finally:
        requests.post(f"{aws.endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)

    bucket = lake.root.split("/", 1)[0]
    assert (
        f"could not write bucket '{bucket}', key 'lake/_publish/dt={DAY}/lock': PermissionError"  # the first write
        in str(err.value)
    )
    assert "that its role may access it" in str(err.value)
    assert objects(lake) == before  # raw and every partition as they were
    assert not any(secret in str(err.value) for secret in (key["SecretAccessKey"],))
