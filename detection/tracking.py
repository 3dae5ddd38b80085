"""SORT-style tracking: detections per frame in, people with stable identities and smoothed boxes out.

Why track at all: a detector alone flickers (a person missed in one frame, a shadow detected in another), so
per-frame counts jitter and "unique people" is unknowable. The tracker here is:

- **SORT** at heart: a constant-velocity Kalman filter per track on (cx, cy, w, h), association by IoU.
  Association is greedy by descending IoU: on PETS09-S2L1 it scores the same as the Hungarian method
  (``scipy.optimize.linear_sum_assignment``: AP50 and recall within 0.001, count error within 0.015 either
  way), without a 100 MB SciPy in the Lambda package.
- **ByteTrack**'s second pass: detections below the detector's usual threshold may extend an existing track
  (a half-occluded walker) but never start one, which recovers misses without adding false people; and its
  start rule: an unmatched detection starts a track only 0.1 above that threshold (at dense rates), so a
  middling box next to a person does not become a second person that steals their detections.
- **Offline smoothing**, because a segment is analysed as a whole: once a track is confirmed, its first,
  tentative boxes count too; gaps of up to ``max_gap`` steps between two observations are filled by
  interpolation (better than the Kalman prediction: both ends are known); nothing is invented after a track's
  last observation, so people leaving the scene are not counted for another second.
- **Scenery is not a person**: a track must be confident on average, or move, to count; a faint detection
  that never moves (a cone, a sign post) is the commonest false person on a fixed camera.
- **Re-linking**: a person hidden longer than ``max_age`` (behind a lamp post) gets a new track; if it starts
  where the old one was heading, within ``relink_gap`` steps, both count as one of the segment's people. The
  hidden stretch is filled in only if the person stayed in view: someone who walked out of the frame and
  came back was not in the picture meanwhile.
- **Counting zone** (:meth:`Tracking.within`): everyone is tracked, so identities survive a walk into the
  zone, but only boxes inside it are people to count.
- **Score recalibration**: a box's output score blends the detector's score with its track's confidence, so
  a weak box on a long, consistent track outranks a one-frame blip. Boxes of confirmed tracks score
  ``>= count_threshold``; others stay below it (kept for precision/recall curves, never counted).

Pure: numpy only, no I/O. A "step" is one detector run (the caller maps steps to frames).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class TrackerConfig:
    iou_threshold: float = 0.3  # least IoU between a prediction and a detection to associate them
    low_iou_threshold: float = 0.4  # the same for the second pass with low-score detections
    match_buffer: float = 0.0  # boxes grow by this fraction of their size on each side before matching
    high_score: float = 0.5  # detections at or above this are strong evidence; below it they may only extend
    new_track_score: float = 0.6  # an unmatched detection at or above this starts a track (ByteTrack)
    min_hits: int = 3  # observations before a track is a person (a 1-2 frame blip never is)
    max_age: int = 7  # steps a track survives unobserved (occlusions) before it ends
    max_gap: int = 3  # longest run of unobserved steps filled by interpolation in the output
    sure_score: float = 0.65  # a track whose mean score is below this must move to count as a person
    min_travel: float = 0.5  # ... by this many box heights
    relink_gap: int = 20  # steps across which a person's broken track may be joined to a new one
    full_hits: int = 10  # observations at which a track's confidence saturates
    count_threshold: float = 0.5  # output scores of confirmed tracks' boxes are >= this; others below


    @classmethod
    def for_rate(cls, steps_per_s: float, **overrides: float) -> TrackerConfig:
        """Settings for a detector run ``steps_per_s`` times a second of video.

        Ages and gaps are kept in seconds (an occlusion lasts as long at 2 fps as at 10); between sparse
        steps people move further, so boxes are buffered before matching and two sightings confirm.
        """
        dt = 1.0 / steps_per_s if steps_per_s > 0 else 1.0
        values: dict[str, float] = {
            "max_age": max(1, round(1.0 / dt)),  # 1 s
            "max_gap": max(1, round(0.4 / dt)),  # 0.4 s
            "min_hits": 3 if dt < 0.25 else 2,
            # ByteTrack's rule (a track starts 0.1 above the strong threshold) is made for dense video; two
            # steps apart by seconds are rare evidence, and a stricter start would only delay counting.
            "new_track_score": 0.6 if dt < 0.25 else 0.5,
            "match_buffer": min(1.0, max(0.0, 2 * (dt - 0.15))),
            "relink_gap": max(1, round(2.0 / dt)),  # 2 s
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TrackBox:
    step: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float  # recalibrated: >= count_threshold for confirmed tracks
    observed: bool  # False for a gap filled by interpolation


@dataclass(frozen=True)
class Track:
    id: int  # 1-based; confirmed tracks first, in order of appearance
    confirmed: bool
    hits: int
    mean_score: float  # of the detector's scores on its observations
    boxes: tuple[TrackBox, ...]
    person: int = 0  # people only: tracks of one person broken by an occlusion share this number (1-based)

    @property
    def first_step(self) -> int:
        return self.boxes[0].step

    @property
    def last_step(self) -> int:
        return self.boxes[-1].step


# -- Kalman filter on (cx, cy, w, h) with constant velocity; noise proportional to the box size -------------
_STD_POS = 1.0 / 20
_STD_VEL = 1.0 / 160
_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


def _xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]], dtype=np.float64)


def _cxcywh_to_xyxy(z: np.ndarray) -> np.ndarray:
    w, h = max(z[2], 1.0), max(z[3], 1.0)
    return np.array([z[0] - w / 2, z[1] - h / 2, z[0] + w / 2, z[1] + h / 2], dtype=np.float64)


def _size_std(z: np.ndarray, k: float) -> np.ndarray:
    w, h = max(z[2], 1.0), max(z[3], 1.0)
    return k * np.array([w, h, w, h])


@dataclass
class _Live:
    """A track being built: Kalman state plus its observations so far."""

    key: int
    mean: np.ndarray
    cov: np.ndarray
    hits: int = 1  # strong observations (detections >= high_score)
    misses: int = 0  # steps since the last strong observation
    observations: list[_Obs] = field(default_factory=list)

    @classmethod
    def start(cls, key: int, step: int, index: int, det: np.ndarray) -> _Live:
        z = _xyxy_to_cxcywh(det[:4])
        std = np.concatenate([_size_std(z, 2 * _STD_POS), _size_std(z, 10 * _STD_VEL)])
        track = cls(key, np.concatenate([z, np.zeros(4)]), np.diag(std**2))
        track.observations.append(_Obs(step, index, det[:4].astype(np.float64), float(det[4]), True))
        return track

    def predict(self) -> np.ndarray:
        z = self.mean[:4]
        q = np.diag(np.concatenate([_size_std(z, _STD_POS), _size_std(z, _STD_VEL)]) ** 2)
        self.mean = _F @ self.mean
        self.mean[2:4] = np.maximum(self.mean[2:4], 1.0)
        self.cov = _F @ self.cov @ _F.T + q
        return _cxcywh_to_xyxy(self.mean[:4])

    def correct(self, step: int, index: int, det: np.ndarray, strong: bool) -> None:
        z = _xyxy_to_cxcywh(det[:4])
        r = np.diag(_size_std(self.mean[:4], _STD_POS) ** 2)
        s = _H @ self.cov @ _H.T + r
        gain = np.linalg.solve(s, _H @ self.cov).T
        self.mean = self.mean + gain @ (z - _H @ self.mean)
        self.cov = (np.eye(8) - gain @ _H) @ self.cov
        if strong:
            self.hits += 1
            self.misses = 0
        else:
            # A weak match steers the filter but does not keep the track alive: a walker passing a cone must
            # not leave a track that lives on the cone's faint detections for ever.
            self.misses += 1
        self.observations.append(_Obs(step, index, det[:4].astype(np.float64), float(det[4]), strong))


class _Obs(NamedTuple):
    step: int
    index: int  # row of the step's detections
    box: np.ndarray  # x1, y1, x2, y2
    score: float
    strong: bool


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every (N, >=4) x1, y1, x2, y2 box in ``a`` against every box in ``b``: an (N, M) array."""
    a = np.asarray(a, dtype=np.float64)[:, :4]
    b = np.asarray(b, dtype=np.float64)[:, :4]
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _buffered(boxes: np.ndarray, b: float) -> np.ndarray:
    """Boxes grown by ``b`` times their width/height on each side (C-BIoU): overlap survives larger steps."""
    if b == 0:
        return boxes
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes + b * np.hstack([-w, -h, w, h])


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, col) by descending IoU, each row and column at most once, IoU >= ``threshold``."""
    if iou.size == 0:
        return []
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


@dataclass(frozen=True)
class Tracking:
    """What a segment's tracking produced, with every box also indexed by step."""

    steps: int
    tracks: list[Track]  # people first
    people_boxes: list[np.ndarray]  # per step, float32 (N, 6) x1, y1, x2, y2, score, track id
    other_boxes: list[np.ndarray]  # per step, float32 (N, 5): unconfirmed tracks' and unused detections

    @property
    def people(self) -> list[Track]:
        """The confirmed tracks (a person may own several, see ``Track.person``)."""
        return [t for t in self.tracks if t.confirmed]

    @property
    def unique_people(self) -> int:
        return len({t.person for t in self.people})

    def counts(self) -> list[int]:
        """People per step."""
        return [len(b) for b in self.people_boxes]

    def scored(self, step: int) -> np.ndarray:
        """Every box of the step as float32 (N, 5), people's first; only theirs score >= count_threshold."""
        return np.concatenate([self.people_boxes[step][:, :5], self.other_boxes[step]])

    def within(self, inside: Callable[[np.ndarray], np.ndarray], count_threshold: float) -> Tracking:
        """Only people where ``inside`` says so ((N, 4) boxes in, (N,) bools out) count: their other boxes
        join the uncounted ones, scored below ``count_threshold``, and a track never inside is no person."""
        people_boxes, other_boxes, seen = [], [], set()
        for people, others in zip(self.people_boxes, self.other_boxes, strict=True):
            keep = np.asarray(inside(people[:, :4]), dtype=bool) if len(people) else np.zeros(0, bool)
            seen.update(int(i) for i in people[keep, 5])
            out = people[~keep, :5].copy()
            out[:, 4] *= count_threshold
            people_boxes.append(people[keep])
            other_boxes.append(np.concatenate([out, others]))
        tracks = [t if not t.confirmed or t.id in seen else replace(t, confirmed=False, person=0)
                  for t in self.tracks]
        tracks = [t for t in tracks if t.confirmed] + [t for t in tracks if not t.confirmed]
        return Tracking(self.steps, tracks, people_boxes, other_boxes)


