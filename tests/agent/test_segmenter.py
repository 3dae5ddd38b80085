"""The segment policy: long segments on a static scene, a cut at the first keyframe that shows a change."""

from __future__ import annotations

import numpy as np
import pytest

from agent.segmenter import SMALL_SIZE, SegmentPolicy, SegmentSettings, changed

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
    policy = SegmentPolicy(SegmentSettings(segment_s=10, quick_s=6))
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
