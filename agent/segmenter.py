"""Where to cut a camera's stream into segments: long ones while nothing changes, short ones around a change.

Stream copy can only cut at keyframes, so the policy is asked once per keyframe. The agent decodes only
keyframes (a keyframe every 1-4 s on IP cameras: about 1% of a core) and hands a small grayscale copy of
each one here. A change after a still keyframe cuts the segment at once, so the frames where someone
appears reach the bucket within one keyframe interval, and then every keyframe starts a new segment for
``quick_s`` seconds; otherwise a segment lasts ``segment_s`` seconds. Change that goes on (people walking
about, a swaying tree) does not keep cutting: each segment costs a PUT, an invocation and its outputs, and
2-s segments all day would cost more than everything else together (the cost issue). An appearance after
a still moment is what an alert is about, and that is what is cut quickly. Pure: no I/O, no clock; the
offline splitter used by the benchmarks and the live agent share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy only where keyframes are compared: `corb --help` stays light
    import numpy as np

SMALL_SIZE = (96, 54)  # width, height of the keyframe copy compared for change (16:9; other shapes fit)


@dataclass(frozen=True)
class SegmentSettings:
    segment_s: float = 60.0  # a segment's length while nothing changes
    quick_s: float = 4.0  # after a change, every keyframe starts a new segment for this long
    pixel_threshold: int = 24  # grey-level step that counts as changed (noise after downscaling is ~1-3)
    min_changed_fraction: float = 0.004  # of the small copy's pixels: ~20 px, one person far away

    def __post_init__(self) -> None:
        if self.segment_s <= 0 or self.quick_s < 0:
            raise ValueError("segment_s must be positive and quick_s not negative")


def changed(previous: np.ndarray | None, current: np.ndarray, settings: SegmentSettings) -> bool:
    """True if two small grayscale keyframe copies differ by more than sensor noise."""
    import numpy as np

    if previous is None or previous.shape != current.shape:
        return False
    diff = np.abs(previous.astype(np.int16) - current.astype(np.int16)) > settings.pixel_threshold
    return float(np.count_nonzero(diff)) / diff.size >= settings.min_changed_fraction


class SegmentPolicy:
    """Asked at every keyframe (stream time ``t`` in seconds): start a new segment here?"""

    def __init__(self, settings: SegmentSettings = SegmentSettings()) -> None:
        self.settings = settings
        self._start: float | None = None
        self._previous: np.ndarray | None = None
        self._quick_until = float("-inf")
        self._moving = False  # the previous keyframe showed a change

    @property
    def quick(self) -> bool:
        """True while recent change keeps segments short."""
        return self._start is not None and self._start < self._quick_until

    def on_keyframe(self, t: float, small: np.ndarray | None, force: bool = False) -> bool:
        """``small``: the keyframe's small grayscale copy (None when it could not be decoded); ``force``:
        the caller must cut here (the count towards ``segment_s`` restarts)."""
        s = self.settings
        moved = small is not None and changed(self._previous, small, s)
        if small is not None:
            self._previous = small
        started = moved and not self._moving  # change after stillness: an appearance, cut at once
        self._moving = moved
        if started:
            self._quick_until = t + s.quick_s
        if self._start is None:
            cut = True
        elif t <= self._start:
            cut = False
        else:
            cut = force or started or t < self._quick_until or t - self._start >= s.segment_s - 1e-6
        if cut:
            self._start = t
        return cut
