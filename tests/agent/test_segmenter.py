"""The segment policy: long segments on a static scene, a cut at the first keyframe that shows a change."""

from __future__ import annotations

import numpy as np
import pytest

from agent.segmenter import SMALL_SIZE, SegmentPolicy, SegmentSettings, appeared, changed, small_copy

W, H = SMALL_SIZE
RNG = np.random.default_rng(7)


def scene(person_at: int | None = None) -> np.ndarray:
    """A static grey scene with +-2 levels of noise; a 6x12 dark 'person' at column ``person_at``."""
    img = np.clip(120 + RNG.normal(0, 2, (H, W)), 0, 255).astype(np.uint8)
    if person_at is not None:
        img[30:42, person_at:person_at + 6] = 40
    return img


def cuts(policy: SegmentPolicy, frames: list[np.ndarray | None], gop_s: float = 2.0) -> list[float]:
    return [i * gop_s for i, f in enumerate(frames) if policy.on_keyframe(i * gop_s, f)]


def test_static_scene_is_cut_every_segment_s() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=6, quiet_segment_s=0))
    assert cuts(policy, [scene() for _ in range(16)]) == [0, 10, 20, 30]
    assert not policy.quick


def test_a_change_cuts_at_once_then_every_keyframe_for_quick_s() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=60, quick_s=6))
    frames = [scene() for _ in range(5)] + [scene(50)] + [scene(50) for _ in range(8)]
    # The person shows at t=10: cut there, then at every keyframe until 6 s after the change.
    assert cuts(policy, frames) == [0, 10, 12, 14]


def test_noise_alone_is_no_change() -> None:
    settings = SegmentSettings()
    assert not any(changed(scene(), scene(), settings) for _ in range(50))
    assert changed(scene(), scene(40), settings)
    assert not changed(None, scene(40), settings)
    assert not changed(scene()[:10], scene(40), settings)  # a new resolution is not motion


def test_undecodable_keyframes_still_cut_on_time() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=4, quick_s=0))
    assert cuts(policy, [None] * 6) == [0, 4, 8]


def test_time_going_backwards_never_cuts_an_empty_segment() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=4))
    assert policy.on_keyframe(10.0, scene())
    assert not policy.on_keyframe(10.0, scene(50))


@pytest.mark.parametrize("kwargs", [{"segment_s": 0}, {"quick_s": -1}])
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SegmentSettings(**kwargs)


def test_change_that_goes_on_does_not_keep_cutting() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=20, quick_s=4))
    # Still until t=10, then something moves at every keyframe (a swaying tree, people walking about).
    frames = [scene() for _ in range(5)] + [scene(10 + 4 * (i % 2)) for i in range(20)]
    # Cut at the first change, at every keyframe for 4 s, then every segment_s however long it lasts.
    assert cuts(policy, frames) == [0, 10, 12, 32]


def test_a_new_change_after_a_still_keyframe_cuts_again() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=60, quick_s=2))
    frames = [scene(), scene(), scene(50), scene(50), scene(50), scene(20), scene(20)]
    assert cuts(policy, frames) == [0, 4, 10]


def stills(policy: SegmentPolicy, frames: list[np.ndarray | None],
           gop_s: float = 2.0) -> list[tuple[float, bool]]:
    """(cut time, whether the segment that cut ended was still) for every cut after the first."""
    out = []
    for i, f in enumerate(frames):
        if policy.on_keyframe(i * gop_s, f) and i:
            out.append((i * gop_s, policy.closed_quiet))
    return out


def test_a_static_scene_skips_analysis_but_is_rechecked_every_recheck_s() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=30, quiet_segment_s=0))
    # The first segment of a connection is always analysed; then still ones skip it until 30 s have
    # passed since the end of the last analysed one.
    assert stills(policy, [scene() for _ in range(41)]) == [
        (10, False), (20, True), (30, True), (40, False), (50, True), (60, True), (70, False), (80, True)]


def test_a_segment_whose_frames_changed_is_analysed_as_are_the_quick_ones() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=300, quiet_segment_s=0))
    frames = [scene() for _ in range(11)] + [scene(50)] + [scene(50) for _ in range(15)]
    # 10-20 still (skipped); the change shows at t=22: the segment 20-22 holds it (its end keyframe
    # changed); the quick 22-24 is analysed though the person stands still; 24-34 and 34-44 are still and
    # skipped (no recheck due yet): the count the quick one found holds.
    assert stills(policy, frames) == [(10, False), (20, True), (22, False), (24, False), (34, True),
                                      (44, True)]


