"""Motion gating: run the detector only when the picture changed, so a static scene costs almost nothing.

Each analysed frame is shrunk to a small blurred grayscale copy (~0.1 ms) and compared with the copy taken
when the detector last ran. Comparing with the last *detected* frame, not the previous one, means slow
changes accumulate until they trigger a fresh detection instead of creeping past the gate.
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
    max_interval_s: float = 2.0  # run the detector at least this often, motion or not


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

    def should_detect(self, frame_bgr: np.ndarray, timestamp_s: float) -> bool:
        """True if the detector must run on this frame; if so, it becomes the new reference."""
        cfg = self.config
        small = small_gray(frame_bgr, cfg.width)
        run = (
            self._reference is None
            or timestamp_s - self._reference_ts >= cfg.max_interval_s
            or changed_fraction(small, self._reference, cfg.pixel_threshold) >= cfg.min_changed_fraction
        )
        if run:
            self._reference = small
            self._reference_ts = timestamp_s
        return run
