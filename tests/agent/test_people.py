"""The agent's person check on real keyframes: people are someone; an empty room, dimmed or not, is nobody."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from agent.people import MIN_SCORE, PersonCheck, load_person_check

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def check() -> PersonCheck:
    loaded = load_person_check()
    assert loaded is not None, "the shipped model must load"
    return loaded


def keyframes(path: Path, dim: float = 1.0) -> list[av.VideoFrame]:
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(stream):
            if dim != 1.0:
                rgb = (frame.to_ndarray(format="rgb24") * dim).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            out.append(frame)
    assert out
    return out


def test_people_in_view_are_someone(check: PersonCheck) -> None:
    frames = keyframes(DATA / "vtest-clip.mkv")
    assert all(check(f) for f in frames)
    assert check.calls == len(frames) and check.cpu_s > 0


@pytest.mark.parametrize("dim", [1.0, 0.7, 0.4])
def test_an_empty_room_is_nobody_in_any_light(check: PersonCheck, dim: float) -> None:
    assert not any(check(f) for f in keyframes(DATA / "empty-scene.mkv", dim))


def test_the_threshold_is_below_what_detection_counts_as_strong() -> None:
    from detection.tracking import TrackerConfig

    assert TrackerConfig().high_score > MIN_SCORE  # the check errs towards "someone"


def test_a_frame_of_any_size_is_scaled_to_the_model(check: PersonCheck) -> None:
    frame = keyframes(DATA / "vtest-clip.mkv")[0]
    assert check(frame.reformat(width=1920, height=1440))  # scaled down to the model's input
    assert check(frame.reformat(width=640, height=480))  # smaller than the model's input: not enlarged
    assert not check(keyframes(DATA / "empty-scene.mkv")[0].reformat(width=1920, height=1440))