def test_an_undecodable_keyframe_makes_its_segment_analysed() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=300, quiet_segment_s=0))
    frames = [scene() for _ in range(12)]
    frames[7] = None  # t=14: the segment 10-20 cannot be known to be still
    assert stills(policy, frames) == [(10, False), (20, False)]


def test_recheck_zero_analyses_every_segment() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=0))
    assert stills(policy, [scene() for _ in range(16)]) == [(10, False), (20, False), (30, False)]


def test_the_policy_tests_change_as_the_detection_function_skips_gops() -> None:
    """A still segment is left unanalysed: the agent's test must be the detection function's GOP test."""
    from detection.motion import MotionConfig, small_gray

    settings, motion = SegmentSettings(), MotionConfig()
    assert (settings.pixel_threshold, settings.min_changed_fraction) == (
        motion.pixel_threshold, motion.min_changed_fraction)
    frame = RNG.integers(0, 255, (1080, 1920), dtype=np.uint8)
    assert np.array_equal(small_copy(frame), small_gray(frame, motion.width))
    assert small_copy(frame).shape[::-1] == SMALL_SIZE


def test_a_change_after_a_pause_shorter_than_settle_s_is_no_new_appearance() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=60, quick_s=4, settle_s=4))
    # A tree sways from t=10, pauses for one keyframe at t=16 and sways on: one appearance, not two.
    sway = [scene(10), scene(14), scene(10), scene(10), scene(14), scene(10)]
    frames = [scene() for _ in range(5)] + sway + [scene(10)] * 4 + [scene(60)]
    # t=10 starts (cut, quick until 14); t=18 follows a 4-s pause: not a start; t=30 follows 10 s of
    # stillness: a start again.
    assert cuts(policy, frames) == [0, 10, 12, 30]


def test_a_burnt_in_clock_keeps_segments_analysed_but_does_not_hide_an_appearance() -> None:
    """A clock in the picture changes every keyframe: never still (detection's test sees it), but the
    coarser appearance test ignores it, so someone walking in is still cut at once."""
    def clocked(i: int, person_at: int | None = None) -> np.ndarray:
        img = scene(person_at)
        img[2:5, 140:152] = 200 if i % 2 else 60  # the seconds digits, 12 x 3 px of the copy
        return img

    settings = SegmentSettings(segment_s=10, quick_s=4, recheck_s=300, quiet_segment_s=0)
    assert changed(clocked(0), clocked(1), settings)
    assert not appeared(clocked(0), clocked(1), settings)
    assert appeared(clocked(0), clocked(1, person_at=50), settings)
    policy = SegmentPolicy(settings)
    frames = [clocked(i) for i in range(11)] + [clocked(i, person_at=50) for i in range(11, 14)]
    assert stills(policy, frames) == [(10, False), (20, False), (22, False), (24, False)]


def checked(policy: SegmentPolicy, frames: list[np.ndarray | None], someone: list[bool],
            gop_s: float = 2.0) -> tuple[list[tuple[float, bool]], int]:
    """With the agent's person check saying ``someone[i]`` at keyframe i: (cut time, whether the segment
    that cut ended is quiet) for every cut after the first, and how often the check ran."""
    asked = []
    out = []
    for i, f in enumerate(frames):
        def check(i: int = i) -> bool:
            asked.append(i)
            return someone[i]
        if policy.on_keyframe(i * gop_s, f, people=check) and i:
            out.append((i * gop_s, policy.closed_quiet))
    return out, len(asked)


def test_with_the_person_check_a_swaying_tree_neither_cuts_nor_is_analysed() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=300, quiet_segment_s=0))
    frames = [scene() for _ in range(5)] + [scene(10 + 4 * (i % 2)) for i in range(16)]
    out, asked = checked(policy, frames, [False] * len(frames))
    # Motion alone cuts at t=10 and 12 and analyses every segment from there (see above); with nobody at
    # any keyframe the segments keep their length and go to quiet/. The check ran at the first keyframe
    # and at each one that changed (16), never on the still ones.
    assert out == [(10, False), (20, True), (30, True), (40, True)]
    assert asked == 1 + 16