class Tracker:
    """Feed it one detector result per step with :meth:`update`; :meth:`finish` returns the tracking."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self._live: list[_Live] = []
        self._ended: list[_Live] = []
        self._detections: list[np.ndarray] = []
        self._next_key = 0

    @property
    def steps(self) -> int:
        return len(self._detections)

    def update(self, detections: np.ndarray) -> int:
        """Advance one step with (N, 5) x1, y1, x2, y2, score detections; returns the step's number."""
        cfg = self.config
        step = self.steps
        dets = np.asarray(detections, dtype=np.float32).reshape(-1, 5)
        dets = dets[(dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])]
        self._detections.append(dets)
        predicted = _buffered(np.array([t.predict() for t in self._live]).reshape(-1, 4), cfg.match_buffer)
        candidates = _buffered(dets[:, :4], cfg.match_buffer)

        high = np.flatnonzero(dets[:, 4] >= cfg.high_score)
        low = np.flatnonzero(dets[:, 4] < cfg.high_score)
        matched: set[int] = set()
        unmatched_high = set(range(len(high)))
        for r, c in greedy_match(iou_matrix(predicted, candidates[high]), cfg.iou_threshold):
            self._live[r].correct(step, int(high[c]), dets[high[c]], True)
            matched.add(r)
            unmatched_high.discard(c)
        # Low-score detections only extend confirmed tracks: evidence of a known person, never a new one.
        rest = [i for i, t in enumerate(self._live) if i not in matched and t.hits >= cfg.min_hits]
        if rest and len(low):
            for r, c in greedy_match(iou_matrix(predicted[rest], candidates[low]), cfg.low_iou_threshold):
                self._live[rest[r]].correct(step, int(low[c]), dets[low[c]], False)
                matched.add(rest[r])

        survivors = []
        for i, track in enumerate(self._live):
            if i not in matched:
                track.misses += 1
            tentative = track.hits < cfg.min_hits
            if track.misses > (0 if tentative else cfg.max_age):
                self._ended.append(track)
            else:
                survivors.append(track)
        for c in sorted(unmatched_high):
            if dets[high[c], 4] >= cfg.new_track_score:
                survivors.append(_Live.start(self._next_key, step, int(high[c]), dets[high[c]]))
                self._next_key += 1
        self._live = survivors
        return step

    def visible(self) -> np.ndarray:
        """Online view, after :meth:`update`: (N, 5) boxes and scores of the confirmed tracks observed in this
        step (what the frame shows for sure; :meth:`finish` may add tracks confirmed later)."""
        rows = [(*t.observations[-1].box, t.observations[-1].score) for t in self._live
                if t.hits >= self.config.min_hits and t.observations[-1].step == self.steps - 1]
        return np.array(rows, dtype=np.float32).reshape(-1, 5)

    def finish(self, frame_size: tuple[int, int] | None = None) -> Tracking:
        """All tracks, smoothed and rescored (see the module docstring); people first, by first appearance.

        ``frame_size`` (width, height) tells a person hidden in the picture from one who left it."""
        cfg = self.config
        built = sorted(self._ended + self._live, key=lambda t: (t.observations[0].step, t.key))
        is_person = {t.key: _is_person(t, cfg) for t in built}
        ordered = [t for t in built if is_person[t.key]] + [t for t in built if not is_person[t.key]]
        tracks = [_finish_track(n, t, is_person[t.key], cfg) for n, t in enumerate(ordered, start=1)]
        tracks = _relink(tracks, cfg, frame_size)
        people: list[list[tuple[float, ...]]] = [[] for _ in range(self.steps)]
        others: list[list[tuple[float, ...]]] = [[] for _ in range(self.steps)]
        for t in tracks:
            for b in t.boxes:
                (people[b.step].append((*b.box, b.score, float(t.id))) if t.confirmed
                 else others[b.step].append((*b.box, b.score)))
        used = [np.zeros(len(d), dtype=bool) for d in self._detections]
        for live in ordered:
            for o in live.observations:
                used[o.step][o.index] = True
        other_boxes = []
        for step, (dets, u) in enumerate(zip(self._detections, used, strict=True)):
            unused = dets[~u].copy()
            unused[:, 4] *= cfg.count_threshold  # in no track: below every tracked box, never counted
            other_boxes.append(np.concatenate([np.array(others[step], np.float32).reshape(-1, 5), unused]))
        people_boxes = [np.array(r, np.float32).reshape(-1, 6) for r in people]
        return Tracking(self.steps, tracks, people_boxes, other_boxes)


