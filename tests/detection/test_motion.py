"""Motion gating: a static scene costs one detection per interval; a busy one is always looked at."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detection.motion import MotionConfig, MotionGate, blur5, changed_fraction, small_gray
from detection.video import VideoReader

DATA = Path(__file__).resolve().parent.parent / "data"


def decisions(path: Path, gate: MotionGate, fps: float, people: bool = False) -> list[bool]:
    return [gate.should_detect(f.image, f.timestamp_s, people)
            for f in VideoReader(path, fps=fps, skip_static=False)]


def test_static_scene_runs_the_detector_on_the_first_frame_and_then_every_interval() -> None:
    # 21 frames of the empty plaza with sensor noise, 3 s; 7 fps analysed; at least one run every 1 s.
    runs = decisions(DATA / "empty-scene.mkv", MotionGate(MotionConfig(max_interval_s=1.0)), fps=7.0)
    assert len(runs) == 21
    assert [i for i, r in enumerate(runs) if r] == [0, 7, 14]


def test_static_scene_runs_the_detector_once_by_default() -> None:
    runs = decisions(DATA / "empty-scene.mkv", MotionGate(), fps=7.0)
    assert [i for i, r in enumerate(runs) if r] == [0]


def test_walking_people_trigger_the_detector_on_every_sampled_frame_once_seen() -> None:
    assert all(decisions(DATA / "vtest-clip.mkv", MotionGate(), fps=2.0, people=True))
    # Before anyone is seen, change runs it once per idle interval (1 s: every other frame at 2 fps).
    runs = decisions(DATA / "vtest-clip.mkv", MotionGate(), fps=2.0)
    assert [i for i, r in enumerate(runs) if r] == list(range(0, 15, 2))


def test_a_person_standing_still_is_rechecked_slowly() -> None:
    frame = np.full((480, 640, 3), 120, np.uint8)
    gate = MotionGate(MotionConfig(recheck_s=10.0))
    runs = [t for t in np.arange(0, 30.5, 0.5) if gate.should_detect(frame, float(t), people=True)]
    assert runs == [0.0, 10.0, 20.0, 30.0]
    assert not any(gate.should_detect(frame, 31.0 + k) for k in range(60))  # nobody: never again


def test_a_small_change_triggers_and_a_uniform_noise_does_not() -> None:
    rng = np.random.default_rng(0)
    base = np.full((480, 640, 3), 120, np.uint8)
    noisy = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    walker = base.copy()
    walker[200:260, 300:320] = 30  # a dark figure 20 x 60 px
    gate = MotionGate()
    assert gate.should_detect(base, 0.0)
    assert not gate.should_detect(noisy, 0.5)
    assert gate.should_detect(walker, 1.0)


def test_helpers() -> None:
    frame = np.zeros((576, 768, 3), np.uint8)
    small = small_gray(frame, 160)
    assert small.shape == (120, 160) and small.dtype == np.uint8
    assert changed_fraction(small, small, 20) == 0.0
    assert changed_fraction(small, small + 50, 20) == 1.0
    assert changed_fraction(small, small[:10], 20) == 1.0  # a size change (new stream) is all change


def test_blur5_is_opencvs_5x5_gaussian() -> None:
    """Exact: the binomial kernel's integer sum over 256, rounded half up, borders reflected (dcb|abcd)."""
    rng = np.random.default_rng(5)
    gray = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    k = np.array([1, 4, 6, 4, 1])
    padded = np.pad(gray.astype(np.int64), 2, mode="reflect")
    expected = np.empty(gray.shape, np.int64)
    for y in range(gray.shape[0]):
        for x in range(gray.shape[1]):
            expected[y, x] = (k @ padded[y:y + 5, x:x + 5] @ k + 128) // 256
    assert blur5(gray).dtype == np.uint8
    assert blur5(gray).tolist() == expected.tolist()
    assert blur5(np.full((3, 3), 255, np.uint8)).tolist() == [[255] * 3] * 3  # no overflow at the top
    try:
        import cv2
    except ImportError:  # OpenCV is a development tool: compared where installed
        return
    big = rng.integers(0, 256, (120, 160), dtype=np.uint8)
    assert blur5(big).tolist() == cv2.GaussianBlur(big, (5, 5), 0).tolist()
