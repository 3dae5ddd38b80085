"""Where to cut a camera's stream into segments: long ones while nothing changes, short ones around a change.

Stream copy can only cut at keyframes, so the policy is asked once per keyframe. The agent decodes only
keyframes (a keyframe every 1-4 s on IP cameras: about 1% of a core) and hands a small grayscale copy of
each one here. A change after ``settle_s`` of stillness cuts the segment at once, so the frames where someone
appears reach the bucket within one keyframe interval, and then every keyframe starts a new segment for
``quick_s`` seconds; otherwise a segment lasts ``segment_s`` seconds. Change that goes on (people walking
about, a swaying tree) does not keep cutting: each segment costs a PUT, an invocation and its outputs, and
2-s segments all day would cost more than everything else together (the cost issue). An appearance after
a still moment is what an alert is about, and that is what is cut quickly.

With the agent's person check (``agent.people``: the detection model on changed keyframes), "someone" is
what decides instead of "something": a swaying tree or a lighting change neither cuts nor is sent for
analysis, a person seen after ``settle_s`` without anyone is an appearance, and a segment with nobody at
any of its keyframes goes to ``quiet/`` unanalysed like a still one. Pure: no I/O, no clock; the offline
splitter used by the benchmarks and the live agent share it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy only where keyframes are compared: `corb --help` stays light
    import numpy as np

# Two tests on one small copy. Stillness is the detection function's motion test (``detection.motion``:
# ``small_gray`` at ``MotionConfig.width``, its thresholds; a test holds them equal), so a segment the
# agent leaves unanalysed is one whose GOPs detection would skip too. An appearance, which cuts, is a
# coarser test (2 x 2 blocks of that copy, a bigger step): a camera's burnt-in clock or a flickering lamp
# must not look like change at every keyframe, or no appearance would ever be cut quickly.
SMALL_WIDTH = 160
SMALL_SIZE = (SMALL_WIDTH, 90)  # width, height of a 16:9 keyframe's copy (other shapes keep theirs)


def small_copy(gray: np.ndarray) -> np.ndarray:
    """A keyframe's grey levels (any size) as the policy compares them: small and blurred."""
    from detection.motion import small_gray

    return small_gray(gray, SMALL_WIDTH)


@dataclass(frozen=True)
class SegmentSettings:
    segment_s: float = 60.0  # a segment's length while nothing changes
    quick_s: float = 4.0  # after a change, every keyframe starts a new segment for this long
    pixel_threshold: int = 20  # grey-level step that counts as changed (sensor noise is ~2-5)
    min_changed_fraction: float = 0.001  # of the small copy's pixels: ~14 px, a walker far away
    appear_pixel_threshold: int = 24  # the same for an appearance, on 2 x 2 blocks of the copy
    appear_min_fraction: float = 0.004  # of the blocks: ~14 of 80 x 45, someone a fifth of the frame high
    recheck_s: float = 300.0  # a still scene is analysed once in this long (0: every segment is analysed)
    quiet_segment_s: float = 300.0  # a segment bound for quiet/ (still, or nobody) runs up to this long:
    # one object, not five; it stops short of the recheck; someone appearing splits it (closed_quiet_until)
    settle_s: float = 4.0  # a change is an appearance after more than this long without one (a tree that
    # pauses for a keyframe is not someone new walking in: each false start costs two analysed segments)

    def __post_init__(self) -> None:
        if self.segment_s <= 0 or min(self.quick_s, self.recheck_s, self.settle_s, self.quiet_segment_s) < 0:
            raise ValueError("segment_s must be positive, quick_s, recheck_s, settle_s and quiet_segment_s "
                             "not negative")


def changed(previous: np.ndarray | None, current: np.ndarray, settings: SegmentSettings) -> bool:
    """True if two small grayscale keyframe copies differ by more than sensor noise."""
    from detection.motion import changed_fraction

    if previous is None or previous.shape != current.shape:
        return False
    return changed_fraction(previous, current, settings.pixel_threshold) >= settings.min_changed_fraction


