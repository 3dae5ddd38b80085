"""The folder bucket's S3 notifications: complete objects only, once each, S3's record shape."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote_plus

import functions_for_tests as fns
import pytest
from cloud_helpers import FN, s3_trigger
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from cloud import watcher as watcher_module
from cloud.bucket import FolderBucket
from cloud.declaration import Declaration
from cloud.models import Invocation
from cloud.runtime import LocalRuntime
from cloud.watcher import BucketWatcher


@pytest.fixture
def bucket(tmp_path: Path) -> FolderBucket:
    return FolderBucket(tmp_path / "bucket", name="local", secret_key="test")


@pytest.fixture
def declaration(declare: Callable[..., Declaration]) -> Declaration:
    return declare([s3_trigger("echo", prefix="cameras/", suffix=".mkv"),
                    s3_trigger("other", suffix=".jpg")])


@pytest.fixture
def make_watcher(bucket: FolderBucket, declaration: Declaration,
                 sessions: sessionmaker) -> Callable[..., BucketWatcher]:
    def make(**kwargs: float) -> BucketWatcher:
        options = {"interval": 0.05, "settle_s": 0.0, **kwargs}
        return BucketWatcher(bucket, declaration, sessions, **options)

    return make


def notifications(sessions: sessionmaker, function: str = "echo") -> list[dict]:
    with sessions() as s:
        stmt = select(Invocation).where(Invocation.function == FN + function).order_by(Invocation.id)
        rows = s.scalars(stmt)
        return [json.loads(r.payload) for r in rows]


def poll_until_quiet(watcher: BucketWatcher, polls: int = 3) -> int:
    return sum(watcher.poll() for _ in range(polls))


def test_a_complete_object_is_notified_once_in_s3s_shape(bucket: FolderBucket, sessions: sessionmaker,
                                                         make_watcher: Callable[..., BucketWatcher]) -> None:
    watcher = make_watcher()
    key = "cameras/lobby/2026-01-01 10:00:00+01.mkv"
    data = b"segment bytes" * 100
    bucket.put(key, data)
    assert watcher.poll() == 0 and watcher.pending() == 1  # first sight: look again
    assert watcher.poll() == 1 and watcher.pending() == 0
    assert poll_until_quiet(watcher) == 0
    [event] = notifications(sessions)
    [record] = event["Records"]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "local"
    obj = record["s3"]["object"]
    assert obj["key"] == "cameras/lobby/2026-01-01+10%3A00%3A00%2B01.mkv"  # URL-encoded as S3 does
    assert unquote_plus(obj["key"]) == key
    assert obj["size"] == len(data) and obj["eTag"] == hashlib.md5(data).hexdigest()
    int(obj["sequencer"], 16)
    with sessions() as s:
        [inv] = s.scalars(select(Invocation))
    assert (inv.trigger, inv.status) == ("s3", "pending")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # file handling: one database is enough
def test_partial_writes_are_not_notified(bucket: FolderBucket, sessions: sessionmaker,
                                         make_watcher: Callable[..., BucketWatcher]) -> None:
    watcher = make_watcher()
    path = bucket.root / "cameras" / "gate" / "seg.mkv"
    path.parent.mkdir(parents=True)
    temp = path.parent / ".incoming-abc.part"  # FolderBucket's temp file, renamed when complete
    temp.write_bytes(b"x" * 10)
    with path.open("wb") as fh:  # a writer that does not rename: size and mtime must settle
        fh.write(b"a" * 1000)
        fh.flush()
        assert watcher.poll() == 0
        fh.write(b"b" * 1000)
        fh.flush()
        assert watcher.poll() == 0  # it grew since the last look
        fh.write(b"c" * 1000)
    assert watcher.poll() == 0  # changed again
    assert watcher.poll() == 1  # unchanged across two polls: complete
    assert poll_until_quiet(watcher) == 0
    [event] = notifications(sessions)
    obj = event["Records"][0]["s3"]["object"]
    assert obj["size"] == 3000 and obj["eTag"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert all(".incoming-" not in r["Records"][0]["s3"]["object"]["key"] for r in notifications(sessions))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # file handling: one database is enough
def test_settle_time(bucket: FolderBucket, sessions: sessionmaker,
                     make_watcher: Callable[..., BucketWatcher]) -> None:
    watcher = make_watcher(settle_s=0.2)
    bucket.put("cameras/a.mkv", b"1")
    assert watcher.poll() == 0 and watcher.poll() == 0  # stable, but not for long enough yet
    time.sleep(0.25)
    assert watcher.poll() == 1


def test_a_restart_does_not_notify_again(bucket: FolderBucket, sessions: sessionmaker,
                                         make_watcher: Callable[..., BucketWatcher],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bucket.put("cameras/a.mkv", b"first")
    assert poll_until_quiet(make_watcher()) == 1
    hashed: list[Path] = []
    real_md5 = watcher_module.md5_file
    monkeypatch.setattr(watcher_module, "md5_file", lambda p: hashed.append(p) or real_md5(p))
    restarted = make_watcher()  # a new process: nothing in memory
    assert poll_until_quiet(restarted) == 0 and restarted.pending() == 0
    assert hashed == []  # known size+mtime: not even re-hashed
    assert len(notifications(sessions)) == 1


def test_a_changed_object_is_notified_again(bucket: FolderBucket, sessions: sessionmaker,
                                            make_watcher: Callable[..., BucketWatcher]) -> None:
    watcher = make_watcher()
    bucket.put("cameras/a.mkv", b"first")
    assert poll_until_quiet(watcher) == 1
    bucket.put("cameras/a.mkv", b"second version")
    assert poll_until_quiet(watcher) == 1
    time.sleep(0.01)
    bucket.put("cameras/a.mkv", b"second version")  # rewritten, same content: same eTag
    assert poll_until_quiet(watcher) == 0
    etags = [e["Records"][0]["s3"]["object"]["eTag"] for e in notifications(sessions)]
    assert etags == [hashlib.md5(b"first").hexdigest(), hashlib.md5(b"second version").hexdigest()]
    sequencers = [int(e["Records"][0]["s3"]["object"]["sequencer"], 16) for e in notifications(sessions)]
    assert sequencers == sorted(sequencers) and len(set(sequencers)) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # file handling: one database is enough
def test_prefix_and_suffix_filters(bucket: FolderBucket, sessions: sessionmaker,
                                   make_watcher: Callable[..., BucketWatcher]) -> None:
    watcher = make_watcher()
    for key in ("cameras/x.mkv", "snapshots/x.mkv", "cameras/x.mp4", "snapshots/y.jpg", "cameras/z.jpg",
                "cameras.mkv"):
        bucket.put(key, key.encode())
    assert watcher.poll() == 0 and watcher.pending() == 3  # only what some trigger wants
    assert poll_until_quiet(watcher) == 3

    def keys(function: str) -> list[str]:
        return sorted(unquote_plus(e["Records"][0]["s3"]["object"]["key"])
                      for e in notifications(sessions, function))

    assert keys("echo") == ["cameras/x.mkv"]
    assert keys("other") == ["cameras/z.jpg", "snapshots/y.jpg"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # file handling: one database is enough
def test_an_object_deleted_before_it_settles(bucket: FolderBucket, sessions: sessionmaker,
                                             make_watcher: Callable[..., BucketWatcher]) -> None:
    watcher = make_watcher()
    bucket.put("cameras/gone.mkv", b"x")
    assert watcher.poll() == 0 and watcher.pending() == 1
    bucket.delete("cameras/gone.mkv")
    assert poll_until_quiet(watcher) == 0 and watcher.pending() == 0
    assert notifications(sessions) == []


def test_the_runtime_runs_the_s3_function(bucket: FolderBucket, declaration: Declaration,
                                          sessions: sessionmaker, make_runtime: Callable[..., LocalRuntime],
                                          make_watcher: Callable[..., BucketWatcher]) -> None:
    runtime = make_runtime(declaration, pollers=[make_watcher(settle_s=0.05)])
    bucket.put("cameras/lobby/seg.mkv", b"video")
    assert runtime.run_until_idle(10)  # polls the watcher until the object settles, then runs echo
    [(_, event)] = fns.runs("echo")
    assert unquote_plus(event["Records"][0]["s3"]["object"]["key"]) == "cameras/lobby/seg.mkv"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # file handling: one database is enough
def test_the_watcher_thread(bucket: FolderBucket, sessions: sessionmaker,
                            make_watcher: Callable[..., BucketWatcher]) -> None:
    watcher = make_watcher().start()
    try:
        bucket.put("cameras/t.mkv", b"t")
        deadline = time.monotonic() + 5
        while not notifications(sessions) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert len(notifications(sessions)) == 1


def test_a_file_renamed_into_place_is_notified_at_once(bucket: FolderBucket, sessions: sessionmaker,
                                                       make_watcher: Callable[..., BucketWatcher]) -> None:
    """An atomic writer's rename wakes the watcher, which notifies on its first look: no second poll,
    no interval to wait (the camera agent's segments reach detection without delay)."""
    (bucket.root / "cameras/lobby").mkdir(parents=True)  # a camera's folder exists after its first segment
    watcher = make_watcher(interval=30.0, settle_s=30.0).start()
    try:
        time.sleep(0.2)  # the first (empty) poll is done; the next timed one is 30 s away
        started = time.monotonic()
        bucket.put("cameras/lobby/2026-11-30T10-00-00.000Z.mkv", b"segment")
        while not notifications(sessions) and time.monotonic() - started < 10:
            time.sleep(0.02)
        assert len(notifications(sessions)) == 1
        assert time.monotonic() - started < 5  # far less than the 30 s interval or settle time
    finally:
        watcher.stop()


def test_only_the_triggers_folders_are_walked(bucket: FolderBucket, sessions: sessionmaker,
                                              declare: Callable[..., Declaration],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A month of snapshots is tens of thousands of files: the poll each second must not stat them."""
    import cloud.watcher

    declaration = declare([s3_trigger("echo", prefix="cameras/", suffix=".mkv"),
                           s3_trigger("other", prefix="cameras/lobby/", suffix=".jpg")])
    watcher = BucketWatcher(bucket, declaration, sessions, interval=0.05, settle_s=0.0)
    for key in ("cameras/lobby/a.mkv", "cameras/lobby/b.jpg", "snapshots/lobby/a.jpg", "footage/x.mkv"):
        bucket.put(key, b"x")
    walked: list[str] = []
    real_walk = os.walk

    def walk(top, *args, **kwargs):
        walked.append(Path(top).relative_to(bucket.root).as_posix())
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(cloud.watcher.os, "walk", walk)
    assert poll_until_quiet(watcher) == 2
    assert walked and set(walked) == {"cameras"}  # one walk of cameras/ a poll, nothing else
    root_trigger = declare([s3_trigger("echo", suffix=".mkv")])  # no prefix: the whole bucket
    assert BucketWatcher(bucket, root_trigger, sessions)._scan_roots() == [bucket.root]
