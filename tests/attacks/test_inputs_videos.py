"""Broken videos through the detection function's public entry (``detection.handler.handle``, the
Lambda handler, on the configured folder bucket with the shipped detector): each is a clear error that
names the object and leaves no snapshot or result behind, or a complete analysis; never a partial one.
Only behaviour is asserted: the decoder behind it may change."""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cloud.bucket import FolderBucket
from cloud.events import s3_event, s3_record
from detection import handler
from detection.video import VideoError

CLIP = Path(__file__).resolve().parents[1] / "data" / "vtest-clip.mkv"


def eight_k(path: Path) -> bytes:
    """One second of black 7680x4320 H.264: small on disk, 33 MP a frame when decoded."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=black:s=7680x4320:r=2",
                    "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", str(path)], check=True)
    return path.read_bytes()


def zero_fps(path: Path) -> bytes:
    """A real MJPEG AVI whose headers declare a rate of 0 frames a second."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 7, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    strh, avih = data.find(b"strh"), data.find(b"avih")
    struct.pack_into("<I", data, strh + 8 + 24, 0)  # dwRate
    struct.pack_into("<I", data, avih + 8, 0)  # dwMicroSecPerFrame
    return bytes(data)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("videos")
    clip = CLIP.read_bytes()
    return {"empty.mkv": b"", "random.mkv": os.urandom(300_000), "truncated.mkv": clip[: len(clip) * 6 // 10],
            "header-only.mkv": clip[:4000], "text.mkv": b"this is not a video\n" * 500,
            "8k.mkv": eight_k(tmp / "8k.mkv"), "zero-fps.avi": zero_fps(tmp / "zero.avi")}


@pytest.fixture
def bucket(corb_env: dict[str, str]) -> Iterator[FolderBucket]:
    """The bucket ``handle`` opens from the environment, as the deployed function does."""
    handler._bucket = None
    try:
        yield handler._default_bucket()  # type: ignore[misc]
    finally:
        handler._bucket = None


def invoke(bucket: FolderBucket, key: str, data: bytes | None) -> Any:
    info = bucket.put(key, data) if data is not None else None
    record = s3_record(bucket.name, key, size=info.size if info else 0, etag=info.etag if info else "x" * 32,
                       sequencer="01")
    return handler.handle(s3_event(record))


def outputs(bucket: FolderBucket) -> list[str]:
    return sorted(o.key for o in bucket.list() if not o.key.startswith("cameras/"))


@pytest.mark.parametrize("name", ["empty.mkv", "random.mkv", "truncated.mkv", "header-only.mkv", "text.mkv",
                                  "8k.mkv"])
def test_a_broken_video_is_a_clear_error_and_leaves_nothing(bucket, videos, name: str) -> None:
    key = f"cameras/lobby/{name}"
    with pytest.raises(VideoError) as error:
        invoke(bucket, key, videos[name])
    assert key in str(error.value)  # names the object, so the dead letter says which
    assert outputs(bucket) == []  # no snapshot, no result: nothing half-done


def test_a_zero_fps_header_is_all_or_nothing(bucket, videos) -> None:
    key = "cameras/lobby/zero-fps.avi"
    try:
        payload = invoke(bucket, key, videos["zero-fps.avi"])
    except VideoError as error:
        assert key in str(error) and outputs(bucket) == []
        return
    assert payload["kind"] == "segment_analysed" and payload["frames_decoded"] == 10
    assert outputs(bucket) == [payload["snapshot_key"]]


@pytest.mark.parametrize("key", [
    "cameras/lobby/../../../etc/passwd.mkv", "cameras/../config/cameras/lobby.json", "cameras/lobby/",
    "cameras//x.mkv", "cameras/lobby/./x.mkv", "snapshots/lobby/x.jpg", "cameras/lobby\\..\\x.mkv",
    "/cameras/lobby/x.mkv",
])
def test_keys_outside_the_camera_folders_are_skipped_with_a_reason(bucket, key: str) -> None:
    payload = invoke(bucket, key, None)  # the record alone: no such object could be stored
    assert payload["kind"] == "segment_skipped"
    assert all(s["reason"] for s in payload["skipped"])
    assert outputs(bucket) == []
    assert not (bucket.root.parent / "etc").exists()


@pytest.mark.parametrize("key", [
    "cameras/lobby/a+b c%2F.mkv", "cameras/lobby/\u202egpj.mkv", "cameras/lobby/" + "x" * 200 + ".mkv",
    "cameras/lobby/2026/11/30/10-00-00Z.MKV",
])
def test_odd_but_valid_keys_are_analysed_once_in_full(bucket, videos, key: str) -> None:
    payload = invoke(bucket, key, CLIP.read_bytes())
    assert payload["kind"] == "segment_analysed" and payload["segment_key"] == key
    assert payload["video"]["frames_in_track"] == 50  # every frame of the clip was read
    # People were seen: the segment is moved to footage (CORB_FOOTAGE_DAYS), under the same name.
    assert outputs(bucket) == sorted([payload["footage_key"], payload["snapshot_key"]])
    for out in outputs(bucket):
        assert bucket.root in bucket.path_for(out).parents
