"""A segment written in place slowly (issue 13, defect 3): analysed once, when its writer closes it, not once
per pause; and Corb's own writers write atomically (nothing half-written is ever visible under the key)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from runtime_helpers import declare, sessions_for
from sqlalchemy import select

from cloud.bucket import FolderBucket
from cloud.models import Invocation
from cloud.watcher import BucketWatcher

KEY = "cameras/lobby/2026-11-30T10:00:00Z.mkv"


def s3_trigger(function: str) -> dict:
    return {"function": "runtime_functions." + function,
            "event_source": {"arn": "arn:aws:s3:::corb-video", "events": ["s3:ObjectCreated:*"],
                             "prefix": "cameras/", "suffix": ".mkv"}}


def notified(database_url: str) -> list[dict]:
    with sessions_for(database_url)() as s:
        return [json.loads(p)["Records"][0]["s3"]["object"] for p in s.scalars(select(Invocation.payload))]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # file handling: one database is enough
def test_a_slow_writer_is_notified_once_when_it_closes(tmp_path: Path, database_url: str) -> None:
    bucket = FolderBucket(tmp_path / "bucket", name="local", secret_key="test")
    declaration = declare(tmp_path / "decl", [s3_trigger("quick")])
    watcher = BucketWatcher(bucket, declaration, sessions_for(database_url), interval=0.05, settle_s=0.2)
    path = bucket.root / KEY
    path.parent.mkdir(parents=True)
    watcher.start()
    try:
        with path.open("wb") as fh:  # 5 chunks, each pause longer than the settle time
            for i in range(5):
                fh.write(bytes([i]) * 10_000)
                fh.flush()
                time.sleep(0.6)
            assert notified(database_url) == []  # still open: not complete, however long it pauses
        deadline = time.monotonic() + 10
        while not notified(database_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a second notification would come within this
    finally:
        watcher.stop()
    [obj] = notified(database_url)
    assert obj["key"].replace("%3A", ":") == KEY and obj["size"] == 50_000


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_writer_that_keeps_its_file_open_idle_is_taken_as_done(tmp_path: Path, database_url: str) -> None:
    bucket = FolderBucket(tmp_path / "bucket", name="local", secret_key="test")
    declaration = declare(tmp_path / "decl", [s3_trigger("quick")])
    watcher = BucketWatcher(bucket, declaration, sessions_for(database_url), interval=0.05, settle_s=0.1,
                            stale_s=1.0)
    path = bucket.root / KEY
    path.parent.mkdir(parents=True)
    watcher.start()
    try:
        with path.open("wb") as fh:
            fh.write(b"x" * 1000)
            fh.flush()
            time.sleep(0.5)
            assert notified(database_url) == []
            deadline = time.monotonic() + 5
            while not notified(database_url) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(notified(database_url)) == 1
    finally:
        watcher.stop()


def test_the_folder_buckets_writes_are_atomic(tmp_path: Path) -> None:
    """A reader polling the key sees nothing, then the whole object: never a prefix of it."""
    bucket = FolderBucket(tmp_path / "bucket", name="local", secret_key="test")
    data = bytes(range(256)) * 40_000  # 10 MB
    source = tmp_path / "segment.mkv"
    source.write_bytes(data)
    import threading

    sizes: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            info = bucket.root / KEY
            if info.exists():
                sizes.add(info.stat().st_size)

    reader = threading.Thread(target=watch)
    reader.start()
    try:
        bucket.upload(source, KEY)
    finally:
        done.set()
        reader.join()
    assert sizes <= {len(data)}
    assert bucket.get(KEY) == data
    assert [p.name for p in bucket.root.rglob("*") if p.is_file()] == [Path(KEY).name]