def _relink(tracks: list[Track], cfg: TrackerConfig, frame_size: tuple[int, int] | None) -> list[Track]:
    """Number the people: a track that starts where, and soon after, another one ended (a walker behind a
    lamp post, past ``max_age``) continues that person instead of counting a new one. If the person stayed
    in the picture, the hidden stretch is filled by interpolation, scored below a track's own filled gaps."""
    people = sorted((t for t in tracks if t.confirmed), key=lambda t: t.first_step)
    person_of: dict[int, int] = {}
    linked: set[int] = set()  # tracks already continued by a later one
    hidden: dict[int, tuple[TrackBox, ...]] = {}  # the boxes that bridge into a continuing track
    next_person = 1
    for b in people:
        start = np.asarray(b.boxes[0].box)
        best: tuple[float, Track] | None = None
        for a in people:
            gap = b.first_step - a.last_step
            if a.id in linked or a.id not in person_of or not 0 < gap <= cfg.relink_gap:
                continue
            end, velocity, height = _motion(a)
            distance = np.linalg.norm(_centre(end) + velocity * gap - _centre(start)) / height
            ratio = (start[3] - start[1]) / height
            near = distance <= 0.5 + 0.05 * gap and 2 / 3 <= ratio <= 1.5
            if near and (best is None or distance < best[0]):
                best = (distance, a)
        if best is None:
            person_of[b.id] = next_person
            next_person += 1
        else:
            a = best[1]
            person_of[b.id] = person_of[a.id]
            linked.add(a.id)
            if not _left_view(a, b, frame_size):
                c = cfg.count_threshold
                hidden[b.id] = _bridge(a.boxes[-1], b.boxes[0], c + (1 - c) / 4)
    return [replace(t, person=person_of.get(t.id, 0), boxes=hidden.get(t.id, ()) + t.boxes) for t in tracks]


