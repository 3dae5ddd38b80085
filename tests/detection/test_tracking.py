"""The tracker on synthetic detections: gaps filled, blips dropped, scenery ignored, identities kept."""

from __future__ import annotations

import numpy as np
import pytest

from detection.tracking import Tracker, TrackerConfig, greedy_match, iou_matrix

CFG = TrackerConfig()


def walker(step: int, x0: float = 100.0, y0: float = 200.0, vx: float = 4.0,
           score: float = 0.8) -> list[float]:
    x = x0 + vx * step
    return [x, y0, x + 30, y0 + 80, score]


def run(frames: list[list[list[float]]], cfg: TrackerConfig = CFG):
    tracker = Tracker(cfg)
    for dets in frames:
        tracker.update(np.array(dets, dtype=np.float32).reshape(-1, 5))
    return tracker.finish()


def test_a_walker_missed_in_one_frame_is_one_person_with_the_gap_filled() -> None:
    frames = [[walker(i)] if i != 5 else [] for i in range(12)]
    tracking = run(frames)
    assert len(tracking.people) == 1
    person = tracking.people[0]
    assert [b.step for b in person.boxes] == list(range(12))
    filled = person.boxes[5]
    assert not filled.observed
    assert filled.box[0] == pytest.approx(walker(5)[0], abs=0.5)  # interpolated between its neighbours
    assert filled.score >= CFG.count_threshold
    assert all(b.score >= CFG.count_threshold for b in person.boxes)
    assert tracking.counts() == [1] * 12


def test_a_one_frame_false_positive_is_never_counted_but_keeps_a_low_score() -> None:
    frames = [[walker(i)] for i in range(8)]
    frames[3].append([500, 100, 530, 180, 0.9])
    tracking = run(frames)
    assert tracking.counts() == [1] * 8
    blip = [b for b in tracking.scored(3) if b[0] == 500]
    assert len(blip) == 1 and blip[0][4] < CFG.count_threshold


def test_the_first_frames_of_a_person_count_once_the_track_is_confirmed() -> None:
    tracking = run([[walker(i)] for i in range(6)])
    assert tracking.counts() == [1] * 6  # not [0, 0, 1, 1, 1, 1]: confirmation is retroactive


def test_faint_static_scenery_is_not_a_person_but_a_confident_standing_person_is() -> None:
    cone = [160, 185, 178, 207, 0.55]  # starts a track (>= high_score), never moves, never sure
    standing = [400, 150, 430, 230, 0.85]
    tracking = run([[cone, standing] for _ in range(20)])
    assert tracking.counts() == [1] * 20
    assert tracking.people[0].boxes[0].box[0] == pytest.approx(400)


def test_faint_but_moving_is_a_person() -> None:
    # Started by one clear sighting, then faint: below sure_score on average, but moving.
    tracking = run([[walker(i, score=0.62 if i == 0 else 0.55, vx=6.0)] for i in range(20)])
    assert len(tracking.people) == 1


def test_low_score_detections_extend_a_person_but_never_start_one() -> None:
    frames = [[walker(i, score=0.8 if i < 6 else 0.2)] for i in range(8)] + [[walker(i, score=0.8)]
                                                                              for i in range(8, 12)]
    frames[2].append([600, 50, 620, 100, 0.2])  # a faint blob alone: no track
    tracking = run(frames)
    assert len(tracking.people) == 1
    assert tracking.counts() == [1] * 12
    assert len(tracking.tracks) == 1


def test_weak_matches_after_the_last_strong_one_are_dropped() -> None:
    # A walker leaves; the track latches on to a faint cone where they left it. Nothing counts after.
    frames = [[walker(i)] for i in range(6)] + [[walker(6, score=0.2)] for _ in range(5)]
    tracking = run(frames)
    assert tracking.counts() == [1] * 6 + [0] * 5


def test_a_walker_hidden_longer_than_max_age_is_still_one_person() -> None:
    # Seen for 10 steps, hidden for 15 (a lamp post, a parked van), seen again where they were heading.
    frames = [[walker(i)] if not 10 <= i < 25 else [] for i in range(40)]
    frames[30].append([600, 20, 620, 60, 0.9])  # someone else, far away, for one frame
    tracking = run(frames)
    assert len(tracking.people) == 2 and tracking.unique_people == 1
    assert tracking.counts() == [1] * 40  # hidden, but there all along: the stretch is bridged
    bridged = tracking.people_boxes[17][0]
    assert bridged[0] == pytest.approx(walker(17)[0], abs=1.0) and CFG.count_threshold <= bridged[4] < 0.7


