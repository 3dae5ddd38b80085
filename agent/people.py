"""The agent's person check: does a decoded keyframe show anyone?

The segment policy (``agent.segmenter``) asks it at keyframes that changed. Motion alone cannot tell a
swaying tree or a lighting change from someone walking in, and each segment sent for analysis costs its
PUTs, invocations and CPU in the cloud (docs/deploy.md's cost table); one detector call per changed keyframe
here (about 20 ms on one core at the default model's 448 x 256, every 2 s at most) keeps those out.

It runs the detection function's own model on the whole keyframe, scaled down by FFmpeg to the model's
input. It errs towards "someone": a box at ``MIN_SCORE``, below the tracker's strong-evidence score (0.5) that
detection needs before it counts anyone, is enough, and a keyframe it cannot read counts as someone. Detection
in the cloud stays the judge of who is there; the check only keeps segments with nobody in them away from it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import av

    from detection.detectors.base import Detector

log = logging.getLogger("corb.agent")

MIN_SCORE = 0.4
"""A box this sure is someone. The empty scenes and lighting changes measured score below 0.3 (the shipped
empty scene's best box: 0.29; a swaying tree's: 0.22); people in view score 0.7 and more."""


class PersonCheck:
    """One detector for all of an agent's cameras (their threads take turns: one call is ~20 ms)."""

    def __init__(self, detector: Detector, min_score: float = MIN_SCORE) -> None:
        self.detector, self.min_score = detector, min_score
        self._lock = threading.Lock()
        self.calls = 0
        self.cpu_s = 0.0  # thread CPU time spent in calls: what the check costs the agent's machine

    def __call__(self, frame: av.VideoFrame | None) -> bool:
        if frame is None:
            return True
        w, h = self.detector.input_size
        scale = min(w / frame.width, h / frame.height, 1.0)
        with self._lock:
            c0 = time.thread_time()
            image = frame.reformat(width=max(2, round(frame.width * scale / 2) * 2),
                                   height=max(2, round(frame.height * scale / 2) * 2),
                                   format="bgr24", interpolation="AREA").to_ndarray()
            boxes = self.detector.detect(image)
            self.cpu_s += time.thread_time() - c0
            self.calls += 1
        return bool(len(boxes)) and float(boxes[:, 4].max()) >= self.min_score


def load_person_check() -> PersonCheck | None:
    """The check with the shipped model on one thread, or None (change alone decides) where the inference
    runtime or the model cannot load: the agent records either way, and says which."""
    try:
        from cloud.adapters import open_detector

        detector = open_detector(None, score_threshold=0.1, threads=1)
    except Exception as exc:  # noqa: BLE001 - any load failure leaves the agent recording on change alone
        log.warning("person check unavailable (%s): segments with change are all sent for analysis", exc)
        return None
    log.info("person check: %s on changed keyframes (a box at %.1f or more is someone)", detector.name,
             MIN_SCORE)
    return PersonCheck(detector)