def appeared(previous: np.ndarray | None, current: np.ndarray, settings: SegmentSettings) -> bool:
    """True if two small copies differ as someone walking in does: over 2 x 2 blocks, by a bigger step."""
    import numpy as np

    if previous is None or previous.shape != current.shape:
        return False
    h, w = (current.shape[0] // 2) * 2, (current.shape[1] // 2) * 2

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    step = np.abs(blocks(previous) - blocks(current)) > settings.appear_pixel_threshold
    return float(np.count_nonzero(step)) / max(step.size, 1) >= settings.appear_min_fraction


class SegmentPolicy:
    """Asked at every keyframe (stream time ``t`` in seconds): start a new segment here?"""

    def __init__(self, settings: SegmentSettings = SegmentSettings()) -> None:
        self.settings = settings
        self._start: float | None = None
        self._previous: np.ndarray | None = None
        self._quick_until = float("-inf")
        self._moving = False  # the previous keyframe showed a change
        self._moved_at = float("-inf")  # the last keyframe that showed one
        self._still = False  # every keyframe of the current segment so far matched the one before
        self._seen: bool | None = None  # the person check's word on the latest keyframe (None: no check)
        self._seen_at = float("-inf")  # the last keyframe where it saw someone
        self._anyone = True  # someone was seen at a keyframe of the current segment (or it is unknown)
        self._analysed_at = float("-inf")  # when the last segment sent for analysis ended
        self._quiet_through: float | None = None  # the current segment up to this keyframe could go to quiet/
        self.quiet = False  # the segment being recorded would go to quiet/ if it ended at the last keyframe
        self.closed_quiet = False  # the segment the last cut ended may skip analysis: it goes to quiet/
        # ... or, when it did not, the keyframe up to which it could have: its part before goes to quiet/
        # and only the rest is analysed (someone appeared at the end of a long quiet stretch)
        self.closed_quiet_until: float | None = None

    @property
    def quick(self) -> bool:
        """True while recent change keeps segments short."""
        return self._start is not None and self._start < self._quick_until

    def on_keyframe(self, t: float, small: np.ndarray | None, force: bool = False,
                    people: Callable[[], bool] | None = None) -> bool:
        """``small``: the keyframe's small grayscale copy (None when it could not be decoded); ``force``:
        the caller must cut here (the count towards ``segment_s`` restarts); ``people``: the agent's person
        check on this keyframe (``agent.people``), asked only when the keyframe changed (an unchanged one
        shows whom the last one showed). Without it, change alone decides, as detection's motion test
        would."""
        s = self.settings
        compared = small is not None and self._previous is not None and self._previous.shape == small.shape
        unchanged = compared and not changed(self._previous, small, s)
        moved = compared and appeared(self._previous, small, s)
        if small is not None:
            self._previous = small
        if people is not None and (self._seen is None or not unchanged):
            self._seen = bool(people())
        in_quick = t < self._quick_until  # a segment ending here was cut short for an appearance
        if self._seen is None:  # change after stillness: an appearance, cut at once
            started = moved and not self._moving and t - self._moved_at > s.settle_s
        else:  # someone seen after settle_s without anyone: an appearance (a swaying tree is none)
            started = self._seen and t - self._seen_at > s.settle_s
        self._moving = moved
        if moved:
            self._moved_at = t
        if self._seen:
            self._seen_at = t
        if started:
            self._quick_until = t + s.quick_s
        still = self._still and unchanged  # this keyframe ends the current segment's frames
        # Nobody at any keyframe, this one included (someone seen here may have walked in during the last
        # GOP; someone seen at the first may have left): nothing for detection to count.
        empty = self._seen is False and not self._anyone
        first = self._start is None
        quiet = (not first and (still or empty) and not in_quick and s.recheck_s > 0
                 and t - self._analysed_at < s.recheck_s)  # [start, t) would go to quiet/
        if first:
            cut = True
        elif t <= self._start:
            cut = False
        else:
            length = t - self._start
            # A quiet segment runs on, up to quiet_segment_s, but ends a segment_s before the recheck is due
            # so that the recheck analyses a normal segment, not a long one.
            extend = (quiet and length < max(s.quiet_segment_s, s.segment_s) - 1e-6
                      and t - self._analysed_at < s.recheck_s - s.segment_s)
            cut = force or started or t < self._quick_until or (length >= s.segment_s - 1e-6 and not extend)
        if cut:
            self.closed_quiet = quiet
            # Cut off a long quiet part (half a segment or more: each object costs a PUT) from a segment
            # that is analysed: only its end, from its last quiet keyframe, need be.
            through, begun = self._quiet_through, self._start
            self.closed_quiet_until = (through if not quiet and through is not None and begun is not None
                                       and through - begun >= s.segment_s / 2 - 1e-6 else None)
            if not first and not quiet:
                self._analysed_at = t
            self._start = t
            self._still = not first  # the first segment of a connection is always analysed
            self._anyone = self._seen is not False
            self._quiet_through = None
            self.quiet = False
        else:
            self._still = still
            self._anyone = self._anyone or self._seen is not False
            if quiet:
                self._quiet_through = t
            self.quiet = quiet
        return cut