def test_two_people_crossing_stay_two_people() -> None:
    frames = []
    for i in range(30):
        frames.append([walker(i, x0=100, vx=6), walker(i, x0=400, vx=-6, y0=205)])
    tracking = run(frames)
    assert len(tracking.people) == 2 and tracking.unique_people == 2
    assert max(tracking.counts()) == 2


def test_untracked_detections_are_reported_below_the_counting_threshold() -> None:
    tracking = run([[walker(i), [700, 10, 705, 20, 0.2]] for i in range(5)])
    rows = tracking.scored(2)
    assert len(rows) == 2
    assert sorted(rows[:, 4] >= CFG.count_threshold) == [False, True]


def test_iou_and_greedy_matching() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=np.float32)
    b = np.array([[20, 20, 30, 30], [0, 0, 10, 5], [100, 100, 110, 110]], dtype=np.float32)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 1] == pytest.approx(0.5) and iou[1, 0] == pytest.approx(1.0) and iou[0, 2] == 0
    assert sorted(greedy_match(iou, 0.3)) == [(0, 1), (1, 0)]
    assert greedy_match(iou, 0.6) == [(1, 0)]
    assert greedy_match(np.zeros((0, 3)), 0.3) == []


def test_no_detections_at_all() -> None:
    tracking = run([[] for _ in range(5)])
    assert tracking.counts() == [0] * 5 and tracking.tracks == []
    assert tracking.scored(0).shape == (0, 5)


def run_in_frame(frames: list[list[list[float]]], size: tuple[int, int]):
    tracker = Tracker(CFG)
    for dets in frames:
        tracker.update(np.array(dets, dtype=np.float32).reshape(-1, 5))
    return tracker.finish(size)


def test_a_walker_who_leaves_the_picture_and_comes_back_is_not_drawn_while_away() -> None:
    # Walking right at 4 px a step towards the edge of a 200 px wide frame; away for 15 steps; back where
    # they left. The same person (re-linked), but nobody is in the picture meanwhile.
    frames = [[walker(i, x0=120.0)] if not 10 <= i < 25 else [] for i in range(40)]
    frames[25:] = [[[160.0 + 4 * (i - 25), 200, 190.0 + 4 * (i - 25), 280, 0.8]] for i in range(25, 40)]
    # Without the frame's size the tracker cannot tell leaving from hiding: it bridges (the old behaviour).
    assert run(frames).counts()[17] == 1
    tracking = run_in_frame(frames, (200, 400))
    assert tracking.unique_people == 1
    assert tracking.counts()[10:25] == [0] * 15
    assert tracking.counts()[:10] == [1] * 10 and tracking.counts()[25:] == [1] * 15


def test_a_walker_hidden_in_the_middle_of_the_picture_is_still_bridged() -> None:
    frames = [[walker(i)] if not 10 <= i < 25 else [] for i in range(40)]
    tracking = run_in_frame(frames, (768, 576))
    assert tracking.unique_people == 1 and tracking.counts() == [1] * 40


def left_half(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 0] + boxes[:, 2]) / 2 < 200


def test_within_a_zone_only_the_people_inside_count() -> None:
    # One walker crossing x = 200 from left to right, one standing far right all along.
    frames = [[walker(i, x0=100.0, vx=10.0), [400, 200, 430, 280, 0.9]] for i in range(20)]
    whole = run(frames)
    assert whole.unique_people == 2 and whole.counts() == [2] * 20
    zoned = whole.within(left_half, CFG.count_threshold)
    inside = [bool(left_half(np.array([walker(i, x0=100.0, vx=10.0)]))[0]) for i in range(20)]
    assert zoned.counts() == [int(v) for v in inside]
    assert zoned.unique_people == 1 and len(zoned.people) == 1
    stander = [t for t in zoned.tracks if not t.confirmed]
    assert len(stander) == 1 and stander[0].person == 0
    # Nothing is lost: the boxes outside are reported below the counting threshold.
    for step in range(20):
        scored = zoned.scored(step)
        assert len(scored) == len(whole.scored(step))
        assert (scored[:, 4] >= CFG.count_threshold).sum() == zoned.counts()[step]


def test_a_track_starts_only_above_the_new_track_score_at_dense_rates() -> None:
    # Middling boxes (strong enough to extend a track, not to start one), e.g. a blob beside a person.
    middling = [[walker(i, score=0.55, vx=6.0)] for i in range(20)]
    assert run(middling).people == []
    sparse = TrackerConfig.for_rate(2.0)  # two steps a second: every sighting counts, a track starts at 0.5
    assert sparse.new_track_score == sparse.high_score == 0.5
    assert len(run(middling, sparse).people) == 1
    assert TrackerConfig.for_rate(10.0).new_track_score == 0.6
