"""One segment in, one :class:`SegmentResult` out: decode, gate, detect, track, pick and annotate a frame.

Decoding runs in a background thread (PyAV and LiteRT release the GIL) while the detector works on the
previous frame. Tracking is offline over the segment (see :mod:`detection.tracking`), so counts, unique people
and the MOT output are final only at the end. Memory stays flat: frames are not kept, except a few candidates
for the snapshot (the frames with most confident detections so far); the final choice among them is made on
the tracked counts, because the snapshot should show what the counts say.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cloud.camera_settings import Zone, contains, format_zone
from detection.annotate import MMS_MAX_BYTES, frame_rank, snapshot
from detection.detectors import Detector, load_detector
from detection.detectors.base import DEFAULT_INPUT_SIZE
from detection.motion import MotionGate
from detection.tracking import Tracker, TrackerConfig, Tracking
from detection.video import DEFAULT_ANALYSIS_FPS, Limits, VideoReader, decode_frame_at, iso_utc, prefetch

DETECTOR_SCORE_THRESHOLD = 0.1
"""The pipeline's detectors keep faint boxes: the tracker uses them to bridge a person's weak frames."""

DEFAULT_LIMITS = Limits()

Progress = Callable[[int, int], None]
"""Called after each analysed frame with (frames read so far, frames the container declares or 0)."""

_DETECTORS: dict[tuple[str | None, int | None], Detector] = {}
_DETECTORS_LOCK = threading.Lock()


def default_detector(model: str | None = None, threads: int | None = None) -> Detector:
    """The detector for ``model``, loaded once per process: a warm Lambda reuses it across invocations."""
    key = (model, threads)
    with _DETECTORS_LOCK:
        if key not in _DETECTORS:
            _DETECTORS[key] = load_detector(model, score_threshold=DETECTOR_SCORE_THRESHOLD, threads=threads)
        return _DETECTORS[key]


@dataclass(frozen=True)
class TrackSummary:
    id: int
    person: int  # tracks of one person, broken by an occlusion, share this number
    first_frame: int  # decoded-frame index
    last_frame: int
    first_time_s: float  # container time
    last_time_s: float
    detections: int
    mean_score: float


@dataclass
class SegmentResult:
    source: str
    camera: str | None
    model: str
    width: int  # of the video
    height: int
    container_fps: float  # as declared (vtest.avi says 10; it was recorded at 7)
    analysis_fps: float | None  # None: every frame
    duration_s: float  # container time covered
    start_time: datetime | None  # UTC, when known
    end_time: datetime | None
    frames_decoded: int
    frames_analysed: int
    frames_detected: int  # analysed frames the detector ran on (the others carried the last result forward)
    frame_indices: list[int]  # decoded-frame index of each analysed frame
    frame_times: list[float]  # container time of each analysed frame
    counts: list[int]  # people per analysed frame
    peak: int
    mean: float
    unique_people: int  # distinct people: confirmed tracks, re-linked across short occlusions
    tracks: list[TrackSummary]
    best_frame_index: int
    best_frame_time_s: float
    best_frame_count: int
    snapshot_jpeg: bytes
    mot: np.ndarray  # (N, 6) float32: frame (1-based over all decoded frames), x, y, w, h, score
    timings: dict[str, float]  # seconds: decode, detect, track, annotate, total
    capped: str | None = None  # why decoding stopped early, if it did
    zone: Zone | None = None  # where people count (fractions of the frame); None: everywhere
    extra: dict[str, object] = field(default_factory=dict)

    def time_of(self, timestamp_s: float) -> datetime | None:
        """UTC wall time of a container timestamp, when the segment's start is known."""
        if self.start_time is None:
            return None
        first = self.frame_times[0] if self.frame_times else 0.0
        return self.start_time + timedelta(seconds=timestamp_s - first)

    def summary(self, *, tracks: bool = True) -> dict[str, object]:
        """A JSON-ready digest: everything but the picture and the per-box MOT rows."""
        out: dict[str, object] = {
            "source": self.source,
            "camera": self.camera,
            "model": self.model,
            "width": self.width,
            "height": self.height,
            "container_fps": round(self.container_fps, 3),
            "analysis_fps": self.analysis_fps,
            "duration_s": round(self.duration_s, 3),
            "start_time": _iso(self.start_time),
            "end_time": _iso(self.end_time),
            "frames_decoded": self.frames_decoded,
            "frames_analysed": self.frames_analysed,
            "frames_detected": self.frames_detected,
            "counts": self.counts,
            "peak": self.peak,
            "mean": round(self.mean, 3),
            "unique_people": self.unique_people,
            "best_frame": {"index": self.best_frame_index, "time_s": round(self.best_frame_time_s, 3),
                           "utc": _iso(self.time_of(self.best_frame_time_s)), "count": self.best_frame_count},
            "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()},
            "capped": self.capped,
            "zone": format_zone(self.zone) or None,
            **self.extra,
        }
        if tracks:
            out["tracks"] = [asdict(t) for t in self.tracks]
        return out

    def mot_lines(self) -> list[str]:
        """MOTChallenge detection rows ``frame,-1,x,y,w,h,score,-1,-1,-1``."""
        return [f"{int(f)},-1,{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.5f},-1,-1,-1"
                for f, x, y, w, h, s in self.mot.tolist()]


