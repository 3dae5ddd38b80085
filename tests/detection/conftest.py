"""Fixtures for the detection tests: the real clips, the shipped detector, video makers, a hang guard."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
CLIP = DATA / "vtest-clip.mkv"  # 50 frames of PETS09-S2L1 (vtest.avi frames 250-299), 6-7 people
CLIP_GT = DATA / "vtest-clip-gt.txt"
EMPTY = DATA / "empty-scene.mkv"  # the same plaza, nobody in it, 21 frames
HANG_LIMIT_S = 120  # a test that takes longer is hanging: fail it instead of blocking the suite


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    def fail(signum: int, frame: object) -> None:
        raise TimeoutError(f"test exceeded {HANG_LIMIT_S} s: a hang")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(HANG_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def detector():
    from detection.pipeline import default_detector

    return default_detector()


class CountingDetector:
    """Wraps a detector and counts its calls: the seam for "did it run again?" assertions."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.input_size = inner.input_size
        self.calls = 0

    def detect(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.inner.detect(frame)


@pytest.fixture
def counting(detector) -> CountingDetector:
    return CountingDetector(detector)


def _clip_frames(n: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP), cv2.CAP_FFMPEG)
    frames = []
    while n is None or len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def _write_video(path: Path, frames: list[np.ndarray], *, fps: float = 7.0, fourcc: str = "XVID") -> Path:
    """Encode ``frames`` (BGR, or 2-D for grayscale) into ``path``; the container follows the suffix."""
    h, w = frames[0].shape[:2]
    color = frames[0].ndim == 3
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), color)
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="session")
def clip_frames():
    """``clip_frames(n)``: the first ``n`` BGR frames of the clip."""
    return _clip_frames


@pytest.fixture(scope="session")
def write_video():
    """``write_video(path, frames, fps=7, fourcc="XVID")``: encode frames into a video file."""
    return _write_video
