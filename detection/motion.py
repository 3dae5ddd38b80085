"""Motion gating: run the detector only when the picture changed, so a static scene costs almost nothing.

Each analysed frame is shrunk to a small blurred grayscale copy (~0.1 ms) and compared with the copy taken
when the detector last ran. Comparing with the last *detected* frame, not the previous one, means slow
changes accumulate until they trigger a fresh detection instead of creeping past the gate.

An empty, unchanging scene never runs the detector again after the segment's first frame. While people are
in view, an unchanging picture is re-checked every ``recheck_s`` (someone standing still stays counted and
is confirmed, not forgotten); a change with nobody in view (a swaying tree) runs the detector at most once
per ``idle_interval_s``, which still finds a person walking in within that time.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MotionConfig:
    width: int = 160  # small copy's width: enough for a person 10 px wide at 768 px
    pixel_threshold: int = 20  # grey-level change that counts as motion (sensor noise is ~2-5)
    min_changed_fraction: float = 0.001  # of the small copy's pixels: ~25 px, a walker far away
    recheck_s: float = 10.0  # with people in view, re-check a still picture this often
    idle_interval_s: float = 1.0  # with nobody in view, run on change at most this often
    max_interval_s: float | None = None  # run at least this often, whatever happens (None: never forced)


def small_gray(frame_bgr: np.ndarray, width: int = MotionConfig.width) -> np.ndarray:
    """A small, blurred grayscale copy: blur removes sensor noise and compression shimmer."""
    h, w = frame_bgr.shape[:2]
    size = (min(width, w), max(1, round(h * min(width, w) / w)))
    gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
    return cv2.GaussianBlur(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), (5, 5), 0)


def changed_fraction(a: np.ndarray, b: np.ndarray, pixel_threshold: int) -> float:
    """Fraction of pixels whose grey level differs by more than ``pixel_threshold``."""
    if a.shape != b.shape:
        return 1.0
    return float(np.count_nonzero(cv2.absdiff(a, b) > pixel_threshold)) / a.size


class MotionGate:
    """Decides per analysed frame whether the detector must run. The first frame always runs."""

    def __init__(self, config: MotionConfig = MotionConfig()) -> None:
        self.config = config
        self._reference: np.ndarray | None = None
        self._reference_ts = 0.0

    def should_detect(self, frame_bgr: np.ndarray, timestamp_s: float, people: bool = False) -> bool:
        """True if the detector must run on this frame; if so, it becomes the new reference.
        ``people``: whether anyone is in view after the last detection."""
        cfg = self.config
        small = small_gray(frame_bgr, cfg.width)
        since = timestamp_s - self._reference_ts
        if self._reference is None or (cfg.max_interval_s is not None and since >= cfg.max_interval_s):
            run = True
        elif changed_fraction(small, self._reference, cfg.pixel_threshold) >= cfg.min_changed_fraction:
            run = people or since >= cfg.idle_interval_s - 1e-3
        else:
            run = people and since >= cfg.recheck_s - 1e-3
        if run:
            self._reference = small
            self._reference_ts = timestamp_s
        return run