def test_with_the_person_check_someone_seen_cuts_at_once_and_their_segments_are_analysed() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=300, quiet_segment_s=0))
    # Empty and still until t=22; someone walks in (seen from t=22), walks about until t=30, leaves
    # (nobody from t=32), and the scene is still again.
    frames = ([scene() for _ in range(11)] + [scene(50), scene(54), scene(58), scene(62), scene(66)]
              + [scene() for _ in range(14)])
    someone = [False] * 11 + [True] * 5 + [False] * 14
    out, _ = checked(policy, frames, someone)
    # 10-20 still (quiet); 20-22 analysed (its closing keyframe shows someone: they may have walked in
    # during its last GOP); the quick 22-24; 24-34 holds the visit and the departure: analysed; after it,
    # still and nobody: quiet.
    assert out == [(10, False), (20, True), (22, False), (24, False), (34, False), (44, True), (54, True)]


def test_with_the_person_check_someone_appearing_while_a_tree_sways_is_cut_at_once() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=60, quick_s=4, recheck_s=300))
    frames = [scene() for _ in range(3)] + [scene(10 + 4 * (i % 2)) for i in range(12)]
    someone = [False] * 10 + [True] * 5  # the tree sways from t=6; someone walks in at t=20
    out, _ = checked(policy, frames, someone)
    # Motion alone would not cut again while the tree sways; the check cuts at t=20 and t=22 (quick).
    assert [t for t, _ in out] == [20, 22]
    assert out[0] == (20, False)  # the segment before holds their first steps: analysed


def test_with_the_person_check_someone_standing_still_is_not_analysed_again_until_the_recheck() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=40, quiet_segment_s=0))
    frames = [scene()] * 3 + [scene(50)] * 30
    out, asked = checked(policy, frames, [False] * 3 + [True] * 30)
    # Seen at t=6 (cut, quick until 10); then the picture does not change: the check is not asked again
    # and the segments are still (quiet) until 40 s after the last analysed one.
    assert out == [(6, False), (8, False), (18, True), (28, True), (38, True), (48, False), (58, True)]
    assert asked == 2


def test_with_the_person_check_one_missed_keyframe_is_no_new_appearance() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=60, quick_s=2, settle_s=4))
    frames = [scene()] * 3 + [scene(50 + 4 * i) for i in range(8)]
    someone = [False] * 3 + [True, True, False, True, True, True, True, True]
    # Seen at t=6, missed at t=10 (half hidden), seen again at t=12: 4 s is not settle_s of nobody.
    out, _ = checked(policy, frames, someone)
    assert [t for t, _ in out] == [6]


def test_with_the_person_check_an_undecodable_keyframe_counts_as_someone() -> None:
    from agent.people import PersonCheck

    class Never:
        input_size = (448, 352)

        def detect(self, frame: np.ndarray) -> np.ndarray:
            raise AssertionError("no frame to look at")

    assert PersonCheck(Never())(None) is True  # type: ignore[arg-type]


def test_a_quiet_stretch_is_one_long_segment_that_stops_short_of_the_recheck() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=100, quiet_segment_s=40))
    # Still for 150 s: the first segment is analysed; then quiet segments of up to 40 s, the last of them
    # ending a segment_s before the recheck (100 s after the last analysed one), which is a normal segment.
    assert stills(policy, [scene() for _ in range(76)]) == [
        (10, False), (50, True), (90, True), (100, True), (110, False), (150, True)]


def test_someone_appearing_in_a_long_quiet_segment_splits_it() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=300, quiet_segment_s=60))
    frames = [scene() for _ in range(20)] + [scene(50 + 4 * i) for i in range(6)]
    someone = [False] * 20 + [True] * 6
    splits = []
    for i, f in enumerate(frames):
        if policy.on_keyframe(i * 2.0, f, people=lambda i=i: someone[i]) and i:
            splits.append((i * 2.0, policy.closed_quiet, policy.closed_quiet_until))
    # 10-40 quiet so far; someone is seen at t=40: the segment is cut there and analysed from its last
    # quiet keyframe (38: the GOP in which they may have walked in); 10-38 goes to quiet/.
    assert splits[:2] == [(10.0, False, None), (40.0, False, 38.0)]
    assert splits[2] == (42.0, False, None)  # the quick one


def test_a_short_quiet_head_is_not_split_off() -> None:
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=4, recheck_s=300, quiet_segment_s=60))
    frames = [scene() for _ in range(8)] + [scene(50)] * 3
    someone = [False] * 8 + [True] * 3
    for i, f in enumerate(frames):
        cut = policy.on_keyframe(i * 2.0, f, people=lambda i=i: someone[i])
        if i == 8:  # 10-16 quiet: under half a segment, not worth its own object
            assert cut and not policy.closed_quiet and policy.closed_quiet_until is None