def _iso(when: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, to the millisecond: what the bus and the bot parse."""
    return None if when is None else iso_utc(when)


def start_time_from_name(name: str) -> datetime | None:
    """The UTC start time in a segment's file name (``2026-11-27T10-00-00Z.mkv``, ``...T10:00:00.5+00:00``).

    Only times with a zone (``Z`` or an offset) are trusted: a camera writing local time without saying so
    would be hours off, and the caller's fallback (upload time minus duration) is never that wrong.
    """
    stem = Path(name).name
    m = re.search(r"(\d{4})-?(\d{2})-?(\d{2})[T_ ](\d{2})[:-]?(\d{2})[:-]?(\d{2})(?:[.,](\d{1,6}))?"
                  r"(Z|[+-]\d{2}(?::?\d{2})?)", stem)
    if not m:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        tz = UTC
        if zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))
        when = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((frac or "0").ljust(6, "0")), tzinfo=tz)
    except ValueError:
        return None
    return when.astimezone(UTC)


def analyse(
    path: str | Path,
    *,
    camera: str | None,
    detector: Detector | None = None,
    fps: float = DEFAULT_ANALYSIS_FPS,
    every_frame: bool = False,
    motion: bool | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    tracker_config: TrackerConfig | None = None,
    max_snapshot_bytes: int = MMS_MAX_BYTES,
    zone: Zone | None = None,
) -> SegmentResult:
    """Analyse one video segment.

    ``fps``: analysis rate (frames per second of video); ``every_frame`` analyses all frames.
    ``motion``: gate the detector on motion; by default on when sampling, off for ``every_frame`` (which is
    for accuracy). ``start_time``, or else ``end_time`` (e.g. the upload time), places the segment in UTC.
    ``name`` is how errors name the video (a bucket key rather than a temp file). ``tracker_config``
    defaults to :meth:`TrackerConfig.for_rate` at the analysis rate. ``zone``: the camera's counting zone
    (see :mod:`cloud.camera_settings`); people outside it are tracked but not counted.
    Raises :class:`detection.video.VideoError` for anything that is not a decodable video.
    """
    t_start = time.perf_counter()
    # The detector's input decides which track it is given (see VideoReader's ``sub_min``); the video is
    # opened first, so that a bad object fails before a model loads.
    sub_min = getattr(detector, "input_size", None) if detector is not None else DEFAULT_INPUT_SIZE
    reader = VideoReader(path, fps=fps, every_frame=every_frame, limits=limits, name=name,
                         sub_min=sub_min)  # fails fast
    detector = detector or default_detector()
    gate = MotionGate() if (not every_frame if motion is None else motion) else None
    if tracker_config is None:
        tracker_config = TrackerConfig.for_rate((reader.info.fps or 10.0) if every_frame else fps)
    tracker = Tracker(tracker_config)
    frame_indices: list[int] = []
    frame_times: list[float] = []
    frame_steps: list[int] = []
    candidates: list[_Candidate] = []
    detect_s = track_s = 0.0
    step = -1
    people = False
    total = reader.info.frame_count

    for frame in prefetch(reader):
        if gate is None or gate.should_detect(frame.image, frame.timestamp_s, people=people):  # first: runs
            t0 = time.perf_counter()
            dets = detector.detect(frame.image)
            t1 = time.perf_counter()
            step = tracker.update(dets)
            track_s += time.perf_counter() - t1
            detect_s += t1 - t0
            visible = tracker.visible()
            # Anyone in view, confirmed or a strong first sighting: keeps the gate watching them.
            people = len(visible) > 0 or bool(len(dets) and (dets[:, 4] >= tracker_config.high_score).any())
            if zone is not None and len(visible):  # the snapshot shows the people who count
                visible = visible[_standing_in(zone, visible, frame.image.shape[1::-1])]
            _offer(candidates, _Candidate(frame_rank(visible, 0.0), step, frame.index,
                                          frame.timestamp_s, frame.image))
        frame_indices.append(frame.index)
        frame_times.append(frame.timestamp_s)
        frame_steps.append(step)
        if progress is not None:
            progress(reader.frames_seen, total)

    assert candidates  # VideoReader raises VideoError when no frame was decodable
    t1 = time.perf_counter()
    frame_size = (candidates[0].image.shape[1], candidates[0].image.shape[0])  # analysed pixels
    tracking = tracker.finish(frame_size)
    if zone is not None:
        tracking = tracking.within(lambda boxes: _standing_in(zone, boxes, frame_size),
                                   tracker_config.count_threshold)
    track_s += time.perf_counter() - t1

    step_counts = tracking.counts()
    counts = [step_counts[s] for s in frame_steps]
    duration = reader.duration_s
    if start_time is None and end_time is not None:
        start_time = end_time - timedelta(seconds=duration)
    start_time = start_time.astimezone(UTC) if start_time is not None else None

    # Output coordinates are the video's own pixels: frames may have been downscaled for analysis.
    best = max(candidates, key=lambda c: frame_rank(tracking.people_boxes[c.step][:, :5], 0.0))
    best_step, best_index, best_ts, best_image = best.step, best.index, best.timestamp_s, best.image
    scale = reader.info.width / best_image.shape[1] if reader.info.width else 1.0
    mot = _mot_rows(tracking, frame_indices, frame_steps, (best_image.shape[1], best_image.shape[0]), scale)

    boxes = tracking.people_boxes[best_step]
    if reader.uses_substream and len(boxes):  # people: draw them on the main stream's frame (its only
        # decode); an empty scene's picture stays the sub-stream's (a fifth of the bytes, no main decode)
        t0 = time.perf_counter()
        picture = decode_frame_at(path, best_ts, limits=limits, name=name)
        reader.decode_s += time.perf_counter() - t0
        boxes = boxes.copy()
        boxes[:, [0, 2]] *= picture.shape[1] / best_image.shape[1]
        boxes[:, [1, 3]] *= picture.shape[0] / best_image.shape[0]
        best_image = picture
    t_annotate = time.perf_counter()
    first_ts = frame_times[0]
    when = start_time + timedelta(seconds=best_ts - first_ts) if start_time is not None else None
    jpeg = snapshot(best_image, boxes, camera=camera, when=when, max_bytes=max_snapshot_bytes, zone=zone)
    annotate_s = time.perf_counter() - t_annotate

    # Steps back to analysed frames: a step's result holds from its frame until the next step's.
    first_of: dict[int, int] = {}
    last_of: dict[int, int] = {}
    for pos, s in enumerate(frame_steps):
        first_of.setdefault(s, pos)
        last_of[s] = pos
    tracks = []
    for t in tracking.people:
        f_first, f_last = first_of[t.boxes[0].step], last_of[t.boxes[-1].step]
        tracks.append(TrackSummary(t.id, t.person, frame_indices[f_first], frame_indices[f_last],
                                   frame_times[f_first], frame_times[f_last], t.hits, round(t.mean_score, 4)))

    return SegmentResult(
        source=name or str(path),
        camera=camera,
        model=getattr(detector, "name", type(detector).__name__),
        width=reader.info.width,
        height=reader.info.height,
        container_fps=reader.info.fps,
        analysis_fps=None if every_frame else fps,
        duration_s=duration,
        start_time=start_time,
        end_time=start_time + timedelta(seconds=duration) if start_time is not None else None,
        frames_decoded=reader.frames_decoded,
        frames_analysed=len(frame_indices),
        frames_detected=tracking.steps,
        frame_indices=frame_indices,
        frame_times=frame_times,
        counts=counts,
        peak=max(counts),
        mean=float(np.mean(counts)),
        unique_people=tracking.unique_people,
        tracks=tracks,
        best_frame_index=best_index,
        best_frame_time_s=best_ts,
        best_frame_count=step_counts[best_step],
        snapshot_jpeg=jpeg,
        mot=mot,
        timings={"decode": reader.decode_s, "detect": detect_s, "track": track_s, "annotate": annotate_s,
                 "total": time.perf_counter() - t_start},
        capped=reader.capped,
        zone=zone,
        extra={"video": {"width": reader.info.width, "height": reader.info.height,
                         "fps": round(reader.info.fps, 3), "bitrate": reader.bitrate,
                         "codec": reader.info.codec,
                         "analysed_track": "sub" if reader.uses_substream else "main",
                         "frames_in_track": reader.frames_seen, "gops": reader.gops,
                         "gops_decoded": reader.gops_decoded}},
    )


def _standing_in(zone: Zone, boxes: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Whether each (N, >=4) box's person stands in ``zone``: the bottom centre of its box, the feet."""
    width, height = frame_size
    return np.array([contains(zone, (x1 + x2) / 2 / width, y2 / height)
                     for x1, _, x2, y2 in np.asarray(boxes, dtype=np.float64)[:, :4]], dtype=bool)


class _Candidate(NamedTuple):
    rank: tuple[int, float]
    step: int
    index: int
    timestamp_s: float
    image: np.ndarray


_CANDIDATES = 4


def _offer(candidates: list[_Candidate], candidate: _Candidate) -> None:
    """Keep the ``_CANDIDATES`` best-ranked frames (earliest wins ties); copy only the frames kept."""
    if len(candidates) < _CANDIDATES:
        candidates.append(candidate._replace(image=candidate.image.copy()))
        return
    worst = min(range(len(candidates)), key=lambda i: (candidates[i].rank, -candidates[i].index))
    if candidate.rank > candidates[worst].rank:
        candidates[worst] = candidate._replace(image=candidate.image.copy())


def _mot_rows(tracking: Tracking, frame_indices: list[int], frame_steps: list[int],
              frame_size: tuple[int, int], scale: float) -> np.ndarray:
    """Per analysed frame, its step's scored boxes (people, then the rest below the counting threshold),
    clipped to the frame and scaled from analysed to video pixels."""
    w, h = frame_size
    scored = []
    for s in range(tracking.steps):
        boxes = tracking.scored(s)
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        scored.append(boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])])
    rows = []
    for index, s in zip(frame_indices, frame_steps, strict=True):
        boxes = scored[s]
        if len(boxes):
            block = np.empty((len(boxes), 6), dtype=np.float32)
            block[:, 0] = index + 1
            block[:, 1:3] = boxes[:, :2] * scale
            block[:, 3:5] = (boxes[:, 2:4] - boxes[:, :2]) * scale
            block[:, 5] = boxes[:, 4]
            rows.append(block)
    return np.concatenate(rows) if rows else np.zeros((0, 6), dtype=np.float32)