def _left_view(a: Track, b: Track, frame_size: tuple[int, int] | None) -> bool:
    """Whether the person of track ``a`` walked out of the picture before track ``b`` brought them back:
    ``a`` heading out (its motion carries its centre out of the frame within half the gap) or ``b`` coming
    in (the same, backwards in time)."""
    if frame_size is None:
        return False
    width, height = frame_size
    half = (b.first_step - a.last_step) / 2
    a_end, a_velocity, _ = _motion(a)
    b_start, b_velocity, _ = _motion(b, first=True)
    for centre in (_centre(a_end) + a_velocity * half, _centre(b_start) - b_velocity * half):
        if not (0 <= centre[0] < width and 0 <= centre[1] < height):
            return True
    return False


def _bridge(before: TrackBox, after: TrackBox, score: float) -> tuple[TrackBox, ...]:
    """Boxes interpolated for the steps strictly between two boxes."""
    p0, p1 = np.asarray(before.box), np.asarray(after.box)
    n = after.step - before.step
    return tuple(TrackBox(s, tuple(float(v) for v in p0 + (p1 - p0) * (s - before.step) / n), score, False)
                 for s in range(before.step + 1, after.step))


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _motion(track: Track, first: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Last observed box (``first``: the first), centre velocity per step over the observed boxes next to
    it, and its height."""
    observed = [b for b in track.boxes if b.observed]
    seen = observed[:6] if first else observed[-6:]
    end = np.asarray(seen[0].box if first else seen[-1].box)
    velocity = np.zeros(2)
    if len(seen) > 1 and seen[-1].step > seen[0].step:
        velocity = (_centre(np.asarray(seen[-1].box)) - _centre(np.asarray(seen[0].box))) / (
            seen[-1].step - seen[0].step)
    return end, velocity, max(float(end[3] - end[1]), 1.0)


def _is_person(live: _Live, cfg: TrackerConfig) -> bool:
    """Seen often enough, and either confident on average or moving: a faint detection that never moves is
    part of the scenery (a cone, a sign post), the commonest false person on a fixed camera."""
    if live.hits < cfg.min_hits:
        return False
    strong = [o for o in live.observations if o.strong]
    if np.mean([o.score for o in strong]) >= cfg.sure_score:
        return True
    boxes = np.array([o.box for o in strong])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    spread = np.percentile(np.linalg.norm(centres - np.median(centres, axis=0), axis=1), 90)
    return bool(spread >= cfg.min_travel * np.median(boxes[:, 3] - boxes[:, 1]))


def _finish_track(track_id: int, live: _Live, confirmed: bool, cfg: TrackerConfig) -> Track:
    observations = live.observations
    last_strong = max(i for i, o in enumerate(observations) if o.strong)
    observations = observations[: last_strong + 1]  # weak matches after the last strong one: drifted away
    mean_score = float(np.mean([o.score for o in observations if o.strong]))
    # Track confidence: its detector scores, trusted more the longer it has been seen.
    confidence = mean_score * min(1.0, live.hits / cfg.full_hits)
    c = cfg.count_threshold
    fill = c + (1 - c) * 0.5 * confidence  # a filled box ranks below observed boxes of the track
    boxes: list[TrackBox] = []
    for o in observations:
        blended = 0.5 * o.score + 0.5 * confidence
        out_score = c + (1 - c) * blended if confirmed else c * blended
        box = TrackBox(o.step, tuple(float(v) for v in o.box), float(out_score), True)
        if confirmed and boxes and 1 < o.step - boxes[-1].step <= cfg.max_gap + 1:
            boxes.extend(_bridge(boxes[-1], box, fill))
        boxes.append(box)
    return Track(track_id, confirmed, live.hits, mean_score, tuple(boxes))

